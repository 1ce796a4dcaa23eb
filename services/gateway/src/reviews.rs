//! The reviews slice of the schema: a product's reviews and rating, and reviewing a product.

use async_graphql::{Context, ID, InputObject, Object, SimpleObject};
use bazaar_contracts::catalog::{self, AddReviewRequest, ListReviewsRequest};
use chrono::{DateTime, Utc};

use crate::context::{clients, principal, products, signed_in};
use crate::error::{GqlResult, OrGql};
use crate::pagination::{connection, decode_cursor, page_size};

#[derive(SimpleObject)]
pub struct Rating {
    /// Average stars; null without reviews.
    pub average: Option<f64>,
    pub count: i32,
}

pub struct Review(catalog::Review);

#[Object]
impl Review {
    async fn id(&self) -> ID {
        ID(self.0.id.clone())
    }
    async fn product_id(&self) -> ID {
        ID(self.0.product_id.clone())
    }
    /// The author's display name.
    async fn author(&self) -> &str {
        &self.0.author
    }
    async fn rating(&self) -> i32 {
        self.0.rating as i32
    }
    async fn title(&self) -> &str {
        &self.0.title
    }
    async fn body(&self) -> &str {
        &self.0.body
    }
    async fn verified_purchase(&self) -> bool {
        self.0.verified_purchase
    }
    async fn created_at(&self) -> DateTime<Utc> {
        bazaar_db::from_millis(self.0.created_at)
    }
}

connection!(ReviewConnection, ReviewEdge, Review);

#[derive(InputObject)]
pub struct ReviewInput {
    pub product_id: ID,
    /// 1 to 5 stars.
    pub rating: i32,
    pub title: String,
    pub body: String,
}

/// A product's reviews, newest first.
pub async fn product_reviews(
    ctx: &Context<'_>,
    product_id: &str,
    first: i32,
    after: Option<String>,
) -> GqlResult<ReviewConnection> {
    let req = ListReviewsRequest {
        product_id: product_id.to_owned(),
        first: page_size(first).gql()?,
        after: decode_cursor(after.as_deref()).gql()?,
    };
    let page = clients(ctx)
        .catalog
        .reviews(principal(ctx), &req)
        .await
        .gql()?;
    Ok(ReviewConnection::from_page(page, |r| &r.id, Review))
}

#[derive(Default)]
pub struct ReviewsMutation;

#[Object]
impl ReviewsMutation {
    /// Reviews a product the signed-in user received; a second review replaces the first.
    async fn add_review(&self, ctx: &Context<'_>, input: ReviewInput) -> GqlResult<Review> {
        let p = signed_in(ctx)?;
        let req = AddReviewRequest {
            product_id: input.product_id.0,
            rating: input.rating.into(),
            title: input.title,
            body: input.body,
        };
        let review = clients(ctx).catalog.add_review(p, &req).await.gql()?;
        // A review moves the product's rating, which cached product reads carry.
        products(ctx).invalidate().await;
        Ok(Review(review))
    }
}
