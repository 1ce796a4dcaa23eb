//! Keeps the product cache honest: every catalogue event bumps its generation. Bumping twice
//! is harmless, so this consumer needs no inbox; it shares one durable consumer across gateway
//! replicas because they share the cache (Redis) or run in one process (embedded).

use std::time::Duration;

use bazaar_bus::{ConsumerSpec, Transport};
use std::sync::Arc;
use tokio_util::sync::CancellationToken;

use crate::product_cache::ProductCache;

const CATALOG_EVENTS: [&str; 4] = [
    "ProductCreated",
    "ProductUpdated",
    "ProductDeleted",
    "StockChanged",
];

/// Deliveries taken (and answered with one bump) at a time.
const BATCH: usize = 256;

pub async fn run(transport: Arc<dyn Transport>, products: ProductCache, stop: CancellationToken) {
    let spec = ConsumerSpec::new("gateway-cache").for_types(CATALOG_EVENTS);
    while !stop.is_cancelled() {
        let mut subscription = match transport.subscribe(&spec).await {
            Ok(s) => s,
            Err(e) => {
                tracing::warn!(error = %e, "cache invalidation cannot subscribe; retrying");
                tokio::select! { _ = stop.cancelled() => return, _ = tokio::time::sleep(Duration::from_secs(1)) => continue }
            }
        };
        loop {
            let next = tokio::select! { _ = stop.cancelled() => return, next = subscription.next_batch(BATCH) => next };
            match next {
                // One bump covers every change in the batch.
                Ok(Some(deliveries)) => {
                    products.invalidate().await;
                    if let Err(e) = subscription.ack_batch(deliveries).await {
                        tracing::warn!(error = %e, "cache invalidation ack failed");
                    }
                }
                Ok(None) => break,
                Err(e) => {
                    tracing::warn!(error = %e, "cache invalidation subscription failed; re-opening");
                    break;
                }
            }
        }
    }
}
