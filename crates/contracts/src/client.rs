//! Calling another service's internal API: in process (embedded) or over HTTP (at scale),
//! with the same request types, the same service credential and the same error shape.
//!
//! Every internal operation is a [`Route`]: `POST /internal/<op>` with a JSON body, called with
//! [`ServiceClient::call`] so that its path and types come from its one declaration. The caller proves it is
//! a bazaar service with [`INTERNAL_TOKEN_HEADER`] and says on whose behalf it acts with
//! [`PRINCIPAL_HEADER`]; services trust the principal only behind a valid token.

use std::sync::Arc;
use std::time::Duration;

use axum::body::Body;
use rand::Rng;
use serde::Serialize;
use serde::de::DeserializeOwned;
use tower::ServiceExt;
use tracing::Instrument;

use crate::{ApiError, ErrorCode, Kind, Principal, Route, call_trace, route};

pub use crate::dead_letters::DeadLetterClient;

pub const INTERNAL_TOKEN_HEADER: &str = "x-bazaar-service-token";
pub const PRINCIPAL_HEADER: &str = "x-bazaar-principal";
pub const REQUEST_ID_HEADER: &str = "x-request-id";
/// Largest internal response we read; bigger means a bug, not data.
const MAX_RESPONSE: usize = 16 * 1024 * 1024;

#[derive(Clone)]
enum Target {
    Local(axum::Router),
    Remote {
        base: String,
        http: reqwest::Client,
    },
    /// Not deployed with this process: every call is SERVICE_UNAVAILABLE, naming the setting.
    Missing {
        setting: String,
    },
}

/// A handle on one service's internal API.
#[derive(Clone)]
pub struct ServiceClient {
    service: &'static str,
    target: Target,
    token: Arc<str>,
    timeout: Duration,
}

impl ServiceClient {
    /// Calls `router` in this process, without a socket.
    pub fn local(service: &'static str, router: axum::Router, token: &str) -> Self {
        ServiceClient {
            service,
            target: Target::Local(router),
            token: token.into(),
            timeout: Duration::from_secs(10),
        }
    }

    /// Calls the service at `base_url` (e.g. `http://127.0.0.1:9101`).
    pub fn remote(service: &'static str, base_url: &str, token: &str) -> Self {
        let http = reqwest::Client::builder()
            .connect_timeout(Duration::from_secs(2))
            .pool_idle_timeout(Duration::from_secs(30))
            .build()
            .unwrap_or_default();
        ServiceClient {
            service,
            target: Target::Remote {
                base: base_url.trim_end_matches('/').to_owned(),
                http,
            },
            token: token.into(),
            timeout: Duration::from_secs(10),
        }
    }

    /// A service this deployment does not run (e.g. `serve --services users,gateway`).
    pub fn missing(service: &'static str, setting: &str) -> Self {
        ServiceClient {
            service,
            target: Target::Missing {
                setting: setting.to_owned(),
            },
            token: "".into(),
            timeout: Duration::from_secs(10),
        }
    }

    /// The same client with another time budget per call (every attempt of a query included).
    pub fn with_timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    pub fn service(&self) -> &'static str {
        self.service
    }

    /// True when calls go over the network (and so can fail for lack of the other process).
    pub fn is_remote(&self) -> bool {
        matches!(self.target, Target::Remote { .. })
    }

    /// True when the service answers its health check (always, in process).
    pub async fn ping(&self) -> bool {
        match &self.target {
            Target::Local(_) => true,
            Target::Missing { .. } => false,
            Target::Remote { base, http } => {
                let check = http
                    .get(format!("{base}/healthz"))
                    .timeout(Duration::from_secs(2))
                    .send();
                matches!(check.await, Ok(r) if r.status().is_success())
            }
        }
    }

    /// Calls the route `R`.
    pub async fn call<R: Route>(
        &self,
        principal: &Principal,
        request: &R::Request,
    ) -> Result<R::Response, ApiError> {
        self.send::<R>(R::OP, R::PATH, principal, request).await
    }

    /// Calls the route `R` of the group `scope` (`/internal/<scope>/<op>`), e.g. one service's
    /// dead-letter operations.
    pub async fn call_under<R: Route>(
        &self,
        scope: &str,
        principal: &Principal,
        request: &R::Request,
    ) -> Result<R::Response, ApiError> {
        let (op, path) = route::scoped::<R>(scope);
        self.send::<R>(&op, &path, principal, request).await
    }

    /// A [`Kind::Command`] is made once, never retried (its outcome may be unknown). A
    /// [`Kind::Query`] is retried with backoff and jitter while the service is unreachable,
    /// within the overall timeout (one budget for all attempts, so a hung service costs the
    /// caller one timeout, not one per attempt).
    async fn send<R: Route>(
        &self,
        op: &str,
        path: &str,
        principal: &Principal,
        req: &R::Request,
    ) -> Result<R::Response, ApiError> {
        if R::KIND == Kind::Command {
            return self.call_once(op, path, principal, req, self.timeout).await;
        }
        let deadline = tokio::time::Instant::now() + self.timeout;
        let mut delay = Duration::from_millis(50);
        let mut attempts = 0;
        loop {
            let left = deadline.saturating_duration_since(tokio::time::Instant::now());
            attempts += 1;
            match self.call_once(op, path, principal, req, left).await {
                Err(e) if e.code == ErrorCode::ServiceUnavailable && attempts < 4 => {
                    let jitter = rand::rng().random_range(0..=delay.as_millis() as u64);
                    let pause = delay + Duration::from_millis(jitter);
                    if tokio::time::Instant::now() + pause >= deadline {
                        return Err(e);
                    }
                    tokio::time::sleep(pause).await;
                    delay *= 4;
                }
                other => return other,
            }
        }
    }

    async fn call_once<Req: Serialize, Resp: DeserializeOwned>(
        &self,
        op: &str,
        path: &str,
        principal: &Principal,
        req: &Req,
        timeout: Duration,
    ) -> Result<Resp, ApiError> {
        let body = serde_json::to_vec(req).map_err(ApiError::internal)?;
        // The caller's request id travels on, so one id ties the gateway's log lines to the
        // services' for the same client request.
        let principal_request_id = principal.request_id.clone().unwrap_or_default();
        let principal = serde_json::to_string(principal).map_err(ApiError::internal)?;
        metrics::counter!("bazaar_internal_calls_total", "service" => self.service, "op" => op.to_owned()).increment(1);
        // The call's span; the callee's span joins it through the trace headers.
        let span = call_trace::client_span(self.service, op);
        let mut trace_headers = http::HeaderMap::new();
        call_trace::inject(&span, &mut trace_headers);
        let call = async {
            match &self.target {
                Target::Missing { setting } => Err(ApiError::unavailable(format!(
                    "the {} service is not part of this deployment (set {setting})",
                    self.service
                ))),
                Target::Local(router) => {
                    let mut request = http::Request::post(path);
                    if let Some(headers) = request.headers_mut() {
                        headers.extend(trace_headers.clone());
                    }
                    let request = request
                        .header(REQUEST_ID_HEADER, principal_request_id.as_str())
                        .header(http::header::CONTENT_TYPE, "application/json")
                        .header(INTERNAL_TOKEN_HEADER, &*self.token)
                        .header(PRINCIPAL_HEADER, &principal)
                        .body(Body::from(body))
                        .map_err(ApiError::internal)?;
                    let response = router
                        .clone()
                        .oneshot(request)
                        .await
                        .map_err(ApiError::internal)?;
                    let status = response.status();
                    let bytes = axum::body::to_bytes(response.into_body(), MAX_RESPONSE)
                        .await
                        .map_err(ApiError::internal)?;
                    Ok::<_, ApiError>((status, bytes.to_vec()))
                }
                Target::Remote { base, http } => {
                    let response = http
                        .post(format!("{base}{path}"))
                        .headers(trace_headers.clone())
                        .header(REQUEST_ID_HEADER, principal_request_id.as_str())
                        .header(http::header::CONTENT_TYPE, "application/json")
                        .header(INTERNAL_TOKEN_HEADER, &*self.token)
                        .header(PRINCIPAL_HEADER, &principal)
                        .body(body)
                        .send()
                        .await
                        .map_err(|e| {
                            tracing::warn!(service = self.service, error = %e, "internal call failed");
                            ApiError::unavailable(format!("the {} service is unavailable", self.service))
                        })?;
                    let status = response.status();
                    let bytes = response.bytes().await.map_err(|_| {
                        ApiError::unavailable(format!(
                            "the {} service is unavailable",
                            self.service
                        ))
                    })?;
                    Ok((status, bytes.to_vec()))
                }
            }
        };
        let answer = tokio::time::timeout(timeout, call)
            .instrument(span.clone())
            .await;
        let (status, bytes) = match answer {
            Ok(Ok(answer)) => answer,
            Ok(Err(e)) => {
                bazaar_bus::trace::fail(&span);
                return Err(e);
            }
            Err(_) => {
                bazaar_bus::trace::fail(&span);
                return Err(ApiError::unavailable(format!(
                    "the {} service did not answer in time",
                    self.service
                )));
            }
        };
        call_trace::record_status(&span, status);
        if status.is_success() {
            serde_json::from_slice(&bytes).map_err(ApiError::internal)
        } else {
            Err(serde_json::from_slice::<ApiError>(&bytes)
                .unwrap_or_else(|_| bodiless_error(self.service, status)))
        }
    }
}

/// What an answer without bazaar's error body means: a proxy or a layer in front of the
/// handler (a request timeout, a process going down) that has nothing to say about the call
/// itself. Gateway errors and timeouts are the other service being unavailable, which the
/// caller may retry; anything else is a bug.
fn bodiless_error(service: &str, status: http::StatusCode) -> ApiError {
    use http::StatusCode;
    match status {
        StatusCode::BAD_GATEWAY | StatusCode::SERVICE_UNAVAILABLE | StatusCode::GATEWAY_TIMEOUT => {
            ApiError::unavailable(format!("the {service} service is unavailable ({status})"))
        }
        _ => ApiError::internal(format!("{service} answered {status} without an error body")),
    }
}
