//! The orders service: placing orders priced from the catalogue, the order saga driven by the
//! catalogue's stock events, payment, cancellation with refunds, shipping, and the sweeper
//! that cancels orders left unpaid.

mod app;
mod backlog;
mod consumer;
mod domain;
mod gauges;
mod http;
mod lifecycle;
mod payments;
mod placing;
mod queries;
mod refunds;
mod saga;
mod store;
mod sweeper;
mod transitions;

use std::sync::Arc;

use bazaar_bus::Outbox;
use bazaar_contracts::catalog::CatalogClient;
use bazaar_contracts::users::UsersClient;
use bazaar_db::Db;
use bazaar_runtime::{Platform, Service, Settings};

use crate::backlog::Backlog;

pub use app::{NAME, Orders};
pub use payments::{Charge, PaymentError, PaymentProvider, SimulatedPayments};

/// What the orders service needs from outside: the catalogue prices orders, the users service
/// knows shipping addresses, the payment provider charges and refunds.
pub struct Deps {
    pub catalog: CatalogClient,
    pub users: UsersClient,
    pub payments: Arc<dyn PaymentProvider>,
}

/// Connects and migrates the orders database and returns the service ready to run: its
/// internal API, the saga consumer and the unpaid-order sweeper.
pub async fn build(platform: &Platform, deps: Deps) -> anyhow::Result<Service> {
    let Deps {
        catalog,
        users,
        payments,
    } = deps;
    let db = open_db(&platform.settings).await?;
    let outbox = Outbox::new(app::SERVICE, db.clone());
    let orders = Orders {
        db: db.clone(),
        outbox: outbox.clone(),
        catalog,
        users,
        payments,
        max_open_orders: platform.settings.max_open_orders_per_customer,
        backlog: Backlog::new(platform.settings.max_pending_orders),
    };
    let consumers = consumer::consumers(&outbox, platform);
    let sweeper = sweeper::task(orders.clone(), platform.settings.unpaid_order_timeout);
    let refunder = refunds::task(orders.clone());
    let gauges = gauges::task(db.clone());
    let backlog = orders.backlog.clone().task(db.clone());
    Ok(Service {
        consumers,
        tasks: vec![sweeper, refunder, gauges, backlog],
        retention: store::retention(platform.settings.retention.idempotency_keys),
        ..Service::with_db(NAME, platform, db, &outbox, http::routes(orders))
    })
}

/// Connects to the orders database and brings its schema up to date.
pub async fn open_db(settings: &Settings) -> anyhow::Result<Db> {
    Platform::open_db(settings, NAME, &[("orders", store::MIGRATIONS)]).await
}
