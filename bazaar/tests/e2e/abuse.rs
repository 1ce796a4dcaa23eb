//! Requests crafted to cost more than their share, on both backends: each is refused with a
//! clear GraphQL error carrying `extensions.code`, never a 5xx or debug text, and the server
//! keeps answering afterwards.

use crate::support;

use std::time::{Duration, Instant};

use crate::support::{Environment, TestApp, ws};
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

const INTROSPECTION: &str =
    include_str!("../../../services/gateway/testdata/introspection.graphql");

use bazaar_gateway::cost::fragment_explosion;

async fn still_answers(app: &TestApp) {
    let data = app.ok(None, "{ __typename }", json!({})).await;
    assert_eq!(data["__typename"], "Query");
}

async fn costly_queries_are_refused_before_they_run(env: &Environment) {
    let app = env.start().await;
    let started = Instant::now();
    let error = app
        .err(None, &fragment_explosion(22), json!({}), "BAD_USER_INPUT")
        .await;
    let took = started.elapsed();
    assert_eq!(
        error["extensions"]["limit"], "max_query_selections",
        "{error}"
    );
    assert!(took < Duration::from_millis(500), "refusal took {took:?}");
    // Much larger still costs nothing: the check is linear in the document.
    let error = app
        .err(None, &fragment_explosion(45), json!({}), "BAD_USER_INPUT")
        .await;
    assert_eq!(error["extensions"]["limit"], "max_query_selections");

    // The standard introspection query (GraphiQL's) passes under the default limits.
    let data = app.ok(None, INTROSPECTION, json!({})).await;
    let types = data["__schema"]["types"].as_array().expect("types");
    assert!(types.iter().any(|t| t["name"] == "Product"), "{types:?}");

    // Deep data is still refused, and so is introspection nested list in list in list.
    let mut deep = "id".to_string();
    for _ in 0..12 {
        deep = format!("orders(first: 1) {{ edges {{ node {{ user {{ {deep} }} }} }} }}");
    }
    let error = app
        .err(None, &format!("{{ {deep} }}"), json!({}), "BAD_USER_INPUT")
        .await;
    assert_eq!(error["extensions"]["limit"], "max_query_depth", "{error}");
    let lists =
        "{ __schema { types { fields { type { fields { type { fields { name } } } } } } } }";
    let error = app.err(None, lists, json!({}), "BAD_USER_INPUT").await;
    assert_eq!(error["extensions"]["limit"], "max_introspection_depth");

    // __typename is a selection like any other; aliases are bounded as written.
    let typenames = format!("{{ {} }}", "__typename ".repeat(1500));
    let error = app.err(None, &typenames, json!({}), "BAD_USER_INPUT").await;
    assert_eq!(error["extensions"]["limit"], "max_query_selections");
    let aliases: String = (0..40).map(|i| format!(" a{i}: __typename")).collect();
    let error = app
        .err(
            None,
            &format!("{{{aliases} }}"),
            json!({}),
            "BAD_USER_INPUT",
        )
        .await;
    assert_eq!(error["extensions"]["limit"], "max_query_aliases");
    still_answers(&app).await;
    app.stop().await;
}
on_both_backends!(costly_queries_are_refused_before_they_run);

async fn text_postgres_cannot_store_is_bad_input(env: &Environment) {
    let app = env.start().await;
    let (token, _, _) = app.register("nul@example.com", "Nul").await;
    let login =
        "mutation($e: String!) { login(email: $e, password: \"whatever-1\") { accessToken } }";
    let cases = [
        (login, json!({"e": "a\u{0}@x.test"}), "email"),
        (
            "{ products(search: \"a\\u0000b\") { totalCount } }",
            json!({}),
            "search",
        ),
        ("{ product(id: \"a\\u0000b\") { id } }", json!({}), "id"),
        (
            support::REGISTER,
            json!({"input": {"email": "n2@example.com", "password": "correct-horse-1", "name": "N\u{0}"}}),
            "input.name",
        ),
    ];
    for (query, variables, field) in cases {
        let error = app
            .err(Some(&token), query, variables, "BAD_USER_INPUT")
            .await;
        assert_eq!(error["extensions"]["field"], field, "{error}");
    }
    // Tampered cursors: base64 of text with NUL, of text that is not an id, and not base64.
    for after in ["YQBi", "Jyc7IC0t", "!!!"] {
        let query = "query($a: String) { products(first: 2, after: $a) { totalCount } }";
        let error = app
            .err(None, query, json!({"a": after}), "BAD_USER_INPUT")
            .await;
        assert_eq!(error["extensions"]["field"], "after", "{after}: {error}");
    }
    still_answers(&app).await;
    app.stop().await;
}
on_both_backends!(text_postgres_cannot_store_is_bad_input);

/// Sends raw HTTP/1.1 and returns (status, body).
async fn raw_http(app: &TestApp, request: &[u8]) -> (u16, String) {
    let addr = app.base.trim_start_matches("http://");
    let mut stream = tokio::net::TcpStream::connect(addr).await.expect("connect");
    // The server may answer (and close) before the whole body is written.
    let _ = stream.write_all(request).await;
    let mut response = Vec::new();
    let _ = tokio::time::timeout(Duration::from_secs(10), stream.read_to_end(&mut response)).await;
    let text = String::from_utf8_lossy(&response).to_string();
    let status = text
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    let body = text
        .split("\r\n\r\n")
        .nth(1)
        .unwrap_or_default()
        .to_string();
    (status, body)
}

fn graphql_error(body: &str) -> Value {
    // Chunked responses carry a size line before the JSON.
    let start = body.find('{').unwrap_or(0);
    let end = body.rfind('}').map_or(body.len(), |i| i + 1);
    let value: Value =
        serde_json::from_str(&body[start..end]).unwrap_or_else(|e| panic!("{e}: {body}"));
    value["errors"][0].clone()
}

async fn http_errors_are_graphql_shaped(env: &Environment) {
    let mut settings = env.settings();
    settings.max_body_bytes = 64 * 1024;
    let app = env.start_with(settings).await;
    let big = format!(
        "{{\"query\": \"{{ __typename }}\", \"x\": \"{}\"}}",
        "a".repeat(100_000)
    );

    // Too large, announced by Content-Length.
    let response = app
        .http
        .post(format!("{}/graphql", app.base))
        .header("content-type", "application/json")
        .body(big.clone())
        .send()
        .await
        .expect("request");
    assert_eq!(response.status(), 413);
    let body: Value = response.json().await.expect("json");
    assert_eq!(body["errors"][0]["extensions"]["code"], "BAD_USER_INPUT");
    assert_eq!(body["errors"][0]["extensions"]["limit"], "max_body_bytes");

    // Too large, chunked (no length announced).
    let mut chunked = b"POST /graphql HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\ntransfer-encoding: chunked\r\nconnection: close\r\n\r\n".to_vec();
    for piece in big.as_bytes().chunks(8192) {
        chunked.extend_from_slice(format!("{:x}\r\n", piece.len()).as_bytes());
        chunked.extend_from_slice(piece);
        chunked.extend_from_slice(b"\r\n");
    }
    chunked.extend_from_slice(b"0\r\n\r\n");
    let (status, body) = raw_http(&app, &chunked).await;
    assert_eq!(status, 413, "{body}");
    assert!(
        !body.contains("Custom {") && !body.contains("Io("),
        "{body}"
    );
    assert_eq!(graphql_error(&body)["extensions"]["code"], "BAD_USER_INPUT");

    // A batch, and a body that is not JSON.
    for (payload, needle) in [
        (
            r#"[{"query": "{ __typename }"}, {"query": "{ __typename }"}]"#,
            "batch",
        ),
        ("not json", "not a GraphQL request"),
    ] {
        let response = app
            .http
            .post(format!("{}/graphql", app.base))
            .header("content-type", "application/json")
            .body(payload)
            .send()
            .await
            .expect("request");
        assert_eq!(response.status(), 400);
        let body: Value = response.json().await.expect("json");
        let error = &body["errors"][0];
        assert_eq!(error["extensions"]["code"], "BAD_REQUEST", "{body}");
        assert!(
            error["message"]
                .as_str()
                .unwrap_or_default()
                .contains(needle),
            "{body}"
        );
    }

    // x-request-id: a short plain one is echoed, a long or odd one replaced.
    for (sent, kept) in [
        ("req-42.abc", true),
        (&*"x".repeat(5000), false),
        ("a b<script>", false),
    ] {
        let response = app
            .http
            .post(format!("{}/graphql", app.base))
            .header("x-request-id", sent)
            .json(&json!({"query": "{ __typename }"}))
            .send()
            .await
            .expect("request");
        assert_eq!(response.status(), 200);
        let echoed = response.headers()["x-request-id"]
            .to_str()
            .unwrap()
            .to_owned();
        assert_eq!(echoed == sent, kept, "{sent:.40} -> {echoed}");
        assert!(echoed.len() <= 64);
    }
    still_answers(&app).await;
    app.stop().await;
}
on_both_backends!(http_errors_are_graphql_shaped);

async fn sign_ups_are_rate_limited_per_address(env: &Environment) {
    let mut settings = env.settings();
    settings.register_limit_per_ip = 3;
    let app = env.start_with(settings).await;
    for i in 0..3 {
        app.register(&format!("r{i}@example.com"), "R").await;
    }
    let error = app
        .err(
            None,
            support::REGISTER,
            json!({"input": {"email": "r3@example.com", "password": "correct-horse-1", "name": "R"}}),
            "RATE_LIMITED",
        )
        .await;
    assert!(
        error["extensions"]["retryAfterSecs"].as_u64().is_some(),
        "{error}"
    );
    still_answers(&app).await;
    app.stop().await;
}
on_both_backends!(sign_ups_are_rate_limited_per_address);

async fn password_hashing_is_gated(env: &Environment) {
    let mut settings = env.settings();
    settings.password_hash_concurrency = 1;
    settings.password_hash_queue = 2;
    settings.password_hash_wait = Duration::from_millis(300);
    let app = env.start_with(settings).await;
    app.register("gate@example.com", "G").await;
    let started = Instant::now();
    let attempts = (0..24).map(|_| {
        app.gql(
            None,
            support::LOGIN,
            json!({"email": "gate@example.com", "password": "correct-horse-1"}),
        )
    });
    let answers = futures::future::join_all(attempts).await;
    let codes: Vec<String> = answers
        .iter()
        .map(
            |body| match body["errors"][0]["extensions"]["code"].as_str() {
                Some(code) => code.to_owned(),
                None => "OK".to_owned(),
            },
        )
        .collect();
    assert!(started.elapsed() < Duration::from_secs(10));
    assert!(
        codes.iter().all(|c| c == "OK" || c == "RATE_LIMITED"),
        "{codes:?}"
    );
    assert!(codes.iter().any(|c| c == "OK"), "{codes:?}");
    assert!(codes.iter().any(|c| c == "RATE_LIMITED"), "{codes:?}");
    let limited = answers
        .iter()
        .find(|b| b["errors"][0]["extensions"]["code"] == "RATE_LIMITED")
        .expect("one refused");
    assert_eq!(limited["errors"][0]["extensions"]["retryAfterSecs"], 1);
    still_answers(&app).await;
    app.stop().await;
}
on_both_backends!(password_hashing_is_gated);

async fn files_are_private_whatever_the_umask(env: &Environment) {
    // SAFETY: umask only changes this process's file-creation mask; nothing else in this test
    // binary depends on it.
    unsafe { libc::umask(0o022) };
    let mut settings = env.settings();
    settings.data_dir = env.data_dir.path().join("fresh");
    let app = env.start_with(settings.clone()).await;
    let (token, ..) = app.register("private@example.com", "P").await;
    app.ok(Some(&token), "{ me { id } }", json!({})).await;
    app.stop().await;
    use std::os::unix::fs::PermissionsExt;
    let dir = &settings.data_dir;
    if !dir.exists() {
        return; // PostgreSQL + NATS + Redis with a configured secret: nothing written locally.
    }
    let mode = |p: &std::path::Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode(dir), 0o700, "{}", dir.display());
    let mut files = 0;
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_file() {
            files += 1;
            assert_eq!(mode(&path), 0o600, "{}", path.display());
        }
    }
    if env.backend == support::Backend::Embedded {
        assert!(files >= 6, "the SQLite files, the event log and the secret");
    }
}
on_both_backends!(files_are_private_whatever_the_umask);

const WATCH: &str = "subscription { orderUpdated { id status } }";

async fn websockets_are_bounded(env: &Environment) {
    let mut settings = env.settings();
    settings.max_body_bytes = 64 * 1024;
    settings.ws_max_subscriptions = 2;
    settings.ws_init_timeout = Duration::from_secs(1);
    settings.ws_max_connections_per_ip = 3;
    let app = env.start_with(settings).await;
    let (token, ..) = app.register("ws@example.com", "W").await;

    // Connections per address: the fourth is refused with a GraphQL-shaped 429.
    let mut open = Vec::new();
    for _ in 0..3 {
        let mut socket = ws::open(&app).await.expect("admitted");
        ws::init(&mut socket, Some(&token)).await;
        open.push(socket);
    }
    assert_eq!(ws::open(&app).await.err(), Some(429));
    for mut socket in open {
        let _ = socket.close(None).await;
    }
    let mut socket = support::eventually(Duration::from_secs(5), || async {
        ws::open(&app).await.ok()
    })
    .await;

    // Subscriptions per connection.
    ws::init(&mut socket, Some(&token)).await;
    for id in ["1", "2", "3"] {
        let subscribe = json!({"id": id, "type": "subscribe", "payload": {"query": WATCH}});
        ws::send(&mut socket, subscribe).await;
    }
    // The three start concurrently: whichever comes last is refused, the other two stay.
    let refused = ws::next(&mut socket)
        .await
        .expect("an answer to one of them");
    assert_eq!(
        ws::errors(&refused)[0]["extensions"]["code"],
        "RATE_LIMITED",
        "{refused}"
    );

    // A message larger than the body limit is not executed: the connection closes.
    let mut big = ws::open(&app).await.expect("admitted");
    ws::init(&mut big, Some(&token)).await;
    let padding = "#".repeat(100 * 1024);
    let query = format!("subscription {{ orderUpdated {{ id }} }} {padding}");
    let subscribe = json!({"id": "big", "type": "subscribe", "payload": {"query": query}});
    use futures::SinkExt;
    let _ = big
        .send(tokio_tungstenite::tungstenite::Message::text(
            subscribe.to_string(),
        ))
        .await;
    assert_eq!(ws::next(&mut big).await, None, "closed, not executed");

    // A connection that never sends connection_init is closed after the deadline.
    let mut silent = ws::open(&app).await.expect("admitted");
    let started = Instant::now();
    assert_eq!(ws::next(&mut silent).await, None);
    assert!(started.elapsed() < Duration::from_secs(4));

    let _ = socket.close(None).await;
    still_answers(&app).await;
    app.stop().await;
}
on_both_backends!(websockets_are_bounded);

async fn unpaid_orders_per_customer_are_capped(env: &Environment) {
    use support::shop::{CANCEL, PLACE_ORDER, address};
    let mut settings = env.settings();
    settings.max_open_orders_per_customer = 2;
    let app = env.start_with(settings).await;
    let admin = app.admin_token().await;
    let pen = app.product(&admin, "Pen", "office", 100, 1000).await;
    let (token, ..) = app.register("hoarder@example.com", "H").await;
    let first = app.order(&token, &[(&pen, 1)]).await;
    app.order(&token, &[(&pen, 1)]).await;
    let input = json!({"input": {"items": [{"productId": pen, "quantity": 1}], "shippingAddress": address()}});
    let error = app
        .err(Some(&token), PLACE_ORDER, input.clone(), "CONFLICT")
        .await;
    assert!(
        error["message"]
            .as_str()
            .unwrap_or_default()
            .contains("unpaid"),
        "{error}"
    );
    // Another customer is not affected, even racing: of 12 orders at once, 2 pass the cap.
    let (other, ..) = app.register("other@example.com", "O").await;
    let racing = (0..12).map(|_| app.gql(Some(&other), PLACE_ORDER, input.clone()));
    let placed = futures::future::join_all(racing)
        .await
        .iter()
        .filter(|answer| answer.get("errors").is_none())
        .count();
    assert_eq!(placed, 2, "the cap holds under concurrent requests");
    app.settled(&token, &first).await;
    app.ok(Some(&token), CANCEL, json!({"id": first})).await;
    app.ok(Some(&token), PLACE_ORDER, input).await;
    app.stop().await;
}
on_both_backends!(unpaid_orders_per_customer_are_capped);
