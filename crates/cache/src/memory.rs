//! In-process cache backend (moka), the embedded default: per-process, so no key prefix.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use moka::Expiry;

use crate::{Cache, CacheError, at_least_1ms, counter_base};

/// A cached value with the TTL it was written with, so expiry can be per entry.
#[derive(Clone)]
struct Entry {
    value: Arc<[u8]>,
    ttl: Duration,
}

/// A fixed window: the count lives behind an `Arc` so increments are lock-free and atomic, and
/// the moka entry's lifetime is the window itself.
struct Window {
    count: AtomicU64,
    length: Duration,
}

struct EntryExpiry;

impl Expiry<String, Entry> for EntryExpiry {
    fn expire_after_create(&self, _key: &String, value: &Entry, _at: Instant) -> Option<Duration> {
        Some(value.ttl)
    }

    // An overwrite restarts the clock with the new entry's own TTL, as SET PX does on Redis.
    fn expire_after_update(
        &self,
        _key: &String,
        value: &Entry,
        _at: Instant,
        _remaining: Option<Duration>,
    ) -> Option<Duration> {
        Some(value.ttl)
    }
}

struct WindowExpiry;

impl Expiry<String, Arc<Window>> for WindowExpiry {
    fn expire_after_create(
        &self,
        _key: &String,
        value: &Arc<Window>,
        _at: Instant,
    ) -> Option<Duration> {
        Some(value.length)
    }
}

/// In-process cache. Values and rate-limit windows are bounded by `max_entries` each (LRU-ish
/// eviction by moka); generation counters are not bounded because evicting one would reset it
/// and bring stale cached entries back to life.
pub struct MemoryCache {
    values: moka::future::Cache<String, Entry>,
    windows: moka::future::Cache<String, Arc<Window>>,
    counters: Mutex<HashMap<String, u64>>,
}

impl MemoryCache {
    pub fn new(max_entries: u64) -> Self {
        Self {
            values: moka::future::Cache::builder()
                .max_capacity(max_entries)
                .expire_after(EntryExpiry)
                .build(),
            windows: moka::future::Cache::builder()
                .max_capacity(max_entries)
                .expire_after(WindowExpiry)
                .build(),
            counters: Mutex::new(HashMap::new()),
        }
    }

    fn counters(&self) -> std::sync::MutexGuard<'_, HashMap<String, u64>> {
        // The map holds plain integers updated in one statement, so a panic elsewhere cannot
        // leave it half-written: a poisoned lock is safe to keep using.
        self.counters.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

#[async_trait]
impl Cache for MemoryCache {
    async fn get(&self, key: &str) -> Result<Option<Vec<u8>>, CacheError> {
        Ok(self.values.get(key).await.map(|e| e.value.to_vec()))
    }

    async fn set(&self, key: &str, value: &[u8], ttl: Duration) -> Result<(), CacheError> {
        let entry = Entry {
            value: Arc::from(value),
            ttl: at_least_1ms(ttl),
        };
        self.values.insert(key.to_owned(), entry).await;
        Ok(())
    }

    async fn delete(&self, key: &str) -> Result<(), CacheError> {
        self.values.invalidate(key).await;
        Ok(())
    }

    async fn incr_window(&self, key: &str, window: Duration) -> Result<u64, CacheError> {
        // moka runs at most one initialiser per key, so concurrent first increments share one
        // window; an expired window reads as absent and is replaced by a fresh one.
        let length = at_least_1ms(window);
        let current = self
            .windows
            .get_with_by_ref(key, async move {
                Arc::new(Window {
                    count: AtomicU64::new(0),
                    length,
                })
            })
            .await;
        Ok(current.count.fetch_add(1, Ordering::AcqRel) + 1)
    }

    async fn bump(&self, key: &str) -> Result<u64, CacheError> {
        let mut counters = self.counters();
        let value = counters.entry(key.to_owned()).or_insert_with(counter_base);
        *value += 1;
        Ok(*value)
    }

    async fn counter(&self, key: &str) -> Result<u64, CacheError> {
        // Counters are never evicted here, but they start as Redis's do, so the two backends
        // keep one contract. Read on every cached request: no key copied once it exists.
        let mut counters = self.counters();
        if let Some(&value) = counters.get(key) {
            return Ok(value);
        }
        Ok(*counters.entry(key.to_owned()).or_insert_with(counter_base))
    }

    async fn ping(&self) -> bool {
        true
    }

    fn kind(&self) -> &'static str {
        "memory"
    }
}
