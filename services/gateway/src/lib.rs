//! The gateway: bazaar's one public API. It authenticates bearer tokens, applies limits,
//! and resolves GraphQL through the services' internal APIs.

mod accounts;
mod catalog;
mod context;
mod error;
mod graphiql;
mod invalidation;
mod loaders;
mod orders;
mod pagination;
mod product_cache;
pub mod schema;

use std::net::SocketAddr;

use async_graphql_axum::{GraphQLRequest, GraphQLResponse};
use axum::Router;
use axum::extract::{ConnectInfo, FromRequestParts, State};
use axum::http::request::Parts;
use axum::http::{HeaderMap, header};
use axum::routing::get;
use bazaar_auth::TokenKeys;
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

/// The public routes (`POST /graphql` for operations, `GET /graphql` for GraphiQL) and the
/// task that keeps the product cache in step with catalogue events.
pub fn build(platform: &Platform, clients: Clients) -> (Router, Task) {
    let settings = &platform.settings;
    let limits = Limits {
        max_depth: settings.max_query_depth,
        max_complexity: settings.max_query_complexity,
    };
    let products = ProductCache::new(platform.cache.clone(), clients.catalog.clone());
    let gateway = Gateway {
        schema: schema::build(Some((clients.clone(), products.clone())), &limits),
        tokens: platform.tokens.clone(),
        clients,
    };
    let transport = platform.transport.clone();
    let invalidation: Task =
        Box::new(move |stop| Box::pin(invalidation::run(transport, products, stop)));
    let router = Router::new()
        .route("/graphql", get(graphiql::page).post(graphql))
        .route("/graphiql/{file}", get(graphiql::asset))
        .layer(RequestBodyLimitLayer::new(settings.max_body_bytes))
        .with_state(gateway);
    (router, invalidation)
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
    let token = value
        .to_str()
        .ok()
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
