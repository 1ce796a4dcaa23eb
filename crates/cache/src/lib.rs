//! Cache and counter abstraction shared by the services: one trait, an in-process backend
//! (moka) for the embedded default and a Redis backend for multi-process deployments.

mod error;
mod memory;
mod redis_cache;
mod tls;

use std::time::Duration;

use async_trait::async_trait;
use serde::Serialize;
use serde::de::DeserializeOwned;

pub use error::CacheError;
pub use memory::MemoryCache;
pub use redis_cache::RedisCache;
pub use tls::RedisOptions;

/// A byte-oriented cache with TTLs plus the two counter shapes the services need.
///
/// Values and counters may live in the same key space (they do on Redis): callers keep counter
/// keys and value keys apart by naming convention.
#[async_trait]
pub trait Cache: Send + Sync + 'static {
    async fn get(&self, key: &str) -> Result<Option<Vec<u8>>, CacheError>;
    async fn set(&self, key: &str, value: &[u8], ttl: Duration) -> Result<(), CacheError>;
    async fn delete(&self, key: &str) -> Result<(), CacheError>;
    /// Fixed-window counter: adds 1 to `key` and returns the new count; the window (and the
    /// count) starts with the first increment and ends `window` later. Used for rate limits, so
    /// it must be atomic across processes on Redis.
    async fn incr_window(&self, key: &str, window: Duration) -> Result<u64, CacheError>;
    /// Atomically adds 1 to a counter that never expires and returns the new value (used as a
    /// cache generation number); an absent one first starts as `counter` says.
    async fn bump(&self, key: &str) -> Result<u64, CacheError>;
    /// Reads such a counter. An absent counter (never used, or lost to a Redis restart, flush or
    /// eviction) starts at a random base, so its values never repeat earlier ones: keys built
    /// from a generation must not name entries (or other processes' local copies) made before.
    async fn counter(&self, key: &str) -> Result<u64, CacheError>;
    async fn ping(&self) -> bool;
    /// `"memory"` or `"redis"`, for health reports and logs.
    fn kind(&self) -> &'static str;
}

/// Reads a JSON value. A value that no longer decodes (e.g. written by an older version of the
/// type) is treated as a miss so the caller recomputes and overwrites it.
pub async fn get_json<T: DeserializeOwned>(
    cache: &dyn Cache,
    key: &str,
) -> Result<Option<T>, CacheError> {
    let Some(bytes) = cache.get(key).await? else {
        return Ok(None);
    };
    match serde_json::from_slice(&bytes) {
        Ok(value) => Ok(Some(value)),
        Err(error) => {
            tracing::debug!(key, %error, "cached value does not decode; treating as a miss");
            Ok(None)
        }
    }
}

/// Writes a value as JSON.
pub async fn set_json<T: Serialize>(
    cache: &dyn Cache,
    key: &str,
    value: &T,
    ttl: Duration,
) -> Result<(), CacheError> {
    let bytes = serde_json::to_vec(value).map_err(|e| CacheError::Encode(e.to_string()))?;
    cache.set(key, &bytes, ttl).await
}

/// Where an absent counter starts: random, and below 2^62 so Redis's signed 64-bit INCR has
/// room for 2^62 bumps. Runs of `n` and `m` values from two random bases overlap with odds of
/// about `(n + m) / 2^62`; a base from the clock would overlap when a counter bumped faster
/// than the clock ticks is lost, or is restarted by a replica whose clock runs behind.
pub(crate) fn counter_base() -> u64 {
    rand::random::<u64>() >> 2
}

/// Both backends need a strictly positive duration: Redis rejects `PX 0` and treats
/// `PEXPIRE 0` as a delete, so a zero TTL or window is rounded up to the smallest one.
pub(crate) fn at_least_1ms(d: Duration) -> Duration {
    d.max(Duration::from_millis(1))
}
