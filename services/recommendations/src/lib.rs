//! The recommendations service: an item-to-item co-purchase model kept current from confirmed
//! orders, a product availability replica fed by the catalogue, recommendations for callers,
//! and the scheduled digest that offers each buyer a few products by event.

mod app;
mod consumer;
mod digest;
mod domain;
mod http;
mod ranking;
mod store;

use bazaar_bus::Outbox;
use bazaar_db::Db;
use bazaar_runtime::{Platform, Service, Settings, schedule};

pub use app::{NAME, Recommendations};

/// What the recommendations service needs from other services: nothing (it learns of orders
/// and products by events).
#[derive(Default)]
pub struct Deps {}

/// Connects and migrates the recommendations database and returns the service ready to run:
/// its internal API, the consumer that feeds the model and the replica, and the digest job.
pub async fn build(platform: &Platform, deps: Deps) -> anyhow::Result<Service> {
    let Deps {} = deps;
    let db = open_db(&platform.settings).await?;
    let outbox = Outbox::new(app::SERVICE, db.clone());
    let recommendations = Recommendations { db: db.clone() };
    let consumers = consumer::consumers(&outbox, platform);
    let digest = digest::task(
        recommendations.clone(),
        outbox.clone(),
        platform.settings.recommendation_schedule.clone(),
    );
    Ok(Service {
        consumers,
        tasks: vec![digest],
        ..Service::with_db(NAME, platform, db, &outbox, http::routes(recommendations))
    })
}

/// Connects to the recommendations database and brings its schema up to date.
pub async fn open_db(settings: &Settings) -> anyhow::Result<Db> {
    let sets = [
        ("schedule", schedule::MIGRATIONS),
        ("recommendations", store::MIGRATIONS),
    ];
    Platform::open_db(settings, NAME, &sets).await
}
