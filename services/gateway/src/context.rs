//! Per-request data the resolvers read: who is calling, and the clients of the services.

use async_graphql::Context;
use bazaar_contracts::Principal;
use bazaar_contracts::users::UsersClient;

/// Typed clients of every service the gateway talks to.
#[derive(Clone)]
pub struct Clients {
    pub users: UsersClient,
}

/// The caller of one GraphQL request, established from its bearer token.
pub struct RequestPrincipal(pub Principal);

pub fn principal<'a>(ctx: &Context<'a>) -> &'a Principal {
    static ANONYMOUS: std::sync::LazyLock<Principal> = std::sync::LazyLock::new(Principal::anonymous);
    ctx.data_opt::<RequestPrincipal>().map(|p| &p.0).unwrap_or(&ANONYMOUS)
}

pub fn clients<'a>(ctx: &Context<'a>) -> &'a Clients {
    ctx.data_unchecked::<Clients>()
}
