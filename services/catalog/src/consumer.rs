//! The catalog's one consumer: dispatches each event type it follows to its use, inside the
//! transaction that also records the event in the inbox (exactly-once effects).
//!
//! - `OrderPlaced`, `OrderStatusChanged` to CANCELLED: the stock saga (`saga`); placed orders
//!   that arrive in a row are reserved together, set-based.
//! - `OrderStatusChanged` to DELIVERED: who received what, the right to review it.
//! - `UserRegistered`, `UserProfileUpdated`: reviewers' display names.

use std::sync::Arc;

use async_trait::async_trait;
use bazaar_bus::{Applying, Consumer, Envelope, EventTx, Handler, HandlerError, Outbox};
use bazaar_contracts::events::{
    Event, OrderPlaced, OrderStatusChanged, UserProfileUpdated, UserRegistered, decode,
};
use bazaar_contracts::orders::OrderStatus;
use bazaar_runtime::Platform;

use crate::app::SERVICE;
use crate::saga;
use crate::store::{reviews, stock};

/// The durable consumers this service runs: one, named after the service.
pub fn consumers(outbox: &Outbox, platform: &Platform) -> Vec<Consumer> {
    let handler = Arc::new(CatalogEvents);
    vec![Consumer::new(
        SERVICE,
        outbox,
        platform.transport.clone(),
        handler,
    )]
}

pub struct CatalogEvents;

#[async_trait]
impl Handler for CatalogEvents {
    fn event_types(&self) -> &[&'static str] {
        &[
            OrderPlaced::TYPE,
            OrderStatusChanged::TYPE,
            UserRegistered::TYPE,
            UserProfileUpdated::TYPE,
        ]
    }

    /// Locks every product the batch reserves or releases, in id order, before any event
    /// runs: concurrent batches then queue for a hot product once per batch instead of once
    /// per order, and can never deadlock on two products taken in opposite orders.
    async fn prepare(&self, tx: &mut EventTx, events: &[&Envelope]) -> Result<(), HandlerError> {
        if !stock::takes_row_locks(tx) {
            return Ok(());
        }
        let mut ids = Vec::new();
        for event in events {
            match event.event_type.as_str() {
                OrderPlaced::TYPE => {
                    let placed: OrderPlaced = decode(event)?;
                    ids.extend(placed.items.into_iter().map(|line| line.product_id));
                }
                OrderStatusChanged::TYPE => {
                    let change: OrderStatusChanged = decode(event)?;
                    if change.to == OrderStatus::Cancelled {
                        ids.extend(change.items.into_iter().map(|item| item.product_id));
                    }
                }
                _ => {}
            }
        }
        stock::lock_in_order(tx, ids).await?;
        Ok(())
    }

    async fn handle(&self, tx: &mut EventTx, event: &Envelope) -> Result<(), HandlerError> {
        match event.event_type.as_str() {
            OrderPlaced::TYPE => saga::reserve(tx, decode(event)?).await,
            OrderStatusChanged::TYPE => {
                let change: OrderStatusChanged = decode(event)?;
                match change.to {
                    OrderStatus::Cancelled => saga::release(tx, &change.order_id).await,
                    OrderStatus::Delivered => delivered(tx, &change).await,
                    _ => Ok(()),
                }
            }
            UserRegistered::TYPE => {
                let e: UserRegistered = decode(event)?;
                reviews::upsert_reviewer(tx, &e.user_id, &e.name, e.registered_at).await?;
                Ok(())
            }
            UserProfileUpdated::TYPE => {
                let e: UserProfileUpdated = decode(event)?;
                reviews::upsert_reviewer(tx, &e.user_id, &e.name, e.updated_at).await?;
                Ok(())
            }
            _ => Ok(()),
        }
    }

    /// Placed orders in a row are reserved together (`saga::reserve_all`).
    fn together(&self, events: &[&Envelope]) -> usize {
        bazaar_bus::leading_run(events, OrderPlaced::TYPE)
    }

    async fn handle_together(
        &self,
        tx: &mut EventTx,
        run: &[Applying<'_>],
    ) -> Result<(), HandlerError> {
        saga::reserve_all(tx, run).await
    }
}

/// Remembers that the order's customer received each of its products: from now on they may
/// review them. A repeated delivery (or the same fact in a new event) changes nothing.
async fn delivered(tx: &mut EventTx, change: &OrderStatusChanged) -> Result<(), HandlerError> {
    for item in &change.items {
        reviews::record_purchase(tx, &change.user_id, &item.product_id, change.changed_at).await?;
    }
    tracing::debug!(order_id = %change.order_id, lines = change.items.len(), "delivery recorded");
    Ok(())
}
