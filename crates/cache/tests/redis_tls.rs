//! Redis over TLS and with credentials, against `redis-server`s this test starts on free
//! ports: a TLS-only one serving a certificate from a CA generated here, and one that
//! requires a password and has an ACL user. Refusals must be clear start-up errors.

use std::time::Duration;

use bazaar_cache::{Cache, CacheError, RedisCache, RedisOptions};
use bazaar_testkit::LocalPki;

/// Writes, reads and counts through `cache`: the connection really works.
async fn round_trip(cache: &RedisCache) {
    cache.set("k", b"v", Duration::from_secs(30)).await.unwrap();
    assert_eq!(cache.get("k").await.unwrap().as_deref(), Some(&b"v"[..]));
    assert_eq!(
        cache
            .incr_window("w", Duration::from_secs(30))
            .await
            .unwrap(),
        1
    );
    assert!(cache.ping().await);
}

fn config_error(result: Result<RedisCache, CacheError>) -> String {
    match result {
        Err(CacheError::Config(message)) => message,
        Err(other) => panic!("expected a configuration error, got {other}"),
        Ok(_) => panic!("connected although it should not have"),
    }
}

#[tokio::test]
async fn redis_tls_trusts_the_ca_file_or_insecure_only() {
    let Some(certs) = LocalPki::new("redis") else {
        return;
    };
    let Some(server) = bazaar_testkit::redis::start_tls(&certs.server, &[]) else {
        return;
    };
    let url = format!("rediss://127.0.0.1:{}", server.port);
    let with_ca = |ca: &std::path::Path| RedisOptions {
        ca_file: Some(ca.to_owned()),
        ..Default::default()
    };

    let cache = RedisCache::connect_with(&url, "tls", &with_ca(&certs.server.ca))
        .await
        .unwrap_or_else(|e| panic!("TLS with our CA: {e}\n{}", server.log()));
    round_trip(&cache).await;

    // Self-signed test servers: redis-rs's #insecure skips verification altogether.
    let insecure = RedisCache::connect(&format!("{url}/#insecure"), "insecure")
        .await
        .expect("#insecure connects without the CA");
    round_trip(&insecure).await;

    let public_roots = config_error(RedisCache::connect(&url, "roots").await);
    assert!(
        public_roots.contains("BAZAAR_REDIS_CA_FILE"),
        "{public_roots}"
    );
    let stranger =
        config_error(RedisCache::connect_with(&url, "x", &with_ca(&certs.stranger.ca)).await);
    assert!(stranger.contains("BAZAAR_REDIS_CA_FILE"), "{stranger}");

    let plain = format!("redis://127.0.0.1:{}", server.port);
    let mismatch =
        config_error(RedisCache::connect_with(&plain, "x", &with_ca(&certs.server.ca)).await);
    assert!(mismatch.contains("rediss://"), "{mismatch}");
}

#[tokio::test]
async fn redis_password_and_acl_user() {
    let Some(server) = bazaar_testkit::redis::start(&[
        "--requirepass",
        "default-secret",
        // One argument per ACL rule: redis-server takes a quoted rule list as the user name.
        "--user",
        "bazaar",
        "on",
        ">acl-secret",
        "~*",
        "&*",
        "+@all",
    ]) else {
        return;
    };
    let url = format!("redis://127.0.0.1:{}", server.port);
    let login = |username: Option<&str>, password: &str| RedisOptions {
        username: username.map(str::to_owned),
        password: Some(password.to_owned()),
        ca_file: None,
    };

    let default_user = RedisCache::connect_with(&url, "pw", &login(None, "default-secret"))
        .await
        .unwrap_or_else(|e| panic!("password: {e}\n{}", server.log()));
    round_trip(&default_user).await;
    let acl_user = RedisCache::connect_with(&url, "acl", &login(Some("bazaar"), "acl-secret"))
        .await
        .expect("ACL user");
    round_trip(&acl_user).await;
    let in_url = format!("redis://bazaar:acl-secret@127.0.0.1:{}", server.port);
    round_trip(
        &RedisCache::connect(&in_url, "url")
            .await
            .expect("user:password in the URL"),
    )
    .await;

    let wrong = config_error(RedisCache::connect_with(&url, "x", &login(None, "nope")).await);
    assert!(wrong.contains("BAZAAR_REDIS_PASSWORD"), "{wrong}");
    assert!(!wrong.contains("nope"), "the password leaked: {wrong}");
    let none = config_error(RedisCache::connect(&url, "x").await);
    assert!(none.contains("BAZAAR_REDIS_PASSWORD"), "{none}");
    let wrong_user = login(Some("bazaar"), "default-secret");
    let wrong_user = config_error(RedisCache::connect_with(&url, "x", &wrong_user).await);
    assert!(wrong_user.contains("BAZAAR_REDIS_USERNAME"), "{wrong_user}");
}
