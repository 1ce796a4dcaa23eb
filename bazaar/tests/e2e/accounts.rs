//! Accounts end to end over /graphql, on both backends: register, login, me, profile,
//! token rotation and reuse detection, logout, roles, authorization and error codes.

use std::time::Duration;

use crate::support::{Environment, LOGIN, REGISTER, str};
use serde_json::json;

const ME: &str =
    "{ me { id email name role phone address { line1 line2 city postalCode country } } }";
const REFRESH: &str = "mutation($t: String!) { refreshToken(refreshToken: $t) { accessToken refreshToken expiresIn user { id } } }";
const LOGOUT: &str = "mutation($t: String!) { logout(refreshToken: $t) }";
const UPDATE_PROFILE: &str = "mutation($input: UpdateProfileInput!) { updateProfile(input: $input) { id name phone address { line1 city postalCode country } } }";

async fn account_lifecycle(env: &Environment) {
    let app = env.start().await;

    // Register: email normalised, customer role, tokens issued.
    let data = app
        .ok(None, REGISTER, json!({"input": {"email": " Ann@Example.COM ", "password": "correct-horse-1", "name": "Ann"}}))
        .await;
    let auth = &data["register"];
    assert_eq!(auth["user"]["email"], "ann@example.com");
    assert_eq!(auth["user"]["role"], "CUSTOMER");
    assert_eq!(auth["expiresIn"], 900);
    let (access, refresh, ann_id) = (
        str(&auth["accessToken"]),
        str(&auth["refreshToken"]),
        str(&auth["user"]["id"]),
    );

    // Duplicate email, whatever its case: CONFLICT. Bad input names its field.
    app.err(None, REGISTER, json!({"input": {"email": "ANN@example.com", "password": "correct-horse-1", "name": "Ann"}}), "CONFLICT").await;
    let e = app
        .err(
            None,
            REGISTER,
            json!({"input": {"email": "not-an-email", "password": "correct-horse-1", "name": "A"}}),
            "BAD_USER_INPUT",
        )
        .await;
    assert_eq!(e["extensions"]["field"], "input.email");
    let e = app
        .err(
            None,
            REGISTER,
            json!({"input": {"email": "b@example.com", "password": "short", "name": "B"}}),
            "BAD_USER_INPUT",
        )
        .await;
    assert_eq!(e["extensions"]["field"], "input.password");
    let e = app
        .err(
            None,
            REGISTER,
            json!({"input": {"email": "b@example.com", "password": "long enough", "name": "  "}}),
            "BAD_USER_INPUT",
        )
        .await;
    assert_eq!(e["extensions"]["field"], "input.name");

    // Wrong password and unknown email are indistinguishable.
    let wrong = app
        .err(
            None,
            LOGIN,
            json!({"email": "ann@example.com", "password": "wrong-password"}),
            "UNAUTHENTICATED",
        )
        .await;
    let unknown = app
        .err(
            None,
            LOGIN,
            json!({"email": "nobody@example.com", "password": "wrong-password"}),
            "UNAUTHENTICATED",
        )
        .await;
    assert_eq!(wrong["message"], unknown["message"]);
    let login = app
        .ok(
            None,
            LOGIN,
            json!({"email": "ANN@example.com", "password": "correct-horse-1"}),
        )
        .await;
    assert_eq!(login["login"]["user"]["id"], ann_id.as_str());

    // me: the user when signed in, null without a token, UNAUTHENTICATED with a bad one.
    assert_eq!(
        app.ok(Some(&access), ME, json!({})).await["me"]["id"],
        ann_id.as_str()
    );
    let anonymous = app.gql(None, ME, json!({})).await;
    assert!(
        anonymous["data"]["me"].is_null() && anonymous.get("errors").is_none(),
        "{anonymous}"
    );
    app.err(Some("not.a.token"), ME, json!({}), "UNAUTHENTICATED")
        .await;

    // Profile: validated, and only for the signed-in user.
    let address =
        json!({"line1": "1 High St", "city": "Leeds", "postalCode": "LS1 1AA", "country": "GB"});
    let updated = app
        .ok(
            Some(&access),
            UPDATE_PROFILE,
            json!({"input": {"name": "Ann B", "phone": "+44 113 496 0000", "address": address}}),
        )
        .await;
    assert_eq!(updated["updateProfile"]["name"], "Ann B");
    assert_eq!(updated["updateProfile"]["address"]["city"], "Leeds");
    let e = app
        .err(
            Some(&access),
            UPDATE_PROFILE,
            json!({"input": {"phone": "call me"}}),
            "BAD_USER_INPUT",
        )
        .await;
    assert_eq!(e["extensions"]["field"], "input.phone");
    let e = app.err(Some(&access), UPDATE_PROFILE, json!({"input": {"address": {"line1": "", "city": "x", "postalCode": "1", "country": "GB"}}}), "BAD_USER_INPUT").await;
    assert_eq!(e["extensions"]["field"], "input.address.line1");
    app.err(
        None,
        UPDATE_PROFILE,
        json!({"input": {"name": "Mallory"}}),
        "UNAUTHENTICATED",
    )
    .await;
    assert_eq!(
        app.ok(Some(&access), ME, json!({})).await["me"]["phone"],
        "+44 113 496 0000"
    );

    // Refresh tokens rotate; replaying a used one revokes the whole family.
    let rotated = app.ok(None, REFRESH, json!({"t": refresh})).await;
    let refresh2 = str(&rotated["refreshToken"]["refreshToken"]);
    assert_ne!(refresh2, refresh);
    assert_eq!(
        app.ok(
            Some(&str(&rotated["refreshToken"]["accessToken"])),
            ME,
            json!({})
        )
        .await["me"]["id"],
        ann_id.as_str()
    );
    app.err(None, REFRESH, json!({"t": refresh}), "UNAUTHENTICATED")
        .await;
    app.err(None, REFRESH, json!({"t": refresh2}), "UNAUTHENTICATED")
        .await;
    app.err(None, REFRESH, json!({"t": "garbage"}), "UNAUTHENTICATED")
        .await;

    // Logout ends the session.
    let session = str(&app
        .ok(
            None,
            LOGIN,
            json!({"email": "ann@example.com", "password": "correct-horse-1"}),
        )
        .await["login"]["refreshToken"]);
    assert_eq!(
        app.ok(None, LOGOUT, json!({"t": session})).await["logout"],
        true
    );
    app.err(None, REFRESH, json!({"t": session}), "UNAUTHENTICATED")
        .await;
    assert_eq!(
        app.ok(None, LOGOUT, json!({"t": "unknown"})).await["logout"],
        false
    );

    // Authorization: users see themselves, admins see everyone.
    let (bob, _, bob_id) = app.register("bob@example.com", "Bob").await;
    let user_q = "query($id: ID!) { user(id: $id) { id email } }";
    assert!(app.ok(Some(&bob), user_q, json!({"id": ann_id})).await["user"].is_null());
    assert!(app.ok(None, user_q, json!({"id": ann_id})).await["user"].is_null());
    assert_eq!(
        app.ok(Some(&bob), user_q, json!({"id": bob_id})).await["user"]["id"],
        bob_id.as_str()
    );
    let admin = app.admin_token().await;
    assert_eq!(
        app.ok(Some(&admin), user_q, json!({"id": ann_id})).await["user"]["email"],
        "ann@example.com"
    );
    let users_q = "query($after: String) { users(first: 2, after: $after) { totalCount edges { cursor node { id email } } pageInfo { hasNextPage endCursor } } }";
    app.err(Some(&bob), users_q, json!({}), "FORBIDDEN").await;
    app.err(None, users_q, json!({}), "UNAUTHENTICATED").await;
    let page1 = app.ok(Some(&admin), users_q, json!({})).await;
    assert_eq!(page1["users"]["totalCount"], 3);
    assert_eq!(page1["users"]["pageInfo"]["hasNextPage"], true);
    let page2 = app
        .ok(
            Some(&admin),
            users_q,
            json!({"after": page1["users"]["pageInfo"]["endCursor"]}),
        )
        .await;
    assert_eq!(page2["users"]["edges"].as_array().map(Vec::len), Some(1));
    assert_eq!(page2["users"]["pageInfo"]["hasNextPage"], false);

    // Roles: only admins grant them.
    let set_role =
        "mutation($id: ID!, $role: Role!) { setUserRole(id: $id, role: $role) { id role } }";
    app.err(
        Some(&bob),
        set_role,
        json!({"id": bob_id, "role": "ADMIN"}),
        "FORBIDDEN",
    )
    .await;
    app.err(
        Some(&admin),
        set_role,
        json!({"id": "no-such-user", "role": "ADMIN"}),
        "NOT_FOUND",
    )
    .await;
    assert_eq!(
        app.ok(
            Some(&admin),
            set_role,
            json!({"id": bob_id, "role": "ADMIN"})
        )
        .await["setUserRole"]["role"],
        "ADMIN"
    );

    // No response ever carries a password or its hash.
    let introspection = app
        .gql(
            Some(&admin),
            "{ __type(name: \"User\") { fields { name } } }",
            json!({}),
        )
        .await
        .to_string();
    assert!(
        !introspection.to_lowercase().contains("password"),
        "{introspection}"
    );

    // Malformed requests still get a code.
    let e = app
        .err(None, "{ nosuchfield }", json!({}), "BAD_USER_INPUT")
        .await;
    assert!(
        e["message"]
            .as_str()
            .unwrap_or_default()
            .contains("nosuchfield")
    );

    // Operations endpoints.
    assert_eq!(app.get("/healthz").await.status(), 200);
    assert_eq!(app.get("/readyz").await.status(), 200);
    let metrics = app.get("/metrics").await.text().await.unwrap_or_default();
    assert!(
        metrics.contains("bazaar_graphql_requests_total"),
        "{metrics}"
    );
    assert!(
        metrics.contains("bazaar_events_published_total"),
        "{metrics}"
    );
    let graphiql = app.get("/graphql").await.text().await.unwrap_or_default();
    assert!(graphiql.contains("/graphiql/graphiql.min.js"));
    assert_eq!(app.get("/graphiql/graphiql.min.js").await.status(), 200);
    app.stop().await;
}
on_both_backends!(account_lifecycle);

/// Accounts and tokens survive a restart (and the generated JWT secret with them).
async fn restart_keeps_accounts_and_tokens(env: &Environment) {
    let app = env.start().await;
    let (access, refresh, id) = app.register("carol@example.com", "Carol").await;
    app.stop().await;

    let app = env.start().await;
    assert_eq!(
        app.ok(Some(&access), ME, json!({})).await["me"]["id"],
        id.as_str()
    );
    app.ok(None, REFRESH, json!({"t": refresh})).await;
    app.ok(
        None,
        LOGIN,
        json!({"email": "carol@example.com", "password": "correct-horse-1"}),
    )
    .await;
    app.stop().await;
}
on_both_backends!(restart_keeps_accounts_and_tokens);

/// Sign-in attempts are limited per account (and per client address).
async fn login_is_rate_limited(env: &Environment) {
    let mut settings = env.settings();
    settings.login_limit_per_account = 3;
    settings.login_limit_window = Duration::from_secs(60);
    let app = env.start_with(settings).await;
    app.register("dave@example.com", "Dave").await;
    for _ in 0..3 {
        app.err(
            None,
            LOGIN,
            json!({"email": "dave@example.com", "password": "wrong-password"}),
            "UNAUTHENTICATED",
        )
        .await;
    }
    let e = app
        .err(
            None,
            LOGIN,
            json!({"email": "dave@example.com", "password": "correct-horse-1"}),
            "RATE_LIMITED",
        )
        .await;
    assert!(
        e["message"]
            .as_str()
            .unwrap_or_default()
            .contains("too many")
    );
    // Another account from the same address is not affected by Dave's limit.
    app.register("erin@example.com", "Erin").await;
    app.ok(
        None,
        LOGIN,
        json!({"email": "erin@example.com", "password": "correct-horse-1"}),
    )
    .await;
    app.stop().await;
}
on_both_backends!(login_is_rate_limited);

/// Query depth, the engine's complexity count and body size are bounded.
async fn limits_protect_the_server(env: &Environment) {
    let mut settings = env.settings();
    // Lowered so a short query trips it; the cost model's own limits refuse the other
    // documents below before the engine counts complexity.
    settings.max_query_complexity = 20;
    let app = env.start_with(settings).await;
    // Depth is checked as the document is parsed, before any field is looked up; introspection's
    // `ofType` chain is not data and has its own bound (graphql_http.rs).
    let deep = format!("{{ {} id {} }}", "me { ".repeat(13), "}".repeat(13));
    app.err_with(None, &deep, json!({}), "BAD_USER_INPUT", "max_query_depth")
        .await;
    // Introspection lists nested four deep (each level multiplies the answer by the schema's
    // size); a long `ofType` chain alone is cheap and allowed (GraphiQL sends one).
    let deep = "{ __schema { types { fields { type { fields { type { fields { name } } } } } } } }";
    app.err(None, deep, json!({}), "BAD_USER_INPUT").await;
    // Complexity counts every field selected: one page of five fields is 8, three are 24.
    let page = "products(first: 1) { edges { node { id name priceCents stock description } } }";
    app.ok(None, &format!("{{ a: {page} }}"), json!({})).await;
    let three = format!("{{ a: {page} b: {page} c: {page} }}");
    app.err_with(None, &three, json!({}), "BAD_USER_INPUT", "too complex")
        .await;
    // A body over the limit is refused from its Content-Length, before it is read.
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut stream = tokio::net::TcpStream::connect(app.base.trim_start_matches("http://"))
        .await
        .expect("connect");
    let head = "POST /graphql HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\ncontent-length: 2097152\r\n\r\n";
    stream.write_all(head.as_bytes()).await.expect("write");
    let mut reply = vec![0u8; 64];
    let n = stream.read(&mut reply).await.expect("read");
    let reply = String::from_utf8_lossy(&reply[..n]).to_string();
    assert!(reply.starts_with("HTTP/1.1 413"), "{reply}");
    app.stop().await;
}
on_both_backends!(limits_protect_the_server);
