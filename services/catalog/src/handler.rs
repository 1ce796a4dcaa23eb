//! The catalog's one consumer: dispatches each event type it follows to its use, inside the
//! transaction that also records the event in the inbox (exactly-once effects).
//!
//! - `OrderPlaced`, `OrderStatusChanged` to CANCELLED: the stock saga (`saga`).
//! - `OrderStatusChanged` to DELIVERED: who received what, the right to review it.
//! - `UserRegistered`, `UserProfileUpdated`: reviewers' display names.

use async_trait::async_trait;
use bazaar_bus::{Envelope, Handler, HandlerError};
use bazaar_contracts::events::{
    Event, OrderPlaced, OrderStatusChanged, UserProfileUpdated, UserRegistered, decode,
};
use bazaar_contracts::orders::OrderStatus;
use bazaar_db::Tx;

use crate::saga;
use crate::store::reviews;

pub struct CatalogEvents;

#[async_trait]
impl Handler for CatalogEvents {
    fn handles(&self, event_type: &str) -> bool {
        [
            OrderPlaced::TYPE,
            OrderStatusChanged::TYPE,
            UserRegistered::TYPE,
            UserProfileUpdated::TYPE,
        ]
        .contains(&event_type)
    }

    async fn handle(&self, tx: &mut Tx, event: &Envelope) -> Result<(), HandlerError> {
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
}

/// Remembers that the order's customer received each of its products: from now on they may
/// review them. A repeated delivery (or the same fact in a new event) changes nothing.
async fn delivered(tx: &mut Tx, change: &OrderStatusChanged) -> Result<(), HandlerError> {
    for item in &change.items {
        reviews::record_purchase(tx, &change.user_id, &item.product_id, change.changed_at).await?;
    }
    tracing::debug!(order_id = %change.order_id, lines = change.items.len(), "delivery recorded");
    Ok(())
}
