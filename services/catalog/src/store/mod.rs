//! The catalog service's SQL: the schema, products, stock, order reservations, promotions
//! and reviews.

pub mod products;
pub mod promotions;
pub mod reservations;
pub mod reviews;
pub mod stock;

use bazaar_db::Migration;

pub const MIGRATIONS: &[Migration] = &[
    Migration {
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
    },
    Migration {
        version: "0002_promotions_reviews",
        // Purchases carry no foreign key to products: they come from another service's events,
        // and a line naming an unknown product must not make the event undeliverable.
        // The rating is kept as a running sum and count on the product so reads need no
        // aggregate; the review writer adjusts both in the transaction that stores the review.
        sql: "
            CREATE TABLE promotions (
                id TEXT PRIMARY KEY,
                title TEXT NOT NULL,
                percent_off BIGINT NOT NULL CHECK (percent_off BETWEEN 1 AND 90),
                starts_at BIGINT NOT NULL,
                ends_at BIGINT NOT NULL,
                created_at BIGINT NOT NULL,
                CHECK (starts_at <= ends_at)
            );
            CREATE INDEX promotions_ends_at ON promotions (ends_at);
            CREATE TABLE promotion_products (
                promotion_id TEXT NOT NULL REFERENCES promotions (id),
                product_id TEXT NOT NULL REFERENCES products (id),
                PRIMARY KEY (promotion_id, product_id)
            );
            CREATE INDEX promotion_products_product ON promotion_products (product_id);
            CREATE TABLE purchases (
                user_id TEXT NOT NULL,
                product_id TEXT NOT NULL,
                delivered_at BIGINT NOT NULL,
                PRIMARY KEY (user_id, product_id)
            );
            CREATE TABLE reviewers (
                user_id TEXT PRIMARY KEY,
                name TEXT NOT NULL,
                updated_at BIGINT NOT NULL
            );
            CREATE TABLE reviews (
                id TEXT PRIMARY KEY,
                product_id TEXT NOT NULL REFERENCES products (id),
                user_id TEXT NOT NULL,
                rating BIGINT NOT NULL CHECK (rating BETWEEN 1 AND 5),
                title TEXT NOT NULL,
                body TEXT NOT NULL,
                created_at BIGINT NOT NULL,
                updated_at BIGINT NOT NULL,
                UNIQUE (product_id, user_id)
            );
            CREATE INDEX reviews_product ON reviews (product_id, id);
            ALTER TABLE products ADD COLUMN rating_sum BIGINT NOT NULL DEFAULT 0;
            ALTER TABLE products ADD COLUMN rating_count BIGINT NOT NULL DEFAULT 0;
        ",
    },
];
