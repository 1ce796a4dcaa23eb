//! Integration tests of the catalog service through its internal router, each on SQLite and
//! on PostgreSQL: products, promotions, reviews and its side of the order saga. One binary,
//! so the service and the test kit are linked once.

mod products;
mod promotions;
mod reviews;
mod saga;
mod support;
