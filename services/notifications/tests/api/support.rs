//! Test harness: the real notifications service on the test kit's platform (embedded event
//! log, in-memory cache, SQLite or a fresh PostgreSQL database), sending mail to a real SMTP
//! server (aiosmtpd) or into .eml files, driven by publishing events and calling its internal
//! API.
//!
//! SMTP scenarios are skipped with a message when aiosmtpd is missing, unless
//! `BAZAAR_REQUIRE_BACKENDS=1`.

use bazaar_bus::{Consumer, Envelope};
use bazaar_contracts::events::{Event, UserRegistered};
use bazaar_contracts::notifications::{NotificationsClient, UpdatePreferencesRequest};
use bazaar_contracts::{Principal, Role};
use bazaar_db::{Db, new_id, now_millis, sqlx};
use bazaar_runtime::Secret;
use bazaar_runtime::schedule::Schedule;
use bazaar_testkit::{Backend, TestPlatform, events, eventually, fakes};

use crate::smtp::SmtpServer;

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
    pub platform: TestPlatform,
    pub db: Db,
    pub client: NotificationsClient,
    pub consumers: Vec<Consumer>,
    pub smtp: Option<SmtpServer>,
}

impl bazaar_testkit::Harness for Harness {
    async fn shutdown(self) {
        self.platform.shutdown(&self.db).await;
    }
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
        let platform = TestPlatform::start(backend, "notifications", |settings| {
            settings.smtp_url = smtp.as_ref().map(|s| Secret::new(s.url()));
            settings.promotion_schedule = Schedule::parse("* * * * * *").expect("schedule");
        })
        .await?;
        let service = bazaar_notifications::build(&platform, Default::default())
            .await
            .expect("build notifications");
        let (db, internal, consumers) = platform.spawn(service);
        let client = NotificationsClient(platform.client("notifications", internal));
        Some(Harness {
            platform,
            db,
            client,
            consumers,
            smtp,
        })
    }

    /// Starts a second replica of the service on the same database and event log.
    pub async fn start_replica(&self) {
        let service = bazaar_notifications::build(&self.platform, Default::default())
            .await
            .expect("build replica");
        let _ = self.platform.spawn(service);
    }

    pub fn smtp(&self) -> &SmtpServer {
        self.smtp
            .as_ref()
            .expect("this scenario has an SMTP server")
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
        events::consumed(&self.db, "notifications", event_id).await;
    }

    /// Hands `event` to the consumer directly, as a (re)delivery would.
    pub async fn deliver(&self, event: &Envelope, attempt: u32) {
        self.consumers[0]
            .process(fakes::delivery(event, attempt))
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

/// Defines each `scenario: MailMode` (an `async fn scenario(t: &Harness)`) as a test on SQLite
/// and on PostgreSQL (see `bazaar_testkit::on_every_backend!`).
#[macro_export]
macro_rules! scenarios {
    ($($name:ident: $mail:ident),* $(,)?) => {
        bazaar_testkit::on_every_backend!(
            start = $crate::support::Harness::start;
            $($name($crate::support::MailMode::$mail)),*
        );
    };
}
