//! W3C trace context carried inside events, so the span that applies an event joins the trace
//! of the request that caused it, whatever the transport (the envelope travels unchanged
//! through the outbox, the embedded log and JetStream).
//!
//! Tracing is off until the process installs an exporter ([`enable`]); until then every
//! function here returns at once without creating a span, so an untraced process pays one
//! relaxed atomic load per event.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};

use opentelemetry::propagation::Extractor;
use serde::{Deserialize, Serialize};
use tracing::Span;
use tracing_opentelemetry::OpenTelemetrySpanExt;

use crate::Envelope;

static ENABLED: AtomicBool = AtomicBool::new(false);

/// Turns tracing on for this process: called once an OpenTelemetry layer and propagator are
/// installed.
pub fn enable() {
    ENABLED.store(true, Ordering::Relaxed);
}

/// Whether spans are recorded and context propagated in this process.
#[inline]
pub fn enabled() -> bool {
    ENABLED.load(Ordering::Relaxed)
}

/// The W3C `traceparent` and `tracestate` of the span an event was recorded (or published) in.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TraceContext {
    pub traceparent: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub tracestate: String,
}

impl TraceContext {
    /// The context of the current span, when tracing is on and there is one.
    pub fn current() -> Option<TraceContext> {
        if !enabled() {
            return None;
        }
        Self::of(&Span::current())
    }

    /// The context of `span` (None for a disabled span or when tracing is off).
    pub fn of(span: &Span) -> Option<TraceContext> {
        if !enabled() || span.is_none() {
            return None;
        }
        let mut fields = HashMap::new();
        opentelemetry::global::get_text_map_propagator(|p| {
            p.inject_context(&span.context(), &mut fields)
        });
        Some(TraceContext {
            traceparent: fields.remove("traceparent")?,
            tracestate: fields.remove("tracestate").unwrap_or_default(),
        })
    }

    /// The remote context this describes, to parent a span on.
    pub fn context(&self) -> opentelemetry::Context {
        opentelemetry::global::get_text_map_propagator(|p| p.extract(self))
    }
}

impl Extractor for TraceContext {
    fn get(&self, key: &str) -> Option<&str> {
        match key {
            "traceparent" => Some(&self.traceparent),
            "tracestate" if !self.tracestate.is_empty() => Some(&self.tracestate),
            _ => None,
        }
    }

    fn keys(&self) -> Vec<&str> {
        vec!["traceparent", "tracestate"]
    }
}

/// A messaging span (OpenTelemetry's conventions) named `<operation> <event type>` for
/// `event`, parented on the context the event carries; the two users differ only in the
/// operation and the one attribute that says who acts. Nothing is created while tracing is off.
macro_rules! messaging_span {
    ($name:literal, $kind:literal, $operation:literal, $event:expr, $($who:tt)+) => {{
        let event: &Envelope = $event;
        if enabled() {
            let span = tracing::info_span!(
                $name,
                otel.name = %format_args!("{} {}", $name, event.event_type),
                otel.kind = $kind,
                otel.status_code = tracing::field::Empty,
                messaging.system = "bazaar",
                messaging.operation.type = $operation,
                messaging.destination.name = %event.event_type,
                messaging.message.id = %event.id,
                $($who)+
            );
            parent_on(&span, event);
            span
        } else {
            Span::none()
        }
    }};
}

/// The span in which the relay publishes `event`, a child of the span that recorded it. Its
/// context replaces the event's, so consumers hang under the publish.
pub(crate) fn publish_span(service: &str, event: &Envelope) -> Span {
    messaging_span!(
        "publish",
        "producer",
        "send",
        event,
        bazaar.service = service
    )
}

/// The span in which `consumer` applies `event`, a child of the span that published it.
pub(crate) fn process_span(consumer: &str, event: &Envelope) -> Span {
    messaging_span!(
        "process",
        "consumer",
        "process",
        event,
        messaging.consumer.group.name = consumer
    )
}

/// Parents `span` on the context `event` carries; an event without one starts a new trace.
fn parent_on(span: &Span, event: &Envelope) {
    if let Some(trace) = &event.trace {
        set_parent(span, trace);
    }
}

/// `future` in the current trace, for work handed to another task: a spawned task starts
/// outside every span, and what it calls would otherwise begin traces of its own.
pub fn in_current_trace<F: std::future::Future>(
    future: F,
) -> opentelemetry::context::WithContext<F> {
    use opentelemetry::context::FutureExt as _;
    future.with_current_context()
}

/// Marks `span` as failed (no-op on a disabled span).
pub fn fail(span: &Span) {
    span.record("otel.status_code", "error");
}

/// Parents `span` on a context received from elsewhere (an event, an HTTP header); must run
/// before the span is first entered, which is the only way it can fail.
pub fn set_parent(span: &Span, parent: &TraceContext) {
    if enabled() {
        let _ = span.set_parent(parent.context());
    }
}

#[cfg(test)]
mod tests {
    use std::time::Instant;

    use super::*;

    /// Tracing off (nothing in this test binary turns it on): the traced paths of an event
    /// (recording, publishing, applying) create nothing, and cost a flag check each.
    #[test]
    fn off_creates_nothing_and_costs_next_to_nothing() {
        let event = Envelope::new("orders", "OrderPlaced", 1, "o-1", serde_json::json!({}));
        assert!(!enabled());
        assert!(TraceContext::current().is_none());
        assert!(publish_span("orders", &event).is_none());
        assert!(process_span("catalog", &event).is_none());

        const N: u32 = 1_000_000;
        let started = Instant::now();
        for _ in 0..N {
            let event = std::hint::black_box(&event);
            std::hint::black_box(TraceContext::current());
            std::hint::black_box(publish_span("orders", event));
            std::hint::black_box(process_span("catalog", event));
        }
        let per_event = started.elapsed() / N;
        println!("tracing off: {per_event:?} per event on the traced paths");
        // Even unoptimised, on a busy machine, far below the ~5 ms of CPU an order costs.
        assert!(per_event.as_nanos() < 1_000, "{per_event:?}");
    }
}
