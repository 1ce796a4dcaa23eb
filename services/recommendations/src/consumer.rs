//! The recommendations consumer: feeds confirmed orders into the purchase history and the
//! co-purchase model, and keeps the product availability replica current from the catalogue.
//! Each effect commits with its inbox record, so a redelivered order is never counted twice.

use std::collections::BTreeMap;
use std::sync::Arc;

use async_trait::async_trait;
use bazaar_bus::{Applying, Consumer, Envelope, EventTx, Handler, HandlerError, Outbox};
use bazaar_contracts::events::{
    Event, OrderStatusChanged, ProductCreated, ProductDeleted, ProductUpdated, StockChanged, decode,
};
use bazaar_contracts::orders::{OrderItem, OrderStatus};
use bazaar_runtime::Platform;

use crate::app::SERVICE;
use crate::store::{self, Purchase};

/// The durable consumers this service runs: one, named after the service. Confirmed orders of
/// different customers bump the same co-purchase counters, so it runs in one lane.
pub fn consumers(outbox: &Outbox, platform: &Platform) -> Vec<Consumer> {
    let handler = Arc::new(RecommendationsHandler);
    let consumer = Consumer::new(SERVICE, outbox, platform.transport.clone(), handler);
    vec![consumer.in_one_lane()]
}

pub struct RecommendationsHandler;

#[async_trait]
impl Handler for RecommendationsHandler {
    fn event_types(&self) -> &[&'static str] {
        &[
            OrderStatusChanged::TYPE,
            ProductCreated::TYPE,
            ProductUpdated::TYPE,
            ProductDeleted::TYPE,
            StockChanged::TYPE,
        ]
    }

    /// A run of stock changes (each order's lines make one per product).
    fn together(&self, events: &[&Envelope]) -> usize {
        bazaar_bus::leading_run(events, StockChanged::TYPE)
    }

    /// Stock changes set-based: each product's last level in the run, all set in one
    /// statement; the same replica as one at a time, where the latest event wins.
    async fn handle_together(
        &self,
        tx: &mut EventTx,
        run: &[Applying<'_>],
    ) -> Result<(), HandlerError> {
        let mut last: BTreeMap<String, i64> = BTreeMap::new();
        for applying in run {
            let e: StockChanged = decode(applying.event)?;
            last.insert(e.product_id, e.stock);
        }
        let levels: Vec<(&str, i64)> = last.iter().map(|(id, n)| (id.as_str(), *n)).collect();
        store::set_stocks(tx, &levels).await?;
        Ok(())
    }

    async fn handle(&self, tx: &mut EventTx, event: &Envelope) -> Result<(), HandlerError> {
        match event.event_type.as_str() {
            OrderStatusChanged::TYPE => {
                let e: OrderStatusChanged = decode(event)?;
                // An order counts as bought once its stock is reserved. A later cancellation
                // leaves the model as it is: the customer did choose these products together,
                // which is what the model is about, and un-counting would need the order's
                // pairs as they were then, against a history that has moved on since.
                if e.to == OrderStatus::Confirmed {
                    let purchases = merge_lines(&e.order_id, &e.items)?;
                    store::record_order(tx, &e.user_id, &purchases).await?;
                }
            }
            ProductCreated::TYPE => {
                let e: ProductCreated = decode(event)?;
                let p = &e.product;
                store::upsert_product(tx, &e.product_id, &p.name, p.stock, p.deleted_at.is_some())
                    .await?;
            }
            ProductUpdated::TYPE => {
                let e: ProductUpdated = decode(event)?;
                let p = &e.product;
                store::upsert_product(tx, &e.product_id, &p.name, p.stock, p.deleted_at.is_some())
                    .await?;
            }
            ProductDeleted::TYPE => {
                let e: ProductDeleted = decode(event)?;
                store::delete_product(tx, &e.product_id).await?;
            }
            StockChanged::TYPE => {
                let e: StockChanged = decode(event)?;
                if store::set_stocks(tx, &[(&e.product_id, e.stock)]).await? == 0 {
                    tracing::debug!(product_id = %e.product_id, "stock of a product not yet replicated; ignored");
                }
            }
            _ => {}
        }
        Ok(())
    }
}

/// The order's lines with one entry per product, units summed, in product id order. A line
/// without a positive quantity breaks the orders contract and will never apply.
fn merge_lines(order_id: &str, items: &[OrderItem]) -> Result<Vec<Purchase>, HandlerError> {
    let mut units: BTreeMap<&str, i64> = BTreeMap::new();
    for item in items {
        if item.quantity <= 0 {
            return Err(HandlerError::Reject(format!(
                "order {order_id}: items.quantity must be positive, got {} for {}",
                item.quantity, item.product_id
            )));
        }
        *units.entry(item.product_id.as_str()).or_default() += item.quantity;
    }
    Ok(units
        .into_iter()
        .map(|(product_id, units)| Purchase {
            product_id: product_id.to_owned(),
            units,
        })
        .collect())
}
