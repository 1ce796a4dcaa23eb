//! A graphql-transport-ws client for the tests: open the subscription WebSocket, send and read
//! JSON messages, `connection_init`.

use std::time::Duration;

use futures::{SinkExt, StreamExt};
use serde_json::{Value, json};
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;

use super::TestApp;

pub type Socket =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

/// Opens a graphql-transport-ws connection; `Err` carries the HTTP status of a refusal.
pub async fn open(app: &TestApp) -> Result<Socket, u16> {
    let url = format!("{}/graphql", app.base.replace("http://", "ws://"));
    let mut request = url.into_client_request().expect("request");
    request.headers_mut().insert(
        "sec-websocket-protocol",
        "graphql-transport-ws".parse().expect("header"),
    );
    match tokio_tungstenite::connect_async(request).await {
        Ok((socket, _)) => Ok(socket),
        Err(tokio_tungstenite::tungstenite::Error::Http(response)) => {
            Err(response.status().as_u16())
        }
        Err(e) => panic!("websocket: {e}"),
    }
}

pub async fn send(socket: &mut Socket, message: Value) {
    let text = Message::text(message.to_string());
    socket.send(text).await.expect("send");
}

/// The next JSON message, or `None` once the server closed the connection (within 5 s).
pub async fn next(socket: &mut Socket) -> Option<Value> {
    loop {
        let frame = tokio::time::timeout(Duration::from_secs(5), socket.next())
            .await
            .expect("the server answers or closes in time");
        match frame {
            None | Some(Err(_)) | Some(Ok(Message::Close(_))) => return None,
            Some(Ok(Message::Text(text))) => {
                let v: Value = serde_json::from_str(&text).expect("json");
                if v["type"] != "ping" && v["type"] != "pong" {
                    return Some(v);
                }
            }
            Some(Ok(_)) => {}
        }
    }
}

/// `connection_init`, signed in with `token` when there is one, and its acknowledgement.
pub async fn init(socket: &mut Socket, token: Option<&str>) {
    let payload = match token {
        Some(token) => json!({"Authorization": format!("Bearer {token}")}),
        None => json!({}),
    };
    send(
        socket,
        json!({"type": "connection_init", "payload": payload}),
    )
    .await;
    assert_eq!(next(socket).await.expect("ack")["type"], "connection_ack");
}

/// The errors of a refused operation: an `error` message carries them as its payload, a
/// `next` message (a refusal during execution) in its payload's `errors`.
pub fn errors(message: &Value) -> Value {
    match message["type"].as_str() {
        Some("error") => message["payload"].clone(),
        _ => message["payload"]["errors"].clone(),
    }
}
