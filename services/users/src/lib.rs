//! The users service: accounts, profiles, sign-in with rotating refresh tokens, roles, and
//! the `UserRegistered` / `UserProfileUpdated` events other services replicate from.

mod app;
mod consumer;
mod domain;
mod gate;
mod http;
mod profiles;
mod registration;
mod sessions;
mod store;

use std::sync::Arc;

use bazaar_bus::Outbox;
use bazaar_db::Db;
use bazaar_runtime::{Platform, Service, Settings};

pub use app::{Accounts, NAME};

/// What the users service needs from other services: nothing.
#[derive(Default)]
pub struct Deps {}

/// Connects and migrates the users database, bootstraps the admin account, and returns the
/// service ready to run.
pub async fn build(platform: &Platform, deps: Deps) -> anyhow::Result<Service> {
    let Deps {} = deps;
    let db = open_db(&platform.settings).await?;
    let outbox = Outbox::new(app::SERVICE, db.clone());
    let accounts = Accounts {
        db: db.clone(),
        platform: platform.clone(),
        outbox: outbox.clone(),
        gate: Arc::new(gate::HashGate::new(&platform.settings)),
    };
    registration::bootstrap_admin(&accounts).await?;
    Ok(Service {
        consumers: consumer::consumers(),
        retention: store::retention(),
        ..Service::with_db(NAME, platform, db, &outbox, http::routes(accounts))
    })
}

/// Connects to the users database and brings its schema up to date.
pub async fn open_db(settings: &Settings) -> anyhow::Result<Db> {
    Platform::open_db(settings, NAME, &[("users", store::MIGRATIONS)]).await
}
