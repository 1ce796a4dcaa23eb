//! After placement: the state machine, payment, cancellation and shipping, with their
//! permissions.

use std::sync::atomic::Ordering;

use bazaar_contracts::orders::{OrderStatus, PayOrderRequest, SetOrderStatusRequest};
use bazaar_contracts::{ErrorCode, Principal};

use crate::support::{Harness, admin};

fn pay(id: &str, token: &str) -> PayOrderRequest {
    PayOrderRequest {
        id: id.into(),
        payment_token: token.into(),
    }
}

fn set(id: &str, status: OrderStatus) -> SetOrderStatusRequest {
    SetOrderStatusRequest {
        id: id.into(),
        status,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn happy_path_pay_ship_deliver() {
    let h = Harness::start().await;
    let ann = h.customer(None).await;
    let order = h.confirmed_order(&ann).await;
    let paid = h
        .client
        .pay_order(&ann, &pay(&order.id, "tok_visa"))
        .await
        .unwrap();
    assert_eq!(paid.status, OrderStatus::Paid);
    let again = h
        .client
        .pay_order(&ann, &pay(&order.id, "tok_visa"))
        .await
        .unwrap_err();
    assert_eq!(
        (again.code, again.field.as_deref()),
        (ErrorCode::BadUserInput, Some("id"))
    );
    assert!(again.message.contains("PAID"), "{}", again.message);

    let shipped = h
        .client
        .set_order_status(&admin(), &set(&order.id, OrderStatus::Shipped))
        .await
        .unwrap();
    assert_eq!(shipped.status, OrderStatus::Shipped);
    let cancel = h.client.cancel_order(&ann, &order.id).await.unwrap_err();
    assert_eq!(
        (cancel.code, cancel.field.as_deref()),
        (ErrorCode::BadUserInput, Some("id"))
    );
    assert_eq!(
        cancel.message,
        "cannot move order from SHIPPED to CANCELLED"
    );
    let delivered = h
        .client
        .set_order_status(&admin(), &set(&order.id, OrderStatus::Delivered))
        .await
        .unwrap();
    assert_eq!(delivered.status, OrderStatus::Delivered);
    // CONFIRMED, PAID, SHIPPED, DELIVERED: one event per transition.
    assert_eq!(h.status_events(&order.id).await, 4);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn set_order_status_is_for_admins_and_follows_the_state_machine() {
    let h = Harness::start().await;
    let ann = h.customer(None).await;
    let order = h.confirmed_order(&ann).await;
    let by_customer = h
        .client
        .set_order_status(&ann, &set(&order.id, OrderStatus::Shipped))
        .await
        .unwrap_err();
    assert_eq!(by_customer.code, ErrorCode::Forbidden);
    let anonymous = h
        .client
        .set_order_status(
            &Principal::anonymous(),
            &set(&order.id, OrderStatus::Shipped),
        )
        .await;
    assert_eq!(anonymous.unwrap_err().code, ErrorCode::Unauthenticated);
    let not_a_target = h
        .client
        .set_order_status(&admin(), &set(&order.id, OrderStatus::Paid))
        .await
        .unwrap_err();
    assert_eq!(
        (not_a_target.code, not_a_target.field.as_deref()),
        (ErrorCode::BadUserInput, Some("status"))
    );
    let early = h
        .client
        .set_order_status(&admin(), &set(&order.id, OrderStatus::Shipped))
        .await
        .unwrap_err();
    assert_eq!(early.field.as_deref(), Some("status"));
    assert_eq!(early.message, "cannot move order from CONFIRMED to SHIPPED");
    let missing = h
        .client
        .set_order_status(&admin(), &set("nope", OrderStatus::Shipped))
        .await
        .unwrap_err();
    assert_eq!(missing.code, ErrorCode::NotFound);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn declined_cards_and_bad_tokens() {
    let h = Harness::start().await;
    let ann = h.customer(None).await;
    let order = h.confirmed_order(&ann).await;
    let declined = h
        .client
        .pay_order(&ann, &pay(&order.id, "tok_chargeDeclined"))
        .await
        .unwrap();
    assert_eq!(declined.status, OrderStatus::Confirmed);
    assert_eq!(
        declined.status_reason.as_deref(),
        Some("Your card was declined.")
    );
    assert!(declined.updated_at >= order.updated_at);
    let bad = h
        .client
        .pay_order(&ann, &pay(&order.id, "tok_bogus"))
        .await
        .unwrap_err();
    assert_eq!(
        (bad.code, bad.field.as_deref()),
        (ErrorCode::BadUserInput, Some("paymentToken"))
    );
    let paid = h
        .client
        .pay_order(&ann, &pay(&order.id, "tok_visa"))
        .await
        .unwrap();
    assert_eq!(
        (paid.status, paid.status_reason),
        (OrderStatus::Paid, None),
        "reason cleared on payment"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn only_the_buyer_pays_and_only_when_confirmed() {
    let h = Harness::start().await;
    let (ann, bob) = (h.customer(None).await, h.customer(None).await);
    let pending = h
        .place(
            &ann,
            &[(crate::support::TEAPOT, 1)],
            Some(crate::support::address("1 St")),
            None,
        )
        .await
        .unwrap();
    let early = h
        .client
        .pay_order(&ann, &pay(&pending.id, "tok_visa"))
        .await
        .unwrap_err();
    assert_eq!(
        (early.code, early.field.as_deref()),
        (ErrorCode::BadUserInput, Some("id"))
    );
    assert!(early.message.contains("PENDING"));
    let order = h.confirmed_order(&ann).await;
    assert_eq!(
        h.client
            .pay_order(&bob, &pay(&order.id, "tok_visa"))
            .await
            .unwrap_err()
            .code,
        ErrorCode::NotFound
    );
    assert_eq!(
        h.client
            .pay_order(&admin(), &pay(&order.id, "tok_visa"))
            .await
            .unwrap_err()
            .code,
        ErrorCode::Forbidden
    );
    assert_eq!(
        h.client
            .pay_order(&ann, &pay("nope", "tok_visa"))
            .await
            .unwrap_err()
            .code,
        ErrorCode::NotFound
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cancelling_checks_ownership_and_refunds_paid_orders() {
    let h = Harness::start().await;
    let (ann, bob) = (h.customer(None).await, h.customer(None).await);
    let order = h.confirmed_order(&ann).await;
    let by_bob = h.client.cancel_order(&bob, &order.id).await.unwrap_err();
    assert_eq!(
        by_bob.code,
        ErrorCode::NotFound,
        "another customer cannot even see it"
    );
    h.client
        .pay_order(&ann, &pay(&order.id, "tok_visa"))
        .await
        .unwrap();
    let cancelled = h.client.cancel_order(&ann, &order.id).await.unwrap();
    assert_eq!(cancelled.status, OrderStatus::Cancelled);
    assert_eq!(
        cancelled.status_reason.as_deref(),
        Some("cancelled by customer")
    );
    assert_eq!(
        h.payments.refunds.load(Ordering::SeqCst),
        1,
        "the charge was refunded"
    );

    let other = h.confirmed_order(&ann).await;
    let by_admin = h.client.cancel_order(&admin(), &other.id).await.unwrap();
    assert_eq!(
        by_admin.status_reason.as_deref(),
        Some("cancelled by admin")
    );
    assert_eq!(
        h.payments.refunds.load(Ordering::SeqCst),
        1,
        "nothing to refund for an unpaid order"
    );
    let twice = h.client.cancel_order(&ann, &other.id).await.unwrap_err();
    assert_eq!(
        twice.message,
        "cannot move order from CANCELLED to CANCELLED"
    );
}
