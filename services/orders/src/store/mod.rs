//! The orders service's SQL (dialect-neutral: SQLite and PostgreSQL through sqlx `Any`):
//! orders and their lines, the customer replica, idempotency keys and refunds owed.

mod customers;
mod idempotency;
mod orders;
mod refunds;
mod statuses;

use bazaar_db::Migration;

pub use customers::{Customer, customer_address, upsert_customer};
pub use idempotency::{find_key, insert_key};
pub use orders::{
    NewOrder, OrderFilter, StoredOrder, expired_confirmed, insert_order, list_orders,
    move_profile_addresses, open_orders, order_by_id, orders_by_ids,
};
pub use refunds::{
    claim_refund, due_refunds, insert_refund, pending_refunds, refund_done, refund_failed,
};
pub use statuses::{
    Answer, StatusChange, count_by_status, count_pending, set_status, set_status_reason,
    settle_pending,
};

/// A connection from the pool or the inside of a transaction (`&mut **tx`): reads take either.
pub type Conn = bazaar_db::sqlx::AnyConnection;

pub const MIGRATIONS: &[Migration] = &[
    Migration {
        version: "0001_orders",
        sql: "
        CREATE TABLE orders (
            id TEXT PRIMARY KEY,
            user_id TEXT NOT NULL,
            status TEXT NOT NULL CHECK (status IN
                ('PENDING', 'CONFIRMED', 'REJECTED', 'PAID', 'SHIPPED', 'DELIVERED', 'CANCELLED')),
            status_reason TEXT,
            total_cents BIGINT NOT NULL CHECK (total_cents >= 0),
            shipping_address TEXT NOT NULL,
            address_from_profile INTEGER NOT NULL CHECK (address_from_profile IN (0, 1)),
            charge_id TEXT,
            confirmed_at BIGINT,
            created_at BIGINT NOT NULL,
            updated_at BIGINT NOT NULL
        );
        CREATE INDEX orders_by_user ON orders (user_id, id);
        CREATE INDEX orders_by_status ON orders (status, confirmed_at);
        CREATE TABLE order_items (
            order_id TEXT NOT NULL REFERENCES orders (id),
            line_no INTEGER NOT NULL,
            product_id TEXT NOT NULL,
            name TEXT NOT NULL,
            quantity BIGINT NOT NULL CHECK (quantity > 0),
            unit_price_cents BIGINT NOT NULL CHECK (unit_price_cents >= 0),
            PRIMARY KEY (order_id, line_no)
        );
        CREATE TABLE customers (
            user_id TEXT PRIMARY KEY,
            email TEXT NOT NULL,
            name TEXT NOT NULL,
            phone TEXT,
            address TEXT,
            updated_at BIGINT NOT NULL
        );
        CREATE TABLE idempotency_keys (
            user_id TEXT NOT NULL,
            key TEXT NOT NULL,
            request_hash TEXT NOT NULL,
            order_id TEXT NOT NULL,
            created_at BIGINT NOT NULL,
            PRIMARY KEY (user_id, key)
        );
    ",
    },
    Migration {
        version: "0002_refunds",
        // A refund owed is recorded in the transaction that makes it owed (a cancellation) and
        // retried until the provider confirms it; `next_attempt_at` doubles as the lease that
        // keeps two replicas from refunding the same charge at once.
        sql: "
            CREATE TABLE refunds (
                charge_id TEXT PRIMARY KEY,
                order_id TEXT NOT NULL,
                amount_cents BIGINT NOT NULL,
                attempts BIGINT NOT NULL DEFAULT 0,
                last_error TEXT,
                next_attempt_at BIGINT NOT NULL,
                created_at BIGINT NOT NULL,
                refunded_at BIGINT
            );
            CREATE INDEX refunds_due ON refunds (refunded_at, next_attempt_at);
        ",
    },
    Migration {
        version: "0003_idempotency_key_age",
        sql: "CREATE INDEX idempotency_keys_by_age ON idempotency_keys (created_at);",
    },
    // The per-customer cap and the saga's backpressure count open orders on every
    // placeOrder: through these they read the few open rows, not a customer's whole history.
    Migration {
        version: "0004_open_orders",
        sql: "
            CREATE INDEX orders_open_by_user ON orders (user_id) WHERE status IN ('PENDING', 'CONFIRMED');
            CREATE INDEX orders_pending ON orders (created_at) WHERE status = 'PENDING';
        ",
    },
];

/// Idempotency keys are honoured for `keep` (a retry after that places a new order).
pub fn retention(keep: std::time::Duration) -> Vec<bazaar_db::Prune> {
    vec![bazaar_db::Prune {
        table: "idempotency_keys",
        key: "user_id, key",
        expired: "created_at < $1",
        keep,
    }]
}
