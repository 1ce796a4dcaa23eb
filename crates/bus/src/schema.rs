//! Tables the bus keeps in every service's own database: outbox, inbox and dead letters.

use bazaar_db::Migration;

/// Apply with `db.migrate("bus", MIGRATIONS)` beside the service's own migrations.
pub const MIGRATIONS: &[Migration] = &[Migration {
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
}];
