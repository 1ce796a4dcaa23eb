//! The catalog service: products and their stock, the stock side of the order saga (reserve
//! on `OrderPlaced`, release on cancellation), promotions that set the price customers pay,
//! and reviews by customers who received the product, with the events other services follow.

mod domain;
mod handler;
mod http;
mod products;
mod promotions;
mod reviews;
mod saga;
mod store;

use std::sync::Arc;

use bazaar_bus::{Consumer, Outbox};
use bazaar_contracts::require_service_token;
use bazaar_db::Db;
use bazaar_runtime::{Platform, Service, ServiceName};

pub use handler::CatalogEvents;
pub use products::Catalog;

/// Connects and migrates the catalog database and returns the service ready to run.
pub async fn build(platform: &Platform) -> anyhow::Result<Service> {
    let db = open_db(&platform.settings).await?;
    let outbox = Outbox::new(products::SERVICE, db.clone());
    let catalog = Catalog {
        db: db.clone(),
        outbox: outbox.clone(),
    };
    let consumer = Consumer::new(
        products::SERVICE,
        &outbox,
        platform.transport.clone(),
        Arc::new(CatalogEvents),
    );
    let token: Arc<str> = platform.service_token.clone();
    let internal = http::routes(catalog).layer(axum::middleware::from_fn(move |req, next| {
        require_service_token(token.clone(), req, next)
    }));
    Ok(Service {
        name: ServiceName::Catalog,
        db,
        internal,
        relay: outbox.relay(platform.transport.clone()),
        consumers: vec![consumer],
        tasks: Vec::new(),
        retention: Vec::new(),
    })
}

/// Connects to the catalog database and brings its schema up to date.
pub async fn open_db(settings: &bazaar_runtime::Settings) -> anyhow::Result<Db> {
    let db = Db::connect(&settings.db_target(ServiceName::Catalog)).await?;
    db.migrate("bus", bazaar_bus::MIGRATIONS).await?;
    db.migrate("catalog", store::MIGRATIONS).await?;
    Ok(db)
}
