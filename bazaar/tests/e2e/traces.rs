//! One trace per order, as an operator sees it: bazaar runs as its own processes (`bazaar
//! serve`, all services in one or one per service) with the standard `OTEL_*` variables
//! pointing at an OTLP receiver this test runs (HTTP/protobuf or gRPC). A client sends
//! `traceparent` with placeOrder, and the received spans must form the saga's trace: gateway →
//! orders → outbox publish → catalogue reservation → orders confirmation → notification, one
//! trace id, every parent link in place. The log lines written on the way carry the ids.
//!
//! The tracer provider is process-wide, which is why bazaar runs in child processes here.

#[path = "traces/otlp.rs"]
mod otlp;
#[path = "traces/saga.rs"]
mod saga;

use std::path::Path;
use std::time::Duration;

use crate::support::processes::{Cluster, bounded};
use crate::support::shop::{ORDER, PLACE_ORDER, address};
use crate::support::{Backend, Environment, NATS_URL, TestApp, eventually, str};
use otlp::{INTERNAL, Receiver, SERVER, Span};
use saga::{ClientSpan, one, received_saga};
use serde_json::{Value, json};

const LIMIT: Duration = Duration::from_secs(180);

/// The variables a user sets to export to `receiver` (batches sent every 100 ms).
fn otel_env(receiver: &Receiver, protocol: &str) -> Vec<(&'static str, String)> {
    vec![
        ("OTEL_EXPORTER_OTLP_ENDPOINT", receiver.endpoint.clone()),
        ("OTEL_EXPORTER_OTLP_PROTOCOL", protocol.to_owned()),
        ("OTEL_BSP_SCHEDULE_DELAY", "100".to_owned()),
    ]
}

/// Signs up a customer, creates a product as admin, and places an order with the client's
/// trace headers; returns the customer's token and the order id.
async fn place_traced_order(app: &TestApp, client: &ClientSpan) -> (String, String) {
    let admin = app.admin_token().await;
    let (token, _, _) = app.register("tracy@example.com", "Tracy").await;
    let product = app.product(&admin, "Teapot", "kitchen", 2500, 5).await;
    let body = json!({"query": PLACE_ORDER, "variables": {"input": {
        "items": [{"productId": product, "quantity": 1}], "shippingAddress": address()}}});
    let response = traced(app, &token, client, &body).await;
    let id = str(&response["data"]["placeOrder"]["id"]);
    let order = app.settled(&token, &id).await;
    assert_eq!(order["status"], "CONFIRMED", "{order}");
    (token, id)
}

/// Posts a GraphQL request as `token` with the client's trace headers; it must succeed.
async fn traced(app: &TestApp, token: &str, client: &ClientSpan, body: &Value) -> Value {
    let response: Value = app
        .http
        .post(format!("{}/graphql", app.base))
        .bearer_auth(token)
        .header("traceparent", client.traceparent())
        .header("tracestate", "shop=checkout")
        .json(body)
        .send()
        .await
        .expect("request")
        .json()
        .await
        .expect("json");
    assert!(response.get("errors").is_none(), "{response:#}");
    response
}

/// A read whose nested fields load through the gateway's batch loaders (spawned tasks): their
/// internal calls must hang under the request, not start traces of their own.
async fn loader_calls_join_the_request(
    app: &TestApp,
    receiver: &Receiver,
    token: &str,
    order: &str,
) {
    let client = ClientSpan::new();
    let body = json!({"query": ORDER, "variables": {"id": order}});
    traced(app, token, &client, &body).await;
    let found = receiver.trace_until(&client.trace_id, |spans| {
        let edge = one(spans, SERVER, "POST /graphql", &client.span_id, None)?;
        let field = one(spans, INTERNAL, "Query.order", &edge.span_id, None)?;
        let batch = spans
            .iter()
            .find(|s| s.name == "catalog products-by-id")
            .ok_or("no catalog products-by-id call")?;
        // The loader's call hangs somewhere under the root field.
        let mut parent = batch.parent_span_id.clone();
        while parent != field.span_id {
            parent = spans
                .iter()
                .find(|s| s.span_id == parent)
                .map(|s| s.parent_span_id.clone())
                .ok_or_else(|| format!("the batch call's ancestor {parent} is not in the trace"))?;
        }
        Ok(())
    });
    if let Err((why, spans)) = found.await {
        panic!("loader trace: {why}: {spans:#?}");
    }
}

/// One process with every service: spans, then the log lines written inside them.
async fn single_process(backend: Backend, receiver: Receiver, protocol: &str, json_log: bool) {
    let Some(env) = Environment::new(backend).await else {
        return;
    };
    bounded(LIMIT, async {
        let log = env.data_dir.path().join("stdout.log");
        let mut vars = otel_env(&receiver, protocol);
        vars.push(("OTEL_SERVICE_NAME", "shop".to_owned()));
        vars.push(("BAZAAR_LOG", "info".to_owned()));
        let format = if json_log { "json" } else { "text" };
        vars.push(("BAZAAR_LOG_FORMAT", format.to_owned()));
        let app = env.start_process_with(&vars, Some(&log)).await;
        let client = ClientSpan::new();
        let (token, order) = place_traced_order(&app, &client).await;
        let saga = received_saga(&receiver, &client).await;
        assert_eq!(saga.edge.service, "shop");
        assert_eq!(saga.notify.service, "shop");
        assert_eq!(saga.reserve.attributes["messaging.message.id"].len(), 36);
        // The log: the orders service's line is in its span, the catalogue's in its consumer's.
        logged_in(
            &log,
            json_log,
            "order placed",
            &order,
            &client,
            &saga.served,
        );
        logged_in(
            &log,
            json_log,
            "stock reserved",
            &order,
            &client,
            &saga.reserve,
        );
        loader_calls_join_the_request(&app, &receiver, &token, &order).await;
        drop(app);
    })
    .await;
    env.cleanup().await;
}

/// Asserts that the log line `message` about `order` carries the trace id and `span`'s id.
fn logged_in(log: &Path, json: bool, message: &str, order: &str, client: &ClientSpan, span: &Span) {
    let text = std::fs::read_to_string(log).expect("log");
    let line = text
        .lines()
        .find(|l| l.contains(message) && l.contains(order))
        .unwrap_or_else(|| panic!("no {message:?} line for {order} in the log:\n{text}"));
    if json {
        let line: Value = serde_json::from_str(line).expect("a JSON log line");
        assert_eq!(line["trace_id"], client.trace_id.as_str(), "{line}");
        assert_eq!(line["span_id"], span.span_id.as_str(), "{line}");
    } else {
        let ids = format!("trace_id={} span_id={} ", client.trace_id, span.span_id);
        assert!(line.starts_with(&ids), "{line:?} should start with {ids}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn embedded_http_protobuf_json_log() {
    single_process(
        Backend::Embedded,
        Receiver::http().await,
        "http/protobuf",
        true,
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn embedded_grpc_text_log() {
    single_process(Backend::Embedded, Receiver::grpc().await, "grpc", false).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn postgres_nats_redis_grpc() {
    single_process(Backend::Real, Receiver::grpc().await, "grpc", true).await;
}

/// Spans still queued when the process is asked to stop are sent before it exits: with a
/// batch delay of ten minutes, only the shutdown's flush can deliver the saga.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn queued_spans_are_sent_on_shutdown() {
    let Some(env) = Environment::new(Backend::Embedded).await else {
        return;
    };
    let receiver = Receiver::http().await;
    bounded(LIMIT, async {
        let mut vars = otel_env(&receiver, "http/protobuf");
        vars.retain(|(k, _)| *k != "OTEL_BSP_SCHEDULE_DELAY");
        vars.push(("OTEL_BSP_SCHEDULE_DELAY", "600000".to_owned()));
        let app = env.start_process_with(&vars, None).await;
        let client = ClientSpan::new();
        let (token, _) = place_traced_order(&app, &client).await;
        // The notification is the saga's last step: once it is stored, its span has ended.
        let kinds = "{ notifications { edges { node { kind } } } }";
        eventually(Duration::from_secs(30), || async {
            let data = app.ok(Some(&token), kinds, json!({})).await;
            let edges = data["notifications"]["edges"]
                .as_array()
                .cloned()
                .unwrap_or_default();
            edges
                .iter()
                .any(|e| e["node"]["kind"] == "ORDER_UPDATE")
                .then_some(())
        })
        .await;
        assert_eq!(
            receiver.requests(),
            0,
            "nothing is sent before the batch delay"
        );
        assert!(app.terminate().await, "bazaar exits cleanly on SIGTERM");
        received_saga(&receiver, &client).await;
    })
    .await;
    env.cleanup().await;
}

/// Every service in its own process (two replicas of catalog and orders), PostgreSQL, NATS
/// and Redis: the trace crosses processes over HTTP and JetStream, and each span names the
/// process that made it (no `OTEL_SERVICE_NAME`: bazaar names them after their services).
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn across_processes_http_protobuf() {
    let Some(env) = Environment::new(Backend::Real).await else {
        return;
    };
    let receiver = Receiver::http().await;
    bounded(LIMIT, async {
        let cluster = Cluster::start_with(
            &env,
            "BAZAAR_NATS_URL",
            NATS_URL,
            &otel_env(&receiver, "http/protobuf"),
        )
        .await;
        let client = ClientSpan::new();
        place_traced_order(&cluster.gateway, &client).await;
        let saga = received_saga(&receiver, &client).await;
        assert_eq!(saga.edge.service, "bazaar-gateway");
        assert_eq!(saga.field.service, "bazaar-gateway");
        assert_eq!(saga.call.service, "bazaar-gateway");
        assert_eq!(saga.served.service, "bazaar-orders");
        assert_eq!(saga.placed.service, "bazaar-orders");
        assert_eq!(saga.reserve.service, "bazaar-catalog");
        assert_eq!(saga.reserved.service, "bazaar-catalog");
        assert_eq!(saga.confirm.service, "bazaar-orders");
        assert_eq!(saga.changed.service, "bazaar-orders");
        assert_eq!(saga.notify.service, "bazaar-notifications");
    })
    .await;
    env.cleanup().await;
}
