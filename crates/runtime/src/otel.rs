//! OTLP trace export, configured by the standard OpenTelemetry environment variables and off
//! unless an endpoint is set.
//!
//! On: `OTEL_EXPORTER_OTLP_ENDPOINT` (or `OTEL_EXPORTER_OTLP_TRACES_ENDPOINT`) is set, and
//! neither `OTEL_SDK_DISABLED=true` nor `OTEL_TRACES_EXPORTER=none`. The protocol is
//! `OTEL_EXPORTER_OTLP_[TRACES_]PROTOCOL`: `http/protobuf` (the specification's default) or
//! `grpc`. The SDK itself reads the rest: `OTEL_SERVICE_NAME`, `OTEL_RESOURCE_ATTRIBUTES`,
//! `OTEL_TRACES_SAMPLER`(`_ARG`), `OTEL_EXPORTER_OTLP_HEADERS`, `_TIMEOUT`, `OTEL_BSP_*`.

use opentelemetry::trace::TracerProvider as _;
use opentelemetry_otlp::{Protocol, SpanExporter, WithExportConfig as _};
use opentelemetry_sdk::Resource;
use opentelemetry_sdk::propagation::TraceContextPropagator;
use opentelemetry_sdk::trace::SdkTracerProvider;
use opentelemetry_sdk::trace::span_processor_with_async_runtime::BatchSpanProcessor;

/// How spans leave the process.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Wire {
    Grpc,
    HttpProtobuf,
}

/// What the environment asks for: `None` when export is off.
pub fn wanted(env: impl Fn(&str) -> Option<String>) -> Result<Option<Wire>, String> {
    let var = |name: &str| env(name).filter(|v| !v.trim().is_empty());
    if var("OTEL_SDK_DISABLED").is_some_and(|v| v.trim().eq_ignore_ascii_case("true")) {
        return Ok(None);
    }
    match var("OTEL_TRACES_EXPORTER").as_deref().map(str::trim) {
        None | Some("otlp") => {}
        Some("none") => return Ok(None),
        Some(other) => {
            return Err(format!(
                "OTEL_TRACES_EXPORTER={other:?} is not supported (otlp or none)"
            ));
        }
    }
    if var("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT")
        .or_else(|| var("OTEL_EXPORTER_OTLP_ENDPOINT"))
        .is_none()
    {
        return Ok(None);
    }
    let (name, protocol) = match var("OTEL_EXPORTER_OTLP_TRACES_PROTOCOL") {
        Some(p) => ("OTEL_EXPORTER_OTLP_TRACES_PROTOCOL", Some(p)),
        None => (
            "OTEL_EXPORTER_OTLP_PROTOCOL",
            var("OTEL_EXPORTER_OTLP_PROTOCOL"),
        ),
    };
    match protocol.as_deref().map(str::trim) {
        None | Some("http/protobuf") => Ok(Some(Wire::HttpProtobuf)),
        Some("grpc") => Ok(Some(Wire::Grpc)),
        Some(other) => Err(format!(
            "{name}={other:?} is not supported (grpc or http/protobuf)"
        )),
    }
}

/// Builds the exporter and the provider (within the tokio runtime: the batch processor and
/// both clients run on it), installs the W3C propagator, and returns the provider and the
/// tracer for the tracing layer.
pub fn install(
    wire: Wire,
    default_service_name: &str,
) -> Result<(SdkTracerProvider, opentelemetry_sdk::trace::Tracer), String> {
    let exporter = match wire {
        Wire::Grpc => SpanExporter::builder().with_tonic().build(),
        Wire::HttpProtobuf => SpanExporter::builder()
            .with_http()
            .with_protocol(Protocol::HttpBinary)
            .build(),
    }
    .map_err(|e| format!("cannot set up OTLP trace export: {e}"))?;
    let named_by_env = std::env::var("OTEL_SERVICE_NAME").is_ok_and(|v| !v.is_empty())
        || std::env::var("OTEL_RESOURCE_ATTRIBUTES").is_ok_and(|v| v.contains("service.name="));
    let resource = if named_by_env {
        Resource::builder().build()
    } else {
        Resource::builder()
            .with_service_name(default_service_name.to_owned())
            .build()
    };
    let processor =
        BatchSpanProcessor::builder(exporter, opentelemetry_sdk::runtime::Tokio).build();
    // The sampler comes from OTEL_TRACES_SAMPLER (default: parent-based, always on).
    let provider = SdkTracerProvider::builder()
        .with_span_processor(processor)
        .with_resource(resource)
        .build();
    let tracer = provider.tracer("bazaar");
    opentelemetry::global::set_text_map_propagator(TraceContextPropagator::new());
    opentelemetry::global::set_tracer_provider(provider.clone());
    Ok((provider, tracer))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn wanted_with(vars: &[(&str, &str)]) -> Result<Option<Wire>, String> {
        wanted(|name| {
            vars.iter()
                .find(|(k, _)| *k == name)
                .map(|(_, v)| (*v).to_owned())
        })
    }

    #[test]
    fn off_without_an_endpoint() {
        assert_eq!(wanted_with(&[]), Ok(None));
        assert_eq!(wanted_with(&[("OTEL_SERVICE_NAME", "shop")]), Ok(None));
        assert_eq!(
            wanted_with(&[("OTEL_EXPORTER_OTLP_PROTOCOL", "grpc")]),
            Ok(None)
        );
    }

    #[test]
    fn endpoint_and_protocol_choose_the_wire() {
        let endpoint = ("OTEL_EXPORTER_OTLP_ENDPOINT", "http://collector:4318");
        assert_eq!(wanted_with(&[endpoint]), Ok(Some(Wire::HttpProtobuf)));
        assert_eq!(
            wanted_with(&[endpoint, ("OTEL_EXPORTER_OTLP_PROTOCOL", "grpc")]),
            Ok(Some(Wire::Grpc))
        );
        assert_eq!(
            wanted_with(&[
                ("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "http://c:4317"),
                ("OTEL_EXPORTER_OTLP_PROTOCOL", "http/protobuf"),
                ("OTEL_EXPORTER_OTLP_TRACES_PROTOCOL", "grpc"),
            ]),
            Ok(Some(Wire::Grpc))
        );
        let bad = wanted_with(&[endpoint, ("OTEL_EXPORTER_OTLP_PROTOCOL", "http/json")]);
        assert!(bad.unwrap_err().contains("OTEL_EXPORTER_OTLP_PROTOCOL"));
    }

    #[test]
    fn disabled_by_the_standard_switches() {
        let endpoint = ("OTEL_EXPORTER_OTLP_ENDPOINT", "http://collector:4318");
        assert_eq!(
            wanted_with(&[endpoint, ("OTEL_SDK_DISABLED", "true")]),
            Ok(None)
        );
        assert_eq!(
            wanted_with(&[endpoint, ("OTEL_TRACES_EXPORTER", "none")]),
            Ok(None)
        );
        assert!(wanted_with(&[endpoint, ("OTEL_TRACES_EXPORTER", "zipkin")]).is_err());
    }
}
