//! Tests of the NATS transport against the shared NATS server at 127.0.0.1:4222, each in a
//! namespace of its own; [`servers`] starts private servers for what needs one.

mod servers;

use std::collections::HashSet;
use std::future::Future;
use std::panic::AssertUnwindSafe;
use std::time::Duration;

use bytes::Bytes;
use futures::FutureExt;
use serde_json::json;

use super::NatsTransport;
use super::connect::subject_prefix;
use super::stream::supports_multi_filter;
use crate::broker::{BACKOFF_CAP, BACKOFF_START, backoff, sanitize};
use crate::{ConsumerSpec, ConsumerStats, Delivery, Envelope, Subscription, Transport};

const URL: &str = "nats://127.0.0.1:4222";
const NATS_SERVER: &str = "/usr/sbin/nats-server";

async fn connect(url: &str, namespace: &str) -> NatsTransport {
    NatsTransport::connect_with_timeout(url, namespace, Duration::from_secs(5)).await.unwrap_or_else(|e| {
        panic!(
            "these tests need NATS with JetStream at {url}; start it with `scripts/backends up`: {e}"
        )
    })
}

/// Runs `test` against a fresh namespace and deletes its stream afterwards, even on panic.
async fn with_nats<F, Fut>(test: F)
where
    F: FnOnce(NatsTransport) -> Fut,
    Fut: Future<Output = ()>,
{
    let namespace = format!("test_{}", uuid::Uuid::now_v7().simple());
    let transport = connect(URL, &namespace).await;
    let outcome = AssertUnwindSafe(test(transport.clone()))
        .catch_unwind()
        .await;
    transport.delete_stream().await.expect("delete test stream");
    if let Err(panic) = outcome {
        std::panic::resume_unwind(panic);
    }
}

fn event(aggregate: &str) -> Envelope {
    Envelope::new(
        "orders",
        "OrderPlaced",
        1,
        aggregate,
        json!({ "aggregate": aggregate }),
    )
}

fn spec(name: &str) -> ConsumerSpec {
    ConsumerSpec {
        ack_wait: Duration::from_secs(30),
        ..ConsumerSpec::new(name)
    }
}

async fn next(sub: &mut Box<dyn Subscription>) -> Delivery {
    tokio::time::timeout(Duration::from_secs(10), sub.next())
        .await
        .expect("no delivery within 10s")
        .expect("next failed")
        .expect("subscription ended")
}

async fn assert_idle(sub: &mut Box<dyn Subscription>) {
    let extra = tokio::time::timeout(Duration::from_millis(700), sub.next()).await;
    assert!(
        extra.is_err(),
        "unexpected extra delivery: {:?}",
        extra.ok().map(|r| r.map(|d| d.map(|d| d.event)))
    );
}

#[tokio::test]
async fn nats_publish_subscribe_ack() {
    with_nats(|t| async move {
        assert_eq!(t.kind(), "nats");
        assert!(t.ready().await);
        let mut sub = t.subscribe(&spec("orders")).await.unwrap();
        let (a, b) = (event("a"), event("b"));
        t.publish(&a).await.unwrap();
        t.publish(&b).await.unwrap();
        let first = next(&mut sub).await;
        assert_eq!((first.event.clone(), first.attempt), (a, 1));
        first.ack().await.unwrap();
        let second = next(&mut sub).await;
        assert_eq!((second.event.clone(), second.attempt), (b, 1));
        second.ack().await.unwrap();
        assert_idle(&mut sub).await;
        // A new subscriber on the same durable resumes after the acknowledged events.
        drop(sub);
        let mut again = t.subscribe(&spec("orders")).await.unwrap();
        assert_idle(&mut again).await;
    })
    .await;
}

#[tokio::test]
async fn nats_duplicate_id_is_stored_once() {
    with_nats(|t| async move {
        let e = event("dup");
        t.publish(&e).await.unwrap();
        t.publish(&e).await.unwrap();
        assert_eq!(t.stats().await.unwrap().messages, 1);
        let mut sub = t.subscribe(&spec("dedup")).await.unwrap();
        let d = next(&mut sub).await;
        assert_eq!(d.event, e);
        d.ack().await.unwrap();
        assert_idle(&mut sub).await;
    })
    .await;
}

#[tokio::test]
async fn nats_nak_redelivers_with_next_attempt() {
    with_nats(|t| async move {
        let mut sub = t.subscribe(&spec("retry")).await.unwrap();
        let (a, b) = (event("a"), event("b"));
        t.publish(&a).await.unwrap();
        t.publish(&b).await.unwrap();
        let first = next(&mut sub).await;
        assert_eq!((first.event.clone(), first.attempt), (a.clone(), 1));
        first.nak(Duration::from_millis(300)).await.unwrap();
        // The nak'd event does not hold back the next one.
        let second = next(&mut sub).await;
        assert_eq!(second.event, b);
        second.ack().await.unwrap();
        let again = next(&mut sub).await;
        assert_eq!((again.event.clone(), again.attempt), (a, 2));
        again.ack().await.unwrap();
        let stats = t.stats().await.unwrap();
        assert_eq!(
            stats.consumers[0].redelivered, 0,
            "acked redeliveries are no longer counted"
        );
    })
    .await;
}

#[tokio::test]
async fn nats_shared_durable_splits_messages() {
    with_nats(|t| async move {
        const N: usize = 20;
        let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
        let mut workers = Vec::new();
        for worker in 0..2 {
            let mut sub = t.subscribe(&spec("workers")).await.unwrap();
            let tx = tx.clone();
            workers.push(tokio::spawn(async move {
                while let Ok(Some(d)) = sub.next().await {
                    let id = d.event.id.clone();
                    d.ack().await.unwrap();
                    if tx.send((worker, id)).is_err() {
                        break;
                    }
                }
            }));
        }
        let published: HashSet<String> = {
            let mut ids = HashSet::new();
            for i in 0..N {
                let e = event(&i.to_string());
                t.publish(&e).await.unwrap();
                ids.insert(e.id);
            }
            ids
        };
        let mut seen = Vec::new();
        while seen.len() < N {
            let got = tokio::time::timeout(Duration::from_secs(10), rx.recv()).await;
            seen.push(got.expect("workers stalled").expect("workers ended"));
        }
        // Give a duplicate delivery the chance to show up.
        assert!(
            tokio::time::timeout(Duration::from_millis(700), rx.recv())
                .await
                .is_err(),
            "duplicate delivery"
        );
        for w in workers {
            w.abort();
        }
        let ids: HashSet<String> = seen.iter().map(|(_, id)| id.clone()).collect();
        assert_eq!(ids, published);
        for worker in 0..2 {
            assert!(
                seen.iter().any(|(w, _)| *w == worker),
                "worker {worker} got nothing: {seen:?}"
            );
        }
        let stats = t.stats().await.unwrap();
        assert_eq!(
            stats.consumers.len(),
            1,
            "both subscribers share one durable"
        );
    })
    .await;
}

#[tokio::test]
async fn nats_stats_counts() {
    with_nats(|t| async move {
        let mut sub = t.subscribe(&spec("stats me")).await.unwrap();
        for i in 0..3 {
            t.publish(&event(&i.to_string())).await.unwrap();
        }
        next(&mut sub).await.ack().await.unwrap();
        let held = next(&mut sub).await;
        let stats = t.stats().await.unwrap();
        assert_eq!(stats.name, t.stream_name());
        assert_eq!(stats.messages, 3);
        assert_eq!(
            stats.consumers,
            vec![ConsumerStats {
                name: "stats_me".into(),
                delivered: 2,
                pending: 2,
                ack_pending: 1,
                redelivered: 0
            }]
        );
        let held_id = held.event.id.clone();
        held.nak(Duration::ZERO).await.unwrap();
        let redelivered = loop {
            let d = next(&mut sub).await;
            if d.event.id == held_id {
                break d;
            }
            d.ack().await.unwrap();
        };
        assert_eq!(redelivered.attempt, 2);
        let stats = t.stats().await.unwrap();
        assert_eq!(
            (
                stats.consumers[0].ack_pending,
                stats.consumers[0].redelivered
            ),
            (1, 1)
        );
        redelivered.ack().await.unwrap();
    })
    .await;
}

#[tokio::test]
async fn nats_malformed_message_is_terminated_and_skipped() {
    with_nats(|t| async move {
        let mut sub = t.subscribe(&spec("strict")).await.unwrap();
        let subject = format!("{}.events.orders.Garbage", t.prefix);
        t.js.publish(subject, Bytes::from_static(b"not json"))
            .await
            .unwrap()
            .await
            .unwrap();
        let good = event("good");
        t.publish(&good).await.unwrap();
        let d = next(&mut sub).await;
        assert_eq!(d.event, good);
        d.ack().await.unwrap();
        let stats = t.stats().await.unwrap();
        assert_eq!(
            stats.consumers[0].pending, 0,
            "the malformed message was terminated"
        );
    })
    .await;
}

#[tokio::test]
async fn nats_resubscribe_applies_new_ack_wait() {
    with_nats(|t| async move {
        drop(t.subscribe(&spec("tuned")).await.unwrap());
        let faster = ConsumerSpec {
            ack_wait: Duration::from_secs(5),
            ..ConsumerSpec::new("tuned")
        };
        drop(t.subscribe(&faster).await.unwrap());
        let stream = t.js.get_stream(t.stream_name()).await.unwrap();
        let info = stream.consumer_info("tuned").await.unwrap();
        assert_eq!(info.config.ack_wait, Duration::from_secs(5));
    })
    .await;
}

#[tokio::test]
async fn nats_subscription_ends_when_stream_is_deleted() {
    with_nats(|t| async move {
        let mut sub = t.subscribe(&spec("orphan")).await.unwrap();
        let waiting = tokio::spawn(async move { sub.next().await.map(|d| d.is_none()) });
        tokio::time::sleep(Duration::from_millis(300)).await;
        t.delete_stream().await.unwrap();
        let ended = tokio::time::timeout(Duration::from_secs(25), waiting).await;
        assert!(
            matches!(ended, Ok(Ok(Ok(true)))),
            "subscription did not end cleanly"
        );
    })
    .await;
}

#[test]
fn multi_filter_needs_2_10() {
    assert!(!supports_multi_filter("2.9.25"));
    assert!(supports_multi_filter("2.10.0"));
    assert!(supports_multi_filter("v2.11.3-beta"));
    assert!(supports_multi_filter("3.0.0"));
}

#[test]
fn names_are_sanitized() {
    assert_eq!(sanitize("shop.eu west*"), "shop_eu_west_");
    assert_eq!(subject_prefix("shop.eu west"), "shop.eu_west");
    assert_eq!(backoff(0), BACKOFF_START);
    assert_eq!(backoff(40), BACKOFF_CAP);
}
