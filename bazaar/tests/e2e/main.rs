//! The binary crate's end-to-end tests, in one test binary: one build and one link for them
//! all instead of one per file. Each module is one area; `support` starts bazaar (in this
//! process or as separate processes) on each backend and talks to it like a client.

#[macro_use]
mod support;

mod abuse;
mod accounts;
mod batching;
mod browser;
mod connectivity;
mod deploy_files;
mod docs_files;
mod engagement;
mod graphql_caching;
mod graphql_http;
mod guarantees;
mod layout;
mod processes;
mod purchase;
mod refunds;
mod schema;
mod traces;
mod tracking;
