//! Backpressure for the order saga. When more orders wait for the catalogue's answer (PENDING)
//! than `max_pending_orders`, placeOrder waits for the saga to catch up before it accepts
//! another: under overload a customer's request takes longer, instead of their order sitting
//! PENDING behind a backlog that only grows. After `WAIT` it gives up with
//! SERVICE_UNAVAILABLE (the catalogue may be down: nothing is confirmed then).
//!
//! The PENDING count is read from the database, so it is right across replicas, every few
//! milliseconds while orders are placed; in between each replica adds what it admitted.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use bazaar_contracts::ApiError;
use bazaar_db::Db;
use bazaar_runtime::Task;
use tokio::sync::Notify;
use tokio::time::Instant;

use crate::store;

/// How long placeOrder waits for room before it gives up.
const WAIT: Duration = Duration::from_secs(10);
/// How often the count is read while orders come in, and while idle.
const BUSY_EVERY: Duration = Duration::from_millis(10);
const IDLE_EVERY: Duration = Duration::from_millis(250);

/// The saga's backlog as this replica knows it.
pub struct Backlog {
    limit: u64,
    wait: Duration,
    /// PENDING orders at the last reading.
    pending: AtomicU64,
    /// Orders this replica admitted that are not committed (or given up) yet.
    placing: AtomicU64,
    /// Orders this replica committed that the last reading may not have seen.
    committed: AtomicU64,
    /// A new reading arrived.
    read: Notify,
    /// Someone wants a reading now.
    wanted: Notify,
}

/// An admitted order on its way to the database; say when it is [`Admitted::committed`].
pub struct Admitted {
    backlog: Arc<Backlog>,
    committed: bool,
}

impl Admitted {
    pub fn committed(mut self) {
        self.committed = true;
    }
}

impl Drop for Admitted {
    fn drop(&mut self) {
        if self.committed {
            self.backlog.committed.fetch_add(1, Ordering::AcqRel);
        }
        self.backlog.placing.fetch_sub(1, Ordering::AcqRel);
        if !self.committed {
            // Its room is free again for whoever waits.
            self.backlog.read.notify_waiters();
        }
    }
}

impl Backlog {
    pub fn new(limit: u64) -> Arc<Backlog> {
        Self::waiting_at_most(limit, WAIT)
    }

    fn waiting_at_most(limit: u64, wait: Duration) -> Arc<Backlog> {
        Arc::new(Backlog {
            limit,
            wait,
            pending: AtomicU64::new(0),
            placing: AtomicU64::new(0),
            committed: AtomicU64::new(0),
            read: Notify::new(),
            wanted: Notify::new(),
        })
    }

    /// Returns once one more order may be placed; SERVICE_UNAVAILABLE after waiting too long.
    pub async fn admit(self: &Arc<Self>) -> Result<Admitted, ApiError> {
        let deadline = Instant::now() + self.wait;
        loop {
            let read = self.read.notified();
            tokio::pin!(read);
            // Registered before the check, so a reading that lands in between is not missed.
            read.as_mut().enable();
            let placing = self.placing.load(Ordering::Acquire);
            let known =
                self.pending.load(Ordering::Acquire) + self.committed.load(Ordering::Acquire);
            if known + placing < self.limit {
                let next = placing + 1;
                if self
                    .placing
                    .compare_exchange(placing, next, Ordering::AcqRel, Ordering::Acquire)
                    .is_ok()
                {
                    return Ok(Admitted {
                        backlog: self.clone(),
                        committed: false,
                    });
                }
                continue;
            }
            self.wanted.notify_one();
            if tokio::time::timeout_at(deadline, read).await.is_err() {
                metrics::counter!("bazaar_orders_backpressure_refused_total").increment(1);
                return Err(ApiError::unavailable(format!(
                    "{known} orders are waiting for their stock to be reserved; try again in a moment"
                )));
            }
        }
    }

    /// Records a reading of `pending` orders, taken after `committed_before` of this replica's
    /// commits (those are in it; later ones may not be, and stay counted until the next).
    fn record(&self, pending: u64, committed_before: u64) {
        self.pending.store(pending, Ordering::Release);
        self.committed.fetch_sub(committed_before, Ordering::AcqRel);
        self.read.notify_waiters();
    }

    /// Reads the PENDING count: often while orders come in, rarely while idle.
    pub fn task(self: Arc<Self>, db: Db) -> Task {
        Box::new(move |stop| {
            Box::pin(async move {
                loop {
                    let before = self.committed.load(Ordering::Acquire);
                    match store::count_pending(&db).await {
                        Ok(pending) => self.record(pending, before),
                        Err(e) => tracing::warn!(error = %e, "cannot count pending orders"),
                    }
                    // While busy, readings come every BUSY_EVERY however many wait for one;
                    // while idle, the first order that finds no room asks for one at once.
                    let busy = before > 0 || self.pending.load(Ordering::Acquire) > 0;
                    let next = async {
                        if busy {
                            tokio::time::sleep(BUSY_EVERY).await;
                        } else {
                            let _ = tokio::time::timeout(IDLE_EVERY, self.wanted.notified()).await;
                        }
                    };
                    tokio::select! {
                        _ = stop.cancelled() => return,
                        _ = next => {}
                    }
                }
            })
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// An order admitted and then waiting to be admitted, `backlog`'s to decide.
    fn placing(backlog: &Arc<Backlog>) -> tokio::task::JoinHandle<Result<(), ApiError>> {
        let backlog = backlog.clone();
        tokio::spawn(async move { backlog.admit().await.map(Admitted::committed) })
    }

    async fn still_waiting(order: &tokio::task::JoinHandle<Result<(), ApiError>>) -> bool {
        tokio::time::sleep(Duration::from_millis(50)).await;
        !order.is_finished()
    }

    #[tokio::test]
    async fn admits_while_room_is_left_by_readings_and_given_up_orders() {
        let backlog = Backlog::waiting_at_most(2, Duration::from_secs(5));
        backlog.admit().await.unwrap().committed();
        let given_up = backlog.admit().await.unwrap();
        let third = placing(&backlog);
        assert!(still_waiting(&third).await, "admitted over the limit");
        // The first order is PENDING in the reading: still no room.
        backlog.record(1, 1);
        assert!(
            still_waiting(&third).await,
            "admitted over the limit after a reading"
        );
        drop(given_up);
        third.await.unwrap().unwrap();
        let fourth = placing(&backlog);
        assert!(
            still_waiting(&fourth).await,
            "the third's commit was not counted"
        );
        // Both answered by the catalogue.
        backlog.record(0, 1);
        fourth.await.unwrap().unwrap();
    }

    #[tokio::test]
    async fn gives_up_after_waiting_with_service_unavailable() {
        let backlog = Backlog::waiting_at_most(1, Duration::from_millis(50));
        backlog.record(3, 0);
        let err = backlog.admit().await.err().expect("refused");
        assert_eq!(err.code, bazaar_contracts::ErrorCode::ServiceUnavailable);
        assert!(
            err.message.contains("3 orders are waiting"),
            "{}",
            err.message
        );
    }
}
