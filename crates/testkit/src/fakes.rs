//! Stand-ins for what a service under test talks to: an acker for deliveries handed to a
//! consumer directly (no broker behind them), and internal routes answering a fixed body.

use std::time::Duration;

use async_trait::async_trait;
use axum::routing::post;
use axum::{Json, Router};
use bazaar_bus::{Acker, BusError, Delivery, Envelope};

/// Acknowledges nothing: the test, not a broker, decides whether the event comes again.
pub struct NoopAcker;

#[async_trait]
impl Acker for NoopAcker {
    async fn ack(&self) -> Result<(), BusError> {
        Ok(())
    }
    async fn nak(&self, _delay: Duration) -> Result<(), BusError> {
        Ok(())
    }
}

/// `event` as its `attempt`-th delivery, for `Consumer::process`.
pub fn delivery(event: &Envelope, attempt: u32) -> Delivery {
    Delivery::new(event.clone(), attempt, Box::new(NoopAcker))
}

/// A router whose `POST path` always answers `body` as JSON (e.g. `null`: "not found").
pub fn answering(path: &str, body: serde_json::Value) -> Router {
    Router::new().route(
        path,
        post(move || {
            let body = body.clone();
            async move { Json(body) }
        }),
    )
}
