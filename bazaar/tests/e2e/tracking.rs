//! Live order tracking over WebSocket (graphql-transport-ws), on both backends: a subscriber
//! sees every status step of its orders in order, and nobody else's.

use std::time::Duration;

use crate::support::shop::*;
use crate::support::{Environment, TestApp};
use futures::{SinkExt, StreamExt};
use serde_json::{Value, json};
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;

type Socket =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

/// Opens a WebSocket to the app's GraphQL endpoint speaking graphql-transport-ws.
async fn connect(app: &TestApp) -> Socket {
    let url = format!("{}/graphql", app.base.replace("http://", "ws://"));
    let mut request = url.into_client_request().expect("request");
    request.headers_mut().insert(
        "sec-websocket-protocol",
        "graphql-transport-ws".parse().expect("header"),
    );
    let (socket, _) = tokio_tungstenite::connect_async(request)
        .await
        .expect("websocket");
    socket
}

/// Opens a graphql-transport-ws session signed in with `token` and starts `query`.
async fn subscribe(app: &TestApp, token: &str, query: &str, variables: Value) -> Socket {
    let mut socket = connect(app).await;
    let init =
        json!({"type": "connection_init", "payload": {"Authorization": format!("Bearer {token}")}});
    socket
        .send(Message::text(init.to_string()))
        .await
        .expect("init");
    assert_eq!(next_message(&mut socket).await["type"], "connection_ack");
    let start = json!({"id": "1", "type": "subscribe", "payload": {"query": query, "variables": variables}});
    socket
        .send(Message::text(start.to_string()))
        .await
        .expect("subscribe");
    socket
}

async fn next_message(socket: &mut Socket) -> Value {
    loop {
        let frame = tokio::time::timeout(Duration::from_secs(20), socket.next())
            .await
            .expect("a message in time");
        match frame.expect("open").expect("frame") {
            Message::Text(text) => {
                let v: Value = serde_json::from_str(&text).expect("json");
                if v["type"] != "ping" && v["type"] != "pong" {
                    return v;
                }
            }
            Message::Ping(_) | Message::Pong(_) => {}
            other => panic!("unexpected frame {other:?}"),
        }
    }
}

/// The next status this subscription reports.
async fn next_status(socket: &mut Socket) -> String {
    let message = next_message(socket).await;
    assert_eq!(message["type"], "next", "{message}");
    message["payload"]["data"]["orderUpdated"]["status"]
        .as_str()
        .expect("status")
        .to_owned()
}

const WATCH: &str =
    "subscription($id: ID) { orderUpdated(id: $id) { id status statusReason totalCents } }";

async fn order_updates_arrive_in_order(env: &Environment) {
    let app = env.start().await;
    let admin = app.admin_token().await;
    let (ann, _, _) = app.register("ann@example.com", "Ann").await;
    let (bob, _, _) = app.register("bob@example.com", "Bob").await;
    let kettle = app.product(&admin, "Kettle", "kitchen", 3000, 5).await;

    let mut mine = subscribe(&app, &ann, WATCH, json!({})).await;
    let mut bobs = subscribe(&app, &bob, WATCH, json!({})).await;
    let id = app.order(&ann, &[(&kettle, 1)]).await;
    assert_eq!(next_status(&mut mine).await, "PENDING");
    assert_eq!(next_status(&mut mine).await, "CONFIRMED");
    app.ok(Some(&ann), PAY, json!({"id": id, "token": "tok_visa"}))
        .await;
    assert_eq!(next_status(&mut mine).await, "PAID");
    app.ok(
        Some(&admin),
        SET_STATUS,
        json!({"id": id, "status": "SHIPPED"}),
    )
    .await;
    assert_eq!(next_status(&mut mine).await, "SHIPPED");

    // Watching one order starts with its state; another customer is refused it.
    let mut one = subscribe(&app, &ann, WATCH, json!({"id": id})).await;
    assert_eq!(next_status(&mut one).await, "SHIPPED");
    let mut snoop = subscribe(&app, &bob, WATCH, json!({"id": id})).await;
    let refused = next_message(&mut snoop).await;
    assert_eq!(
        refused["payload"]["errors"][0]["extensions"]["code"], "FORBIDDEN",
        "{refused}"
    );

    // Bob's own subscription saw none of Ann's steps: his first message is his own order.
    let own = app.order(&bob, &[(&kettle, 1)]).await;
    let first = next_message(&mut bobs).await;
    assert_eq!(
        first["payload"]["data"]["orderUpdated"]["id"],
        own.as_str(),
        "{first}"
    );
    app.stop().await;
}
on_both_backends!(order_updates_arrive_in_order);

/// Subscriptions need a signed-in user.
async fn anonymous_subscriptions_are_refused(env: &Environment) {
    let app = env.start().await;
    let mut socket = connect(&app).await;
    socket
        .send(Message::text(
            json!({"type": "connection_init", "payload": {}}).to_string(),
        ))
        .await
        .expect("init");
    assert_eq!(next_message(&mut socket).await["type"], "connection_ack");
    let start = json!({"id": "1", "type": "subscribe", "payload": {"query": WATCH}});
    socket
        .send(Message::text(start.to_string()))
        .await
        .expect("subscribe");
    let refused = next_message(&mut socket).await;
    assert_eq!(
        refused["payload"]["errors"][0]["extensions"]["code"], "UNAUTHENTICATED",
        "{refused}"
    );
    app.stop().await;
}
on_both_backends!(anonymous_subscriptions_are_refused);
