//! The contracts between bazaar's services: event payloads, internal API types, the error
//! shape every service answers with, and typed clients that call a service in process or
//! over HTTP.

pub mod call_trace;
pub mod catalog;
pub mod client;
pub mod error;
pub mod events;
pub mod notifications;
pub mod orders;
pub mod principal;
pub mod recommendations;
pub mod users;
pub mod validate;

pub use client::{
    Caller, INTERNAL_TOKEN_HEADER, Input, PRINCIPAL_HEADER, ServiceClient, require_service_token,
};
pub use error::{ApiError, ErrorCode};
pub use principal::{Principal, Role};
