//! The serving side of an internal call: the layer that admits only callers presenting the
//! service credential, the extractors for the principal they act for and their JSON body
//! (both refusing in the shared error shape), and [`Routes`], which mounts each handler at its
//! [`Route`]'s path.

use std::sync::Arc;

use axum::Router;
use axum::extract::{FromRequestParts, Request, State};
use axum::http::request::Parts;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use serde::de::DeserializeOwned;
use tracing::Instrument;

use crate::client::{INTERNAL_TOKEN_HEADER, PRINCIPAL_HEADER};
use crate::{ApiError, Principal, Route, call_trace, route};

/// A service's internal API under construction: one handler per [`Route`], each mounted at the
/// route's path and checked against its request and response types.
pub struct Routes<S> {
    router: Router<S>,
    /// Set for a group of routes served under a name (`/internal/<scope>/<op>`).
    scope: Option<String>,
}

impl<S: Clone + Send + Sync + 'static> Routes<S> {
    pub fn new() -> Self {
        Routes {
            router: Router::new(),
            scope: None,
        }
    }

    /// Routes served at `/internal/<scope>/<op>`, which callers reach with
    /// [`crate::ServiceClient::call_under`].
    pub fn under(scope: &str) -> Self {
        Routes {
            router: Router::new(),
            scope: Some(scope.to_owned()),
        }
    }

    /// Serves `R` with `handler`, an `async fn(state, principal, R::Request) ->
    /// Result<R::Response, E>`. Every route reads its principal as [`Caller`] and its body as
    /// [`Input`], so a malformed one is refused the same way on every route; a handler that
    /// needs neither ignores its argument, and every route has one handler shape.
    pub fn serve<R: Route>(self, handler: impl RouteHandler<R, S>) -> Self {
        let endpoint = move |State(state): State<S>,
                             Caller(principal): Caller,
                             Input(request): Input<R::Request>| {
            handler.clone().call(state, principal, request)
        };
        let router = match &self.scope {
            None => self.router.route(R::PATH, post(endpoint)),
            Some(scope) => {
                let (_, path) = route::scoped::<R>(scope);
                self.router.route(&path, post(endpoint))
            }
        };
        Routes { router, ..self }
    }

    /// The router, with the state every handler is given.
    pub fn with_state(self, state: S) -> Router {
        self.router.with_state(state)
    }
}

impl<S: Clone + Send + Sync + 'static> Default for Routes<S> {
    fn default() -> Self {
        Self::new()
    }
}

/// A handler for the route `R`: any `async fn(S, Principal, R::Request) -> Result<R::Response,
/// E>` whose error answers for itself (e.g. `ServiceError`). The answer is JSON.
pub trait RouteHandler<R: Route, S>: Clone + Send + Sync + 'static {
    fn call(
        self,
        state: S,
        principal: Principal,
        request: R::Request,
    ) -> impl Future<Output = Response> + Send;
}

impl<R, S, F, Fut, E> RouteHandler<R, S> for F
where
    R: Route,
    S: Send + 'static,
    F: FnOnce(S, Principal, R::Request) -> Fut + Clone + Send + Sync + 'static,
    Fut: Future<Output = Result<R::Response, E>> + Send,
    E: IntoResponse,
{
    async fn call(self, state: S, principal: Principal, request: R::Request) -> Response {
        match self(state, principal, request).await {
            Ok(response) => axum::Json(response).into_response(),
            Err(e) => e.into_response(),
        }
    }
}

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
