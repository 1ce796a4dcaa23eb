//! The GraphQL edge as client tools see it, on both backends: the standard introspection
//! queries pass the limits (and can be turned off), GraphQL over HTTP by the spec (media types,
//! status codes, GET for queries only, 415 for non-JSON posts), CORS by allow-list, and the
//! GraphiQL page's security headers.

use crate::support;

use crate::support::Environment;
use reqwest::StatusCode;
use reqwest::header::{self, HeaderMap};
use serde_json::{Value, json};

/// graphql-js 16 `getIntrospectionQuery()`, which GraphiQL 3 sends as it is.
const INTROSPECTION: &str = include_str!("../fixtures/introspection-graphql-js-16.graphql");
/// The same with every option on (descriptions, specifiedByURL, isRepeatable, schema
/// description, deprecated input values, oneOf).
const INTROSPECTION_ALL: &str =
    include_str!("../fixtures/introspection-graphql-js-16-all-options.graphql");

const GRAPHQL_RESPONSE: &str = "application/graphql-response+json";

async fn post(app: &support::TestApp, headers: &[(&str, &str)], body: String) -> reqwest::Response {
    let mut request = app.http.post(format!("{}/graphql", app.base)).body(body);
    for (name, value) in headers {
        request = request.header(*name, *value);
    }
    request.send().await.expect("request")
}

fn content_type(headers: &HeaderMap) -> &str {
    headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
}

async fn introspection_passes_the_limits(env: &Environment) {
    let app = env.start().await;
    for query in [INTROSPECTION, INTROSPECTION_ALL] {
        let body = json!({"query": query, "operationName": "IntrospectionQuery"}).to_string();
        let response = post(&app, &[("content-type", "application/json")], body).await;
        assert_eq!(response.status(), StatusCode::OK);
        let body: Value = response.json().await.expect("json");
        assert!(body.get("errors").is_none(), "{body:#}");
        let types = body["data"]["__schema"]["types"].as_array().expect("types");
        assert!(types.iter().any(|t| t["name"] == "Query"));
        assert_eq!(body["data"]["__schema"]["queryType"]["name"], "Query");
    }

    // The limits still refuse abusive documents: introspection that walks the schema's cycles,
    // and data nested past the configured depth.
    let cyclic =
        "{ __type(name: \"Query\") { fields { type { fields { type { fields { name } } } } } } }";
    app.err_with(None, cyclic, json!({}), "BAD_USER_INPUT", "nested too deep")
        .await;
    app.stop().await;

    let mut settings = env.settings();
    settings.max_query_depth = 3;
    let app = env.start_with(settings).await;
    let deep = "{ products { edges { node { id } } } }";
    app.err_with(None, deep, json!({}), "BAD_USER_INPUT", "max_query_depth")
        .await;
    app.ok(None, "{ products { edges { cursor } } }", json!({}))
        .await;
    // Introspection is not data: its `ofType` chain does not count against the depth of 3.
    app.ok(None, INTROSPECTION, json!({})).await;
    app.stop().await;
}
on_both_backends!(introspection_passes_the_limits);

async fn introspection_can_be_turned_off(env: &Environment) {
    let mut settings = env.settings();
    settings.graphql.introspection = false;
    let app = env.start_with(settings).await;
    let off = "introspection is turned off";
    app.err_with(None, INTROSPECTION, json!({}), "BAD_USER_INPUT", off)
        .await;
    app.ok(None, "{ __typename }", json!({})).await;
    app.stop().await;
}
on_both_backends!(introspection_can_be_turned_off);

async fn graphql_over_http_by_the_spec(env: &Environment) {
    let app = env.start().await;
    let json_ct = ("content-type", "application/json");
    let ok = json!({"query": "{ __typename }"}).to_string();
    let invalid = json!({"query": "{ nosuchfield }"}).to_string();

    // application/graphql-response+json when accepted: request errors are 4xx, no data entry.
    let accept = (
        "accept",
        "application/graphql-response+json, application/json;q=0.9",
    );
    let r = post(&app, &[json_ct, accept], ok.clone()).await;
    assert_eq!(r.status(), StatusCode::OK);
    assert!(content_type(r.headers()).starts_with(GRAPHQL_RESPONSE));
    let r = post(&app, &[json_ct, accept], invalid.clone()).await;
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
    let body: Value = r.json().await.expect("json");
    assert!(body.get("data").is_none(), "{body:#}");
    assert_eq!(body["errors"][0]["extensions"]["code"], "BAD_USER_INPUT");
    let r = post(
        &app,
        &[json_ct, accept, ("authorization", "Bearer nope")],
        ok.clone(),
    )
    .await;
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);

    // application/json (the default): 200 for every well-formed request.
    let r = post(&app, &[json_ct], invalid).await;
    assert_eq!(r.status(), StatusCode::OK);
    assert!(content_type(r.headers()).starts_with("application/json"));
    let r = post(&app, &[json_ct], "{not json".into()).await;
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
    let body: Value = r.json().await.expect("json");
    assert_eq!(body["errors"][0]["extensions"]["code"], "BAD_REQUEST");

    // The content types a cross-site form can send never run an operation.
    let mutation = r#"{"query": "mutation { logout(refreshToken: \"x\") }"}"#;
    for ct in [
        "text/plain",
        "text/plain;charset=UTF-8",
        "application/x-www-form-urlencoded",
        "multipart/form-data; boundary=x",
    ] {
        let r = post(&app, &[("content-type", ct)], mutation.into()).await;
        assert_eq!(r.status(), StatusCode::UNSUPPORTED_MEDIA_TYPE, "{ct}");
    }
    let r = post(&app, &[], ok).await;
    assert_eq!(r.status(), StatusCode::UNSUPPORTED_MEDIA_TYPE);

    // GET runs queries, never mutations.
    let get = |query: &str| {
        app.http
            .get(format!("{}/graphql", app.base))
            .query(&[("query", query), ("variables", r#"{"n": 1}"#)])
            .send()
    };
    let r = get("query($n: Int) { products(first: $n) { edges { cursor } } }")
        .await
        .expect("get");
    assert_eq!(r.status(), StatusCode::OK);
    let body: Value = r.json().await.expect("json");
    assert!(body["data"]["products"]["edges"].is_array(), "{body:#}");
    let r = get("mutation { logout(refreshToken: \"x\") }")
        .await
        .expect("get");
    assert_eq!(r.status(), StatusCode::METHOD_NOT_ALLOWED);
    assert_eq!(r.headers()[header::ALLOW], "POST");
    app.stop().await;
}
on_both_backends!(graphql_over_http_by_the_spec);

async fn cors_allows_only_listed_origins(env: &Environment) {
    let preflight = |app: &support::TestApp, origin: &'static str| {
        app.http
            .request(reqwest::Method::OPTIONS, format!("{}/graphql", app.base))
            .header("origin", origin)
            .header("access-control-request-method", "POST")
            .header(
                "access-control-request-headers",
                "content-type, authorization",
            )
            .send()
    };
    let allowed = |r: &reqwest::Response| r.headers().get("access-control-allow-origin").cloned();

    // Default: no origin is allowed.
    let app = env.start().await;
    let r = preflight(&app, "https://shop.example.com")
        .await
        .expect("preflight");
    assert_eq!(allowed(&r), None);
    let r = post(
        &app,
        &[
            ("content-type", "application/json"),
            ("origin", "https://shop.example.com"),
        ],
        json!({"query": "{ __typename }"}).to_string(),
    )
    .await;
    assert_eq!(allowed(&r), None);
    app.stop().await;

    let mut settings = env.settings();
    settings.graphql.cors_allowed_origins = vec!["https://shop.example.com".into()];
    let app = env.start_with(settings).await;
    let r = preflight(&app, "https://shop.example.com")
        .await
        .expect("preflight");
    assert!(r.status().is_success());
    assert_eq!(allowed(&r).expect("allowed"), "https://shop.example.com");
    let r = preflight(&app, "https://evil.example.net")
        .await
        .expect("preflight");
    assert_eq!(allowed(&r), None);
    app.stop().await;
}
on_both_backends!(cors_allows_only_listed_origins);

async fn graphiql_page_is_locked_down(env: &Environment) {
    let app = env.start().await;
    let page = app
        .http
        .get(format!("{}/graphql", app.base))
        .header("accept", "text/html")
        .send()
        .await
        .expect("page");
    assert_eq!(page.status(), StatusCode::OK);
    let headers = page.headers().clone();
    assert_eq!(headers["x-content-type-options"], "nosniff");
    let csp = headers["content-security-policy"].to_str().expect("csp");
    for directive in [
        "frame-ancestors 'none'",
        "script-src 'self'",
        "connect-src 'self'",
    ] {
        assert!(csp.contains(directive), "{directive} missing from {csp}");
    }
    let html = page.text().await.expect("html");
    // No inline script: everything the policy lets run is a file of this origin.
    assert!(!html.contains("<script>"), "{html}");
    for asset in ["/graphiql/bazaar.js", "/graphiql/graphiql.min.js"] {
        assert!(html.contains(asset));
        let r = app.get(asset).await;
        assert_eq!(r.status(), StatusCode::OK);
        assert_eq!(r.headers()["x-content-type-options"], "nosniff");
    }
    app.stop().await;
}
on_both_backends!(graphiql_page_is_locked_down);
