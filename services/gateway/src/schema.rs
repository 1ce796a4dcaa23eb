//! The GraphQL schema: every slice's queries and mutations merged, with the cost model in
//! front, a complexity limit, introspection that can be turned off, and per-operation metrics.

use std::sync::Arc;
use std::time::Instant;

use async_graphql::extensions::{
    Extension, ExtensionContext, ExtensionFactory, NextPrepareRequest, NextResolve, ResolveInfo,
};
use async_graphql::{Data, MergedObject, Request, Schema, SchemaBuilder, ServerResult, Value};
use bazaar_contracts::Principal;
use tracing::Instrument;

use crate::accounts::{AccountsMutation, AccountsQuery, UserLoader};
use crate::catalog::{CatalogMutation, CatalogQuery, ProductLoader};
use crate::context::{Clients, RequestPrincipal};
use crate::cost::CostLimits;
use crate::monitoring::{MonitoringMutation, MonitoringQuery};
use crate::notifications::{NotificationsMutation, NotificationsQuery};
use crate::orders::{OrdersMutation, OrdersQuery};
use crate::promotions::{PromotionsMutation, PromotionsQuery};
use crate::recommendations::RecommendationsQuery;
use crate::reviews::ReviewsMutation;
use crate::subscriptions::Subscriptions;

// The order of the slices is the order of the root fields in the published schema.
#[derive(MergedObject, Default)]
pub struct Query(
    AccountsQuery,
    CatalogQuery,
    OrdersQuery,
    NotificationsQuery,
    RecommendationsQuery,
    PromotionsQuery,
    MonitoringQuery,
);

#[derive(MergedObject, Default)]
pub struct Mutation(
    AccountsMutation,
    CatalogMutation,
    OrdersMutation,
    NotificationsMutation,
    PromotionsMutation,
    ReviewsMutation,
    MonitoringMutation,
);

pub type BazaarSchema = Schema<Query, Mutation, Subscriptions>;

/// What resolvers read from the schema's data: service clients, the product cache, the order
/// feed and the monitoring handles.
pub struct Resources {
    pub clients: Clients,
    pub products: crate::product_cache::ProductCache,
    pub feed: crate::subscriptions::OrderFeed,
    pub monitoring: crate::monitoring::Monitoring,
}

#[derive(Clone, Default)]
pub struct Limits {
    pub cost: CostLimits,
    pub max_complexity: usize,
    /// Whether `__schema` / `__type` answer (production deployments may turn it off).
    pub introspection: bool,
}

/// The depth limit is the cost model's (which knows introspection from data), not the
/// engine's; the engine's complexity and recursion limits stay as a second line, and only
/// ever see documents the cost model has already bounded. The caller adds what the edge
/// brings (trusted documents) and finishes it.
pub fn builder(
    resources: Option<Resources>,
    limits: &Limits,
) -> SchemaBuilder<Query, Mutation, Subscriptions> {
    let mut builder = Schema::build(Query::default(), Mutation::default(), Subscriptions)
        .extension(CostModel(Arc::new(limits.cost.clone())))
        .limit_complexity(limits.max_complexity)
        .limit_recursive_depth(32)
        // The cost model bounds depth already; this second walk refuses introspection with a
        // message when it is turned off (the engine alone would answer null).
        .extension(crate::depth::DepthLimit {
            max_depth: limits.cost.max_depth,
            introspection: limits.introspection,
        })
        .extension(OperationMetrics);
    if !limits.introspection {
        builder = builder.disable_introspection();
    }
    if let Some(r) = resources {
        builder = builder
            .data(r.clients)
            .data(r.products)
            .data(r.feed)
            .data(r.monitoring);
    }
    builder
}

/// The schema in SDL, for the snapshot test and for clients.
pub fn sdl() -> String {
    builder(
        None,
        &Limits {
            cost: CostLimits::default(),
            max_complexity: 1000,
            introspection: true,
        },
    )
    .finish()
    .sdl()
}

/// One request's own data: its caller, and each slice's batch loader acting as that caller
/// (they cache for this request only). HTTP requests and WebSocket sessions start with it.
pub fn request_data(clients: &Clients, principal: Principal) -> Data {
    let mut data = Data::default();
    data.insert(ProductLoader::for_request(&clients.catalog, &principal));
    data.insert(UserLoader::for_request(&clients.users, &principal));
    data.insert(RequestPrincipal(principal));
    data
}

/// Runs the cost model on every request (HTTP and WebSocket alike) before the engine parses,
/// validates or executes it; the document it parsed is handed on, so it is parsed once.
struct CostModel(Arc<CostLimits>);

impl ExtensionFactory for CostModel {
    fn create(&self) -> Arc<dyn Extension> {
        Arc::new(CostModel(self.0.clone()))
    }
}

#[async_trait::async_trait]
impl Extension for CostModel {
    async fn prepare_request(
        &self,
        ctx: &ExtensionContext<'_>,
        mut request: Request,
        next: NextPrepareRequest<'_>,
    ) -> ServerResult<Request> {
        match crate::cost::check(&request.query, &self.0) {
            Ok(Some(document)) => {
                if let Some(field) = crate::text::nul_argument(&document, &request.variables) {
                    return Err(crate::text::refusal(field));
                }
                request.set_parsed_query(document)
            }
            // A syntax error: the engine parses again and reports it in its own words.
            Ok(None) => {}
            Err(refusal) => {
                metrics::counter!("bazaar_graphql_refused_total", "limit" => refusal.limit)
                    .increment(1);
                return Err(refusal.into_server_error());
            }
        }
        next.run(ctx, request).await
    }
}

/// Counts, times and, when tracing is on, traces each root field (`Query.me`,
/// `Mutation.placeOrder`, …). Labels and span names come from the schema, never from
/// client-chosen operation names, so the series stay bounded.
struct OperationMetrics;

impl ExtensionFactory for OperationMetrics {
    fn create(&self) -> Arc<dyn Extension> {
        Arc::new(OperationMetrics)
    }
}

#[async_trait::async_trait]
impl Extension for OperationMetrics {
    async fn resolve(
        &self,
        ctx: &ExtensionContext<'_>,
        info: ResolveInfo<'_>,
        next: NextResolve<'_>,
    ) -> ServerResult<Option<Value>> {
        if info.path_node.parent.is_some() {
            return next.run(ctx, info).await;
        }
        let operation = format!("{}.{}", info.parent_type, info.name);
        let started = Instant::now();
        let result = if bazaar_bus::trace::enabled() {
            let span = tracing::info_span!(
                "graphql",
                otel.name = %operation,
                otel.kind = "internal",
                graphql.field = info.name,
            );
            next.run(ctx, info).instrument(span).await
        } else {
            next.run(ctx, info).await
        };
        let outcome = if result.is_ok() { "ok" } else { "error" };
        metrics::counter!("bazaar_graphql_requests_total", "operation" => operation.clone(), "outcome" => outcome)
            .increment(1);
        metrics::histogram!("bazaar_graphql_request_duration_seconds", "operation" => operation)
            .record(started.elapsed().as_secs_f64());
        result
    }
}
