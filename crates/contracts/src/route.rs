//! One definition per internal route, shared by the client that calls it and the service that
//! serves it: a renamed or removed route, or a changed request or response type, fails to
//! compile at both ends instead of failing at run time with a 404 or a decoding error.
//!
//! Each route is a type declared once, with `routes!`, in its service's contract module (e.g.
//! [`crate::orders::PlaceOrder`]). Callers go through [`crate::ServiceClient::call`], services
//! mount their handlers with [`crate::server::Routes`], whose handlers must take the route's
//! request and answer its response.

use serde::Serialize;
use serde::de::DeserializeOwned;

/// How a caller may repeat a call when the service does not answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// Changes state: made once, never retried, since its outcome may be unknown.
    Command,
    /// Reads, or is otherwise idempotent: retried with backoff while the service is unreachable.
    Query,
}

/// An internal operation: `POST <PATH>` with a JSON `Request` body, answered with a JSON
/// `Response` (or an `ApiError`).
pub trait Route: 'static {
    /// The operation's name: the last part of its path, the `op` label of
    /// `bazaar_internal_calls_total` and the method of the caller's span.
    const OP: &'static str;
    /// `/internal/<OP>`.
    const PATH: &'static str;
    const KIND: Kind;
    type Request: Serialize + DeserializeOwned + Send + Sync + 'static;
    type Response: Serialize + DeserializeOwned + Send + 'static;
}

/// `R` as served in the group `scope` (see [`crate::dead_letters`]): its op `<scope>/<op>` and
/// its path `/internal/<scope>/<op>`.
pub(crate) fn scoped<R: Route>(scope: &str) -> (String, String) {
    let op = format!("{scope}/{}", R::OP);
    let path = format!("/internal/{op}");
    (op, path)
}

/// A request without fields, sent as `{}`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, serde::Deserialize)]
pub struct Empty {}

/// Declares routes, one line each: `command|query Name = "op": Request => Response;`,
/// each with its `///` doc. The path is `/internal/<op>`.
macro_rules! routes {
    (@kind command) => { $crate::route::Kind::Command };
    (@kind query) => { $crate::route::Kind::Query };
    ($($(#[$attr:meta])* $kind:ident $name:ident = $op:literal: $request:ty => $response:ty;)*) => {$(
        $(#[$attr])*
        #[derive(Debug, Clone, Copy)]
        pub struct $name;

        impl $crate::route::Route for $name {
            const OP: &'static str = $op;
            const PATH: &'static str = concat!("/internal/", $op);
            const KIND: $crate::route::Kind = routes!(@kind $kind);
            type Request = $request;
            type Response = $response;
        }
    )*};
}

#[cfg(test)]
mod tests;
