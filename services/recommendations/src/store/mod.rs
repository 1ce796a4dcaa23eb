//! The recommendations service's SQL (dialect-neutral: SQLite and PostgreSQL through sqlx
//! `Any`): the purchase history and co-purchase model, the product availability replica,
//! the ranking queries, and the record of digests already sent.

mod digests;
mod model;
mod products;
mod ranking;

use bazaar_db::Migration;

pub use digests::{mark_digest_sent, prune_digests, users_with_purchases};
pub use model::{Purchase, record_order};
pub use products::{delete_product, set_stocks, upsert_product};
pub use ranking::{Ranked, best_sellers, co_purchased};

/// A connection from the pool or the inside of a transaction (`&mut **tx`): reads take either.
pub type Conn = bazaar_db::sqlx::AnyConnection;

pub const MIGRATIONS: &[Migration] = &[Migration {
    version: "0001_model_replica_digests",
    sql: "
        CREATE TABLE products (
            product_id TEXT PRIMARY KEY,
            name TEXT NOT NULL,
            stock BIGINT NOT NULL,
            deleted INTEGER NOT NULL CHECK (deleted IN (0, 1)),
            updated_at BIGINT NOT NULL
        );
        CREATE TABLE purchases (
            user_id TEXT NOT NULL,
            product_id TEXT NOT NULL,
            units BIGINT NOT NULL CHECK (units > 0),
            PRIMARY KEY (user_id, product_id)
        );
        CREATE TABLE popularity (
            product_id TEXT PRIMARY KEY,
            units BIGINT NOT NULL CHECK (units > 0)
        );
        CREATE INDEX popularity_by_units ON popularity (units, product_id);
        CREATE TABLE co_purchases (
            product_a TEXT NOT NULL,
            product_b TEXT NOT NULL,
            weight BIGINT NOT NULL CHECK (weight > 0),
            PRIMARY KEY (product_a, product_b),
            CHECK (product_a <> product_b)
        );
        CREATE TABLE digests_sent (
            tick_at BIGINT NOT NULL,
            user_id TEXT NOT NULL,
            sent_at BIGINT NOT NULL,
            PRIMARY KEY (tick_at, user_id)
        );
    ",
}];
