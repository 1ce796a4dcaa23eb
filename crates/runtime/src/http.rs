//! HTTP scaffolding shared by every listener: health, readiness and metrics endpoints, the
//! standard middleware stack, and serving with graceful shutdown.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use axum::Router;
use axum::http::{HeaderName, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use bazaar_contracts::call_trace;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use tower_http::catch_panic::CatchPanicLayer;
use tower_http::request_id::{MakeRequestUuid, PropagateRequestIdLayer, SetRequestIdLayer};
use tower_http::timeout::TimeoutLayer;
use tower_http::trace::TraceLayer;
use tracing::Instrument;

/// Something /readyz waits for: a database, the event broker, the cache, another service.
#[async_trait]
pub trait ReadyCheck: Send + Sync + 'static {
    fn name(&self) -> String;
    async fn ready(&self) -> bool;
}

#[async_trait]
impl ReadyCheck for (String, bazaar_db::Db) {
    fn name(&self) -> String {
        format!("{} database", self.0)
    }
    async fn ready(&self) -> bool {
        self.1.ping().await
    }
}

#[async_trait]
impl ReadyCheck for Arc<dyn bazaar_bus::Transport> {
    fn name(&self) -> String {
        format!("{} event bus", self.kind())
    }
    async fn ready(&self) -> bool {
        self.as_ref().ready().await
    }
}

#[async_trait]
impl ReadyCheck for Arc<dyn bazaar_cache::Cache> {
    fn name(&self) -> String {
        format!("{} cache", self.kind())
    }
    async fn ready(&self) -> bool {
        self.ping().await
    }
}

/// `/healthz` (the process is alive), `/readyz` (every check passes, each bounded to 2 s) and
/// `/metrics` (Prometheus text).
pub fn ops_routes(checks: Vec<Arc<dyn ReadyCheck>>) -> Router {
    let checks = Arc::new(checks);
    Router::new()
        .route("/healthz", get(|| async { "ok" }))
        .route("/readyz", get(move || readyz(checks.clone())))
        .route(
            "/metrics",
            get(|| async { crate::telemetry::metrics().render() }),
        )
}

async fn readyz(checks: Arc<Vec<Arc<dyn ReadyCheck>>>) -> Response {
    let results = futures::future::join_all(checks.iter().map(|c| async move {
        let ok = tokio::time::timeout(Duration::from_secs(2), c.ready())
            .await
            .unwrap_or(false);
        (c.name(), ok)
    }))
    .await;
    let failing: Vec<String> = results
        .into_iter()
        .filter(|(_, ok)| !ok)
        .map(|(n, _)| n)
        .collect();
    if failing.is_empty() {
        "ready".into_response()
    } else {
        (
            StatusCode::SERVICE_UNAVAILABLE,
            format!("not ready: {}", failing.join(", ")),
        )
            .into_response()
    }
}

/// Request ids, tracing, a panic becoming an opaque 500, and a request timeout.
pub fn with_standard_layers(router: Router, timeout: Duration) -> Router {
    let request_id = HeaderName::from_static("x-request-id");
    router
        .layer(CatchPanicLayer::custom(|_| {
            tracing::error!("request handler panicked");
            (StatusCode::INTERNAL_SERVER_ERROR, axum::Json(serde_json::json!({
                "errors": [{"message": "internal error", "extensions": {"code": "INTERNAL_SERVER_ERROR"}}]
            })))
                .into_response()
        }))
        .layer(TimeoutLayer::with_status_code(StatusCode::GATEWAY_TIMEOUT, timeout))
        .layer(TraceLayer::new_for_http())
        .layer(PropagateRequestIdLayer::new(request_id.clone()))
        .layer(SetRequestIdLayer::new(request_id, MakeRequestUuid))
        .layer(axum::middleware::map_request(plain_request_id))
        .layer(axum::middleware::from_fn(trace_request))
}

/// The span of a request from outside (a client at the gateway), joined to the client's trace
/// when it sends `traceparent`. Internal calls get theirs where the service credential is
/// checked (`require_service_token`), probes and scrapes none.
async fn trace_request(request: axum::extract::Request, next: axum::middleware::Next) -> Response {
    let path = request.uri().path();
    let probe = matches!(path, "/healthz" | "/readyz" | "/metrics");
    if !bazaar_bus::trace::enabled() || probe || path.starts_with("/internal/") {
        return next.run(request).await;
    }
    let span = call_trace::server_span(request.method(), path, request.headers());
    let response = next.run(request).instrument(span.clone()).await;
    call_trace::record_status(&span, response.status());
    response
}

/// The longest client-chosen request id kept (a UUID is 36 characters).
pub const MAX_REQUEST_ID_LEN: usize = 64;

/// A client's `x-request-id` is kept only when short and plain (letters, digits, `-_.:`);
/// otherwise it is dropped and a fresh UUID takes its place, so logs and echoed headers never
/// carry what a client smuggled in.
async fn plain_request_id(mut request: axum::extract::Request) -> axum::extract::Request {
    let plain = |v: &axum::http::HeaderValue| {
        let bytes = v.as_bytes();
        !bytes.is_empty()
            && bytes.len() <= MAX_REQUEST_ID_LEN
            && bytes
                .iter()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b':'))
    };
    let headers = request.headers_mut();
    let mut values = headers.get_all("x-request-id").iter();
    let keep = match (values.next(), values.next()) {
        (Some(v), None) => plain(v),
        (None, _) => true,
        (Some(_), Some(_)) => false,
    };
    if !keep {
        headers.remove("x-request-id");
    }
    request
}

/// Serves `router` until `stop` fires, then stops accepting and drains in-flight requests.
pub async fn serve(
    listener: TcpListener,
    router: Router,
    stop: CancellationToken,
) -> std::io::Result<()> {
    axum::serve(
        listener,
        router.into_make_service_with_connect_info::<std::net::SocketAddr>(),
    )
    .with_graceful_shutdown(async move { stop.cancelled().await })
    .await
}
