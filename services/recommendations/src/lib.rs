//! The recommendations service: an item-to-item co-purchase model kept current from confirmed
//! orders, a product availability replica fed by the catalogue, recommendations for callers,
//! and the scheduled digest that offers each buyer a few products by event.

mod app;
mod digest;
mod domain;
mod events;
mod http;
mod store;

use std::sync::Arc;

use bazaar_bus::{Consumer, Outbox};
use bazaar_contracts::require_service_token;
use bazaar_db::Db;
use bazaar_runtime::{Platform, Service, ServiceName, Settings, schedule};

pub use app::Recommendations;

/// The name this service signs its events with and its durable consumer goes by.
pub const SERVICE: &str = "recommendations";

/// Connects and migrates the recommendations database and returns the service ready to run:
/// its internal API, the consumer that feeds the model and the replica, and the digest job.
pub async fn build(platform: &Platform) -> anyhow::Result<Service> {
    let db = open_db(&platform.settings).await?;
    let outbox = Outbox::new(SERVICE, db.clone());
    let recommendations = Recommendations { db: db.clone() };
    // Confirmed orders of different customers bump the same co-purchase counters: one lane.
    let consumer = Consumer::new(
        events::CONSUMER,
        &outbox,
        platform.transport.clone(),
        Arc::new(events::RecommendationsHandler),
    )
    .in_one_lane();
    let digest = digest::task(
        recommendations.clone(),
        outbox.clone(),
        platform.settings.recommendation_schedule.clone(),
    );
    let token: Arc<str> = platform.service_token.clone();
    let internal =
        http::routes(recommendations).layer(axum::middleware::from_fn(move |req, next| {
            require_service_token(token.clone(), req, next)
        }));
    Ok(Service {
        name: ServiceName::Recommendations,
        db,
        internal,
        relay: outbox.relay(platform.transport.clone()),
        consumers: vec![consumer],
        tasks: vec![digest],
        retention: Vec::new(),
    })
}

/// Connects to the recommendations database and brings its schema up to date.
pub async fn open_db(settings: &Settings) -> anyhow::Result<Db> {
    let db = Db::connect(&settings.db_target(ServiceName::Recommendations)).await?;
    db.migrate("bus", bazaar_bus::MIGRATIONS).await?;
    db.migrate("schedule", schedule::MIGRATIONS).await?;
    db.migrate("recommendations", store::MIGRATIONS).await?;
    Ok(db)
}
