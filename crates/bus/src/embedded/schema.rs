//! The embedded log's tables: the stored events, each consumer's cursor, and deliveries
//! handed out but not yet acknowledged.

use bazaar_db::Migration;

pub(super) const MIGRATIONS: &[Migration] = &[
    Migration {
        version: "0001_log",
        sql: "
        CREATE TABLE bus_messages (
            seq {{id_seq}},
            id TEXT NOT NULL UNIQUE,
            body TEXT NOT NULL,
            stored_at BIGINT NOT NULL
        );
        CREATE TABLE bus_consumers (
            name TEXT PRIMARY KEY,
            cursor BIGINT NOT NULL,
            delivered BIGINT NOT NULL DEFAULT 0,
            redelivered BIGINT NOT NULL DEFAULT 0
        );
        CREATE TABLE bus_pending (
            consumer TEXT NOT NULL,
            seq BIGINT NOT NULL,
            attempts INTEGER NOT NULL,
            due_at BIGINT NOT NULL,
            PRIMARY KEY (consumer, seq)
        );
        CREATE INDEX bus_pending_due ON bus_pending (consumer, due_at);
    ",
    },
    Migration {
        version: "0002_event_types",
        // Consumers receive only the types they name: the log keeps each event's type beside it.
        sql: "
        ALTER TABLE bus_messages ADD COLUMN event_type TEXT NOT NULL DEFAULT '';
        UPDATE bus_messages SET event_type = COALESCE(json_extract(body, '$.type'), '');
        ALTER TABLE bus_consumers ADD COLUMN event_types TEXT NOT NULL DEFAULT '';
    ",
    },
];
