//! Test harness: the real notifications service on a fresh platform (embedded event log,
//! in-memory cache, SQLite or a fresh PostgreSQL database), sending mail to a real SMTP server
//! (aiosmtpd) or into .eml files, driven by publishing events and calling its internal API.
//!
//! The PostgreSQL variant is skipped with a message when the server cannot be reached, and
//! SMTP scenarios when aiosmtpd is missing, unless `BAZAAR_REQUIRE_BACKENDS=1`.

use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, Instant};

use async_trait::async_trait;
use bazaar_bus::{Acker, BusError, Consumer, Delivery, EmbeddedTransport, Envelope};
use bazaar_cache::MemoryCache;
use bazaar_contracts::events::{Event, UserRegistered};
use bazaar_contracts::notifications::{NotificationsClient, UpdatePreferencesRequest};
use bazaar_contracts::{Principal, Role, ServiceClient};
use bazaar_db::{Db, new_id, now_millis, sqlx};
use bazaar_runtime::schedule::Schedule;
use bazaar_runtime::{ConfigArgs, Platform, Secret, Settings};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::smtp::SmtpServer;

pub const PG_ADMIN_URL: &str = "postgres://postgres@127.0.0.1:5432/postgres";
const DEADLINE: Duration = Duration::from_secs(30);

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

/// Where the service sends mail.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MailMode {
    /// A running SMTP server.
    Smtp,
    /// An SMTP server that is not running yet (`t.smtp().start()` brings it up).
    SmtpDown,
    /// No SMTP URL: .eml files under `data_dir/mail`.
    Files,
}

pub struct Harness {
    pub platform: Platform,
    pub db: Db,
    pub client: NotificationsClient,
    pub consumers: Vec<Consumer>,
    pub smtp: Option<SmtpServer>,
    pub dir: tempfile::TempDir,
    stop: CancellationToken,
    tracker: TaskTracker,
    pg_database: Option<String>,
}

impl Harness {
    /// A fresh service, or `None` (after saying why) when a backend is unavailable.
    pub async fn start(backend: Backend, mail: MailMode) -> Option<Harness> {
        let smtp = match mail {
            MailMode::Files => None,
            MailMode::Smtp | MailMode::SmtpDown => Some(SmtpServer::reserve()?),
        };
        if let (Some(server), MailMode::Smtp) = (&smtp, mail) {
            server.start().await;
        }
        let dir = tempfile::tempdir().expect("temp dir");
        let mut settings = Settings::load(&ConfigArgs {
            data_dir: Some(dir.path().into()),
            ..Default::default()
        })
        .expect("settings");
        settings.smtp_url = smtp.as_ref().map(|s| Secret::new(s.url()));
        settings.promotion_schedule = Schedule::parse("* * * * * *").expect("schedule");
        let pg_database = match backend {
            Backend::Sqlite => None,
            Backend::Postgres => Some(create_pg_database().await?),
        };
        if let Some(name) = &pg_database {
            // Test suites run side by side on one PostgreSQL server (100 connections).
            settings.database_pool_size = 3;
            settings.database_url = Some(Secret::new(format!(
                "postgres://postgres@127.0.0.1:5432/{name}"
            )));
        }
        let transport = EmbeddedTransport::open(&dir.path().join("bus.db"))
            .await
            .expect("event log");
        let secret = settings.jwt_secret.expose().as_bytes().to_vec();
        let platform = Platform {
            tokens: bazaar_auth::TokenKeys::new(&secret, Duration::from_secs(900))
                .expect("token keys"),
            service_token: bazaar_auth::service_token(&secret).into(),
            settings: Arc::new(settings),
            transport: Arc::new(transport),
            cache: Arc::new(MemoryCache::new(1000)),
        };
        let service = bazaar_notifications::build(&platform)
            .await
            .expect("build notifications");
        let (stop, tracker) = (CancellationToken::new(), TaskTracker::new());
        let (_, db, internal, consumers) =
            service.spawn(&tracker, &stop, &platform.settings.retention);
        let client = NotificationsClient(ServiceClient::local(
            "notifications",
            internal,
            &platform.service_token,
        ));
        Some(Harness {
            platform,
            db,
            client,
            consumers,
            smtp,
            dir,
            stop,
            tracker,
            pg_database,
        })
    }

    /// Starts a second replica of the service on the same database and event log.
    pub async fn start_replica(&self) {
        let service = bazaar_notifications::build(&self.platform)
            .await
            .expect("build replica");
        let _ = service.spawn(&self.tracker, &self.stop, &self.platform.settings.retention);
    }

    pub fn smtp(&self) -> &SmtpServer {
        self.smtp
            .as_ref()
            .expect("this scenario has an SMTP server")
    }

    /// Stops the service and drops its PostgreSQL database.
    pub async fn shutdown(self) {
        self.stop.cancel();
        self.tracker.close();
        let _ = tokio::time::timeout(Duration::from_secs(10), self.tracker.wait()).await;
        self.db.close().await;
        if let Some(name) = self.pg_database {
            let admin = sqlx::AnyPool::connect(PG_ADMIN_URL)
                .await
                .expect("postgres");
            sqlx::query(sqlx::AssertSqlSafe(format!(
                "DROP DATABASE IF EXISTS \"{name}\" WITH (FORCE)"
            )))
            .execute(&admin)
            .await
            .expect("drop test database");
            admin.close().await;
        }
    }

    /// Publishes `event` on the bus; returns its envelope.
    pub async fn publish(&self, event: &impl Event) -> Envelope {
        let envelope = event.envelope("test");
        self.platform
            .transport
            .publish(&envelope)
            .await
            .expect("publish");
        envelope
    }

    /// Publishes `events` together: the consumer receives them in one batch, so it applies
    /// events of one aggregate in one transaction and no tick sees a state in between.
    pub async fn publish_together(&self, events: &[Envelope]) {
        self.platform
            .transport
            .publish_batch(events)
            .await
            .expect("publish");
    }

    /// Waits until the consumer has applied event `event_id`.
    pub async fn consumed(&self, event_id: &str) {
        eventually(&format!("event {event_id} consumed"), || async {
            let n: i64 = sqlx::query_scalar(
                "SELECT COUNT(*) FROM inbox WHERE consumer = 'notifications' AND event_id = $1",
            )
            .bind(event_id)
            .fetch_one(self.db.pool())
            .await
            .expect("read inbox");
            n == 1
        })
        .await;
    }

    /// Hands `event` to the consumer directly, as a (re)delivery would.
    pub async fn deliver(&self, event: &Envelope, attempt: u32) {
        self.consumers[0]
            .process(Delivery::new(event.clone(), attempt, Box::new(NoopAcker)))
            .await;
    }

    /// A registered user known to the service, as a signed-in customer.
    pub async fn register(&self, name: &str) -> Principal {
        let id = new_id();
        let envelope = self.publish(&registered(&id, name)).await;
        self.consumed(&envelope.id).await;
        Principal::user(id, Role::Customer)
    }

    pub async fn set_preferences(&self, p: &Principal, req: UpdatePreferencesRequest) {
        self.client
            .update_preferences(p, &req)
            .await
            .expect("update preferences");
    }

    /// (kind, title, body) of every notification of `user_id`, oldest first.
    pub async fn notifications(&self, user_id: &str) -> Vec<(String, String, String)> {
        sqlx::query_as("SELECT kind, title, body FROM notifications WHERE user_id = $1 ORDER BY id")
            .bind(user_id)
            .fetch_all(self.db.pool())
            .await
            .expect("read notifications")
    }

    /// (status, attempts, last error) of every queued mail of `user_id`, oldest first.
    pub async fn mails(&self, user_id: &str) -> Vec<(String, i64, Option<String>)> {
        sqlx::query_as(
            "SELECT m.status, m.attempts, m.last_error FROM outgoing_mail m
             JOIN notifications n ON n.id = m.notification_id
             WHERE n.user_id = $1 ORDER BY n.id",
        )
        .bind(user_id)
        .fetch_all(self.db.pool())
        .await
        .expect("read mail")
    }

    /// Waits until no mail is PENDING.
    pub async fn all_mail_sent(&self) {
        eventually("every mail sent", || async {
            let pending: i64 =
                sqlx::query_scalar("SELECT COUNT(*) FROM outgoing_mail WHERE status = 'PENDING'")
                    .fetch_one(self.db.pool())
                    .await
                    .expect("count mail");
            pending == 0
        })
        .await;
    }
}

pub fn user_id(p: &Principal) -> &str {
    &p.user.as_ref().expect("signed in").id
}

pub fn registered(id: &str, name: &str) -> UserRegistered {
    UserRegistered {
        user_id: id.into(),
        email: format!("{}@example.com", name.to_lowercase()),
        name: name.into(),
        role: "CUSTOMER".into(),
        phone: None,
        address: None,
        registered_at: now_millis(),
    }
}

struct NoopAcker;

#[async_trait]
impl Acker for NoopAcker {
    async fn ack(&self) -> Result<(), BusError> {
        Ok(())
    }
    async fn nak(&self, _delay: Duration) -> Result<(), BusError> {
        Ok(())
    }
}

/// Polls `check` until it holds, failing the test after the deadline.
pub async fn eventually<F, Fut>(what: &str, mut check: F)
where
    F: FnMut() -> Fut,
    Fut: Future<Output = bool>,
{
    let started = Instant::now();
    while !check().await {
        assert!(
            started.elapsed() < DEADLINE,
            "timed out waiting for: {what}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Creates a uniquely named database, or says why not and returns `None`.
async fn create_pg_database() -> Option<String> {
    sqlx::any::install_default_drivers();
    let admin =
        match tokio::time::timeout(Duration::from_secs(3), sqlx::AnyPool::connect(PG_ADMIN_URL))
            .await
        {
            Ok(Ok(pool)) => pool,
            Ok(Err(e)) => return skip(&format!("PostgreSQL at {PG_ADMIN_URL} unreachable: {e}")),
            Err(_) => return skip(&format!("PostgreSQL at {PG_ADMIN_URL} did not answer")),
        };
    let name = format!("notifications_test_{}", new_id().replace('-', ""));
    sqlx::query(sqlx::AssertSqlSafe(format!("CREATE DATABASE \"{name}\"")))
        .execute(&admin)
        .await
        .expect("create test database");
    admin.close().await;
    Some(name)
}

fn skip<T>(why: &str) -> Option<T> {
    if std::env::var("BAZAAR_REQUIRE_BACKENDS").as_deref() == Ok("1") {
        panic!("{why} and BAZAAR_REQUIRE_BACKENDS=1");
    }
    eprintln!("SKIPPED: notifications PostgreSQL tests: {why}");
    None
}

/// Defines each `scenario: MailMode` (an `async fn scenario(t: &Harness)`) as a test on SQLite
/// and on PostgreSQL. The service is shut down (and its database dropped) even when one fails.
#[macro_export]
macro_rules! scenarios {
    ($($name:ident: $mail:ident),* $(,)?) => {
        mod sqlite {
            $( $crate::scenarios!(@test $name, Sqlite, $mail); )*
        }
        mod postgres {
            $( $crate::scenarios!(@test $name, Postgres, $mail); )*
        }
    };
    (@test $name:ident, $backend:ident, $mail:ident) => {
        #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
        async fn $name() {
            use futures::FutureExt;
            use $crate::support::{Backend, Harness, MailMode};
            let Some(t) = Harness::start(Backend::$backend, MailMode::$mail).await else {
                return;
            };
            let outcome = std::panic::AssertUnwindSafe(super::$name(&t)).catch_unwind().await;
            t.shutdown().await;
            if let Err(panic) = outcome {
                std::panic::resume_unwind(panic);
            }
        }
    };
}
