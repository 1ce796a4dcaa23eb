//! The promotions slice of the schema: time-boxed percentage discounts, listed for everyone
//! and created or ended by admins.

use async_graphql::{ComplexObject, Context, ID, InputObject, Object, SimpleObject};
use bazaar_contracts::catalog::{self, CreatePromotionRequest, ListPromotionsRequest};
use chrono::{DateTime, Utc};

use crate::catalog::{Product, products_in_order};
use crate::context::{admin, clients, principal, products};
use crate::error::{GqlResult, OrGql};

#[derive(SimpleObject)]
#[graphql(complex)]
pub struct Promotion {
    pub id: ID,
    pub title: String,
    pub percent_off: i32,
    pub starts_at: DateTime<Utc>,
    pub ends_at: DateTime<Utc>,
    #[graphql(skip)]
    pub product_ids: Vec<String>,
}

impl From<catalog::Promotion> for Promotion {
    fn from(p: catalog::Promotion) -> Self {
        Promotion {
            id: ID(p.id),
            title: p.title,
            percent_off: p.percent_off as i32,
            starts_at: bazaar_db::from_millis(p.starts_at),
            ends_at: bazaar_db::from_millis(p.ends_at),
            product_ids: p.product_ids,
        }
    }
}

#[ComplexObject]
impl Promotion {
    /// The discounted products (deleted ones are left out).
    async fn products(&self, ctx: &Context<'_>) -> GqlResult<Vec<Product>> {
        products_in_order(ctx, &self.product_ids).await
    }
}

#[derive(InputObject)]
pub struct CreatePromotionInput {
    pub title: String,
    pub product_ids: Vec<ID>,
    /// 1 to 90.
    pub percent_off: i32,
    pub starts_at: DateTime<Utc>,
    pub ends_at: DateTime<Utc>,
}

#[derive(Default)]
pub struct PromotionsQuery;

#[Object]
impl PromotionsQuery {
    /// Promotions, running ones only by default.
    async fn promotions(
        &self,
        ctx: &Context<'_>,
        #[graphql(default_with = "Some(true)")] active_only: Option<bool>,
    ) -> GqlResult<Vec<Promotion>> {
        let list = clients(ctx)
            .catalog
            .promotions(
                principal(ctx),
                &ListPromotionsRequest {
                    active_only: active_only.unwrap_or(true),
                },
            )
            .await
            .gql()?;
        Ok(list.into_iter().map(Into::into).collect())
    }
}

#[derive(Default)]
pub struct PromotionsMutation;

#[Object]
impl PromotionsMutation {
    /// Creates a time-boxed percentage discount (admins only).
    async fn create_promotion(
        &self,
        ctx: &Context<'_>,
        input: CreatePromotionInput,
    ) -> GqlResult<Promotion> {
        let p = admin(ctx)?;
        let req = CreatePromotionRequest {
            title: input.title,
            product_ids: input.product_ids.into_iter().map(|id| id.0).collect(),
            percent_off: input.percent_off.into(),
            starts_at: input.starts_at.timestamp_millis(),
            ends_at: input.ends_at.timestamp_millis(),
        };
        let promotion = clients(ctx).catalog.create_promotion(p, &req).await.gql()?;
        // Cached product reads carry the promotion that prices them.
        products(ctx).invalidate().await;
        Ok(promotion.into())
    }

    /// Ends a promotion now (admins only).
    async fn end_promotion(&self, ctx: &Context<'_>, id: ID) -> GqlResult<Promotion> {
        let p = admin(ctx)?;
        let promotion = clients(ctx).catalog.end_promotion(p, &id).await.gql()?;
        products(ctx).invalidate().await;
        Ok(promotion.into())
    }
}
