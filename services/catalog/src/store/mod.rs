//! The catalog service's SQL: the schema, products and stock, and order reservations.

pub mod products;
pub mod reservations;

use bazaar_db::Migration;

pub const MIGRATIONS: &[Migration] = &[Migration {
    version: "0001_products_reservations",
    sql: "
        CREATE TABLE products (
            id TEXT PRIMARY KEY,
            name TEXT NOT NULL,
            description TEXT NOT NULL,
            category TEXT NOT NULL,
            price_cents BIGINT NOT NULL CHECK (price_cents >= 0),
            stock BIGINT NOT NULL CHECK (stock >= 0),
            deleted_at BIGINT,
            created_at BIGINT NOT NULL,
            updated_at BIGINT NOT NULL
        );
        CREATE INDEX products_category ON products (category, id);
        CREATE TABLE reservations (
            order_id TEXT PRIMARY KEY,
            status TEXT NOT NULL CHECK (status IN ('RESERVED', 'REJECTED', 'RELEASED', 'CANCELLED')),
            items TEXT NOT NULL,
            reason TEXT,
            created_at BIGINT NOT NULL,
            updated_at BIGINT NOT NULL
        );
    ",
}];
