//! Spans of HTTP calls into bazaar (a client's request at the gateway, one service calling
//! another) and the W3C `traceparent`/`tracestate` headers that join the callee's span to the
//! caller's trace. Nothing is created while tracing is off (see `bazaar_bus::trace`).

use bazaar_bus::TraceContext;
use bazaar_bus::trace::{enabled, set_parent};
use http::{HeaderMap, HeaderValue, StatusCode};
use tracing::Span;

pub const TRACEPARENT: &str = "traceparent";
pub const TRACESTATE: &str = "tracestate";
/// W3C caps `tracestate` at 32 members; a longer header is not worth parsing.
const MAX_TRACESTATE: usize = 512;

/// The span of a call to `service`'s internal operation `op`, made by this process.
pub fn client_span(service: &'static str, op: &str) -> Span {
    if !enabled() {
        return Span::none();
    }
    tracing::info_span!(
        "call",
        otel.name = %format_args!("{service} {op}"),
        otel.kind = "client",
        otel.status_code = tracing::field::Empty,
        rpc.system = "bazaar",
        rpc.service = service,
        rpc.method = op,
        http.response.status_code = tracing::field::Empty,
    )
}

/// The span of an HTTP request this process serves (named e.g. `POST /graphql`), a child of
/// the caller's span when the request carries a valid `traceparent`.
pub fn server_span(method: &http::Method, path: &str, headers: &HeaderMap) -> Span {
    if !enabled() {
        return Span::none();
    }
    let span = tracing::info_span!(
        "request",
        otel.name = %format_args!("{method} {path}"),
        otel.kind = "server",
        otel.status_code = tracing::field::Empty,
        http.request.method = %method,
        url.path = path,
        http.response.status_code = tracing::field::Empty,
    );
    if let Some(parent) = from_headers(headers) {
        set_parent(&span, &parent);
    }
    span
}

/// Records the answer's status on a client or server span; a 5xx marks the span failed.
pub fn record_status(span: &Span, status: StatusCode) {
    span.record("http.response.status_code", status.as_u16());
    if status.is_server_error() {
        bazaar_bus::trace::fail(span);
    }
}

/// The trace context a request carries. An invalid `traceparent` is ignored by the
/// propagator (the request then starts a trace of its own).
pub fn from_headers(headers: &HeaderMap) -> Option<TraceContext> {
    let traceparent = headers.get(TRACEPARENT)?.to_str().ok()?;
    let tracestate = headers
        .get(TRACESTATE)
        .and_then(|v| v.to_str().ok())
        .filter(|v| v.len() <= MAX_TRACESTATE)
        .unwrap_or_default();
    Some(TraceContext {
        traceparent: traceparent.to_owned(),
        tracestate: tracestate.to_owned(),
    })
}

/// Adds `span`'s context to outgoing headers (nothing while tracing is off).
pub fn inject(span: &Span, headers: &mut HeaderMap) {
    let Some(context) = TraceContext::of(span) else {
        return;
    };
    if let Ok(v) = HeaderValue::from_str(&context.traceparent) {
        headers.insert(TRACEPARENT, v);
    }
    if !context.tracestate.is_empty()
        && let Ok(v) = HeaderValue::from_str(&context.tracestate)
    {
        headers.insert(TRACESTATE, v);
    }
}
