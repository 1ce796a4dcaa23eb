//! The serving side of an internal call: the layer that admits only callers presenting the
//! service credential, and the extractors for the principal they act for and their JSON body,
//! both refusing in the shared error shape.

use std::sync::Arc;

use axum::extract::{FromRequestParts, Request};
use axum::http::request::Parts;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use serde::de::DeserializeOwned;
use tracing::Instrument;

use crate::client::{INTERNAL_TOKEN_HEADER, PRINCIPAL_HEADER};
use crate::{ApiError, Principal, call_trace};

/// Middleware for a service's internal router: refuses callers without the service credential.
pub async fn require_service_token(token: Arc<str>, request: Request, next: Next) -> Response {
    let presented = request
        .headers()
        .get(INTERNAL_TOKEN_HEADER)
        .map(|v| v.as_bytes());
    if presented.is_some_and(|p| constant_time_eq(p, token.as_bytes())) {
        // Every internal route passes here: the service's side of a call starts its span.
        let span =
            call_trace::server_span(request.method(), request.uri().path(), request.headers());
        let response = next.run(request).instrument(span.clone()).await;
        call_trace::record_status(&span, response.status());
        response
    } else {
        ApiError::unauthenticated("service credential required").into_response()
    }
}

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// The principal of an internal call (behind [`require_service_token`]).
pub struct Caller(pub Principal);

impl<S: Send + Sync> FromRequestParts<S> for Caller {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, ApiError> {
        match parts.headers.get(PRINCIPAL_HEADER) {
            None => Ok(Caller(Principal::anonymous())),
            Some(v) => serde_json::from_slice(v.as_bytes())
                .map(Caller)
                .map_err(|_| ApiError::unauthenticated("malformed principal")),
        }
    }
}

/// A JSON request body whose rejection is a BAD_USER_INPUT in our error shape.
pub struct Input<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned> axum::extract::FromRequest<S> for Input<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, ApiError> {
        match axum::Json::<T>::from_request(req, state).await {
            Ok(axum::Json(v)) => Ok(Input(v)),
            Err(e) => Err(ApiError::bad_input("body", e.body_text())),
        }
    }
}
