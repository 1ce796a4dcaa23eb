//! The recommendations slice of the schema: products picked for the caller.

use async_graphql::{Context, Object};
use bazaar_contracts::ApiError;

use crate::catalog::{Product, products_in_order};
use crate::context::{clients, principal};
use crate::error::{GqlResult, OrGql, gql};

#[derive(Default)]
pub struct RecommendationsQuery;

#[Object]
impl RecommendationsQuery {
    /// Products for the signed-in user (co-purchases of what they bought, then best sellers);
    /// best sellers for anonymous callers. Never what they bought, deleted or out of stock.
    async fn recommendations(
        &self,
        ctx: &Context<'_>,
        #[graphql(default = 10)] first: Option<i32>,
    ) -> GqlResult<Vec<Product>> {
        let first = first.unwrap_or(10);
        if !(1..=50).contains(&first) {
            return Err(gql(ApiError::bad_input(
                "first",
                "first: must be between 1 and 50",
            )));
        }
        let ids = clients(ctx)
            .recommendations
            .for_caller(principal(ctx), first.into())
            .await
            .gql()?;
        products_in_order(ctx, &ids).await
    }
}
