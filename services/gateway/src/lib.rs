//! The gateway: bazaar's one public API. It authenticates bearer tokens, applies limits,
//! and resolves GraphQL through the services' internal APIs.

mod accounts;
mod catalog;
mod context;
mod engagement;
mod error;
mod graphiql;
mod invalidation;
mod loaders;
mod monitoring;
mod orders;
mod pagination;
mod product_cache;
pub mod schema;
mod subscriptions;

use std::net::SocketAddr;

use async_graphql::Data;
use async_graphql_axum::{GraphQLProtocol, GraphQLRequest, GraphQLResponse, GraphQLWebSocket};
use axum::Router;
use axum::extract::{ConnectInfo, FromRequest, FromRequestParts, Request, State, WebSocketUpgrade};
use axum::http::request::Parts;
use axum::http::{HeaderMap, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use bazaar_auth::TokenKeys;
use bazaar_contracts::client::DeadLetterClient;
use bazaar_contracts::{ApiError, Principal, Role};
use bazaar_runtime::{Platform, Task};
use tower_http::limit::RequestBodyLimitLayer;

pub use context::Clients;
use context::RequestPrincipal;
use product_cache::ProductCache;
use schema::{BazaarSchema, Limits};

#[derive(Clone)]
struct Gateway {
    schema: BazaarSchema,
    tokens: TokenKeys,
    clients: Clients,
}

/// The public routes (`POST /graphql` for operations, `GET /graphql` for GraphiQL or a
/// graphql-transport-ws subscription) and the gateway's background tasks: keeping the
/// product cache in step with catalogue events, and feeding order updates to subscribers.
pub fn build(
    platform: &Platform,
    clients: Clients,
    dead_letters: Vec<DeadLetterClient>,
) -> (Router, Vec<Task>) {
    let settings = &platform.settings;
    let limits = Limits {
        max_depth: settings.max_query_depth,
        max_complexity: settings.max_query_complexity,
    };
    let products = ProductCache::new(platform.cache.clone(), clients.catalog.clone());
    let (feed, feed_task) = subscriptions::OrderFeed::start(platform.transport.clone());
    let monitoring = monitoring::Monitoring {
        transport: platform.transport.clone(),
        services: dead_letters,
    };
    let resources = schema::Resources {
        clients: clients.clone(),
        products: products.clone(),
        feed,
        monitoring,
    };
    let gateway = Gateway {
        schema: schema::build(Some(resources), &limits),
        tokens: platform.tokens.clone(),
        clients,
    };
    let transport = platform.transport.clone();
    let invalidation: Task =
        Box::new(move |stop| Box::pin(invalidation::run(transport, products, stop)));
    let router = Router::new()
        .route("/graphql", get(graphiql_or_subscription).post(graphql))
        .route("/graphiql/{file}", get(graphiql::asset))
        .layer(RequestBodyLimitLayer::new(settings.max_body_bytes))
        .with_state(gateway);
    (router, vec![invalidation, feed_task])
}

/// `GET /graphql`: a WebSocket upgrade starts a subscription session; anything else gets
/// GraphiQL.
async fn graphiql_or_subscription(State(gateway): State<Gateway>, request: Request) -> Response {
    if !request.headers().contains_key(header::UPGRADE) {
        return graphiql::page().await.into_response();
    }
    let (mut parts, body) = request.into_parts();
    let Ok(protocol) = GraphQLProtocol::from_request_parts(&mut parts, &()).await else {
        return (
            axum::http::StatusCode::BAD_REQUEST,
            "unsupported WebSocket subprotocol",
        )
            .into_response();
    };
    let upgrade = match WebSocketUpgrade::from_request(Request::from_parts(parts, body), &()).await
    {
        Ok(upgrade) => upgrade,
        Err(rejection) => return rejection.into_response(),
    };
    upgrade
        .protocols(async_graphql::http::ALL_WEBSOCKET_PROTOCOLS)
        .on_upgrade(move |socket| {
            let schema = gateway.schema.clone();
            GraphQLWebSocket::new(socket, schema, protocol)
                .on_connection_init(move |payload| connection_init(gateway, payload))
                .serve()
        })
}

/// Browsers cannot set headers on a WebSocket, so the access token comes in the
/// `connection_init` payload: `{"Authorization": "Bearer <token>"}` (any case of the key).
async fn connection_init(
    gateway: Gateway,
    payload: serde_json::Value,
) -> async_graphql::Result<Data> {
    let header = payload.as_object().and_then(|fields| {
        fields
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case("authorization"))
            .and_then(|(_, v)| v.as_str())
    });
    let principal = match header {
        None => Principal::anonymous(),
        Some(value) => verify_bearer(&gateway.tokens, value).map_err(error::gql)?,
    };
    let mut data = Data::default();
    data.insert(loaders::for_request(
        &gateway.clients.catalog,
        &gateway.clients.users,
        &principal,
    ));
    data.insert(RequestPrincipal(principal));
    Ok(data)
}

async fn graphql(
    State(gateway): State<Gateway>,
    ClientIp(client_ip): ClientIp,
    headers: HeaderMap,
    request: GraphQLRequest,
) -> GraphQLResponse {
    let principal = match authenticate(&gateway.tokens, &headers) {
        Ok(mut principal) => {
            principal.client_ip = client_ip;
            principal.request_id = headers
                .get("x-request-id")
                .and_then(|v| v.to_str().ok())
                .map(str::to_owned);
            principal
        }
        Err(e) => {
            return async_graphql::Response::from_errors(vec![
                error::gql(e).into_server_error(Default::default()),
            ])
            .into();
        }
    };
    let loaders =
        loaders::for_request(&gateway.clients.catalog, &gateway.clients.users, &principal);
    let request = request
        .into_inner()
        .data(loaders)
        .data(RequestPrincipal(principal));
    error::ensure_codes(gateway.schema.execute(request).await).into()
}

/// No Authorization header: anonymous. A bearer token that does not verify (expired,
/// tampered, wrong algorithm): UNAUTHENTICATED, so the client knows to refresh.
fn authenticate(tokens: &TokenKeys, headers: &HeaderMap) -> Result<Principal, ApiError> {
    let Some(value) = headers.get(header::AUTHORIZATION) else {
        return Ok(Principal::anonymous());
    };
    let value = value
        .to_str()
        .map_err(|_| ApiError::unauthenticated("Authorization must be 'Bearer <accessToken>'"))?;
    verify_bearer(tokens, value)
}

/// Checks a `Bearer <accessToken>` value.
fn verify_bearer(tokens: &TokenKeys, value: &str) -> Result<Principal, ApiError> {
    let token = Some(value)
        .and_then(|v| {
            v.strip_prefix("Bearer ")
                .or_else(|| v.strip_prefix("bearer "))
        })
        .ok_or_else(|| ApiError::unauthenticated("Authorization must be 'Bearer <accessToken>'"))?;
    let claims = tokens
        .verify(token.trim())
        .map_err(|_| ApiError::unauthenticated("invalid or expired access token"))?;
    let role = Role::parse(&claims.role)
        .ok_or_else(|| ApiError::unauthenticated("invalid access token"))?;
    Ok(Principal::user(claims.sub, role))
}

/// The client's address as seen by this listener (used for rate limits).
struct ClientIp(Option<String>);

impl<S: Send + Sync> FromRequestParts<S> for ClientIp {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        Ok(ClientIp(
            parts
                .extensions
                .get::<ConnectInfo<SocketAddr>>()
                .map(|c| c.0.ip().to_string()),
        ))
    }
}
