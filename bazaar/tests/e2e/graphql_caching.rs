//! Reads that skip work, on both backends: automatic persisted queries (registered in the cache
//! backend, so every replica sees them), trusted documents, and the whole-response cache for
//! anonymous catalogue reads with ETags, 304s and invalidation by catalogue changes.

use std::time::Duration;

use bazaar_cache::{Cache, RedisCache};

use crate::support::{Backend, Environment, REDIS_URL, TestApp, eventually, str, ws};
use reqwest::StatusCode;
use reqwest::header;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

const LIST: &str = "query List($n: Int) { products(first: $n) { edges { node { id name priceCents stock description } } } }";

fn sha256(text: &str) -> String {
    hex::encode(Sha256::digest(text.as_bytes()))
}

async fn send(
    app: &TestApp,
    token: Option<&str>,
    body: &Value,
    etag: Option<&str>,
) -> reqwest::Response {
    let mut request = app.http.post(format!("{}/graphql", app.base)).json(body);
    if let Some(token) = token {
        request = request.bearer_auth(token);
    }
    if let Some(etag) = etag {
        request = request.header(header::IF_NONE_MATCH, etag);
    }
    request.send().await.expect("request")
}

/// An anonymous request's JSON answer.
async fn answer(app: &TestApp, request: &Value) -> Value {
    send(app, None, request, None)
        .await
        .json()
        .await
        .expect("json")
}

fn apq(hash: &str) -> Value {
    json!({"persistedQuery": {"version": 1, "sha256Hash": hash}})
}

async fn automatic_persisted_queries(env: &Environment) {
    let app = env.start().await;
    let query = "{ products(first: 1) { edges { cursor } } }";
    let hash = sha256(query);

    let body: Value = answer(&app, &json!({"extensions": apq(&hash)})).await;
    assert_eq!(
        body["errors"][0]["extensions"]["code"], "PERSISTED_QUERY_NOT_FOUND",
        "{body:#}"
    );
    assert_eq!(body["errors"][0]["message"], "PersistedQueryNotFound");

    // A text that does not match its hash is refused and not registered.
    let wrong = send(
        &app,
        None,
        &json!({"query": "{ __typename }", "extensions": apq(&hash)}),
        None,
    )
    .await;
    assert_eq!(wrong.status(), StatusCode::BAD_REQUEST);

    let registered = answer(&app, &json!({"query": query, "extensions": apq(&hash)})).await;
    assert!(registered["data"]["products"].is_object(), "{registered:#}");
    let by_hash: Value = answer(&app, &json!({"extensions": apq(&hash)})).await;
    assert_eq!(by_hash["data"], registered["data"]);
    // GET with the hash only (how Apollo Client sends persisted queries over GET).
    let r = app
        .http
        .get(format!("{}/graphql", app.base))
        .query(&[("extensions", apq(&hash).to_string())])
        .send()
        .await
        .expect("get");
    assert_eq!(r.status(), StatusCode::OK);

    if env.backend != Backend::Embedded {
        // A second gateway on the same Redis knows the registration.
        let other = env.start().await;
        let body: Value = answer(&other, &json!({"extensions": apq(&hash)})).await;
        assert_eq!(body["data"], registered["data"], "{body:#}");
        other.stop().await;
    }
    app.stop().await;
}
on_both_backends!(automatic_persisted_queries);

/// An app that runs only the documents of `manifest`.
async fn start_trusted(env: &Environment, manifest: Value) -> TestApp {
    let path = env.data_dir.path().join("manifest.json");
    std::fs::write(&path, manifest.to_string()).expect("manifest");
    let mut settings = env.settings();
    settings.graphql.trusted_documents = Some(path);
    env.start_with(settings).await
}

async fn trusted_documents_only(env: &Environment) {
    let allowed = "query Typename { __typename }";
    let manifest = json!({"format": "apollo-persisted-query-manifest", "version": 1, "operations": [
        {"id": sha256(allowed), "name": "Typename", "type": "query", "body": allowed}
    ]});
    let app = start_trusted(env, manifest).await;

    let by_hash: Value = answer(&app, &json!({"extensions": apq(&sha256(allowed))})).await;
    assert_eq!(by_hash["data"]["__typename"], "Query", "{by_hash:#}");
    let by_id: Value = answer(
        &app,
        &json!({"documentId": format!("sha256:{}", sha256(allowed))}),
    )
    .await;
    assert_eq!(by_id["data"]["__typename"], "Query", "{by_id:#}");
    // The full text, even formatted differently, is allowed; any other document is not.
    app.ok(None, "query Typename {\n  __typename\n}", json!({}))
        .await;
    app.err(
        None,
        "{ products { edges { cursor } } }",
        json!({}),
        "PERSISTED_QUERY_NOT_ALLOWED",
    )
    .await;
    // Registering a new document through APQ is not a way around the manifest.
    let other = "{ me { id } }";
    let body: Value = answer(
        &app,
        &json!({"query": other, "extensions": apq(&sha256(other))}),
    )
    .await;
    assert!(body["data"].is_null(), "{body:#}");
    app.stop().await;
}
on_both_backends!(trusted_documents_only);

/// Operations over the subscription WebSocket do not pass through the HTTP edge: the schema
/// itself holds them to the manifest (here GraphQL Codegen's client-preset format).
async fn trusted_documents_over_websocket(env: &Environment) {
    let typename = "query Typename { __typename }";
    let watch = "subscription Watch { orderUpdated { id status } }";
    let manifest = json!({
        sha256(typename): typename,
        format!("sha256:{}", sha256(watch)): watch,
    });
    let app = start_trusted(env, manifest).await;
    let mut socket = ws::open(&app).await.expect("admitted");
    ws::init(&mut socket, None).await;
    let subscribe =
        |id: &str, query: &str| json!({"id": id, "type": "subscribe", "payload": {"query": query}});

    ws::send(
        &mut socket,
        subscribe("1", "query Typename {\n  __typename\n}"),
    )
    .await;
    let listed = ws::next(&mut socket).await.expect("an answer");
    assert_eq!(listed["payload"]["data"]["__typename"], "Query", "{listed}");
    // An unlisted subscription is refused before it starts; a listed one reaches its resolver
    // (which refuses an anonymous caller: had the manifest not been checked, the unlisted one
    // would have got the same UNAUTHENTICATED).
    for (id, query, code) in [
        (
            "2",
            "subscription { orderUpdated { id status } }",
            "PERSISTED_QUERY_NOT_ALLOWED",
        ),
        ("3", watch, "UNAUTHENTICATED"),
    ] {
        ws::send(&mut socket, subscribe(id, query)).await;
        let answer = loop {
            let message = ws::next(&mut socket).await.expect("an answer");
            if message["id"] == id {
                break message;
            }
        };
        assert_eq!(
            ws::errors(&answer)[0]["extensions"]["code"],
            code,
            "{answer}"
        );
    }
    app.stop().await;
}
on_both_backends!(trusted_documents_over_websocket);

async fn rename(app: &TestApp, admin: &str, id: &str, name: &str) {
    let update = "mutation($id: ID!, $name: String!) { updateProduct(id: $id, input: {name: $name}) { id } }";
    app.ok(Some(admin), update, json!({"id": id, "name": name}))
        .await;
}

async fn hits(app: &TestApp) -> f64 {
    app.counter("bazaar_graphql_response_cache_total", "outcome=\"hit\"")
        .await
}

async fn anonymous_catalogue_reads_are_cached(env: &Environment) {
    let app = env.start().await;
    let admin = app.admin_token().await;
    let lamp = app.product(&admin, "Lamp", "home", 2500, 10).await;
    let list = json!({"query": LIST, "variables": {"n": 10}});

    let first = send(&app, None, &list, None).await;
    assert_eq!(first.status(), StatusCode::OK);
    assert_eq!(
        first.headers()[header::CACHE_CONTROL],
        "public, max-age=0, must-revalidate"
    );
    let etag = first.headers()[header::ETAG]
        .to_str()
        .expect("etag")
        .to_owned();
    let first: Value = first.json().await.expect("json");

    // The same document laid out differently, with the same variables: served from the cache
    // (once the catalogue events of the set-up, which arrive asynchronously, stop bumping
    // the generation).
    let relaid = json!({"query": LIST.replace(' ', "\n  "), "variables": {"n": 10}});
    eventually(Duration::from_secs(20), || async {
        let before = hits(&app).await;
        let second = send(&app, None, &relaid, None).await;
        assert_eq!(second.headers()[header::ETAG], etag.as_str());
        assert_eq!(second.json::<Value>().await.expect("json"), first);
        (hits(&app).await > before).then_some(())
    })
    .await;
    let not_modified = send(&app, None, &list, Some(&etag)).await;
    assert_eq!(not_modified.status(), StatusCode::NOT_MODIFIED);

    // A product update is visible to the very next read.
    rename(&app, &admin, &lamp, "Desk lamp").await;
    let after = send(&app, None, &list, Some(&etag)).await;
    assert_eq!(after.status(), StatusCode::OK);
    assert_ne!(after.headers()[header::ETAG], etag.as_str());
    let after: Value = after.json().await.expect("json");
    assert_eq!(
        after["data"]["products"]["edges"][0]["node"]["name"],
        "Desk lamp"
    );
    let one = json!({"query": "query($id: ID!) { product(id: $id) { name } }", "variables": {"id": lamp}});
    let one: Value = answer(&app, &one).await;
    assert_eq!(one["data"]["product"]["name"], "Desk lamp");

    // Signed-in reads and reads that depend on the caller are never cached.
    let (ann, _, _) = app.register("ann@example.com", "Ann").await;
    let mine = send(&app, Some(&ann), &list, None).await;
    assert_eq!(mine.headers()[header::CACHE_CONTROL], "private, no-store");
    assert!(mine.headers().get(header::ETAG).is_none());
    let me = json!({"query": "{ products(first: 1) { edges { cursor } } me { id } }"});
    let anonymous_me = send(&app, None, &me, None).await;
    assert!(anonymous_me.headers().get(header::ETAG).is_none());
    assert_eq!(
        str(&json!(
            anonymous_me.headers()[header::CACHE_CONTROL]
                .to_str()
                .expect("cc")
        )),
        "private, no-store"
    );
    app.stop().await;
}
on_both_backends!(anonymous_catalogue_reads_are_cached);

/// The first product's name in an anonymous list, once a read of it is a cache hit: the
/// generation has settled (no catalogue event still on its way) and, on Redis, the gateway
/// holds a local copy of the body (made when it fetches an entry).
async fn cached_name(app: &TestApp) -> Value {
    let list = json!({"query": LIST, "variables": {"n": 10}});
    eventually(Duration::from_secs(20), || async {
        let before = hits(app).await;
        let body = answer(app, &list).await;
        let name = body["data"]["products"]["edges"][0]["node"]["name"].clone();
        (hits(app).await > before).then_some(name)
    })
    .await
}

/// Redis may lose the catalogue generation (eviction, a flush, a restart without persistence)
/// while a gateway keeps local copies of bodies fetched under it: the generation must then
/// move to numbers never used before, or an old body would answer under a reused key.
async fn a_lost_generation_brings_no_old_answer_back(env: &Environment) {
    if env.backend == Backend::Embedded {
        return; // in-process counters are never lost
    }
    let app = env.start().await;
    let admin = app.admin_token().await;
    let lamp = app.product(&admin, "Lamp", "home", 2500, 10).await;
    assert_eq!(cached_name(&app).await, "Lamp");
    let redis = RedisCache::connect(REDIS_URL, &env.namespace)
        .await
        .expect("redis");

    // Evicted: reads go on under a new generation (counting from 0, they once did, under
    // numbers that had been used before).
    redis.delete("catalog:generation").await.expect("del");
    assert_eq!(cached_name(&app).await, "Lamp");
    rename(&app, &admin, &lamp, "Desk lamp").await;
    assert_eq!(cached_name(&app).await, "Desk lamp");
    // Flushed: Redis's entries are gone, the gateway's local copies are not, and none of them
    // may answer (from 0 again, the local copy of "Lamp" did).
    redis.flush_namespace().await.expect("flush");
    let list = answer(&app, &json!({"query": LIST, "variables": {"n": 10}})).await;
    assert_eq!(
        list["data"]["products"]["edges"][0]["node"]["name"],
        "Desk lamp"
    );
    app.stop().await;
}
on_both_backends!(a_lost_generation_brings_no_old_answer_back);
