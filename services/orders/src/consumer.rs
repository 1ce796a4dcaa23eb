//! The orders consumer: keeps the customer replica current and drives the order saga on the
//! catalogue's answers. Each effect commits with its inbox record, so redeliveries are no-ops.

use std::sync::Arc;

use async_trait::async_trait;
use bazaar_bus::{Applying, Consumer, Envelope, EventTx, Handler, HandlerError, Outbox};
use bazaar_contracts::events::{
    Event, StockRejected, StockReserved, UserProfileUpdated, UserRegistered, decode,
};
use bazaar_db::now_millis;
use bazaar_runtime::Platform;

use crate::app::SERVICE;
use crate::saga;
use crate::store::{self, Customer};

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
            StockReserved::TYPE | StockRejected::TYPE => {
                let (order_id, to, reason) = saga::answer(event)?;
                saga::settle(tx, &order_id, to, reason.as_deref()).await?;
            }
            _ => {}
        }
        Ok(())
    }

    /// Stock answers for different orders in a row are applied together (`saga::settle_all`).
    fn together(&self, events: &[&Envelope]) -> usize {
        saga::run_length(events)
    }

    async fn handle_together(
        &self,
        tx: &mut EventTx,
        run: &[Applying<'_>],
    ) -> Result<(), HandlerError> {
        saga::settle_all(tx, run).await
    }
}
