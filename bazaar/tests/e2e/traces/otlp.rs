//! A tiny OTLP trace receiver run by the test itself: HTTP/protobuf (`POST /v1/traces`) or
//! gRPC (`TraceService/Export`), keeping every span it is sent, decoded with the
//! `opentelemetry-proto` types a collector uses.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::body::Bytes;
use axum::http::{StatusCode, header};
use axum::response::IntoResponse;
use opentelemetry_proto::tonic::collector::trace::v1::trace_service_server::{
    TraceService, TraceServiceServer,
};
use opentelemetry_proto::tonic::collector::trace::v1::{
    ExportTraceServiceRequest, ExportTraceServiceResponse,
};
use opentelemetry_proto::tonic::common::v1::any_value::Value;
use prost::Message;
use tokio::net::TcpListener;

/// One received span, flattened.
#[derive(Debug, Clone)]
pub struct Span {
    pub trace_id: String,
    pub span_id: String,
    /// Empty for a root span.
    pub parent_span_id: String,
    pub name: String,
    /// OTLP's enum: 1 internal, 2 server, 3 client, 4 producer, 5 consumer.
    pub kind: i32,
    /// `service.name` of the process that sent it.
    pub service: String,
    pub attributes: HashMap<String, String>,
}

pub const SERVER: i32 = 2;
pub const CLIENT: i32 = 3;
pub const PRODUCER: i32 = 4;
pub const CONSUMER: i32 = 5;
pub const INTERNAL: i32 = 1;

type Received = Arc<Mutex<Vec<Span>>>;

/// A running receiver; its task ends when it is dropped.
pub struct Receiver {
    /// What `OTEL_EXPORTER_OTLP_ENDPOINT` is set to.
    pub endpoint: String,
    received: Received,
    requests: Arc<Mutex<usize>>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for Receiver {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl Receiver {
    /// Accepts `POST /v1/traces` with an `application/x-protobuf` body.
    pub async fn http() -> Receiver {
        let received = Received::default();
        let requests = Arc::new(Mutex::new(0));
        let (spans, count) = (received.clone(), requests.clone());
        let app = axum::Router::new().route(
            "/v1/traces",
            axum::routing::post(move |headers: axum::http::HeaderMap, body: Bytes| {
                let (spans, count) = (spans.clone(), count.clone());
                async move {
                    let protobuf = headers
                        .get(header::CONTENT_TYPE)
                        .is_some_and(|v| v == "application/x-protobuf");
                    if !protobuf {
                        return (StatusCode::UNSUPPORTED_MEDIA_TYPE, "protobuf expected")
                            .into_response();
                    }
                    let Ok(request) = ExportTraceServiceRequest::decode(body) else {
                        return (StatusCode::BAD_REQUEST, "not an ExportTraceServiceRequest")
                            .into_response();
                    };
                    *count.lock().unwrap() += 1;
                    spans.lock().unwrap().extend(flatten(request));
                    let answer = ExportTraceServiceResponse::default().encode_to_vec();
                    ([(header::CONTENT_TYPE, "application/x-protobuf")], answer).into_response()
                }
            }),
        );
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let endpoint = format!("http://{}", listener.local_addr().expect("address"));
        let task = tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        Receiver {
            endpoint,
            received,
            requests,
            task,
        }
    }

    /// Serves the OTLP gRPC `TraceService`.
    pub async fn grpc() -> Receiver {
        let received = Received::default();
        let requests = Arc::new(Mutex::new(0));
        let service = Collector {
            spans: received.clone(),
            requests: requests.clone(),
        };
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let endpoint = format!("http://{}", listener.local_addr().expect("address"));
        let incoming = futures::stream::unfold(listener, |listener| async move {
            let accepted = listener.accept().await.map(|(stream, _)| stream);
            Some((accepted, listener))
        });
        let task = tokio::spawn(async move {
            let _ = tonic::transport::Server::builder()
                .add_service(TraceServiceServer::new(service))
                .serve_with_incoming(incoming)
                .await;
        });
        Receiver {
            endpoint,
            received,
            requests,
            task,
        }
    }

    /// Every span received so far.
    pub fn spans(&self) -> Vec<Span> {
        self.received.lock().unwrap().clone()
    }

    /// Polls the spans of `trace_id` (every 100 ms, for up to 30 s: export is batched) until
    /// `check` accepts them; gives what it made of them and the spans, or, after the
    /// deadline, why it did not and the spans it last saw.
    pub async fn trace_until<T>(
        &self,
        trace_id: &str,
        mut check: impl FnMut(&[Span]) -> Result<T, String>,
    ) -> Result<(T, Vec<Span>), (String, Vec<Span>)> {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let spans: Vec<Span> = self
                .spans()
                .into_iter()
                .filter(|s| s.trace_id == trace_id)
                .collect();
            match check(&spans) {
                Ok(found) => return Ok((found, spans)),
                Err(why) if Instant::now() > deadline => return Err((why, spans)),
                Err(_) => tokio::time::sleep(Duration::from_millis(100)).await,
            }
        }
    }

    /// Export requests received so far.
    pub fn requests(&self) -> usize {
        *self.requests.lock().unwrap()
    }
}

struct Collector {
    spans: Received,
    requests: Arc<Mutex<usize>>,
}

#[tonic::async_trait]
impl TraceService for Collector {
    async fn export(
        &self,
        request: tonic::Request<ExportTraceServiceRequest>,
    ) -> Result<tonic::Response<ExportTraceServiceResponse>, tonic::Status> {
        *self.requests.lock().unwrap() += 1;
        self.spans
            .lock()
            .unwrap()
            .extend(flatten(request.into_inner()));
        Ok(tonic::Response::new(ExportTraceServiceResponse::default()))
    }
}

fn flatten(request: ExportTraceServiceRequest) -> Vec<Span> {
    let mut spans = Vec::new();
    for resource_spans in request.resource_spans {
        let resource = resource_spans
            .resource
            .map(|r| attributes(&r.attributes))
            .unwrap_or_default();
        let service = resource.get("service.name").cloned().unwrap_or_default();
        for scope in resource_spans.scope_spans {
            for span in scope.spans {
                spans.push(Span {
                    trace_id: hex::encode(&span.trace_id),
                    span_id: hex::encode(&span.span_id),
                    parent_span_id: hex::encode(&span.parent_span_id),
                    name: span.name,
                    kind: span.kind,
                    service: service.clone(),
                    attributes: attributes(&span.attributes),
                });
            }
        }
    }
    spans
}

fn attributes(
    list: &[opentelemetry_proto::tonic::common::v1::KeyValue],
) -> HashMap<String, String> {
    list.iter()
        .map(|kv| {
            let value = match kv.value.as_ref().and_then(|v| v.value.as_ref()) {
                Some(Value::StringValue(s)) => s.clone(),
                Some(Value::IntValue(i)) => i.to_string(),
                Some(Value::BoolValue(b)) => b.to_string(),
                Some(Value::DoubleValue(d)) => d.to_string(),
                Some(other) => format!("{other:?}"),
                None => String::new(),
            };
            (kv.key.clone(), value)
        })
        .collect()
}
