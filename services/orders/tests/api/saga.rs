//! The event side: stock answers from the catalogue, the customer replica, redelivery, and
//! the unpaid-order sweeper.

use std::time::Duration;

use bazaar_contracts::events::{Event, StockRejected, StockReserved, UserProfileUpdated};
use bazaar_contracts::orders::{OrderStatus, PayOrderRequest, SetOrderStatusRequest};
use bazaar_db::now_millis;

use crate::support::{Harness, TEAPOT, address, admin};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stock_answers_confirm_or_reject_pending_orders() {
    let h = Harness::start().await;
    let ann = h.customer(None).await;
    let a = Some(address("1 Main St"));
    let ok = h
        .place(&ann, &[(TEAPOT, 1)], a.clone(), None)
        .await
        .unwrap();
    let short = h
        .place(&ann, &[(TEAPOT, 1)], a.clone(), None)
        .await
        .unwrap();
    let gone = h.place(&ann, &[(TEAPOT, 1)], a, None).await.unwrap();
    h.reserve(&ok.id).await;
    h.reject(
        &short.id,
        "not enough stock for Teapot (requested 1, available 0)",
    )
    .await;
    h.client.cancel_order(&ann, &gone.id).await.unwrap();
    let late = h.reserve(&gone.id).await;
    assert_eq!(
        h.wait_status(&ok.id, OrderStatus::Confirmed)
            .await
            .status_reason,
        None
    );
    let rejected = h.wait_status(&short.id, OrderStatus::Rejected).await;
    assert_eq!(
        rejected.status_reason.as_deref(),
        Some("not enough stock for Teapot (requested 1, available 0)")
    );
    h.consumed(&late).await;
    assert_eq!(h.order(&gone.id).await.status, OrderStatus::Cancelled);
    assert_eq!(h.status_events(&gone.id).await, 1, "only the cancellation");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_event_applied_twice_has_one_effect() {
    let h = Harness::start().await;
    let ann = h.customer(None).await;
    let order = h
        .place(&ann, &[(TEAPOT, 1)], Some(address("1 Main St")), None)
        .await
        .unwrap();
    let event = StockReserved {
        order_id: order.id.clone(),
        items: Vec::new(),
    }
    .envelope("catalog");
    h.deliver(&event).await;
    h.deliver(&event).await;
    assert_eq!(h.order(&order.id).await.status, OrderStatus::Confirmed);
    assert_eq!(h.status_events(&order.id).await, 1);
    // The catalogue repeating itself under a new event id is absorbed by the state machine.
    h.deliver(
        &StockReserved {
            order_id: order.id.clone(),
            items: Vec::new(),
        }
        .envelope("catalog"),
    )
    .await;
    assert_eq!(h.status_events(&order.id).await, 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn profile_changes_move_only_profile_addressed_open_orders() {
    let h = Harness::start().await;
    let ann = h.customer(Some(address("1 Old Rd"))).await;
    let user_id = ann.user.as_ref().unwrap().id.clone();
    let from_profile = h.place(&ann, &[(TEAPOT, 1)], None, None).await.unwrap();
    let explicit = h
        .place(&ann, &[(TEAPOT, 1)], Some(address("2 Given St")), None)
        .await
        .unwrap();
    let shipped = h.place(&ann, &[(TEAPOT, 1)], None, None).await.unwrap();
    h.reserve(&shipped.id).await;
    h.wait_status(&shipped.id, OrderStatus::Confirmed).await;
    let pay = PayOrderRequest {
        id: shipped.id.clone(),
        payment_token: "tok_visa".into(),
    };
    h.client.pay_order(&ann, &pay).await.unwrap();
    let ship = SetOrderStatusRequest {
        id: shipped.id.clone(),
        status: OrderStatus::Shipped,
    };
    h.client.set_order_status(&admin(), &ship).await.unwrap();

    let update = |line1: &str, updated_at: i64| UserProfileUpdated {
        user_id: user_id.clone(),
        email: "ann@example.com".into(),
        name: "Ann".into(),
        phone: None,
        address: Some(address(line1)),
        updated_at,
    };
    let now = now_millis();
    h.publish(&update("3 New Ave", now + 1000)).await;
    bazaar_testkit::eventually("address moved", || async {
        h.order(&from_profile.id).await.shipping_address == Some(address("3 New Ave"))
    })
    .await;
    assert_eq!(
        h.order(&explicit.id).await.shipping_address,
        Some(address("2 Given St"))
    );
    assert_eq!(
        h.order(&shipped.id).await.shipping_address,
        Some(address("1 Old Rd")),
        "already shipped"
    );
    // A stale update (older than what the replica holds) changes nothing.
    h.deliver(&update("4 Stale Ln", now - 1000).envelope("users"))
        .await;
    assert_eq!(
        h.order(&from_profile.id).await.shipping_address,
        Some(address("3 New Ave"))
    );
    // New orders use the new profile address.
    let next = h.place(&ann, &[(TEAPOT, 1)], None, None).await.unwrap();
    assert_eq!(next.shipping_address, Some(address("3 New Ave")));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unpaid_orders_are_cancelled_after_the_timeout() {
    let h = Harness::with_timeout(Duration::from_secs(2)).await;
    let ann = h.customer(None).await;
    let unpaid = h.confirmed_order(&ann).await;
    let paid = h.confirmed_order(&ann).await;
    h.client
        .pay_order(
            &ann,
            &PayOrderRequest {
                id: paid.id.clone(),
                payment_token: "tok_visa".into(),
            },
        )
        .await
        .unwrap();
    let cancelled = h.wait_status(&unpaid.id, OrderStatus::Cancelled).await;
    assert_eq!(
        cancelled.status_reason.as_deref(),
        Some("payment window expired")
    );
    assert!(
        cancelled.updated_at - unpaid.updated_at < 6_000,
        "cancelled within a few seconds of expiring"
    );
    assert_eq!(
        h.order(&paid.id).await.status,
        OrderStatus::Paid,
        "paid orders are left alone"
    );
    assert_eq!(
        h.status_events(&unpaid.id).await,
        2,
        "CONFIRMED, then one CANCELLED"
    );
}

/// Backpressure: with room for one PENDING order, the next placeOrder waits until the
/// catalogue has answered the first, then goes through.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn place_order_waits_while_the_saga_is_behind() {
    let h = Harness::with_settings(|settings| settings.max_pending_orders = 1).await;
    let ann = h.customer(Some(address("1 Main St"))).await;
    let first = h.place(&ann, &[(TEAPOT, 1)], None, None).await.unwrap();
    let placing = h.place(&ann, &[(TEAPOT, 1)], None, None);
    let second = match tokio::time::timeout(Duration::from_millis(400), placing).await {
        Ok(second) => panic!("accepted while the first order was still PENDING: {second:?}"),
        Err(_) => {
            h.reserve(&first.id).await;
            h.place(&ann, &[(TEAPOT, 1)], None, None).await
        }
    };
    let second = second.expect("the second order, once the first was answered");
    assert_eq!(h.order(&first.id).await.status, OrderStatus::Confirmed);
    assert_eq!(second.status, OrderStatus::Pending);
}

/// Stock answers for several orders in one batch are applied together, with the outcome of
/// one at a time: PENDING orders confirmed or rejected (with the reason), a cancelled order
/// left as it is, an unknown one ignored, one `OrderStatusChanged` per move; and the batch
/// delivered again changes nothing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stock_answers_in_one_batch_settle_like_one_at_a_time() {
    let h = Harness::start().await;
    let ann = h.customer(Some(address("1 Main St"))).await;
    let mut ids = Vec::new();
    for _ in 0..3 {
        ids.push(h.place(&ann, &[(TEAPOT, 1)], None, None).await.unwrap().id);
    }
    h.client.cancel_order(&ann, &ids[2]).await.unwrap();
    let reserved = |order_id: &str| {
        let items = Vec::new();
        StockReserved {
            order_id: order_id.into(),
            items,
        }
        .envelope("catalog")
    };
    let rejected = StockRejected {
        order_id: ids[1].clone(),
        reason: "sold out".into(),
    };
    let batch = [
        reserved(&ids[0]),
        rejected.envelope("catalog"),
        reserved(&ids[2]),
        reserved("ghost"),
    ];
    h.deliver_batch(&batch).await;
    h.deliver_batch(&batch).await;
    let confirmed = h.order(&ids[0]).await;
    assert_eq!(
        (confirmed.status, confirmed.status_reason),
        (OrderStatus::Confirmed, None)
    );
    let refused = h.order(&ids[1]).await;
    assert_eq!(refused.status, OrderStatus::Rejected);
    assert_eq!(refused.status_reason.as_deref(), Some("sold out"));
    assert_eq!(h.order(&ids[2]).await.status, OrderStatus::Cancelled);
    assert_eq!(h.status_events(&ids[0]).await, 1);
    assert_eq!(h.status_events(&ids[1]).await, 1);
    assert_eq!(h.status_events(&ids[2]).await, 1, "only the cancellation");
}
