//! What every slice's resolvers read from the context: who is calling, the service clients
//! and the product cache. (Each slice's batch loader is reached through `loaders::of`.)

use async_graphql::Context;
use bazaar_contracts::Principal;
use bazaar_contracts::catalog::CatalogClient;
use bazaar_contracts::notifications::NotificationsClient;
use bazaar_contracts::orders::OrdersClient;
use bazaar_contracts::recommendations::RecommendationsClient;
use bazaar_contracts::users::UsersClient;

use crate::error::{GqlResult, OrGql};
use crate::product_cache::ProductCache;

/// Typed clients of every service the gateway talks to.
#[derive(Clone)]
pub struct Clients {
    pub users: UsersClient,
    pub catalog: CatalogClient,
    pub orders: OrdersClient,
    pub notifications: NotificationsClient,
    pub recommendations: RecommendationsClient,
}

/// The caller of one GraphQL request, established from its bearer token.
pub struct RequestPrincipal(pub Principal);

pub fn principal<'a>(ctx: &Context<'a>) -> &'a Principal {
    static ANONYMOUS: std::sync::LazyLock<Principal> =
        std::sync::LazyLock::new(Principal::anonymous);
    ctx.data_opt::<RequestPrincipal>()
        .map(|p| &p.0)
        .unwrap_or(&ANONYMOUS)
}

/// The caller, who must be signed in (`UNAUTHENTICATED` otherwise).
pub fn signed_in<'a>(ctx: &Context<'a>) -> GqlResult<&'a Principal> {
    let p = principal(ctx);
    p.require_user().gql()?;
    Ok(p)
}

/// The caller, who must be an admin (`UNAUTHENTICATED` or `FORBIDDEN` otherwise).
pub fn admin<'a>(ctx: &Context<'a>) -> GqlResult<&'a Principal> {
    let p = principal(ctx);
    p.require_admin().gql()?;
    Ok(p)
}

pub fn clients<'a>(ctx: &Context<'a>) -> &'a Clients {
    ctx.data_unchecked::<Clients>()
}

pub fn products<'a>(ctx: &Context<'a>) -> &'a ProductCache {
    ctx.data_unchecked::<ProductCache>()
}
