//! The gateway: bazaar's one public API. It authenticates bearer tokens, applies limits,
//! and resolves GraphQL through the services' internal APIs.
//!
//! One module per service slice holds that slice's GraphQL objects, queries, mutations and
//! batch loader; the shared pieces sit below the slices, the HTTP edge above the schema.
//! A module uses only modules on lower lines, so the graph has no cycles:
//!
//! ```text
//! lib              routes, WebSocket sessions, wiring    -> app, edge, schema, websocket, ...
//! app              the name, the state handlers share    -> edge, websocket
//! edge/            GraphQL over HTTP                     -> schema, auth, context, error,
//!                                                           product_cache
//! websocket        WebSocket session limits              -> body
//! invalidation     product cache upkeep from events      -> product_cache
//! schema           the slices merged, checks in front    -> every slice, cost/, depth, text
//! subscriptions    order tracking (orderUpdated)         -> orders
//! orders                                                 -> accounts, catalog
//! promotions                                             -> catalog
//! recommendations                                        -> catalog
//! catalog                                                -> reviews
//! accounts         users, sign-in, roles                 -> notifications
//! reviews
//! notifications
//! monitoring       operators: event streams, dead letters
//! context          caller, service clients, cache        -> product_cache
//! loaders, pagination, error, product_cache, auth, body, graphiql, cost/, depth, text
//! ```
//!
//! The slices use the shared pieces below them (context, loaders, pagination, error).

mod accounts;
mod app;
mod auth;
mod body;
mod catalog;
mod context;
pub mod cost;
mod depth;
mod edge;
mod error;
mod graphiql;
mod invalidation;
mod loaders;
mod monitoring;
mod notifications;
mod orders;
mod pagination;
mod product_cache;
mod promotions;
mod recommendations;
mod reviews;
pub mod schema;
mod subscriptions;
mod text;
mod websocket;

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;

use async_graphql::Data;
use async_graphql_axum::{GraphQLProtocol, GraphQLWebSocket};
use axum::Router;
use axum::extract::{
    ConnectInfo, DefaultBodyLimit, FromRequest, FromRequestParts, Query, Request, State,
    WebSocketUpgrade,
};
use axum::http::header;
use axum::http::request::Parts;
use axum::response::Response;
use axum::routing::get;
use bazaar_contracts::Principal;
use bazaar_contracts::client::DeadLetterClient;
use bazaar_runtime::{Platform, Service, Task};

use app::Gateway;
pub use app::NAME;
pub use context::Clients;
use edge::Edge;
use product_cache::ProductCache;
use schema::Limits;

/// What the gateway needs from other services: a client of each service it resolves through,
/// and of each service whose dead letters operators see.
pub struct Deps {
    pub clients: Clients,
    pub dead_letters: Vec<DeadLetterClient>,
}

/// The gateway as a service: the public routes (`POST /graphql` for operations, `GET
/// /graphql` for a query, GraphiQL or a graphql-transport-ws subscription) and its background
/// tasks: keeping the product cache in step with catalogue events, and feeding order updates
/// to subscribers. It keeps no database. Fails when the trusted documents manifest cannot be
/// read.
pub async fn build(platform: &Platform, deps: Deps) -> anyhow::Result<Service> {
    let Deps {
        clients,
        dead_letters,
    } = deps;
    let settings = &platform.settings;
    let persisted = edge::Persisted::new(platform.cache.clone(), &settings.graphql)
        .map_err(|e| anyhow::anyhow!("invalid trusted documents manifest: {e}"))?;
    let limits = Limits {
        cost: cost::CostLimits {
            max_tokens: settings.max_query_tokens,
            max_aliases: settings.max_query_aliases,
            max_directives: settings.max_query_directives,
            max_fragment_spreads: settings.max_query_fragment_spreads,
            max_selections: settings.max_query_selections,
            max_depth: settings.max_query_depth,
            max_introspection_depth: settings.max_introspection_depth,
        },
        max_complexity: settings.max_query_complexity,
        introspection: settings.graphql.introspection,
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
    let responses = edge::ResponseCache::new(
        platform.cache.clone(),
        products.clone(),
        settings.graphql.response_cache_ttl,
    );
    let mut builder = schema::builder(Some(resources), &limits);
    // Trusted documents hold on every transport, the subscription WebSocket included.
    if let Some(trusted_only) = persisted.trusted_only() {
        builder = builder.extension(trusted_only);
    }
    let edge = Edge {
        schema: builder.finish(),
        tokens: platform.tokens.clone(),
        clients,
        persisted,
        responses,
    };
    let gateway = Gateway {
        edge: Arc::new(edge),
        max_body_bytes: settings.max_body_bytes,
        ws: websocket::WsLimits::new(settings),
    };
    let transport = platform.transport.clone();
    let invalidation: Task =
        Box::new(move |stop| Box::pin(invalidation::run(transport, products, stop)));
    let mut api = Router::new().route("/graphql", get(get_graphql).post(post_graphql));
    if let Some(cors) = edge::cors::layer(&settings.graphql.cors_allowed_origins) {
        api = api.layer(cors);
    }
    let router = api
        .route("/graphiql/{file}", get(graphiql::asset))
        .layer(DefaultBodyLimit::max(settings.max_body_bytes))
        .with_state(gateway);
    Ok(Service {
        name: NAME,
        db: None,
        internal: Router::new(),
        public: Some(router),
        relay: None,
        consumers: Vec::new(),
        tasks: vec![invalidation, feed_task],
        retention: Vec::new(),
    })
}

async fn post_graphql(
    State(gateway): State<Gateway>,
    ClientIp(client_ip): ClientIp,
    request: Request,
) -> Response {
    let headers = request.headers().clone();
    match body::read_bytes(request, gateway.max_body_bytes).await {
        Ok(body) => edge::post(&gateway.edge, client_ip, &headers, body).await,
        Err(refusal) => refusal,
    }
}

/// `GET /graphql`: a WebSocket upgrade starts a subscription session, a request with a
/// `query` (or a persisted query) parameter runs it, anything else gets GraphiQL.
async fn get_graphql(
    State(gateway): State<Gateway>,
    ClientIp(client_ip): ClientIp,
    Query(params): Query<HashMap<String, String>>,
    request: Request,
) -> Response {
    if !request.headers().contains_key(header::UPGRADE) {
        if edge::is_graphql_get(&params) {
            return edge::get(&gateway.edge, client_ip, request.headers(), params).await;
        }
        return graphiql::page();
    }
    let (mut parts, body) = request.into_parts();
    let Ok(protocol) = GraphQLProtocol::from_request_parts(&mut parts, &()).await else {
        return body::refusal(
            axum::http::StatusCode::BAD_REQUEST,
            "unsupported WebSocket subprotocol: use graphql-transport-ws",
            None,
        );
    };
    let upgrade = match WebSocketUpgrade::from_request(Request::from_parts(parts, body), &()).await
    {
        Ok(upgrade) => upgrade,
        Err(_) => {
            return body::refusal(
                axum::http::StatusCode::BAD_REQUEST,
                "not a valid WebSocket upgrade request",
                None,
            );
        }
    };
    let limits = gateway.ws.clone();
    let Some(admitted) = limits.admit(client_ip.as_deref().and_then(|ip| ip.parse().ok())) else {
        return websocket::refused();
    };
    upgrade
        .max_message_size(limits.max_message_bytes)
        .max_frame_size(limits.max_message_bytes)
        .protocols(async_graphql::http::ALL_WEBSOCKET_PROTOCOLS)
        .on_upgrade(move |socket| async move {
            let _admitted = admitted;
            let schema = gateway.edge.schema.clone();
            let initialised = Arc::new(tokio::sync::Notify::new());
            let signal = initialised.clone();
            let session = GraphQLWebSocket::new(socket, schema, protocol)
                .on_connection_init(move |payload| {
                    signal.notify_one();
                    connection_init(gateway, client_ip, payload)
                })
                .serve();
            tokio::pin!(session);
            // A client that never sends connection_init is dropped after the deadline
            // instead of holding a connection (and its slot) forever.
            tokio::select! {
                biased;
                _ = initialised.notified() => {}
                _ = &mut session => return,
                _ = tokio::time::sleep(limits.init_timeout) => return,
            }
            session.await;
        })
}

/// Browsers cannot set headers on a WebSocket, so the access token comes in the
/// `connection_init` payload: `{"Authorization": "Bearer <token>"}` (any case of the key).
async fn connection_init(
    gateway: Gateway,
    client_ip: Option<String>,
    payload: serde_json::Value,
) -> async_graphql::Result<Data> {
    let header = payload.as_object().and_then(|fields| {
        fields
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case("authorization"))
            .and_then(|(_, v)| v.as_str())
    });
    let mut principal = match header {
        None => Principal::anonymous(),
        Some(value) => auth::verify_bearer(&gateway.edge.tokens, value).map_err(error::gql)?,
    };
    principal.client_ip = client_ip;
    let mut data = schema::request_data(&gateway.edge.clients, principal);
    data.insert(subscriptions::SubscriptionSlots::new(
        gateway.ws.max_subscriptions,
    ));
    Ok(data)
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
