//! The catalog service: products and their stock, the stock side of the order saga (reserve
//! on `OrderPlaced`, release on cancellation), promotions that set the price customers pay,
//! and reviews by customers who received the product, with the events other services follow.

mod app;
mod consumer;
mod domain;
mod http;
mod products;
mod promotions;
mod reviews;
mod saga;
mod store;

use bazaar_bus::Outbox;
use bazaar_db::Db;
use bazaar_runtime::{Platform, Service, Settings};

pub use app::{Catalog, NAME};
pub use consumer::CatalogEvents;

/// What the catalog needs from other services: nothing (it learns of orders by events).
#[derive(Default)]
pub struct Deps {}

/// Connects and migrates the catalog database and returns the service ready to run.
pub async fn build(platform: &Platform, deps: Deps) -> anyhow::Result<Service> {
    let Deps {} = deps;
    let db = open_db(&platform.settings).await?;
    let outbox = Outbox::new(app::SERVICE, db.clone());
    let catalog = Catalog {
        db: db.clone(),
        outbox: outbox.clone(),
    };
    Ok(Service {
        consumers: consumer::consumers(&outbox, platform),
        ..Service::with_db(NAME, platform, db, &outbox, http::routes(catalog))
    })
}

/// Connects to the catalog database and brings its schema up to date.
pub async fn open_db(settings: &Settings) -> anyhow::Result<Db> {
    Platform::open_db(settings, NAME, &[("catalog", store::MIGRATIONS)]).await
}
