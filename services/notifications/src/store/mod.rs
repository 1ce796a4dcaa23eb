//! The notifications service's SQL (dialect-neutral: SQLite and PostgreSQL through sqlx `Any`):
//! notifications with their outgoing mail, preferences, and the user and promotion replicas.

mod mail;
mod notifications;
mod replicas;

use bazaar_db::Migration;

pub use mail::{DueMail, claim_mails, due_mail, mail_failed, mail_sent};
pub use notifications::{
    NewNotification, insert_notification, insert_notifications, list_notifications, mark_all_read,
    mark_read, users_to_announce,
};
pub use replicas::{
    UserReplica, active_promotions, end_promotion, insert_promotion, preferences,
    update_preferences, upsert_user, without_order_updates,
};

/// A connection from the pool or the inside of a transaction (`&mut **tx`): reads take either.
pub type Conn = bazaar_db::sqlx::AnyConnection;

pub const MIGRATIONS: &[Migration] = &[
    Migration {
        version: "0001_notifications",
        sql: "
        CREATE TABLE users (
            user_id TEXT PRIMARY KEY,
            email TEXT NOT NULL,
            name TEXT NOT NULL,
            updated_at BIGINT NOT NULL
        );
        CREATE TABLE preferences (
            user_id TEXT PRIMARY KEY,
            order_updates INTEGER NOT NULL CHECK (order_updates IN (0, 1)),
            promotions INTEGER NOT NULL CHECK (promotions IN (0, 1)),
            recommendations INTEGER NOT NULL CHECK (recommendations IN (0, 1)),
            updated_at BIGINT NOT NULL
        );
        CREATE TABLE promotions (
            promotion_id TEXT PRIMARY KEY,
            title TEXT NOT NULL,
            product_ids TEXT NOT NULL,
            percent_off BIGINT NOT NULL,
            starts_at BIGINT NOT NULL,
            ends_at BIGINT NOT NULL
        );
        CREATE INDEX promotions_by_window ON promotions (starts_at, ends_at);
        CREATE TABLE notifications (
            id TEXT PRIMARY KEY,
            user_id TEXT NOT NULL,
            kind TEXT NOT NULL CHECK (kind IN
                ('WELCOME', 'ORDER_UPDATE', 'PROMOTION', 'RECOMMENDATION')),
            dedup_key TEXT NOT NULL,
            title TEXT NOT NULL,
            body TEXT NOT NULL,
            read_at BIGINT,
            created_at BIGINT NOT NULL,
            UNIQUE (user_id, kind, dedup_key)
        );
        CREATE INDEX notifications_by_user ON notifications (user_id, id);
        CREATE TABLE outgoing_mail (
            notification_id TEXT PRIMARY KEY REFERENCES notifications (id),
            to_address TEXT,
            subject TEXT NOT NULL,
            body TEXT NOT NULL,
            status TEXT NOT NULL CHECK (status IN ('PENDING', 'SENT')),
            attempts BIGINT NOT NULL,
            next_attempt_at BIGINT NOT NULL,
            last_error TEXT,
            sent_at BIGINT,
            created_at BIGINT NOT NULL
        );
        CREATE INDEX outgoing_mail_due ON outgoing_mail (status, next_attempt_at);
    ",
    },
    Migration {
        version: "0002_read_age",
        sql: "CREATE INDEX notifications_read ON notifications (read_at) WHERE read_at IS NOT NULL;",
    },
];

/// Notifications read more than `keep` ago go, with their mail once it is sent (a mail still
/// being retried keeps its notification).
pub fn retention(keep: std::time::Duration) -> Vec<bazaar_db::Prune> {
    vec![
        bazaar_db::Prune {
            table: "outgoing_mail",
            key: "notification_id",
            expired: "status = 'SENT' AND notification_id IN
                (SELECT id FROM notifications WHERE read_at < $1)",
            keep,
        },
        bazaar_db::Prune {
            table: "notifications",
            key: "id",
            expired: "read_at < $1 AND id NOT IN (SELECT notification_id FROM outgoing_mail)",
            keep,
        },
    ]
}
