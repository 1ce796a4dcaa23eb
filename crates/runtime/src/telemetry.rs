//! Logging, tracing export and the process-wide Prometheus recorder.

use std::sync::OnceLock;

use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};
use opentelemetry_sdk::trace::SdkTracerProvider;
use tracing::Metadata;
use tracing_subscriber::EnvFilter;
use tracing_subscriber::Layer as _;
use tracing_subscriber::filter::{FilterExt as _, filter_fn};
use tracing_subscriber::layer::SubscriberExt as _;
use tracing_subscriber::util::SubscriberInitExt as _;

use crate::log_format::WithTraceIds;
use crate::otel;

/// Installs the log subscriber once, without trace export (commands other than `serve`).
pub fn init_logging(json: bool) {
    let _ = install(json, None);
}

/// Installs the log subscriber and, when the `OTEL_*` variables ask for it, OTLP trace export
/// (see [`otel`]). `service_name` names this process's spans unless `OTEL_SERVICE_NAME` does.
/// Must run inside the tokio runtime. Keep the returned handle and shut it down on exit, so
/// the last spans are sent.
pub fn init_tracing(json: bool, service_name: &str) -> anyhow::Result<Telemetry> {
    let wire = otel::wanted(|name| std::env::var(name).ok()).map_err(anyhow::Error::msg)?;
    let provider = match wire {
        None => None,
        Some(wire) => Some(otel::install(wire, service_name).map_err(anyhow::Error::msg)?),
    };
    let telemetry = Telemetry {
        provider: provider.as_ref().map(|(p, _)| p.clone()),
    };
    if install(json, provider.map(|(_, tracer)| tracer))
        && let Some(wire) = wire
    {
        bazaar_bus::trace::enable();
        tracing::info!(protocol = ?wire, "exporting traces with OTLP");
    }
    Ok(telemetry)
}

/// The spans bazaar creates for export name their kind (`otel.kind`); only those, and
/// warnings and errors (as span events), reach the OpenTelemetry layer.
fn exported(meta: &Metadata<'_>) -> bool {
    if meta.is_span() {
        meta.fields().field("otel.kind").is_some()
    } else {
        *meta.level() <= tracing::Level::WARN
    }
}

/// Installs the subscriber; false when one was installed already (tests embedding apps).
fn install(json: bool, tracer: Option<opentelemetry_sdk::trace::Tracer>) -> bool {
    let filter = EnvFilter::try_from_env("BAZAAR_LOG").unwrap_or_else(|_| EnvFilter::new("info"));
    // The log shows events at the chosen level, not the exported spans: their ids are on
    // each line instead (WithTraceIds), which keeps lines short.
    let filter = filter.and(filter_fn(|meta| !(meta.is_span() && exported(meta))));
    let spans = tracer.map(|tracer| {
        tracing_opentelemetry::layer()
            .with_tracer(tracer)
            // Busy/idle timings, thread and source location attributes: per-span work and
            // bytes that a trace of this service does not need.
            .with_tracked_inactivity(false)
            .with_threads(false)
            .with_location(false)
            .with_filter(filter_fn(exported))
    });
    let registry = tracing_subscriber::registry().with(spans);
    let log = tracing_subscriber::fmt::layer().with_target(false);
    if json {
        let log = log
            .json()
            .map_event_format(|f| WithTraceIds::new(f, true))
            .with_filter(filter);
        registry.with(log).try_init().is_ok()
    } else {
        let log = log
            .map_event_format(|f| WithTraceIds::new(f, false))
            .with_filter(filter);
        registry.with(log).try_init().is_ok()
    }
}

/// The trace exporter of this process, if any.
pub struct Telemetry {
    provider: Option<SdkTracerProvider>,
}

impl Telemetry {
    /// Sends the spans still queued and stops exporting.
    pub async fn shutdown(self) {
        let Some(provider) = self.provider else {
            return;
        };
        // The batch processor answers on the runtime while shutdown blocks its caller.
        let done = tokio::task::spawn_blocking(move || provider.shutdown()).await;
        if let Ok(Err(e)) = done {
            eprintln!("bazaar: sending the last spans failed: {e}");
        }
    }
}

/// The process's metrics recorder. Histograms get explicit buckets so that they aggregate
/// across replicas (summaries do not).
pub fn metrics() -> PrometheusHandle {
    static HANDLE: OnceLock<PrometheusHandle> = OnceLock::new();
    HANDLE
        .get_or_init(|| {
            let builder = PrometheusBuilder::new()
                .set_buckets_for_metric(
                    Matcher::Suffix("duration_seconds".into()),
                    &[
                        0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0,
                        10.0,
                    ],
                )
                .unwrap_or_else(|_| PrometheusBuilder::new());
            let recorder = builder.build_recorder();
            let handle = recorder.handle();
            // Fails only when another recorder is installed (tests embedding several apps);
            // the handle still renders this recorder's view in that case.
            let _ = metrics::set_global_recorder(recorder);
            // HELP lines exist only for described metrics (promtool flags the rest).
            crate::metric_help::describe_all();
            handle
        })
        .clone()
}
