//! Integration tests of the recommendations service over its internal API, each on SQLite and
//! on PostgreSQL: recommendations fed by events, and the periodic digest of two replicas. One
//! binary, so the service and the test kit are linked once.

mod digest;
mod recommend;
mod support;
