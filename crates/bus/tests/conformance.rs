//! Transport conformance: the same scenarios against the embedded log + SQLite, NATS
//! JetStream + PostgreSQL, RabbitMQ + PostgreSQL and Kafka + PostgreSQL, checking the delivery contract in
//! `src/transport.rs` and the outbox/inbox/dead-letter guarantees built on it.
//!
//! NATS, RabbitMQ, Kafka and PostgreSQL are expected at 127.0.0.1:4222, :5672, :9092 and :5432
//! (RabbitMQ with `rabbitmqctl` on the PATH: each scenario gets a virtual host of its own;
//! on Kafka a namespace, so a topic and groups, of its own); when unreachable the
//! `nats`/`rabbitmq`/`kafka` variants print `SKIPPED` and pass, unless `BAZAAR_REQUIRE_BACKENDS=1`
//! makes them fail.

mod support;

use std::collections::HashSet;
use std::sync::atomic::Ordering;
use std::time::Duration;

use bazaar_bus::{Delivery, RetryPolicy, dead_letters, outbox_backlog};
use serde_json::json;
use support::{Ctx, OTHER_TYPE, RecordingAcker, TestHandler, event, eventually};

/// One scenario body, four entry points: `<scenario>::embedded`, `<scenario>::nats`,
/// `<scenario>::rabbitmq` and `<scenario>::kafka`.
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

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn rabbitmq() {
                crate::support::run(crate::support::Kind::Rabbitmq, super::$scenario).await
            }

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn kafka() {
                crate::support::run(crate::support::Kind::Kafka, super::$scenario).await
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
    batches_keep_each_aggregate_in_order,
    filtered_consumer_sees_only_its_types,
    failing_event_does_not_hold_back_its_batch,
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
    let mut rolled_back = t.outbox.begin().await.unwrap();
    rolled_back
        .emit(&event("cart-1", json!({ "seq": 999 })))
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

    // The handler lingers and events arrive a few at a time, so while one worker applies a
    // batch the next events go to the other (a worker takes all that is waiting at once).
    let events: Vec<_> = (0..40)
        .map(|i| event(&format!("cart-s{i}"), json!({ "seq": i, "slow_ms": 10 })))
        .collect();
    for chunk in events.chunks(4) {
        t.publish_via_outbox(chunk, 4).await;
        tokio::time::sleep(Duration::from_millis(15)).await;
    }

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
    let mut tx = t.outbox.begin().await.unwrap();
    for e in &events {
        tx.emit(e).await.unwrap();
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

/// 400 events of 8 aggregates, published in one batch before the consumer starts, are handed
/// out in batches and applied once each, every aggregate's events in publish order (lanes run
/// concurrently on PostgreSQL).
async fn batches_keep_each_aggregate_in_order(t: Ctx) {
    let handler = TestHandler::new("w");
    let consumer = t.consumer("batched", handler, RetryPolicy::default());
    drop(t.transport.subscribe(&consumer.spec).await.unwrap());
    let events: Vec<_> = (0..400)
        .map(|i| event(&format!("order-{}", i % 8), json!({ "seq": i })))
        .collect();
    t.transport.publish_batch(&events).await.unwrap();
    t.transport.publish_batch(&events[..10]).await.unwrap();
    assert_eq!(
        t.stats().await.messages,
        400,
        "a batch republished was stored twice"
    );
    t.start(&consumer).await;

    eventually("400 events applied and the consumer idle", || async {
        t.applied().await.len() >= 400 && t.idle("batched").await
    })
    .await;
    let applied = t.applied().await;
    assert_eq!(applied.len(), 400, "an event was applied twice");
    for aggregate in 0..8 {
        let seqs: Vec<i64> = applied
            .iter()
            .map(|(_, seq, _)| *seq)
            .filter(|seq| seq % 8 == aggregate)
            .collect();
        let expected: Vec<i64> = (0..400).filter(|seq| seq % 8 == aggregate).collect();
        assert_eq!(
            seqs, expected,
            "aggregate order-{aggregate} applied out of order"
        );
    }
    assert!(
        t.largest_batch() > 1,
        "400 waiting events were handed out one at a time"
    );
}

/// A consumer that names its types receives nothing else, and its backlog counts only them.
async fn filtered_consumer_sees_only_its_types(t: Ctx) {
    let handler = TestHandler::new("w");
    let consumer = t.consumer("picky", handler, RetryPolicy::default());
    assert_eq!(consumer.spec.event_types, [support::EVENT_TYPE]);
    t.start(&consumer).await;
    let mut events = Vec::new();
    for i in 0..60 {
        let mut e = event(&format!("cart-{i}"), json!({ "seq": i }));
        if i % 3 != 0 {
            e.event_type = OTHER_TYPE.into();
        }
        events.push(e);
    }
    t.publish_via_outbox(&events, 25).await;

    eventually(
        "the 20 wanted events applied and the consumer idle",
        || async { t.applied().await.len() >= 20 && t.idle("picky").await },
    )
    .await;
    let wanted: HashSet<String> = events
        .iter()
        .filter(|e| e.event_type != OTHER_TYPE)
        .map(|e| e.id.clone())
        .collect();
    let seen: HashSet<String> = t.seen().into_iter().map(|s| s.event_id).collect();
    assert_eq!(
        seen, wanted,
        "the consumer was handed events of other types"
    );
    assert_eq!(t.applied().await.len(), 20);
}

/// One event that fails in the middle of a batch is retried alone: its 49 siblings commit on
/// their first delivery, and it succeeds on its second.
async fn failing_event_does_not_hold_back_its_batch(t: Ctx) {
    let handler = TestHandler::new("w");
    let consumer = t.consumer("isolating", handler.clone(), fast_retries(3, 300));
    drop(t.transport.subscribe(&consumer.spec).await.unwrap());
    let events: Vec<_> = (0..50)
        .map(|i| {
            let fail = if i == 25 { 1 } else { 0 };
            event(
                &format!("order-{i}"),
                json!({ "seq": i, "fail_times": fail }),
            )
        })
        .collect();
    t.transport.publish_batch(&events).await.unwrap();
    t.start(&consumer).await;

    eventually("the 49 siblings applied", || async {
        t.applied().await.len() >= 49
    })
    .await;
    let flaky = &events[25];
    assert_eq!(
        t.effects(&flaky.id).await,
        0,
        "the failing event was applied although it failed (its retry is 300 ms away)"
    );
    eventually("the failed event applied on its retry", || async {
        t.effects(&flaky.id).await == 1 && t.idle("isolating").await
    })
    .await;
    assert_eq!(t.attempts(&flaky.id), [1, 2]);
    for e in events.iter().filter(|e| e.id != flaky.id) {
        assert_eq!(t.attempts(&e.id), [1], "a sibling was delivered again");
        assert_eq!(handler.calls(&e.id), 1, "a sibling's handler ran twice");
        assert_eq!(t.effects(&e.id).await, 1);
    }
}
