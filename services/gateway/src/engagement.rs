//! The engagement slice of the schema: notifications and preferences, recommendations,
//! promotions and reviews.

use async_graphql::{ComplexObject, Context, Enum, ID, InputObject, Object, SimpleObject};
use bazaar_contracts::ApiError;
use bazaar_contracts::catalog::{
    self, AddReviewRequest, CreatePromotionRequest, ListPromotionsRequest, ListReviewsRequest,
};
use bazaar_contracts::notifications::{self, ListNotificationsRequest, UpdatePreferencesRequest};
use chrono::{DateTime, Utc};

use crate::catalog::Product;
use crate::context::{clients, loaders, principal, products};
use crate::error::{GqlResult, OrGql, gql};
use crate::pagination::{connection, decode_cursor, page_size};

#[derive(Enum, Copy, Clone, Eq, PartialEq, Debug)]
pub enum NotificationKind {
    Welcome,
    OrderUpdate,
    Promotion,
    Recommendation,
}

impl From<notifications::NotificationKind> for NotificationKind {
    fn from(k: notifications::NotificationKind) -> Self {
        use notifications::NotificationKind as K;
        match k {
            K::Welcome => NotificationKind::Welcome,
            K::OrderUpdate => NotificationKind::OrderUpdate,
            K::Promotion => NotificationKind::Promotion,
            K::Recommendation => NotificationKind::Recommendation,
        }
    }
}

pub struct Notification(notifications::Notification);

#[Object]
impl Notification {
    async fn id(&self) -> ID {
        ID(self.0.id.clone())
    }
    async fn kind(&self) -> NotificationKind {
        self.0.kind.into()
    }
    async fn title(&self) -> &str {
        &self.0.title
    }
    async fn body(&self) -> &str {
        &self.0.body
    }
    async fn read(&self) -> bool {
        self.0.read
    }
    async fn created_at(&self) -> DateTime<Utc> {
        bazaar_db::from_millis(self.0.created_at)
    }
}

connection!(NotificationConnection, NotificationEdge, Notification);

#[derive(SimpleObject)]
pub struct Preferences {
    pub order_updates: bool,
    pub promotions: bool,
    pub recommendations: bool,
}

impl From<notifications::Preferences> for Preferences {
    fn from(p: notifications::Preferences) -> Self {
        Preferences {
            order_updates: p.order_updates,
            promotions: p.promotions,
            recommendations: p.recommendations,
        }
    }
}

#[derive(InputObject)]
pub struct PreferencesInput {
    pub order_updates: Option<bool>,
    pub promotions: Option<bool>,
    pub recommendations: Option<bool>,
}

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
        let found = loaders(ctx)
            .0
            .load_many(self.product_ids.iter().cloned())
            .await
            .map_err(gql)?;
        Ok(self
            .product_ids
            .iter()
            .filter_map(|id| found.get(id).cloned())
            .map(Product)
            .collect())
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
pub struct EngagementQuery;

#[Object]
impl EngagementQuery {
    /// The signed-in user's notifications, newest first.
    async fn notifications(
        &self,
        ctx: &Context<'_>,
        #[graphql(default_with = "Some(false)")] unread_only: Option<bool>,
        #[graphql(default = 20)] first: Option<i32>,
        after: Option<String>,
    ) -> GqlResult<NotificationConnection> {
        let p = principal(ctx);
        p.require_user().gql()?;
        let req = ListNotificationsRequest {
            first: page_size(first.unwrap_or(20)).gql()?,
            after: decode_cursor(after.as_deref()).gql()?,
            unread_only: unread_only.unwrap_or(false),
        };
        let page = clients(ctx).notifications.list(p, &req).await.gql()?;
        Ok(NotificationConnection::from_page(
            page,
            |n| &n.id,
            Notification,
        ))
    }

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
        let found = loaders(ctx)
            .0
            .load_many(ids.iter().cloned())
            .await
            .map_err(gql)?;
        Ok(ids
            .iter()
            .filter_map(|id| found.get(id).cloned())
            .map(Product)
            .collect())
    }

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
pub struct EngagementMutation;

#[Object]
impl EngagementMutation {
    /// Marks one of the signed-in user's notifications read.
    async fn mark_notification_read(&self, ctx: &Context<'_>, id: ID) -> GqlResult<Notification> {
        let p = principal(ctx);
        p.require_user().gql()?;
        Ok(Notification(
            clients(ctx).notifications.mark_read(p, &id).await.gql()?,
        ))
    }

    /// Marks all the signed-in user's notifications read; returns how many changed.
    async fn mark_all_notifications_read(&self, ctx: &Context<'_>) -> GqlResult<i32> {
        let p = principal(ctx);
        p.require_user().gql()?;
        Ok(clients(ctx).notifications.mark_all_read(p).await.gql()? as i32)
    }

    /// Chooses what the signed-in user hears about; unset fields stay as they are.
    async fn update_preferences(
        &self,
        ctx: &Context<'_>,
        input: PreferencesInput,
    ) -> GqlResult<Preferences> {
        let p = principal(ctx);
        p.require_user().gql()?;
        let req = UpdatePreferencesRequest {
            order_updates: input.order_updates,
            promotions: input.promotions,
            recommendations: input.recommendations,
        };
        Ok(clients(ctx)
            .notifications
            .update_preferences(p, &req)
            .await
            .gql()?
            .into())
    }

    /// Creates a time-boxed percentage discount (admins only).
    async fn create_promotion(
        &self,
        ctx: &Context<'_>,
        input: CreatePromotionInput,
    ) -> GqlResult<Promotion> {
        let p = principal(ctx);
        p.require_admin().gql()?;
        let req = CreatePromotionRequest {
            title: input.title,
            product_ids: input.product_ids.into_iter().map(|id| id.0).collect(),
            percent_off: input.percent_off.into(),
            starts_at: input.starts_at.timestamp_millis(),
            ends_at: input.ends_at.timestamp_millis(),
        };
        let promotion = clients(ctx).catalog.create_promotion(p, &req).await.gql()?;
        products(ctx).invalidate().await;
        Ok(promotion.into())
    }

    /// Ends a promotion now (admins only).
    async fn end_promotion(&self, ctx: &Context<'_>, id: ID) -> GqlResult<Promotion> {
        let p = principal(ctx);
        p.require_admin().gql()?;
        let promotion = clients(ctx).catalog.end_promotion(p, &id).await.gql()?;
        products(ctx).invalidate().await;
        Ok(promotion.into())
    }

    /// Reviews a product the signed-in user received; a second review replaces the first.
    async fn add_review(&self, ctx: &Context<'_>, input: ReviewInput) -> GqlResult<Review> {
        let p = principal(ctx);
        p.require_user().gql()?;
        let req = AddReviewRequest {
            product_id: input.product_id.0,
            rating: input.rating.into(),
            title: input.title,
            body: input.body,
        };
        let review = clients(ctx).catalog.add_review(p, &req).await.gql()?;
        products(ctx).invalidate().await;
        Ok(Review(review))
    }
}
