//! The notifications service: turns users', orders', catalogue and recommendation events into
//! in-app notifications, each with an email sent by a separate mailer task (SMTP, or .eml
//! files in the embedded default), honours each user's preferences, and announces running
//! promotions once per user on a schedule.

mod announcer;
mod app;
mod consumer;
mod domain;
mod http;
mod inbox;
mod mail;
mod sender;
mod store;

use std::sync::Arc;

use bazaar_bus::Outbox;
use bazaar_db::Db;
use bazaar_runtime::{Platform, Service, Settings};
use tokio::sync::Notify;

pub use announcer::announce;
pub use app::{NAME, Notifications};
pub use mail::{FileMailer, Mail, MailError, Mailer, SMTP_TIMEOUT, SmtpMailer};

/// What the notifications service needs from outside: how to send mail.
#[derive(Default)]
pub struct Deps {
    /// `None`: the mailer the settings choose (SMTP at `smtp_url`, else `.eml` files under
    /// `data_dir/mail`); tests and other ways to send mail give their own.
    pub mailer: Option<Arc<dyn Mailer>>,
}

/// Connects and migrates the notifications database and returns the service ready to run:
/// its internal API, the consumer that writes notifications, the mailer and the announcer.
pub async fn build(platform: &Platform, deps: Deps) -> anyhow::Result<Service> {
    let mailer = match deps.mailer {
        Some(mailer) => mailer,
        None => mail::configured(&platform.settings)?,
    };
    let db = open_db(&platform.settings).await?;
    // Nothing here emits events yet; the outbox and its relay are part of every service's shape.
    let outbox = Outbox::new(app::SERVICE, db.clone());
    let wake = Arc::new(Notify::new());
    let consumers = consumer::consumers(&outbox, platform, wake.clone());
    let tasks = vec![
        sender::task(db.clone(), mailer, wake.clone()),
        announcer::task(
            db.clone(),
            platform.settings.promotion_schedule.clone(),
            wake,
        ),
    ];
    let routes = http::routes(Notifications { db: db.clone() });
    Ok(Service {
        consumers,
        tasks,
        retention: store::retention(platform.settings.retention.read_notifications),
        ..Service::with_db(NAME, platform, db, &outbox, routes)
    })
}

/// Connects to the notifications database and brings its schema up to date.
pub async fn open_db(settings: &Settings) -> anyhow::Result<Db> {
    let sets = [
        ("schedule", bazaar_runtime::schedule::MIGRATIONS),
        ("notifications", store::MIGRATIONS),
    ];
    Platform::open_db(settings, NAME, &sets).await
}
