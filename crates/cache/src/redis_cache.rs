//! Redis cache backend, for deployments with several processes: every key is prefixed with
//! `{namespace}:` so services (and test runs) sharing one Redis cannot see each other's keys.

use std::time::Duration;

use async_trait::async_trait;
use redis::RedisError;
use redis::aio::{ConnectionManager, ConnectionManagerConfig};

use crate::tls::{check_login, connect_err};
use crate::{Cache, CacheError, RedisOptions, at_least_1ms, counter_base};

/// INCR and the window's expiry in one atomic step. The expiry is set only when the window
/// opens, so later increments do not slide it. A key found without any expiry (left by a
/// crash of an older non-atomic writer, or a stray SET) also gets one, because a rate-limit key
/// that never expires would lock its caller out for good.
const INCR_WINDOW_LUA: &str = r"
local n = redis.call('INCR', KEYS[1])
if n == 1 or redis.call('PTTL', KEYS[1]) == -1 then
  redis.call('PEXPIRE', KEYS[1], ARGV[1])
end
return n
";

/// A counter's value, created at the base in ARGV[1] when absent (see `counter_base`). Values go
/// back as the strings Redis stores: Lua numbers are doubles, which would round a 62-bit value
/// (an INCR reply too, so the bump reads the counter back with GET).
const COUNTER_LUA: &str = r"
local v = redis.call('GET', KEYS[1])
if not v then
  redis.call('SET', KEYS[1], ARGV[1])
  v = ARGV[1]
end
return v
";

/// INCR of a counter that starts at the base in ARGV[1] when absent, not at 0.
const BUMP_LUA: &str = r"
if redis.call('EXISTS', KEYS[1]) == 0 then
  redis.call('SET', KEYS[1], ARGV[1])
end
redis.call('INCR', KEYS[1])
return redis.call('GET', KEYS[1])
";

/// How many keys one SCAN step asks for when flushing a namespace.
const SCAN_BATCH: usize = 500;

/// Redis-backed cache. Cheap to clone: the connection manager multiplexes one connection and
/// reconnects on its own after failures.
#[derive(Clone)]
pub struct RedisCache {
    conn: ConnectionManager,
    prefix: String,
    incr_window: redis::Script,
    counter: redis::Script,
    bump: redis::Script,
}

impl std::fmt::Debug for RedisCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedisCache")
            .field("prefix", &self.prefix)
            .finish_non_exhaustive()
    }
}

impl RedisCache {
    /// Connects (and fails now, not on first use, if Redis is unreachable).
    pub async fn connect(url: &str, namespace: &str) -> Result<RedisCache, CacheError> {
        Self::connect_with(url, namespace, &RedisOptions::default()).await
    }

    /// [`Self::connect`] with an ACL user or password and a CA file beyond what the URL says.
    /// Refused credentials and a certificate that does not verify are `CacheError::Config`:
    /// retrying cannot fix them.
    pub async fn connect_with(
        url: &str,
        namespace: &str,
        options: &RedisOptions,
    ) -> Result<RedisCache, CacheError> {
        let client = options.client(url)?;
        // A cache that answers slowly is worse than a miss: keep timeouts short and retries
        // few, so callers fall back to the source of truth quickly while Redis is down.
        let config = ConnectionManagerConfig::new()
            .set_connection_timeout(Some(Duration::from_secs(1)))
            .set_response_timeout(Some(Duration::from_secs(1)))
            .set_number_of_retries(2)
            .set_max_delay(Duration::from_millis(500));
        let mut conn = ConnectionManager::new_with_config(client, config)
            .await
            .map_err(connect_err)?;
        check_login(&mut conn).await?;
        Ok(RedisCache {
            conn,
            prefix: format!("{namespace}:"),
            incr_window: redis::Script::new(INCR_WINDOW_LUA),
            counter: redis::Script::new(COUNTER_LUA),
            bump: redis::Script::new(BUMP_LUA),
        })
    }

    fn key(&self, key: &str) -> String {
        format!("{}{key}", self.prefix)
    }

    /// Deletes every key under this cache's namespace (SCAN + DEL). For tests and tooling: it
    /// walks the whole key space, so it is slow on a large shared Redis.
    pub async fn flush_namespace(&self) -> Result<(), CacheError> {
        let pattern = format!("{}*", escape_glob(&self.prefix));
        let mut conn = self.conn.clone();
        let mut cursor: u64 = 0;
        loop {
            let (next, keys): (u64, Vec<String>) = redis::cmd("SCAN")
                .arg(cursor)
                .arg("MATCH")
                .arg(&pattern)
                .arg("COUNT")
                .arg(SCAN_BATCH)
                .query_async(&mut conn)
                .await
                .map_err(map_err)?;
            if !keys.is_empty() {
                redis::cmd("DEL")
                    .arg(&keys)
                    .query_async::<()>(&mut conn)
                    .await
                    .map_err(map_err)?;
            }
            if next == 0 {
                return Ok(());
            }
            cursor = next;
        }
    }
}

#[async_trait]
impl Cache for RedisCache {
    async fn get(&self, key: &str) -> Result<Option<Vec<u8>>, CacheError> {
        redis::cmd("GET")
            .arg(self.key(key))
            .query_async(&mut self.conn.clone())
            .await
            .map_err(map_err)
    }

    async fn set(&self, key: &str, value: &[u8], ttl: Duration) -> Result<(), CacheError> {
        redis::cmd("SET")
            .arg(self.key(key))
            .arg(value)
            .arg("PX")
            .arg(millis(ttl))
            .query_async(&mut self.conn.clone())
            .await
            .map_err(map_err)
    }

    async fn delete(&self, key: &str) -> Result<(), CacheError> {
        redis::cmd("DEL")
            .arg(self.key(key))
            .query_async(&mut self.conn.clone())
            .await
            .map_err(map_err)
    }

    async fn incr_window(&self, key: &str, window: Duration) -> Result<u64, CacheError> {
        // Script::invoke_async sends EVALSHA and falls back to EVAL after a server restart
        // (NOSCRIPT), so the script needs no explicit loading.
        self.incr_window
            .key(self.key(key))
            .arg(millis(window))
            .invoke_async(&mut self.conn.clone())
            .await
            .map_err(map_err)
    }

    async fn bump(&self, key: &str) -> Result<u64, CacheError> {
        self.bump
            .key(self.key(key))
            .arg(counter_base())
            .invoke_async(&mut self.conn.clone())
            .await
            .map_err(map_err)
    }

    async fn counter(&self, key: &str) -> Result<u64, CacheError> {
        // Read on every cached request: a plain GET, and the script only when the key is gone.
        let value: Option<u64> = redis::cmd("GET")
            .arg(self.key(key))
            .query_async(&mut self.conn.clone())
            .await
            .map_err(map_err)?;
        if let Some(value) = value {
            return Ok(value);
        }
        self.counter
            .key(self.key(key))
            .arg(counter_base())
            .invoke_async(&mut self.conn.clone())
            .await
            .map_err(map_err)
    }

    async fn ping(&self) -> bool {
        redis::cmd("PING")
            .query_async::<String>(&mut self.conn.clone())
            .await
            .is_ok()
    }

    fn kind(&self) -> &'static str {
        "redis"
    }
}

/// Milliseconds for PX / PEXPIRE, never zero (see `at_least_1ms`) and saturating rather than
/// wrapping for absurdly long durations.
fn millis(d: Duration) -> u64 {
    u64::try_from(at_least_1ms(d).as_millis()).unwrap_or(u64::MAX)
}

/// Escapes Redis glob metacharacters so a namespace containing them matches only itself.
fn escape_glob(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        if matches!(c, '*' | '?' | '[' | ']' | '\\') {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

pub(crate) fn map_err(e: RedisError) -> CacheError {
    if e.is_io_error()
        || e.is_timeout()
        || e.is_connection_dropped()
        || e.is_connection_refusal()
        || e.is_unrecoverable_error()
    {
        CacheError::Unavailable(e.to_string())
    } else {
        CacheError::Backend(e.to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn glob_metacharacters_are_escaped() {
        assert_eq!(escape_glob("a*b?[c]\\"), "a\\*b\\?\\[c\\]\\\\");
        assert_eq!(escape_glob("plain-ns"), "plain-ns");
    }

    #[test]
    fn durations_round_up_to_one_millisecond() {
        assert_eq!(millis(Duration::ZERO), 1);
        assert_eq!(millis(Duration::from_micros(1500)), 1);
        assert_eq!(millis(Duration::from_secs(2)), 2000);
    }
}
