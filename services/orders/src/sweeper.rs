//! The background task that cancels confirmed orders left unpaid past the payment window.

use std::time::Duration;

use bazaar_runtime::Task;
use tokio_util::sync::CancellationToken;

use crate::app::Orders;
use crate::domain::sweep_interval;

/// A task that sweeps every [`sweep_interval`] of `timeout` until stopped.
pub fn task(orders: Orders, timeout: Duration) -> Task {
    Box::new(move |stop: CancellationToken| Box::pin(run(orders, timeout, stop)))
}

async fn run(orders: Orders, timeout: Duration, stop: CancellationToken) {
    let interval = sweep_interval(timeout);
    loop {
        tokio::select! {
            _ = stop.cancelled() => return,
            _ = tokio::time::sleep(interval) => {}
        }
        match orders.cancel_expired(timeout).await {
            Ok(0) => {}
            Ok(n) => tracing::info!(cancelled = n, "cancelled orders left unpaid"),
            // A busy or unreachable database: the next tick tries again.
            Err(e) => tracing::warn!(error = %e, "unpaid-order sweep failed"),
        }
    }
}
