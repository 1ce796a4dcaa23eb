//! The writer's hand-off to idle subscriptions: it claims what it hands over, and never hands
//! over an event while an older one of the consumer's types is still unclaimed.

use std::time::Duration;

use serde_json::json;

use super::EmbeddedTransport;
use crate::transport::{ConsumerSpec, Subscription, Transport};
use crate::{Delivery, Envelope};

fn event(event_type: &str, n: u32) -> Envelope {
    Envelope::new(
        "test",
        event_type,
        1,
        &format!("agg-{n}"),
        json!({ "n": n }),
    )
}

/// Lets `subscription` look, find nothing and park.
async fn park(subscription: &mut Box<dyn Subscription>) {
    let early = tokio::time::timeout(Duration::from_millis(50), subscription.next_batch(10)).await;
    assert!(early.is_err(), "nothing was published yet");
}

async fn next(subscription: &mut Box<dyn Subscription>) -> Vec<Delivery> {
    tokio::time::timeout(Duration::from_secs(5), subscription.next_batch(10))
        .await
        .expect("a delivery within 5 s")
        .expect("next_batch")
        .expect("open subscription")
}

fn ids(deliveries: &[Delivery]) -> Vec<&str> {
    deliveries.iter().map(|d| d.event.id.as_str()).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_idle_subscription_is_handed_new_events_claimed_for_it() {
    let dir = tempfile::tempdir().unwrap();
    let log = EmbeddedTransport::open(&dir.path().join("bus.db"))
        .await
        .unwrap();
    let spec = ConsumerSpec::new("c").for_types(["Wanted"]);
    let mut subscription = log.subscribe(&spec).await.unwrap();
    park(&mut subscription).await;

    let (wanted, other) = (event("Wanted", 1), event("Other", 2));
    let waiting = tokio::spawn(async move {
        let deliveries = next(&mut subscription).await;
        (subscription, deliveries)
    });
    tokio::time::sleep(Duration::from_millis(20)).await;
    log.publish_batch(&[other.clone(), wanted.clone()])
        .await
        .unwrap();
    let (mut subscription, deliveries) = waiting.await.unwrap();
    assert_eq!(ids(&deliveries), [wanted.id.as_str()]);
    assert_eq!(deliveries[0].attempt, 1);

    // Claimed in the log: counted as delivered and awaiting its ack, never handed out twice.
    let stats = log.stats().await.unwrap();
    let consumer = &stats.consumers[0];
    assert_eq!(
        (consumer.delivered, consumer.ack_pending),
        (1, 1),
        "{stats:?}"
    );
    subscription.ack_batch(deliveries).await.unwrap();
    let again = tokio::time::timeout(Duration::from_millis(100), subscription.next_batch(10)).await;
    assert!(again.is_err(), "an acknowledged event came back");
    assert_eq!(log.stats().await.unwrap().consumers[0].ack_pending, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hand_off_never_skips_an_older_unclaimed_event() {
    // Two handles on one file: events the second stores are unknown to the first's writer, so
    // the first, storing a newer event, finds an older one unclaimed and must not hand over.
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("bus.db");
    let (log, other_writer) = (
        EmbeddedTransport::open(&path).await.unwrap(),
        EmbeddedTransport::open(&path).await.unwrap(),
    );
    let spec = ConsumerSpec::new("c").for_types(["Wanted"]);
    let mut subscription = log.subscribe(&spec).await.unwrap();
    park(&mut subscription).await;

    let (older, newer) = (event("Wanted", 1), event("Wanted", 2));
    other_writer
        .publish_batch(std::slice::from_ref(&older))
        .await
        .unwrap();
    log.publish_batch(std::slice::from_ref(&newer))
        .await
        .unwrap();
    let mut seen = next(&mut subscription).await;
    if seen.len() == 1 {
        seen.extend(next(&mut subscription).await);
    }
    assert_eq!(ids(&seen), [older.id.as_str(), newer.id.as_str()]);
    assert!(seen.iter().all(|d| d.attempt == 1));
}
