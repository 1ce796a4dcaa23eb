//! The orders consumer: keeps the customer replica current and drives the order saga on the
//! catalogue's answers. Each effect commits with its inbox record, so redeliveries are no-ops.

use std::sync::Arc;

use async_trait::async_trait;
use bazaar_bus::{Consumer, Envelope, EventTx, Handler, HandlerError, Outbox};
use bazaar_contracts::events::{
    Event, StockRejected, StockReserved, UserProfileUpdated, UserRegistered, decode,
};
use bazaar_contracts::orders::OrderStatus;
use bazaar_db::now_millis;
use bazaar_runtime::Platform;

use crate::app::SERVICE;
use crate::store::{self, Customer};
use crate::transitions;

/// The durable consumers this service runs: one, named after the service.
pub fn consumers(outbox: &Outbox, platform: &Platform) -> Vec<Consumer> {
    let handler = Arc::new(OrdersHandler);
    vec![Consumer::new(
        SERVICE,
        outbox,
        platform.transport.clone(),
        handler,
    )]
}

pub struct OrdersHandler;

#[async_trait]
impl Handler for OrdersHandler {
    fn event_types(&self) -> &[&'static str] {
        &[
            UserRegistered::TYPE,
            UserProfileUpdated::TYPE,
            StockReserved::TYPE,
            StockRejected::TYPE,
        ]
    }

    async fn handle(&self, tx: &mut EventTx, event: &Envelope) -> Result<(), HandlerError> {
        match event.event_type.as_str() {
            UserRegistered::TYPE => {
                let e: UserRegistered = decode(event)?;
                let (id, at) = (&e.user_id, e.registered_at);
                let customer = Customer::of(id, &e.email, &e.name, &e.phone, &e.address, at);
                store::upsert_customer(tx, &customer).await?;
            }
            UserProfileUpdated::TYPE => {
                let e: UserProfileUpdated = decode(event)?;
                let (id, at) = (&e.user_id, e.updated_at);
                let customer = Customer::of(id, &e.email, &e.name, &e.phone, &e.address, at);
                // An older profile than the one stored must not move addresses back.
                if store::upsert_customer(tx, &customer).await?
                    && let Some(address) = &e.address
                {
                    let moved =
                        store::move_profile_addresses(tx, &e.user_id, address, now_millis())
                            .await?;
                    if moved > 0 {
                        tracing::info!(user_id = %e.user_id, orders = moved, "profile address applied to open orders");
                    }
                }
            }
            StockReserved::TYPE => {
                let e: StockReserved = decode(event)?;
                settle(tx, &e.order_id, OrderStatus::Confirmed, None).await?;
            }
            StockRejected::TYPE => {
                let e: StockRejected = decode(event)?;
                settle(tx, &e.order_id, OrderStatus::Rejected, Some(&e.reason)).await?;
            }
            _ => {}
        }
        Ok(())
    }
}

/// Applies the catalogue's answer to a PENDING order. An order that is no longer PENDING (the
/// customer cancelled meanwhile) stays as it is: the catalogue releases stock on the
/// cancellation event it receives.
async fn settle(
    tx: &mut EventTx,
    order_id: &str,
    to: OrderStatus,
    reason: Option<&str>,
) -> Result<(), HandlerError> {
    let Some(stored) = store::order_by_id(tx, order_id).await? else {
        tracing::warn!(order_id, "stock answer for an unknown order; ignored");
        return Ok(());
    };
    if stored.order.status != OrderStatus::Pending {
        tracing::info!(
            order_id,
            status = stored.order.status.as_str(),
            to = to.as_str(),
            "order no longer pending; stock answer ignored"
        );
        return Ok(());
    }
    // We hold the write transaction the status was read in, so the move cannot be stale;
    // if it were, the order moved on and the answer is moot, as above.
    let moved = transitions::apply(tx, &stored.order, to, reason, None).await?;
    if let Some(order) = moved
        && to == OrderStatus::Confirmed
    {
        // The saga's latency, placed to confirmed. Observed before the batch commits (the bus
        // has no after-commit hook): a batch whose commit fails is retried and may observe
        // the same order twice, which skews nothing a quantile would show.
        let ms = (order.updated_at - order.created_at).max(0);
        metrics::histogram!("bazaar_order_confirmation_duration_seconds")
            .record(ms as f64 / 1000.0);
    }
    Ok(())
}
