//! Refunds are never lost, on both backends: a paid order cancelled while the payment
//! provider cannot refund is recorded with the cancellation, shown to admins while pending,
//! and retried until the provider confirms it.

use crate::support;

use std::time::Duration;

use crate::support::Environment;
use crate::support::shop::*;
use serde_json::json;

const PENDING: &str = "{ pendingRefunds { orderId amountCents attempts lastError nextAttemptAt } }";

async fn a_refund_that_fails_is_retried_until_it_succeeds(env: &Environment) {
    let app = env.start().await;
    let admin = app.admin_token().await;
    let pen = app.product(&admin, "Pen", "office", 250, 10).await;
    let (token, ..) = app.register("refund@example.com", "R").await;
    let id = app.order(&token, &[(&pen, 2)]).await;
    assert_eq!(app.settled(&token, &id).await["status"], "CONFIRMED");
    // The simulator's refunds for this charge fail for its first 2 seconds.
    let paid = app
        .ok(
            Some(&token),
            PAY,
            json!({"id": id, "token": "tok_refundUnavailable"}),
        )
        .await;
    assert_eq!(paid["payOrder"]["status"], "PAID");
    let cancelled = app.ok(Some(&token), CANCEL, json!({"id": id})).await;
    assert_eq!(cancelled["cancelOrder"]["status"], "CANCELLED");

    let pending = app.ok(Some(&admin), PENDING, json!({})).await;
    let refunds = pending["pendingRefunds"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    assert_eq!(refunds.len(), 1, "{pending}");
    assert_eq!(refunds[0]["orderId"], id.as_str());
    assert_eq!(refunds[0]["amountCents"], 500);
    assert!(refunds[0]["attempts"].as_i64() >= Some(1), "{pending}");
    assert!(refunds[0]["lastError"].is_string(), "{pending}");
    app.err(Some(&token), PENDING, json!({}), "FORBIDDEN").await;

    support::eventually(Duration::from_secs(15), || async {
        let pending = app.ok(Some(&admin), PENDING, json!({})).await;
        pending["pendingRefunds"]
            .as_array()?
            .is_empty()
            .then_some(())
    })
    .await;
    app.stop().await;
}
on_both_backends!(a_refund_that_fails_is_retried_until_it_succeeds);
