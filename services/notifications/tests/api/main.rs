//! Integration tests of the notifications service: events in, notifications and mail out (to a
//! real SMTP server or .eml files), its internal API, and the promotion announcer with two
//! replicas — each on SQLite and on PostgreSQL.

mod api;
mod events;
mod mail;
mod promotions;
mod smtp;
mod support;
