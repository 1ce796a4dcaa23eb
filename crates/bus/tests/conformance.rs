//! Transport conformance: the same scenarios against the embedded log + SQLite and against
//! NATS JetStream + PostgreSQL, checking the delivery contract in `src/transport.rs` and the
//! outbox/inbox/dead-letter guarantees built on it.
//!
//! NATS and PostgreSQL are expected at 127.0.0.1:4222 and :5432; when unreachable the `nats`
//! variants print `SKIPPED` and pass, unless `BAZAAR_REQUIRE_BACKENDS=1` makes them fail.

mod support;

use std::collections::HashSet;
use std::sync::atomic::Ordering;
use std::time::Duration;

use bazaar_bus::{Delivery, RetryPolicy, dead_letters, outbox_backlog};
use serde_json::json;
use support::{Ctx, RecordingAcker, TestHandler, event, eventually};

/// One scenario body, two entry points: `<scenario>::embedded` and `<scenario>::nats`.
macro_rules! conformance {
    ($($scenario:ident),* $(,)?) => {$(
        mod $scenario {
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn embedded() {
                crate::support::run(crate::support::Kind::Embedded, super::$scenario).await
            }

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn nats() {
                crate::support::run(crate::support::Kind::Nats, super::$scenario).await
            }
        }
    )*};
}

conformance!(
    at_least_once_in_order,
    no_double_effects_under_redelivery,
    retries_then_success,
    poison_is_dead_lettered_without_blocking,
    shared_durable_consumer_splits_work,
    relay_crash_between_publish_and_mark,
);

fn fast_retries(max_attempts: u32, base_delay_ms: u64) -> RetryPolicy {
    RetryPolicy {
        max_attempts,
        base_delay: Duration::from_millis(base_delay_ms),
        max_delay: Duration::from_secs(1),
    }
}

/// 50 events of one aggregate through the outbox arrive, all of them, in publish order; an
/// event enqueued in a rolled-back transaction never goes out.
async fn at_least_once_in_order(t: Ctx) {
    let handler = TestHandler::new("w");
    let consumer = t.consumer("ordered", handler, RetryPolicy::default());
    t.start(&consumer).await;

    let events: Vec<_> = (0..50)
        .map(|i| event("cart-1", json!({ "seq": i })))
        .collect();
    t.publish_via_outbox(&events[..20], 7).await;
    let mut rolled_back = t.db.begin().await.unwrap();
    bazaar_bus::enqueue(&mut rolled_back, &event("cart-1", json!({ "seq": 999 })))
        .await
        .unwrap();
    rolled_back.rollback().await.unwrap();
    t.publish_via_outbox(&events[20..], 5).await;
    assert_eq!(
        outbox_backlog(&t.db).await.unwrap(),
        0,
        "flush left events behind"
    );

    eventually("50 events applied and the consumer idle", || async {
        t.applied().await.len() >= 50 && t.idle("ordered").await
    })
    .await;
    let applied = t.applied().await;
    let seqs: Vec<i64> = applied.iter().map(|(_, seq, _)| *seq).collect();
    assert_eq!(
        seqs,
        (0..50).collect::<Vec<i64>>(),
        "events applied out of order, twice or not at all"
    );
    let ids: Vec<&str> = applied.iter().map(|(id, _, _)| id.as_str()).collect();
    assert_eq!(
        ids,
        events.iter().map(|e| e.id.as_str()).collect::<Vec<_>>()
    );
    assert_eq!(t.stats().await.messages, 50);
}

/// A duplicate publish is stored once, and a redelivery after the effect committed (ack lost)
/// or a hand-made repeat delivery is absorbed by the inbox: exactly one effect.
async fn no_double_effects_under_redelivery(t: Ctx) {
    let handler = TestHandler::new("w");
    let consumer = t.consumer("dedup", handler.clone(), RetryPolicy::default());
    let mut sub = t.transport.subscribe(&consumer.spec).await.unwrap();

    let x = event("cart-2", json!({ "seq": 1 }));
    t.transport.publish(&x).await.unwrap();
    t.transport.publish(&x).await.unwrap();
    assert_eq!(
        t.stats().await.messages,
        1,
        "same id published twice must be stored once"
    );

    // Apply it, but lose the broker ack: the effect commits, the broker redelivers.
    let first = tokio::time::timeout(Duration::from_secs(10), sub.next())
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    assert_eq!((&first.event, first.attempt), (&x, 1));
    let settled = RecordingAcker::default();
    consumer
        .process(Delivery::new(
            first.event.clone(),
            first.attempt,
            Box::new(settled.clone()),
        ))
        .await;
    assert_eq!(*settled.0.lock().unwrap(), ["ack"]);
    assert_eq!(t.effects(&x.id).await, 1);
    first.nak(Duration::ZERO).await.unwrap();
    drop(sub);

    t.start(&consumer).await;
    eventually("the redelivery to be settled", || async {
        t.attempts(&x.id).len() == 2 && t.idle("dedup").await
    })
    .await;
    assert_eq!(
        t.attempts(&x.id),
        [1, 2],
        "one stored copy, delivered again after the nak"
    );
    assert_eq!(
        t.effects(&x.id).await,
        1,
        "the redelivery was applied again"
    );

    // The same envelope handed in once more: acknowledged as a duplicate, no effect.
    let again = RecordingAcker::default();
    consumer
        .process(Delivery::new(x.clone(), 3, Box::new(again.clone())))
        .await;
    assert_eq!(*again.0.lock().unwrap(), ["ack"]);
    assert_eq!(
        t.effects(&x.id).await,
        1,
        "a repeated delivery was applied again"
    );
    assert_eq!(handler.calls(&x.id), 1, "the handler ran for a duplicate");
}

/// Technical failures are retried with backoff; success on the third attempt leaves one effect
/// and no dead letter, and the transport numbered the attempts 1, 2, 3.
async fn retries_then_success(t: Ctx) {
    let handler = TestHandler::new("w");
    let consumer = t.consumer("retrying", handler.clone(), fast_retries(3, 20));
    t.start(&consumer).await;

    let flaky = event("cart-3", json!({ "seq": 0, "fail_times": 2 }));
    t.publish_via_outbox(std::slice::from_ref(&flaky), 1).await;

    eventually("the flaky event to be applied", || async {
        t.effects(&flaky.id).await == 1 && t.idle("retrying").await
    })
    .await;
    assert_eq!(t.attempts(&flaky.id), [1, 2, 3]);
    assert_eq!(handler.calls(&flaky.id), 3);
    assert_eq!(t.effects(&flaky.id).await, 1);
    assert!(
        dead_letters(&t.db, 10).await.unwrap().is_empty(),
        "succeeded on the last allowed attempt"
    );
}

/// A poison event is retried up to max_attempts and dead-lettered while the events behind it go
/// through; a rejected one is dead-lettered at once; redrive applies a fixed event exactly once.
async fn poison_is_dead_lettered_without_blocking(t: Ctx) {
    let handler = TestHandler::new("w");
    let consumer = t.consumer("poisoned", handler.clone(), fast_retries(3, 100));
    t.start(&consumer).await;

    let a = event("cart-4", json!({ "seq": 0, "poison": true }));
    let b = event("cart-5", json!({ "seq": 1 }));
    let c = event("cart-6", json!({ "seq": 2 }));
    let r = event("cart-7", json!({ "seq": 3, "reject": true }));
    for e in [&a, &b, &c, &r] {
        t.transport.publish(e).await.unwrap();
    }

    eventually("B and C applied, A and R dead-lettered", || async {
        t.applied().await.len() == 2
            && dead_letters(&t.db, 10).await.unwrap().len() == 2
            && t.idle("poisoned").await
    })
    .await;
    let applied: HashSet<String> = t.applied().await.into_iter().map(|(id, _, _)| id).collect();
    assert_eq!(applied, HashSet::from([b.id.clone(), c.id.clone()]));

    // A was redelivered with backoff while B and C went through, not ahead of them.
    assert_eq!(t.attempts(&a.id), [1, 2, 3]);
    assert_eq!(t.attempts(&r.id), [1], "a rejected event is not retried");
    let seen = t.seen();
    let at = |id: &str, attempt: u32| {
        seen.iter()
            .position(|s| s.event_id == id && s.attempt == attempt)
            .unwrap()
    };
    assert!(
        at(&b.id, 1) < at(&a.id, 3) && at(&c.id, 1) < at(&a.id, 3),
        "the poison event held back the others: {seen:?}"
    );

    let dead = dead_letters(&t.db, 10).await.unwrap();
    let dead_a = dead
        .iter()
        .find(|d| d.event_id == a.id)
        .expect("A dead-lettered");
    assert_eq!(
        (dead_a.attempts, dead_a.consumer.as_str(), &dead_a.event),
        (3, "poisoned", &a)
    );
    assert!(
        dead_a.error.contains("poison event"),
        "error text kept: {:?}",
        dead_a.error
    );
    let dead_r = dead
        .iter()
        .find(|d| d.event_id == r.id)
        .expect("R dead-lettered");
    assert_eq!(dead_r.attempts, 1);
    assert!(
        dead_r.error.contains("rejected"),
        "error text kept: {:?}",
        dead_r.error
    );

    // Redriving a still-broken event keeps it dead-lettered.
    assert!(consumer.redrive(&dead_r.id).await.is_err());
    // Fixed: redrive applies A once and removes its dead letter.
    handler.healed.store(true, Ordering::SeqCst);
    assert!(consumer.redrive(&dead_a.id).await.unwrap());
    assert_eq!(t.effects(&a.id).await, 1);
    assert!(
        !consumer.redrive(&dead_a.id).await.unwrap(),
        "a redriven dead letter is gone"
    );
    assert_eq!(t.effects(&a.id).await, 1);
    let left: Vec<String> = dead_letters(&t.db, 10)
        .await
        .unwrap()
        .into_iter()
        .map(|d| d.event_id)
        .collect();
    assert_eq!(left, std::slice::from_ref(&r.id));
}

/// Two consumers with one durable name share 40 events: each is delivered once and applied once.
async fn shared_durable_consumer_splits_work(t: Ctx) {
    let one = t.consumer("shared", TestHandler::new("one"), RetryPolicy::default());
    let two = t.consumer("shared", TestHandler::new("two"), RetryPolicy::default());
    t.start(&one).await;
    t.start(&two).await;

    // The handler lingers a little so both workers have something in flight at once.
    let events: Vec<_> = (0..40)
        .map(|i| event(&format!("cart-s{i}"), json!({ "seq": i, "slow_ms": 5 })))
        .collect();
    t.publish_via_outbox(&events, 40).await;

    eventually("40 events applied and the consumer idle", || async {
        t.applied().await.len() >= 40 && t.idle("shared").await
    })
    .await;
    let applied = t.applied().await;
    assert_eq!(applied.len(), 40, "some event was applied twice");
    let ids: HashSet<&str> = applied.iter().map(|(id, _, _)| id.as_str()).collect();
    assert_eq!(
        ids,
        events.iter().map(|e| e.id.as_str()).collect::<HashSet<_>>()
    );
    for worker in ["one", "two"] {
        assert!(
            applied.iter().any(|(_, _, w)| w == worker),
            "worker {worker} got no work"
        );
    }
    let seen = t.seen();
    assert_eq!(
        seen.len(),
        40,
        "an event was handed to both subscribers: {seen:?}"
    );
    assert!(seen.iter().all(|s| s.attempt == 1));
    assert_eq!(
        t.stats().await.consumers.len(),
        1,
        "both workers share one durable"
    );
}

/// The relay published events but crashed before marking them; on restart it publishes them
/// again. Broker deduplication and the inbox keep it to one copy and one effect each.
async fn relay_crash_between_publish_and_mark(t: Ctx) {
    let handler = TestHandler::new("w");
    let consumer = t.consumer("after_crash", handler, RetryPolicy::default());
    t.start(&consumer).await;

    let events: Vec<_> = (0..20)
        .map(|i| event("cart-8", json!({ "seq": i })))
        .collect();
    let mut tx = t.db.begin().await.unwrap();
    for e in &events {
        bazaar_bus::enqueue(&mut tx, e).await.unwrap();
    }
    tx.commit().await.unwrap();
    // The crashed relay got the first 12 out but marked none of them.
    for e in &events[..12] {
        t.transport.publish(e).await.unwrap();
    }
    assert_eq!(outbox_backlog(&t.db).await.unwrap(), 20);

    t.relay.flush().await.unwrap();
    assert_eq!(outbox_backlog(&t.db).await.unwrap(), 0);
    t.relay.flush().await.unwrap();
    assert_eq!(
        t.stats().await.messages,
        20,
        "republished events were stored again"
    );

    eventually("20 events applied and the consumer idle", || async {
        t.applied().await.len() >= 20 && t.idle("after_crash").await
    })
    .await;
    let seqs: Vec<i64> = t
        .applied()
        .await
        .into_iter()
        .map(|(_, seq, _)| seq)
        .collect();
    assert_eq!(seqs, (0..20).collect::<Vec<i64>>());
    assert_eq!(
        t.seen().len(),
        20,
        "a republished event was delivered again"
    );
}
