//! Log lines written inside a traced span carry that span's `trace_id` and `span_id`, in the
//! text and the JSON format alike, so a log line leads to its trace and a trace to its logs.

use std::fmt;

use opentelemetry::trace::{SpanId, TraceContextExt, TraceId};
use tracing::{Event, Subscriber};
use tracing_subscriber::fmt::format::Writer;
use tracing_subscriber::fmt::{FmtContext, FormatEvent, FormatFields};
use tracing_subscriber::registry::LookupSpan;

/// Wraps a log formatter (text or JSON) and adds the ids of the active OpenTelemetry span.
pub struct WithTraceIds<F> {
    inner: F,
    json: bool,
}

impl<F> WithTraceIds<F> {
    pub fn new(inner: F, json: bool) -> Self {
        WithTraceIds { inner, json }
    }
}

/// The active span's ids. The OpenTelemetry layer makes a span's context current while the
/// span is entered, so this sees it whatever tracing spans (filtered out of export or not)
/// sit in between.
fn current_ids() -> Option<(TraceId, SpanId)> {
    if !bazaar_bus::trace::enabled() {
        return None;
    }
    let context = opentelemetry::Context::current();
    let span = context.span();
    let span = span.span_context();
    span.is_valid().then(|| (span.trace_id(), span.span_id()))
}

impl<S, N, F> FormatEvent<S, N> for WithTraceIds<F>
where
    S: Subscriber + for<'a> LookupSpan<'a>,
    N: for<'a> FormatFields<'a> + 'static,
    F: FormatEvent<S, N>,
{
    fn format_event(
        &self,
        ctx: &FmtContext<'_, S, N>,
        mut writer: Writer<'_>,
        event: &Event<'_>,
    ) -> fmt::Result {
        let Some((trace_id, span_id)) = current_ids() else {
            return self.inner.format_event(ctx, writer, event);
        };
        if !self.json {
            // In front: the text formatter owns the rest of the line, colours included.
            write!(writer, "trace_id={trace_id} span_id={span_id} ")?;
            return self.inner.format_event(ctx, writer, event);
        }
        let mut line = String::new();
        self.inner
            .format_event(ctx, Writer::new(&mut line), event)?;
        match line.strip_prefix('{') {
            // The JSON formatter writes one object per line: the ids become its first keys.
            Some(fields) => write!(
                writer,
                "{{\"trace_id\":\"{trace_id}\",\"span_id\":\"{span_id}\",{fields}"
            ),
            None => writer.write_str(&line),
        }
    }
}

#[cfg(test)]
mod tests {
    use std::io;
    use std::sync::{Arc, Mutex};

    use opentelemetry::trace::TracerProvider as _;
    use opentelemetry_sdk::trace::SdkTracerProvider;
    use tracing_opentelemetry::OpenTelemetrySpanExt;
    use tracing_subscriber::layer::SubscriberExt;

    use super::*;

    #[derive(Clone, Default)]
    struct Buffer(Arc<Mutex<Vec<u8>>>);

    impl io::Write for Buffer {
        fn write(&mut self, bytes: &[u8]) -> io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(bytes);
            Ok(bytes.len())
        }
        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }

    /// Logs one line outside any span and one inside a traced span; returns the output and
    /// the traced span's ids.
    fn log_two_lines(json: bool) -> (String, String, String) {
        bazaar_bus::trace::enable();
        let provider = SdkTracerProvider::builder().build();
        let otel = tracing_opentelemetry::layer().with_tracer(provider.tracer("test"));
        let buffer = Buffer::default();
        let writer = buffer.clone();
        let fmt = tracing_subscriber::fmt::layer()
            .with_writer(move || writer.clone())
            .with_ansi(false);
        let subscriber = tracing_subscriber::registry().with(otel);
        let ids = if json {
            let fmt = fmt.json().map_event_format(|f| WithTraceIds::new(f, true));
            tracing::subscriber::with_default(subscriber.with(fmt), emit)
        } else {
            let fmt = fmt.map_event_format(|f| WithTraceIds::new(f, false));
            tracing::subscriber::with_default(subscriber.with(fmt), emit)
        };
        let out = String::from_utf8(buffer.0.lock().unwrap().clone()).unwrap();
        (out, ids.0, ids.1)
    }

    fn emit() -> (String, String) {
        tracing::info!("outside");
        let span = tracing::info_span!("work", otel.kind = "internal");
        let _entered = span.enter();
        tracing::info!("inside");
        let context = span.context();
        let span = context.span();
        let span = span.span_context();
        (span.trace_id().to_string(), span.span_id().to_string())
    }

    #[test]
    fn text_lines_start_with_the_ids() {
        let (out, trace_id, span_id) = log_two_lines(false);
        let lines: Vec<&str> = out.lines().collect();
        assert_eq!(lines.len(), 2, "{out}");
        assert!(!lines[0].contains("trace_id"), "{out}");
        assert!(
            lines[1].starts_with(&format!("trace_id={trace_id} span_id={span_id} ")),
            "{out}"
        );
        assert!(lines[1].ends_with("inside"), "{out}");
        assert_ne!(trace_id, TraceId::INVALID.to_string());
    }

    #[test]
    fn json_lines_carry_the_ids_as_keys() {
        let (out, trace_id, span_id) = log_two_lines(true);
        let lines: Vec<serde_json::Value> = out
            .lines()
            .map(|l| serde_json::from_str(l).expect(l))
            .collect();
        assert_eq!(lines.len(), 2, "{out}");
        assert!(lines[0].get("trace_id").is_none(), "{out}");
        assert_eq!(lines[1]["trace_id"], trace_id.as_str(), "{out}");
        assert_eq!(lines[1]["span_id"], span_id.as_str(), "{out}");
        assert_eq!(lines[1]["fields"]["message"], "inside", "{out}");
    }
}
