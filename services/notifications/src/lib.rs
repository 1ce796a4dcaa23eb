//! The notifications service: turns users', orders', catalogue and recommendation events into
//! in-app notifications, each with an email sent by a separate mailer task (SMTP, or .eml
//! files in the embedded default), honours each user's preferences, and announces running
//! promotions once per user on a schedule.

mod announcer;
mod app;
mod domain;
mod events;
mod http;
mod mail;
mod sender;
mod store;

use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use bazaar_bus::{Consumer, Outbox};
use bazaar_contracts::require_service_token;
use bazaar_db::Db;
use bazaar_runtime::{Platform, Service, ServiceName, Settings};
use tokio::sync::Notify;

pub use announcer::announce;
pub use app::Notifications;
pub use mail::{FileMailer, Mail, MailError, Mailer, SmtpMailer};

/// The service's name as an event source and its durable consumer's name.
pub const SERVICE: &str = "notifications";
/// Longest one SMTP send may take before it counts as failed (and is retried).
pub const SMTP_TIMEOUT: Duration = Duration::from_secs(30);

/// Connects and migrates the notifications database and returns the service ready to run,
/// sending mail through `settings.smtp_url`, or into `data_dir/mail` without one.
pub async fn build(platform: &Platform) -> anyhow::Result<Service> {
    let settings = &platform.settings;
    let mailer: Arc<dyn Mailer> = match &settings.smtp_url {
        Some(url) => Arc::new(
            SmtpMailer::new(url.expose(), &settings.mail_from, SMTP_TIMEOUT)
                .context("cannot set up SMTP mail")?,
        ),
        None => Arc::new(
            FileMailer::new(settings.data_dir.join("mail"), &settings.mail_from)
                .context("cannot set up file mail")?,
        ),
    };
    build_with_mailer(platform, mailer).await
}

/// [`build`] with a given mailer (tests, or another way to send mail).
pub async fn build_with_mailer(
    platform: &Platform,
    mailer: Arc<dyn Mailer>,
) -> anyhow::Result<Service> {
    let db = open_db(&platform.settings).await?;
    // Nothing here emits events yet; the outbox and its relay are part of every service's shape.
    let outbox = Outbox::new(SERVICE, db.clone());
    let wake = Arc::new(Notify::new());
    let consumer = Consumer::new(
        events::CONSUMER,
        &outbox,
        platform.transport.clone(),
        Arc::new(events::NotificationsHandler { wake: wake.clone() }),
    );
    let tasks = vec![
        sender::task(db.clone(), mailer, wake.clone()),
        announcer::task(
            db.clone(),
            platform.settings.promotion_schedule.clone(),
            wake,
        ),
    ];
    let token: Arc<str> = platform.service_token.clone();
    let notifications = Notifications { db: db.clone() };
    let internal =
        http::routes(notifications).layer(axum::middleware::from_fn(move |req, next| {
            require_service_token(token.clone(), req, next)
        }));
    Ok(Service {
        name: ServiceName::Notifications,
        db,
        internal,
        relay: outbox.relay(platform.transport.clone()),
        consumers: vec![consumer],
        tasks,
        retention: store::retention(platform.settings.retention.read_notifications),
    })
}

/// Connects to the notifications database and brings its schema up to date.
pub async fn open_db(settings: &Settings) -> anyhow::Result<Db> {
    let db = Db::connect(&settings.db_target(ServiceName::Notifications)).await?;
    db.migrate("bus", bazaar_bus::MIGRATIONS).await?;
    db.migrate("schedule", bazaar_runtime::schedule::MIGRATIONS)
        .await?;
    db.migrate("notifications", store::MIGRATIONS).await?;
    Ok(db)
}
