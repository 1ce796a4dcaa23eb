//! The users service: accounts, profiles, sign-in with rotating refresh tokens, roles, and
//! the `UserRegistered` / `UserProfileUpdated` events other services replicate from.

mod accounts;
mod domain;
mod gate;
mod http;
mod store;

use std::sync::Arc;

use bazaar_bus::Outbox;
use bazaar_contracts::require_service_token;
use bazaar_db::Db;
use bazaar_runtime::{Platform, Service, ServiceName, config::write_private};

pub use accounts::Accounts;

/// Connects and migrates the users database, bootstraps the admin account, and returns the
/// service ready to run.
pub async fn build(platform: &Platform) -> anyhow::Result<Service> {
    let db = open_db(&platform.settings).await?;
    let outbox = Outbox::new(accounts::SERVICE, db.clone());
    let accounts = Accounts {
        db: db.clone(),
        platform: platform.clone(),
        outbox: outbox.clone(),
        gate: Arc::new(gate::HashGate::new(&platform.settings)),
    };
    bootstrap_admin(&accounts).await?;
    let token: Arc<str> = platform.service_token.clone();
    let internal = http::routes(accounts).layer(axum::middleware::from_fn(move |req, next| {
        require_service_token(token.clone(), req, next)
    }));
    Ok(Service {
        name: ServiceName::Users,
        db,
        internal,
        relay: outbox.relay(platform.transport.clone()),
        consumers: Vec::new(),
        tasks: Vec::new(),
        retention: store::retention(),
    })
}

/// Connects to the users database and brings its schema up to date.
pub async fn open_db(settings: &bazaar_runtime::Settings) -> anyhow::Result<Db> {
    let db = Db::connect(&settings.db_target(ServiceName::Users)).await?;
    db.migrate("bus", bazaar_bus::MIGRATIONS).await?;
    db.migrate("users", store::MIGRATIONS).await?;
    Ok(db)
}

/// The configured admin always exists after start-up. A fresh embedded start without one
/// gets an admin with a random password, printed once and kept in the data directory.
async fn bootstrap_admin(accounts: &Accounts) -> anyhow::Result<()> {
    let settings = &accounts.platform.settings;
    if let (Some(email), Some(password)) = (&settings.admin_email, &settings.admin_password) {
        let admin = accounts
            .ensure_admin(email, password.expose())
            .await
            .map_err(|e| anyhow::anyhow!("{e}"))?;
        tracing::info!(admin_id = %admin.id, "admin account ready");
        return Ok(());
    }
    if accounts
        .has_admin()
        .await
        .map_err(|e| anyhow::anyhow!("{e}"))?
    {
        return Ok(());
    }
    if !settings.is_embedded() {
        tracing::warn!(
            "no admin account exists; set BAZAAR_ADMIN_EMAIL and BAZAAR_ADMIN_PASSWORD to create one"
        );
        return Ok(());
    }
    let email = "admin@bazaar.local";
    let password = bazaar_auth::new_refresh_token();
    accounts
        .ensure_admin(email, &password)
        .await
        .map_err(|e| anyhow::anyhow!("{e}"))?;
    let path = settings.data_dir.join("admin-credentials.txt");
    write_private(&path, &format!("email: {email}\npassword: {password}\n"))?;
    // Printed once, on the terminal of whoever started bazaar; never logged.
    println!(
        "\nCreated the first admin account:\n  email:    {email}\n  password: {password}\n(also saved to {})\n",
        path.display()
    );
    Ok(())
}
