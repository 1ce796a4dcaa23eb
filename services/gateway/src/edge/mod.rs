//! GraphQL over HTTP, by the GraphQL-over-HTTP specification: `POST` with a JSON body for every
//! operation, `GET` with URL parameters for queries only, the response media type the client
//! accepts with that type's status codes. A `POST` that is not JSON is refused with 415, so a
//! cross-site form (`text/plain`, urlencoded, multipart: the types a browser sends without a
//! CORS preflight) can never run an operation. Persisted queries and the response cache sit on
//! this path, before the schema.

pub mod cors;
mod incoming;
mod media;
mod normalize;
mod persisted;
mod response_cache;

use std::collections::HashMap;

use axum::body::Bytes;
use axum::http::{HeaderMap, Method, StatusCode, header};
use axum::response::Response;
use bazaar_auth::TokenKeys;
use bazaar_contracts::Principal;
use serde_json::Value;

pub use persisted::Persisted;
pub use response_cache::ResponseCache;

use crate::context::Clients;
use crate::schema::{self, BazaarSchema};
use incoming::{Incoming, is_query};
use media::{Media, RequestError};

/// What the edge needs to answer a request: the schema, the keys that verify bearer tokens,
/// the service clients the request's loaders call, and the documents and responses it keeps.
pub struct Edge {
    pub schema: BazaarSchema,
    pub tokens: TokenKeys,
    pub clients: Clients,
    pub persisted: Persisted,
    /// The whole-response cache for anonymous catalogue reads (`None` when turned off).
    pub responses: Option<ResponseCache>,
}

/// `POST /graphql`.
pub async fn post(
    edge: &Edge,
    client_ip: Option<String>,
    headers: &HeaderMap,
    body: Bytes,
) -> Response {
    let media = Media::negotiate(headers);
    if !is_json(headers) {
        return media.refuse(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "POST /graphql takes application/json",
        );
    }
    let incoming: Incoming = match serde_json::from_slice(&body) {
        Ok(incoming) => incoming,
        Err(e) => {
            return media.refuse(
                StatusCode::BAD_REQUEST,
                &format!("the body is not a GraphQL request: {e}"),
            );
        }
    };
    run(edge, client_ip, headers, incoming, &Method::POST, media).await
}

/// `GET /graphql?query=...`: `variables` and `extensions` are JSON in their parameters.
pub async fn get(
    edge: &Edge,
    client_ip: Option<String>,
    headers: &HeaderMap,
    mut params: HashMap<String, String>,
) -> Response {
    let media = Media::negotiate(headers);
    let json = |name: &str| -> Result<Option<Value>, String> {
        match params.get(name) {
            None => Ok(None),
            Some(raw) => serde_json::from_str(raw)
                .map(Some)
                .map_err(|e| format!("the {name} parameter is not JSON: {e}")),
        }
    };
    let parsed = json("variables").and_then(|variables| match json("extensions")? {
        Some(Value::Object(map)) => Ok((variables, Some(map))),
        None => Ok((variables, None)),
        Some(_) => Err("extensions must be a JSON object".to_owned()),
    });
    let (variables, extensions) = match parsed {
        Ok(parsed) => parsed,
        Err(message) => return media.refuse(StatusCode::BAD_REQUEST, &message),
    };
    let incoming = Incoming {
        query: params.remove("query"),
        operation_name: params.remove("operationName"),
        variables,
        extensions,
        document_id: params.remove("documentId"),
    };
    run(edge, client_ip, headers, incoming, &Method::GET, media).await
}

/// Whether a `GET` carries a GraphQL request (otherwise it asks for GraphiQL).
pub fn is_graphql_get(params: &HashMap<String, String>) -> bool {
    ["query", "extensions", "documentId"]
        .iter()
        .any(|p| params.contains_key(*p))
}

async fn run(
    edge: &Edge,
    client_ip: Option<String>,
    headers: &HeaderMap,
    incoming: Incoming,
    method: &Method,
    media: Media,
) -> Response {
    let principal = match crate::auth::authenticate(&edge.tokens, headers) {
        Ok(mut principal) => {
            principal.client_ip = client_ip;
            principal.request_id = headers
                .get("x-request-id")
                .and_then(|v| v.to_str().ok())
                .map(str::to_owned);
            principal
        }
        Err(e) => return media.request_error(&RequestError::from_api(e)),
    };
    let query = match edge.persisted.resolve(&incoming).await {
        Ok(query) => query,
        Err(e) => return media.request_error(&e),
    };
    let operation = incoming.operation_name.as_deref();
    if *method == Method::GET && !is_query(&query, operation) {
        // GET must be safe: a link or an image tag must never change anything.
        let mut response = media.refuse(
            StatusCode::METHOD_NOT_ALLOWED,
            "only queries may be sent with GET; use POST",
        );
        response
            .headers_mut()
            .insert(header::ALLOW, header::HeaderValue::from_static("POST"));
        return response;
    }

    // Anonymous callers only: a signed-in caller's reads may depend on who they are.
    let cache = edge.responses.as_ref().filter(|_| principal.user.is_none());
    let slot = match cache {
        Some(cache) => {
            let normalised = normalize::normalize(&query);
            cache
                .slot(&normalised, operation, incoming.variables.as_ref())
                .await
        }
        None => None,
    };
    if let (Some(cache), Some(slot)) = (cache, &slot)
        && let Some(hit) = cache.get(slot).await
    {
        metrics::counter!("bazaar_graphql_response_cache_total", "outcome" => "hit").increment(1);
        return media.cached(headers, &hit.etag, hit.body.clone());
    }

    let response = execute(edge, principal, &query, &incoming).await;
    let (status, body) = media.encode(&response);
    if let (Some(cache), Some(slot)) = (cache, &slot)
        && status == StatusCode::OK
        && response.errors.is_empty()
    {
        metrics::counter!("bazaar_graphql_response_cache_total", "outcome" => "miss").increment(1);
        if let Some(etag) = cache.put(slot, &query, operation, &body).await {
            return media.cached(headers, &etag, body.into());
        }
    }
    media.private(status, body)
}

async fn execute(
    edge: &Edge,
    principal: Principal,
    query: &str,
    incoming: &Incoming,
) -> async_graphql::Response {
    let mut request = async_graphql::Request::new(query);
    request.data = schema::request_data(&edge.clients, principal);
    if let Some(name) = &incoming.operation_name {
        request = request.operation_name(name);
    }
    if let Some(variables) = incoming.variables.clone().filter(|v| !v.is_null()) {
        request = request.variables(async_graphql::Variables::from_json(variables));
    }
    crate::error::ensure_codes(edge.schema.execute(request).await)
}

/// `application/json`, with or without parameters (`; charset=utf-8`).
fn is_json(headers: &HeaderMap) -> bool {
    headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .is_some_and(|essence| essence.trim().eq_ignore_ascii_case("application/json"))
}
