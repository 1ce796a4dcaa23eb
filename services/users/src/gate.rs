//! The password-hashing gate: argon2id costs 19 MiB and tens of milliseconds of CPU per hash,
//! so at most a few run at once (about the core count), a bounded number wait briefly, and
//! the rest are refused at once with RATE_LIMITED and a retry hint. Memory and latency stay
//! bounded however many sign-ups and sign-ins arrive together.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use bazaar_auth::{hash_password, verify_password};
use bazaar_contracts::ApiError;
use bazaar_runtime::{ServiceError, ServiceResult, Settings};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

pub struct HashGate {
    slots: Arc<Semaphore>,
    concurrency: usize,
    waiting: AtomicUsize,
    queue: usize,
    wait: Duration,
}

/// Leaves the queue however the wait ends, including when the request is dropped.
struct InQueue<'a>(&'a AtomicUsize);

impl Drop for InQueue<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::SeqCst);
    }
}

impl HashGate {
    pub fn new(settings: &Settings) -> Self {
        HashGate {
            slots: Arc::new(Semaphore::new(settings.password_hash_concurrency)),
            concurrency: settings.password_hash_concurrency,
            waiting: AtomicUsize::new(0),
            queue: settings.password_hash_queue,
            wait: settings.password_hash_wait,
        }
    }

    /// Hashes a new password into a PHC string.
    pub async fn hash(&self, password: String) -> ServiceResult<String> {
        self.run(move || hash_password(&password))
            .await?
            .map_err(|e| ServiceError::Internal(e.to_string()))
    }

    /// True when `password` matches the stored PHC string.
    pub async fn verify(&self, password: String, phc: String) -> ServiceResult<bool> {
        self.run(move || verify_password(&password, &phc)).await
    }

    async fn run<T: Send + 'static>(
        &self,
        work: impl FnOnce() -> T + Send + 'static,
    ) -> ServiceResult<T> {
        let permit = self.admit().await?;
        let out = tokio::task::spawn_blocking(move || {
            let _slot = permit;
            work()
        })
        .await
        .map_err(|e| ServiceError::Internal(e.to_string()))?;
        // The burst is over (nothing hashing, nothing waiting): hand what the hashes left in
        // malloc's arenas back to the system.
        if self.slots.available_permits() == self.concurrency
            && self.waiting.load(Ordering::SeqCst) == 0
        {
            tokio::task::spawn_blocking(bazaar_runtime::memory::release_free_memory);
        }
        Ok(out)
    }

    async fn admit(&self) -> ServiceResult<OwnedSemaphorePermit> {
        if let Ok(permit) = self.slots.clone().try_acquire_owned() {
            return Ok(permit);
        }
        if self.waiting.fetch_add(1, Ordering::SeqCst) >= self.queue {
            self.waiting.fetch_sub(1, Ordering::SeqCst);
            metrics::counter!("bazaar_password_hash_refused_total").increment(1);
            return Err(busy().into());
        }
        let _in_queue = InQueue(&self.waiting);
        match tokio::time::timeout(self.wait, self.slots.clone().acquire_owned()).await {
            Ok(Ok(permit)) => Ok(permit),
            _ => {
                metrics::counter!("bazaar_password_hash_refused_total").increment(1);
                Err(busy().into())
            }
        }
    }
}

fn busy() -> ApiError {
    ApiError::rate_limited("too many sign-ins at once; try again in a second", 1)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn gate(concurrency: usize, queue: usize, wait_ms: u64) -> HashGate {
        HashGate {
            slots: Arc::new(Semaphore::new(concurrency)),
            concurrency,
            waiting: AtomicUsize::new(0),
            queue,
            wait: Duration::from_millis(wait_ms),
        }
    }

    /// 1 running + 2 waiting are admitted; the others are refused at once, not queued.
    #[tokio::test]
    async fn beyond_the_queue_requests_are_refused_at_once() {
        let gate = Arc::new(gate(1, 2, 5_000));
        let started = std::time::Instant::now();
        let tasks: Vec<_> = (0..6)
            .map(|_| {
                let gate = gate.clone();
                tokio::spawn(async move {
                    gate.run(|| std::thread::sleep(Duration::from_millis(100)))
                        .await
                        .is_ok()
                })
            })
            .collect();
        let mut admitted = 0;
        for task in tasks {
            admitted += usize::from(task.await.unwrap());
        }
        assert_eq!(admitted, 3);
        assert!(started.elapsed() < Duration::from_secs(2));
        assert_eq!(gate.waiting.load(Ordering::SeqCst), 0);
    }

    #[tokio::test]
    async fn a_wait_longer_than_allowed_is_refused_with_a_retry_hint() {
        let gate = Arc::new(gate(1, 8, 50));
        let slow = {
            let gate = gate.clone();
            tokio::spawn(async move {
                gate.run(|| std::thread::sleep(Duration::from_millis(500)))
                    .await
            })
        };
        tokio::time::sleep(Duration::from_millis(20)).await;
        let refused = gate.run(|| ()).await.unwrap_err();
        let api = ApiError::from(refused);
        assert_eq!(api.code, bazaar_contracts::ErrorCode::RateLimited);
        assert_eq!(api.retry_after_secs, Some(1));
        slow.await.unwrap().unwrap();
    }
}
