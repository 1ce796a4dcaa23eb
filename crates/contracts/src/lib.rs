//! The contracts between bazaar's services: event payloads, internal API types, the error
//! shape every service answers with, typed clients that call a service in process or over
//! HTTP, and the server side that admits those calls.

// First, so that its `routes!` macro is in scope in the service modules below.
#[macro_use]
pub mod route;

pub mod call_trace;
pub mod catalog;
pub mod client;
pub mod dead_letters;
pub mod error;
pub mod events;
pub mod notifications;
pub mod orders;
pub mod page;
pub mod principal;
pub mod recommendations;
pub mod server;
pub mod users;
pub mod validate;

pub use client::{INTERNAL_TOKEN_HEADER, PRINCIPAL_HEADER, ServiceClient};
pub use error::{ApiError, ErrorCode};
pub use principal::{Principal, Role};
pub use route::{Empty, Kind, Route};
pub use server::{Caller, Input, Routes, require_service_token};
