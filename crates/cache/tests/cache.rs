//! Conformance suite: the same behaviour checks run against the in-memory and Redis backends.

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::Duration;

use bazaar_cache::{Cache, CacheError, MemoryCache, RedisCache, get_json, set_json};
use serde::{Deserialize, Serialize};

const SHORT: Duration = Duration::from_millis(300);
const PAST_SHORT: Duration = Duration::from_millis(600);
const LONG: Duration = Duration::from_secs(60);

#[derive(Debug, PartialEq, Serialize, Deserialize)]
struct Product {
    id: u32,
    name: String,
}

async fn conformance(cache: Arc<dyn Cache>) {
    let c = &*cache;

    // get / set / delete
    assert_eq!(c.get("missing").await.unwrap(), None);
    c.set("k", b"v1", LONG).await.unwrap();
    assert_eq!(c.get("k").await.unwrap().as_deref(), Some(&b"v1"[..]));
    c.set("k", b"v2", LONG).await.unwrap();
    assert_eq!(c.get("k").await.unwrap().as_deref(), Some(&b"v2"[..]));
    c.delete("k").await.unwrap();
    assert_eq!(c.get("k").await.unwrap(), None);
    c.delete("never-set").await.unwrap();

    // TTL expiry, and an overwrite takes the new entry's TTL.
    c.set("short", b"x", SHORT).await.unwrap();
    c.set("renewed", b"x", SHORT).await.unwrap();
    c.set("renewed", b"y", LONG).await.unwrap();
    tokio::time::sleep(PAST_SHORT).await;
    assert_eq!(
        c.get("short").await.unwrap(),
        None,
        "entry outlived its ttl"
    );
    assert_eq!(c.get("renewed").await.unwrap().as_deref(), Some(&b"y"[..]));

    // JSON helpers; an undecodable value is a miss, not an error.
    let p = Product {
        id: 7,
        name: "lamp".into(),
    };
    set_json(c, "json", &p, LONG).await.unwrap();
    assert_eq!(get_json::<Product>(c, "json").await.unwrap(), Some(p));
    c.set("json", b"not json", LONG).await.unwrap();
    assert_eq!(get_json::<Product>(c, "json").await.unwrap(), None);
    assert_eq!(get_json::<Product>(c, "json-missing").await.unwrap(), None);

    // Fixed window: counts within the window, starts over after it.
    for expected in 1..=3 {
        assert_eq!(c.incr_window("win", SHORT).await.unwrap(), expected);
    }
    tokio::time::sleep(PAST_SHORT).await;
    assert_eq!(
        c.incr_window("win", SHORT).await.unwrap(),
        1,
        "window did not reset"
    );
    assert_eq!(c.incr_window("win", SHORT).await.unwrap(), 2);

    // The window is fixed at the first increment: later increments do not extend it.
    // A wide window keeps this robust to a slow scheduler: 600 + 600 ms spans it only if
    // increments do not push its end back.
    let window = Duration::from_secs(1);
    assert_eq!(c.incr_window("fixed", window).await.unwrap(), 1);
    tokio::time::sleep(Duration::from_millis(600)).await;
    assert_eq!(c.incr_window("fixed", window).await.unwrap(), 2);
    tokio::time::sleep(Duration::from_millis(600)).await;
    assert_eq!(
        c.incr_window("fixed", window).await.unwrap(),
        1,
        "window slid"
    );

    // Generation counters start at a random base (not 0, which a lost key would repeat) and
    // count up by one; a bump of an absent counter starts from such a base too.
    let base = c.counter("gen").await.unwrap();
    assert_ne!(base, 0);
    assert_eq!(
        c.counter("gen").await.unwrap(),
        base,
        "a read moved the counter"
    );
    assert_eq!(c.bump("gen").await.unwrap(), base + 1);
    assert_eq!(c.bump("gen").await.unwrap(), base + 2);
    assert_eq!(c.counter("gen").await.unwrap(), base + 2);
    assert_ne!(c.counter("other-gen").await.unwrap(), base);
    let bumped = c.bump("gen-fresh").await.unwrap();
    assert_ne!(bumped, 1);
    assert_eq!(c.counter("gen-fresh").await.unwrap(), bumped);

    // Concurrent increments of one window: every caller gets a distinct count.
    let mut tasks = tokio::task::JoinSet::new();
    for _ in 0..20 {
        let cache = Arc::clone(&cache);
        tasks.spawn(async move { cache.incr_window("burst", LONG).await });
    }
    let mut seen = BTreeSet::new();
    while let Some(joined) = tasks.join_next().await {
        assert!(seen.insert(joined.unwrap().unwrap()), "duplicate count");
    }
    assert_eq!(seen, (1..=20).collect::<BTreeSet<u64>>());

    // Concurrent bumps likewise.
    let base = c.counter("gen-burst").await.unwrap();
    let mut tasks = tokio::task::JoinSet::new();
    for _ in 0..20 {
        let cache = Arc::clone(&cache);
        tasks.spawn(async move { cache.bump("gen-burst").await });
    }
    let mut seen = BTreeSet::new();
    while let Some(joined) = tasks.join_next().await {
        assert!(seen.insert(joined.unwrap().unwrap()), "duplicate bump");
    }
    assert_eq!(seen, (base + 1..=base + 20).collect::<BTreeSet<u64>>());
    assert_eq!(c.counter("gen-burst").await.unwrap(), base + 20);

    assert!(c.ping().await);
}

#[tokio::test]
async fn memory() {
    let cache = Arc::new(MemoryCache::new(10_000));
    assert_eq!(cache.kind(), "memory");
    conformance(cache).await;
}

fn redis_url() -> String {
    std::env::var("BAZAAR_REDIS_URL").unwrap_or_else(|_| "redis://127.0.0.1:6379".into())
}

fn test_namespace() -> String {
    format!("bazaar-test-{}", uuid::Uuid::now_v7())
}

/// Connects, or returns None (skip) when Redis is unreachable and not required.
async fn redis_or_skip(namespace: &str) -> Option<RedisCache> {
    match RedisCache::connect(&redis_url(), namespace).await {
        Ok(cache) => Some(cache),
        Err(CacheError::Unavailable(why)) => {
            if std::env::var("BAZAAR_REQUIRE_BACKENDS").as_deref() == Ok("1") {
                panic!(
                    "BAZAAR_REQUIRE_BACKENDS=1 but Redis at {} is unreachable: {why}",
                    redis_url()
                );
            }
            eprintln!("SKIPPED: redis backend unreachable ({why})");
            None
        }
        Err(other) => panic!("connecting to Redis: {other}"),
    }
}

#[tokio::test]
async fn redis() {
    let ns = test_namespace();
    let Some(cache) = redis_or_skip(&ns).await else {
        return;
    };
    assert_eq!(cache.kind(), "redis");
    let cache = Arc::new(cache);
    conformance(cache.clone()).await;
    cache.set("k", b"v", LONG).await.unwrap();
    cache.flush_namespace().await.unwrap();
    assert_eq!(
        cache.get("k").await.unwrap(),
        None,
        "flush left keys behind"
    );
}

/// A generation lost with its key (Redis restarted, flushed, or evicted it) starts again at a
/// fresh base, never at a value it had before: keys built from it cannot name old entries.
#[tokio::test]
async fn redis_counters_never_repeat_after_the_key_is_lost() {
    let Some(cache) = redis_or_skip(&test_namespace()).await else {
        return;
    };
    let mut seen = BTreeSet::new();
    let mut record = |value: u64| assert!(seen.insert(value), "{value} came back");
    record(cache.counter("gen").await.unwrap());
    for _ in 0..3 {
        record(cache.bump("gen").await.unwrap());
    }
    // Counters share the key space with values, so DEL drops it as an eviction would.
    cache.delete("gen").await.unwrap();
    record(cache.counter("gen").await.unwrap());
    record(cache.bump("gen").await.unwrap());
    cache.flush_namespace().await.unwrap();
    record(cache.bump("gen").await.unwrap());
    cache.flush_namespace().await.unwrap();
    record(cache.counter("gen").await.unwrap());
    cache.flush_namespace().await.unwrap();
}

#[tokio::test]
async fn redis_namespaces_are_isolated() {
    let (ns_a, ns_b) = (test_namespace(), test_namespace());
    let Some(a) = redis_or_skip(&ns_a).await else {
        return;
    };
    let Some(b) = redis_or_skip(&ns_b).await else {
        return;
    };

    a.set("shared-name", b"from-a", LONG).await.unwrap();
    assert_eq!(b.get("shared-name").await.unwrap(), None);
    b.set("shared-name", b"from-b", LONG).await.unwrap();
    assert_eq!(
        a.get("shared-name").await.unwrap().as_deref(),
        Some(&b"from-a"[..])
    );

    let generation = a.bump("gen").await.unwrap();
    assert_ne!(b.counter("gen").await.unwrap(), generation);
    assert_eq!(a.incr_window("win", LONG).await.unwrap(), 1);
    assert_eq!(b.incr_window("win", LONG).await.unwrap(), 1);

    // Flushing one namespace leaves the other alone.
    a.flush_namespace().await.unwrap();
    assert_eq!(a.get("shared-name").await.unwrap(), None);
    assert_eq!(
        b.get("shared-name").await.unwrap().as_deref(),
        Some(&b"from-b"[..])
    );
    b.flush_namespace().await.unwrap();
    assert_eq!(b.get("shared-name").await.unwrap(), None);
}

#[tokio::test]
async fn unreachable_redis_is_unavailable_and_fails_fast() {
    let started = std::time::Instant::now();
    // Port 1 (tcpmux) has no listener here: the connection is refused.
    let err = RedisCache::connect("redis://127.0.0.1:1", "unused")
        .await
        .unwrap_err();
    assert!(matches!(err, CacheError::Unavailable(_)), "got {err:?}");
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "took {:?}",
        started.elapsed()
    );
}

#[tokio::test]
async fn malformed_url_is_a_config_error() {
    let err = RedisCache::connect("not-a-url", "unused")
        .await
        .unwrap_err();
    assert!(matches!(err, CacheError::Config(_)), "got {err:?}");
}
