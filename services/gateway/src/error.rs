//! Turning service errors into GraphQL errors: every error carries `extensions.code`, and a
//! BAD_USER_INPUT names the field that was wrong.

use async_graphql::{ErrorExtensions, Response};
use bazaar_contracts::ApiError;

/// Converts a service error into a GraphQL error with `extensions.code` (and `field`).
pub fn gql(e: ApiError) -> async_graphql::Error {
    let code = e.code.as_str();
    let field = e.field.clone();
    let retry_after = e.retry_after_secs;
    async_graphql::Error::new(e.message).extend_with(|_, ext| {
        ext.set("code", code);
        if let Some(field) = &field {
            ext.set("field", field.as_str());
        }
        if let Some(secs) = retry_after {
            ext.set("retryAfterSecs", secs);
        }
    })
}

/// Errors async-graphql raises itself (syntax, unknown fields, wrong variable types, depth
/// and complexity limits) come without a code: they are all the client's input.
pub fn ensure_codes(mut response: Response) -> Response {
    for error in &mut response.errors {
        let ext = error.extensions.get_or_insert_with(Default::default);
        if ext.get("code").is_none() {
            ext.set("code", "BAD_USER_INPUT");
        }
    }
    response
}

pub type GqlResult<T> = Result<T, async_graphql::Error>;

/// Shorthand for `map_err(gql)` on service calls.
pub trait OrGql<T> {
    fn gql(self) -> GqlResult<T>;
}

impl<T> OrGql<T> for Result<T, ApiError> {
    fn gql(self) -> GqlResult<T> {
        self.map_err(gql)
    }
}
