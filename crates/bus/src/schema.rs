//! Tables the bus keeps in every service's own database: outbox, inbox and dead letters.

use std::time::Duration;

use bazaar_db::{Migration, Prune};

/// Apply with `db.migrate("bus", MIGRATIONS)` beside the service's own migrations.
pub const MIGRATIONS: &[Migration] = &[
    Migration {
        version: "0001_outbox_inbox_dead_letters",
        sql: "
        CREATE TABLE outbox (
            seq {{id_seq}},
            id TEXT NOT NULL UNIQUE,
            event_type TEXT NOT NULL,
            body TEXT NOT NULL,
            created_at BIGINT NOT NULL,
            published_at BIGINT
        );
        CREATE INDEX outbox_unpublished ON outbox (seq) WHERE published_at IS NULL;
        CREATE TABLE inbox (
            consumer TEXT NOT NULL,
            event_id TEXT NOT NULL,
            processed_at BIGINT NOT NULL,
            PRIMARY KEY (consumer, event_id)
        );
        CREATE TABLE dead_letters (
            id TEXT PRIMARY KEY,
            consumer TEXT NOT NULL,
            event_id TEXT NOT NULL,
            event_type TEXT NOT NULL,
            body TEXT NOT NULL,
            error TEXT NOT NULL,
            attempts INTEGER NOT NULL,
            failed_at BIGINT NOT NULL,
            UNIQUE (consumer, event_id)
        );
    ",
    },
    Migration {
        version: "0002_retention",
        // Retention finds old rows by time without scanning the tables.
        sql: "
        CREATE INDEX inbox_by_age ON inbox (processed_at);
        CREATE INDEX outbox_sent_by_age ON outbox (published_at) WHERE published_at IS NOT NULL;
    ",
    },
];

/// What the bus keeps in a service's database only for a while: inbox rows for `inbox` (an
/// event redelivered after that would be applied again, so keep it well beyond the broker's
/// redelivery horizon) and outbox rows for `sent_outbox` once published.
pub fn retention(inbox: Duration, sent_outbox: Duration) -> [Prune; 2] {
    [
        Prune {
            table: "inbox",
            key: "consumer, event_id",
            expired: "processed_at < $1",
            keep: inbox,
        },
        Prune {
            table: "outbox",
            key: "seq",
            expired: "published_at IS NOT NULL AND published_at < $1",
            keep: sent_outbox,
        },
    ]
}
