//! The catalog's side of the order saga, driven by events published on the bus: all-or-
//! nothing reservations, rejections that take nothing, releases on cancellation, no oversell
//! under concurrency, and exactly-once effects under redelivery.

use std::collections::HashMap;

use bazaar_bus::Envelope;
use bazaar_contracts::events::{
    StockChanged, StockLine, StockRejected, StockReleased, StockReserved,
};
use bazaar_contracts::orders::OrderStatus;
use bazaar_db::sqlx;

use crate::support::{TestCatalog, placed, status_changed};

bazaar_testkit::on_every_backend!(
    start = crate::support::TestCatalog::start;
    reserves_every_line_of_an_order,
    too_large_order_is_rejected_untouched,
    failing_second_line_takes_nothing,
    cancellation_releases_the_reservation,
    cancellation_before_placement_wins,
    no_oversell_under_concurrent_orders,
    redelivery_applies_once,
    stock_is_conserved_under_mixed_traffic,
    malformed_events_are_dead_lettered,
    placed_orders_in_one_batch_are_decided_in_order,
);

fn line(product_id: &str, quantity: i64) -> StockLine {
    StockLine {
        product_id: product_id.into(),
        quantity,
    }
}

fn cancelled(order_id: &str) -> Envelope {
    status_changed(order_id, OrderStatus::Pending, OrderStatus::Cancelled)
}

async fn reserves_every_line_of_an_order(t: &TestCatalog) {
    let a = t.create("Teapot", "kitchen", 5).await;
    let b = t.create("Cup", "kitchen", 5).await;
    // Lines for one product are merged: 2 + 1 teapots.
    t.publish(&placed("o1", &[(&b.id, 1), (&a.id, 2), (&a.id, 1)]))
        .await;
    assert_eq!(t.settled("o1").await, ("RESERVED".into(), None));
    assert_eq!((t.stock(&a.id).await, t.stock(&b.id).await), (2, 4));
    let reserved = t.emitted::<StockReserved>().await;
    assert_eq!(
        reserved,
        [StockReserved {
            order_id: "o1".into(),
            items: vec![line(&a.id, 3), line(&b.id, 1)]
        }]
    );
    let changes: Vec<(String, i64, i64, String)> = t
        .emitted::<StockChanged>()
        .await
        .into_iter()
        .map(|e| (e.product_id, e.stock, e.delta, e.reason))
        .collect();
    assert_eq!(
        changes,
        [
            (a.id.clone(), 2, -3, "RESERVATION".into()),
            (b.id.clone(), 4, -1, "RESERVATION".into())
        ]
    );
}

async fn too_large_order_is_rejected_untouched(t: &TestCatalog) {
    let a = t.create("Teapot", "kitchen", 2).await;
    t.publish(&placed("o1", &[(&a.id, 3)])).await;
    let reason = "not enough stock for Teapot (requested 3, available 2)";
    assert_eq!(
        t.settled("o1").await,
        ("REJECTED".into(), Some(reason.into()))
    );
    assert_eq!(t.stock(&a.id).await, 2);
    assert_eq!(
        t.emitted::<StockRejected>().await,
        [StockRejected {
            order_id: "o1".into(),
            reason: reason.into()
        }]
    );
    assert!(t.emitted::<StockReserved>().await.is_empty());
    assert!(t.emitted::<StockChanged>().await.is_empty());
}

async fn failing_second_line_takes_nothing(t: &TestCatalog) {
    // Ids are time-ordered, so `first` sorts (and is taken) before `second`.
    let first = t.create("Teapot", "kitchen", 5).await;
    let second = t.create("Cup", "kitchen", 1).await;
    t.publish(&placed("o1", &[(&second.id, 5), (&first.id, 2)]))
        .await;
    let (status, reason) = t.settled("o1").await;
    assert_eq!(status, "REJECTED");
    assert_eq!(
        reason.as_deref(),
        Some("not enough stock for Cup (requested 5, available 1)")
    );
    assert_eq!(
        (t.stock(&first.id).await, t.stock(&second.id).await),
        (5, 1),
        "the first line was put back"
    );

    // A deleted product, or one that never existed, is no longer sold.
    assert!(
        t.client
            .delete_product(&crate::support::admin(), &second.id)
            .await
            .unwrap()
    );
    t.publish(&placed("o2", &[(&first.id, 1), (&second.id, 1)]))
        .await;
    assert_eq!(
        t.settled("o2").await.1,
        Some(format!("{} is no longer sold", second.id))
    );
    t.publish(&placed("o3", &[(&first.id, 1), ("ghost", 1)]))
        .await;
    assert_eq!(
        t.settled("o3").await.1,
        Some("ghost is no longer sold".into())
    );
    assert_eq!(t.stock(&first.id).await, 5);
    assert!(t.emitted::<StockChanged>().await.is_empty());
}

async fn cancellation_releases_the_reservation(t: &TestCatalog) {
    let a = t.create("Teapot", "kitchen", 5).await;
    t.publish(&placed("o1", &[(&a.id, 2)])).await;
    assert_eq!(t.settled("o1").await.0, "RESERVED");
    assert_eq!(t.stock(&a.id).await, 3);
    // Other transitions hold on to the stock.
    t.publish(&status_changed(
        "o1",
        OrderStatus::Pending,
        OrderStatus::Confirmed,
    ))
    .await;
    t.processed(2).await;
    assert_eq!(t.stock(&a.id).await, 3);

    t.publish(&cancelled("o1")).await;
    t.processed(3).await;
    assert_eq!(t.settled("o1").await.0, "RELEASED");
    assert_eq!(t.stock(&a.id).await, 5);
    assert_eq!(
        t.emitted::<StockReleased>().await,
        [StockReleased {
            order_id: "o1".into(),
            items: vec![line(&a.id, 2)]
        }]
    );
    let last = t.emitted::<StockChanged>().await.pop().unwrap();
    assert_eq!(
        (last.stock, last.delta, last.reason.as_str()),
        (5, 2, "RELEASE")
    );

    // A second cancellation (another event) gives nothing back twice; neither does
    // cancelling a rejected order.
    t.publish(&cancelled("o1")).await;
    t.publish(&placed("o2", &[(&a.id, 50)])).await;
    t.publish(&cancelled("o2")).await;
    t.processed(6).await;
    assert_eq!(t.settled("o2").await.0, "REJECTED");
    assert_eq!(t.stock(&a.id).await, 5);
    assert_eq!(t.emitted::<StockReleased>().await.len(), 1);
}

async fn cancellation_before_placement_wins(t: &TestCatalog) {
    let a = t.create("Teapot", "kitchen", 5).await;
    t.publish(&cancelled("o1")).await;
    assert_eq!(t.settled("o1").await.0, "CANCELLED");
    t.publish(&placed("o1", &[(&a.id, 2)])).await;
    t.processed(2).await;
    assert_eq!(t.settled("o1").await.0, "CANCELLED");
    assert_eq!(t.stock(&a.id).await, 5);
    assert!(t.emitted::<StockReserved>().await.is_empty());
    assert!(t.emitted::<StockRejected>().await.is_empty());
}

async fn no_oversell_under_concurrent_orders(t: &TestCatalog) {
    let a = t.create("Teapot", "kitchen", 10).await;
    // More workers on the same durable consumer: handlers really run side by side.
    t.more_workers(3);
    let orders: Vec<Envelope> = (0..40)
        .map(|i| placed(&format!("o{i}"), &[(&a.id, 1)]))
        .collect();
    futures::future::join_all(orders.iter().map(|e| t.publish(e))).await;
    t.processed(40).await;
    let counts: Vec<(String, i64)> =
        sqlx::query_as("SELECT status, COUNT(*) FROM reservations GROUP BY status ORDER BY status")
            .fetch_all(t.db.pool())
            .await
            .unwrap();
    assert_eq!(counts, [("REJECTED".into(), 30), ("RESERVED".into(), 10)]);
    assert_eq!(t.stock(&a.id).await, 0);
    assert_eq!(t.emitted::<StockReserved>().await.len(), 10);
    assert_eq!(t.emitted::<StockRejected>().await.len(), 30);
}

async fn redelivery_applies_once(t: &TestCatalog) {
    let a = t.create("Teapot", "kitchen", 5).await;
    let deliver = async |event: &Envelope, attempt| t.deliver(event, attempt).await;
    let place = placed("o1", &[(&a.id, 2)]);
    deliver(&place, 1).await;
    deliver(&place, 2).await;
    // The orders service emitting the same fact again (new event id) changes nothing either.
    deliver(&placed("o1", &[(&a.id, 2)]), 1).await;
    assert_eq!(t.stock(&a.id).await, 3);
    assert_eq!(t.emitted::<StockReserved>().await.len(), 1);

    let cancel = cancelled("o1");
    deliver(&cancel, 1).await;
    deliver(&cancel, 2).await;
    assert_eq!(t.stock(&a.id).await, 5);
    assert_eq!(t.emitted::<StockReleased>().await.len(), 1);
    assert_eq!(t.emitted::<StockChanged>().await.len(), 2);
}

/// Orders over three products, a third of them cancelled (some before they are placed),
/// all published at once to four workers. Whatever the interleaving, for each product:
/// stock + units held by RESERVED reservations = initial stock.
async fn stock_is_conserved_under_mixed_traffic(t: &TestCatalog) {
    let mut products = Vec::new();
    for name in ["Teapot", "Cup", "Saucer"] {
        products.push(t.create(name, "kitchen", 20).await.id);
    }
    t.more_workers(3);
    let mut rng = bazaar_testkit::Lcg::new(0x2545_f491);
    let mut next = |n: u64| rng.below(n);
    let mut events = Vec::new();
    for i in 0..30 {
        let order = format!("o{i}");
        let lines: Vec<(&str, i64)> = (0..1 + next(3))
            .map(|_| (products[next(3) as usize].as_str(), 1 + next(4) as i64))
            .collect();
        let place = placed(&order, &lines);
        match i % 3 {
            0 => events.extend([cancelled(&order), place]),
            1 => events.extend([place, cancelled(&order)]),
            _ => events.push(place),
        }
    }
    futures::future::join_all(events.iter().map(|e| t.publish(e))).await;
    t.processed(events.len() as i64).await;

    let rows: Vec<(String, String)> = sqlx::query_as("SELECT status, items FROM reservations")
        .fetch_all(t.db.pool())
        .await
        .unwrap();
    assert_eq!(rows.len(), 30);
    let mut held: HashMap<String, i64> = HashMap::new();
    for (status, items) in rows {
        let lines: Vec<StockLine> = serde_json::from_str(&items).unwrap();
        if status == "RESERVED" {
            for l in lines {
                *held.entry(l.product_id).or_default() += l.quantity;
            }
        }
    }
    for id in &products {
        let stock = t.stock(id).await;
        assert!(stock >= 0);
        assert_eq!(
            stock + held.get(id).copied().unwrap_or(0),
            20,
            "units of {id} conserved"
        );
    }
}

async fn malformed_events_are_dead_lettered(t: &TestCatalog) {
    let bad = Envelope::new(
        "orders",
        "OrderPlaced",
        1,
        "o1",
        serde_json::json!({ "orderId": 7 }),
    );
    t.publish(&bad).await;
    bazaar_testkit::eventually("dead letter stored", || async {
        bazaar_bus::dead_letters(&t.db, 10)
            .await
            .unwrap()
            .iter()
            .any(|d| d.event_id == bad.id)
    })
    .await;
    assert!(t.reservation("o1").await.is_none());
}

/// Placed orders that arrive in one batch are reserved together, set-based, with exactly the
/// decisions and events of one at a time: delivery order, all lines or none, the same words
/// for a refusal, the stock each change leaves. An order cancelled before it was placed, in
/// the middle of such a run, sends the run back to one by one, where it is ignored.
/// (Orders are different aggregates, which PostgreSQL applies in concurrent lanes: these
/// share an aggregate id so that they stay in one lane, in delivery order.)
async fn placed_orders_in_one_batch_are_decided_in_order(t: &TestCatalog) {
    let placed = |order: &str, lines: &[(&str, i64)]| Envelope {
        aggregate_id: "one-lane".into(),
        ..placed(order, lines)
    };
    let a = t.create("Teapot", "kitchen", 5).await;
    let b = t.create("Cup", "kitchen", 3).await;
    let gone = t.create("Saucer", "kitchen", 9).await;
    let admin = crate::support::admin();
    assert!(t.client.delete_product(&admin, &gone.id).await.unwrap());
    let batch = [
        placed("o1", &[(&a.id, 2)]),
        placed("o2", &[(&b.id, 1), (&a.id, 2)]),
        placed("o3", &[(&a.id, 2)]),
        placed("o4", &[(&b.id, 2)]),
        placed("o5", &[(&a.id, 1), (&gone.id, 1)]),
        placed("o6", &[(&a.id, 1)]),
    ];
    t.deliver_batch(&batch).await;
    t.deliver_batch(&batch).await;
    let statuses = [
        ("o1", "RESERVED", None),
        ("o2", "RESERVED", None),
        (
            "o3",
            "REJECTED",
            Some("not enough stock for Teapot (requested 2, available 1)".to_owned()),
        ),
        ("o4", "RESERVED", None),
        (
            "o5",
            "REJECTED",
            Some(format!("{} is no longer sold", gone.id)),
        ),
        ("o6", "RESERVED", None),
    ];
    for (order, status, reason) in statuses {
        assert_eq!(
            t.reservation(order).await,
            Some((status.into(), reason)),
            "{order}"
        );
    }
    assert_eq!((t.stock(&a.id).await, t.stock(&b.id).await), (0, 0));
    let changes: Vec<(String, i64)> = t
        .emitted::<StockChanged>()
        .await
        .into_iter()
        .map(|e| (e.product_id, e.stock))
        .collect();
    let expected = [(&a.id, 3), (&a.id, 1), (&b.id, 2), (&b.id, 0), (&a.id, 0)];
    let expected: Vec<(String, i64)> = expected.iter().map(|(id, n)| ((*id).clone(), *n)).collect();
    assert_eq!(changes, expected, "one change per line, in delivery order");
    let reserved: Vec<String> = t
        .emitted::<StockReserved>()
        .await
        .into_iter()
        .map(|e| e.order_id)
        .collect();
    assert_eq!(reserved, ["o1", "o2", "o4", "o6"]);
    assert_eq!(t.emitted::<StockRejected>().await.len(), 2);

    let c = t.create("Kettle", "kitchen", 4).await;
    t.deliver(&cancelled("o8"), 1).await;
    t.deliver_batch(&[
        placed("o7", &[(&c.id, 1)]),
        placed("o8", &[(&c.id, 1)]),
        placed("o9", &[(&c.id, 1)]),
    ])
    .await;
    assert_eq!(t.reservation("o8").await, Some(("CANCELLED".into(), None)));
    for order in ["o7", "o9"] {
        assert_eq!(
            t.reservation(order).await,
            Some(("RESERVED".into(), None)),
            "{order}"
        );
    }
    assert_eq!(t.stock(&c.id).await, 2);
}
