//! What the Kafka transport does beyond the shared conformance suite: a departed member's
//! deliveries come back in order, a stuck member loses its partitions after `ack_wait`, live
//! feeds reach every listener, a group's lag is read by another process, TLS that fails
//! stops start-up naming the CA setting, and a member joining and leaving mid-load loses
//! nothing. Each test has a namespace (topic, groups) of its own
//! on the broker at 127.0.0.1:9092 (`BAZAAR_TEST_KAFKA_BROKERS`); skipped with a message when
//! there is none, unless `BAZAAR_REQUIRE_BACKENDS=1`.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bazaar_bus::{ConsumerSpec, Envelope, KafkaConfig, KafkaTransport, Subscription, Transport};
use futures::StreamExt;
use serde_json::json;
use tokio_util::sync::CancellationToken;

fn brokers() -> String {
    std::env::var("BAZAAR_TEST_KAFKA_BROKERS").unwrap_or_else(|_| "127.0.0.1:9092".into())
}

fn config() -> KafkaConfig {
    let mut config = KafkaConfig::new(brokers());
    config.session_timeout = Duration::from_secs(6);
    config.heartbeat_interval = Duration::from_millis(100);
    config.startup_timeout = Duration::from_secs(10);
    config
}

async fn with_kafka<F, Fut>(test: F)
where
    F: FnOnce(KafkaTransport, String) -> Fut,
    Fut: std::future::Future<Output = ()>,
{
    let first = brokers().split(',').next().unwrap_or_default().to_owned();
    let reached = tokio::time::timeout(
        Duration::from_secs(3),
        tokio::net::TcpStream::connect(&first),
    )
    .await;
    if !matches!(reached, Ok(Ok(_))) {
        bazaar_testkit::skip::<()>(format!("Kafka broker at {first} unreachable"));
        return;
    }
    let namespace = format!("kt_{}", uuid::Uuid::now_v7().simple());
    let transport = KafkaTransport::connect(config(), &namespace)
        .await
        .expect("connect");
    let outcome =
        tokio::time::timeout(Duration::from_secs(60), test(transport.clone(), namespace)).await;
    transport.delete_topic().await.expect("delete test topic");
    outcome.expect("test finished within 60 s");
}

fn event(source: &str, event_type: &str, aggregate: &str) -> Envelope {
    Envelope::new(source, event_type, 1, aggregate, json!({ "a": aggregate }))
}

async fn next(sub: &mut Box<dyn Subscription>, within: Duration) -> bazaar_bus::Delivery {
    tokio::time::timeout(within, sub.next())
        .await
        .expect("a delivery in time")
        .expect("next")
        .expect("subscription open")
}

/// A member that leaves holding a delivery commits only what it settled: the next member of
/// the group gets the held event again, as attempt 2, and the rest in order after it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deliveries_of_a_departed_member_come_back_in_order() {
    with_kafka(|t, _| async move {
        let spec = ConsumerSpec::new("saga").for_types(["OrderPlaced"]);
        let events: Vec<Envelope> = (0..3)
            .map(|_| event("orders", "OrderPlaced", "order-1"))
            .collect();
        t.publish_batch(&events).await.unwrap();
        let mut first = t.subscribe(&spec).await.unwrap();
        let held = next(&mut first, Duration::from_secs(15)).await;
        assert_eq!((&held.event, held.attempt), (&events[0], 1));
        let stats = t.stats().await.unwrap();
        assert_eq!(stats.consumers[0].ack_pending, 1, "{stats:?}");
        drop(held);
        drop(first);

        let mut second = t.subscribe(&spec).await.unwrap();
        let mut got = Vec::new();
        while got.len() < 3 {
            let d = next(&mut second, Duration::from_secs(15)).await;
            got.push((d.event.id.clone(), d.attempt));
            d.ack().await.unwrap();
        }
        let ids: Vec<&str> = got.iter().map(|(id, _)| id.as_str()).collect();
        assert_eq!(
            ids,
            events.iter().map(|e| e.id.as_str()).collect::<Vec<_>>()
        );
        assert_eq!(got[0].1, 2, "the held delivery counts as delivered twice");
        // The commit goes out with the next round.
        let _ = tokio::time::timeout(Duration::from_millis(300), second.next()).await;
        bazaar_testkit::eventually_within(Duration::from_secs(5), "the lag to drain", || async {
            let stats = t.stats().await.unwrap();
            stats.messages == 3 && stats.consumers[0].pending == 0
        })
        .await;
    })
    .await;
}

/// A member whose handler is stuck (no next batch within `ack_wait`, its poll interval)
/// leaves the group, and the delivery it held goes to the other member.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stuck_member_loses_its_deliveries_after_ack_wait() {
    with_kafka(|t, _| async move {
        let mut spec = ConsumerSpec::new("stuck");
        spec.ack_wait = Duration::from_secs(1);
        let stuck_event = event("orders", "OrderPlaced", "order-7");
        t.publish(&stuck_event).await.unwrap();
        let mut stuck = t.subscribe(&spec).await.unwrap();
        let held = next(&mut stuck, Duration::from_secs(15)).await;
        assert_eq!(held.event, stuck_event);
        let started = Instant::now();
        let mut other = t.subscribe(&spec).await.unwrap();
        let again = next(&mut other, Duration::from_secs(25)).await;
        assert_eq!((&again.event, again.attempt), (&stuck_event, 2));
        assert!(
            started.elapsed() >= Duration::from_secs(5),
            "taken over before the session-bounded poll interval: {:?}",
            started.elapsed()
        );
        again.ack().await.unwrap();
        drop(held);
    })
    .await;
}

/// Every live listener gets every event of its source, and none of another source.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn live_feeds_reach_every_listener() {
    with_kafka(|t, _| async move {
        let mut one = t.live("orders").await.unwrap();
        let mut two = t.live("orders").await.unwrap();
        let placed = event("orders", "OrderPlaced", "order-9");
        t.publish(&event("catalog", "ProductCreated", "p-1"))
            .await
            .unwrap();
        t.publish(&placed).await.unwrap();
        for feed in [&mut one, &mut two] {
            let got = tokio::time::timeout(Duration::from_secs(10), feed.next())
                .await
                .expect("live event within 10 s")
                .expect("feed open");
            assert_eq!(got, placed, "only the orders event, to each listener");
        }
    })
    .await;
}

/// Another process (a second transport on the namespace) sees the group and its lag from the
/// committed offsets, though it never subscribed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn another_process_sees_each_groups_lag() {
    with_kafka(|t, namespace| async move {
        let events: Vec<Envelope> = (0..5)
            .map(|i| event("orders", "OrderPlaced", &format!("order-{i}")))
            .collect();
        t.publish_batch(&events).await.unwrap();
        let mut sub = t.subscribe(&ConsumerSpec::new("reporting")).await.unwrap();
        let mut acked = 0;
        while acked < 5 {
            for d in sub.next_batch(5).await.unwrap().expect("open") {
                d.ack().await.unwrap();
                acked += 1;
            }
        }
        let _ = tokio::time::timeout(Duration::from_millis(300), sub.next()).await;
        t.publish(&event("orders", "OrderPlaced", "order-late"))
            .await
            .unwrap();
        let other = KafkaTransport::connect(config(), &namespace).await.unwrap();
        bazaar_testkit::eventually_within(Duration::from_secs(5), "one event of lag", || async {
            let stats = other.stats().await.unwrap();
            stats.messages == 6
                && stats
                    .consumers
                    .iter()
                    .any(|c| c.name == "reporting" && c.pending == 1)
        })
        .await;
    })
    .await;
}

/// TLS to a broker that does not speak it stops start-up at once, naming the CA setting,
/// instead of retrying until the deadline.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failed_tls_names_the_ca_setting() {
    with_kafka(|_, _| async move {
        let Some(pki) = bazaar_testkit::LocalPki::new("kafka") else {
            return;
        };
        let mut tls = config();
        tls.ca_file = Some(pki.stranger.ca.clone());
        tls.startup_timeout = Duration::from_secs(20);
        let started = Instant::now();
        let err = KafkaTransport::connect(tls, "tls_check")
            .await
            .err()
            .expect("no connection over TLS to a plaintext port");
        assert!(err.to_string().contains("BAZAAR_KAFKA_CA_FILE"), "{err}");
        assert!(
            started.elapsed() < Duration::from_secs(15),
            "{:?}",
            started.elapsed()
        );
    })
    .await;
}

type Seen = Arc<Mutex<Vec<(String, &'static str)>>>;

/// One member of `spec`'s group: takes batches, records and acks them, until `stop`.
async fn member(
    t: KafkaTransport,
    spec: ConsumerSpec,
    seen: Seen,
    who: &'static str,
    stop: CancellationToken,
) {
    let mut sub = t.subscribe(&spec).await.unwrap();
    loop {
        let batch = tokio::select! {
            _ = stop.cancelled() => break,
            batch = sub.next_batch(20) => batch.unwrap().expect("subscription open"),
        };
        for d in batch {
            seen.lock().unwrap().push((d.event.id.clone(), who));
            // A little work per event, so that the load outlasts the rebalances.
            tokio::time::sleep(Duration::from_millis(2)).await;
            d.ack().await.unwrap();
        }
    }
}

/// A second member joins its group in the middle of the load and leaves again: every event
/// is delivered (none lost in either hand-over), each aggregate's in publish order.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_member_joining_and_leaving_mid_load_loses_nothing() {
    with_kafka(|t, _| async move {
        let spec = ConsumerSpec::new("rebalanced");
        let seen: Seen = Arc::default();
        let stop_a = CancellationToken::new();
        let stop_b = CancellationToken::new();
        let a = tokio::spawn(member(
            t.clone(),
            spec.clone(),
            seen.clone(),
            "a",
            stop_a.clone(),
        ));
        let mut published = Vec::new();
        let mut b = None;
        for round in 0..24 {
            if round == 4 {
                b = Some(tokio::spawn(member(
                    t.clone(),
                    spec.clone(),
                    seen.clone(),
                    "b",
                    stop_b.clone(),
                )));
            }
            if round == 14 {
                stop_b.cancel();
            }
            let events: Vec<Envelope> = (0..20)
                .map(|i| {
                    event(
                        "orders",
                        "OrderPlaced",
                        &format!("order-{}", (round * 20 + i) % 40),
                    )
                })
                .collect();
            t.publish_batch(&events).await.unwrap();
            published.extend(events);
            tokio::time::sleep(Duration::from_millis(150)).await;
        }
        bazaar_testkit::eventually_within(
            Duration::from_secs(20),
            "every event delivered",
            || async {
                let got: HashSet<String> = seen
                    .lock()
                    .unwrap()
                    .iter()
                    .map(|(id, _)| id.clone())
                    .collect();
                published.iter().all(|e| got.contains(&e.id))
            },
        )
        .await;
        stop_a.cancel();
        a.await.unwrap();
        b.expect("b started").await.unwrap();
        let seen = seen.lock().unwrap().clone();
        assert!(
            seen.iter().any(|(_, who)| *who == "b"),
            "the second member got no work"
        );
        let mut first_seen: Vec<&str> = Vec::new();
        let mut known = HashSet::new();
        for (id, _) in &seen {
            if known.insert(id.as_str()) {
                first_seen.push(id);
            }
        }
        for aggregate in 0..40 {
            let key = format!("order-{aggregate}");
            let expected: Vec<&str> = published
                .iter()
                .filter(|e| e.aggregate_id == key)
                .map(|e| e.id.as_str())
                .collect();
            let position: HashMap<&str, usize> = first_seen
                .iter()
                .enumerate()
                .map(|(i, id)| (*id, i))
                .collect();
            let mut got = expected.clone();
            got.sort_by_key(|id| position[id]);
            assert_eq!(
                got, expected,
                "{key} handed out out of order across the rebalances"
            );
        }
        eprintln!(
            "rebalance test: {} events, {} deliveries ({} by the second member)",
            published.len(),
            seen.len(),
            seen.iter().filter(|(_, who)| *who == "b").count()
        );
    })
    .await;
}
