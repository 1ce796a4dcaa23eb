//! The orders service: placing orders priced from the catalogue, the order saga driven by the
//! catalogue's stock events, payment, cancellation with refunds, shipping, and the sweeper
//! that cancels orders left unpaid.

mod app;
mod domain;
mod events;
mod gauges;
mod http;
mod lifecycle;
mod payments;
mod placing;
mod refunds;
mod store;
mod sweeper;
mod transitions;

use std::sync::Arc;

use bazaar_bus::{Consumer, Outbox};
use bazaar_contracts::catalog::CatalogClient;
use bazaar_contracts::require_service_token;
use bazaar_contracts::users::UsersClient;
use bazaar_db::Db;
use bazaar_runtime::{Platform, Service, ServiceName, Settings};

pub use app::Orders;
pub use payments::{Charge, PaymentError, PaymentProvider, SimulatedPayments};

/// Connects and migrates the orders database and returns the service ready to run: its
/// internal API, the saga consumer and the unpaid-order sweeper.
pub async fn build(
    platform: &Platform,
    catalog: CatalogClient,
    users: UsersClient,
    payments: Arc<dyn PaymentProvider>,
) -> anyhow::Result<Service> {
    let db = open_db(&platform.settings).await?;
    let outbox = Outbox::new(transitions::SERVICE, db.clone());
    let orders = Orders {
        db: db.clone(),
        outbox: outbox.clone(),
        catalog,
        users,
        payments,
        max_open_orders: platform.settings.max_open_orders_per_customer,
    };
    let consumer = Consumer::new(
        events::CONSUMER,
        &outbox,
        platform.transport.clone(),
        Arc::new(events::OrdersHandler),
    );
    let sweeper = sweeper::task(orders.clone(), platform.settings.unpaid_order_timeout);
    let refunder = refunds::task(orders.clone());
    let gauges = gauges::task(db.clone());
    let token: Arc<str> = platform.service_token.clone();
    let internal = http::routes(orders).layer(axum::middleware::from_fn(move |req, next| {
        require_service_token(token.clone(), req, next)
    }));
    Ok(Service {
        name: ServiceName::Orders,
        db,
        internal,
        relay: outbox.relay(platform.transport.clone()),
        consumers: vec![consumer],
        tasks: vec![sweeper, refunder, gauges],
        retention: store::retention(platform.settings.retention.idempotency_keys),
    })
}

/// Connects to the orders database and brings its schema up to date.
pub async fn open_db(settings: &Settings) -> anyhow::Result<Db> {
    let db = Db::connect(&settings.db_target(ServiceName::Orders)).await?;
    db.migrate("bus", bazaar_bus::MIGRATIONS).await?;
    db.migrate("orders", store::MIGRATIONS).await?;
    Ok(db)
}
