//! The notifications slice of the schema: a user's notifications, marking them read, and the
//! preferences that decide what they hear about.

use async_graphql::{Context, ID, InputObject, Object, SimpleObject};
use bazaar_contracts::notifications::{
    self, ListNotificationsRequest, NotificationKind, UpdatePreferencesRequest,
};
use chrono::{DateTime, Utc};

use crate::context::{clients, signed_in};
use crate::error::{GqlResult, OrGql};
use crate::pagination::{connection, decode_cursor, page_size};

pub struct Notification(notifications::Notification);

#[Object]
impl Notification {
    async fn id(&self) -> ID {
        ID(self.0.id.clone())
    }
    async fn kind(&self) -> NotificationKind {
        self.0.kind
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

// Not the contract's `Preferences` with the GraphQL derive: its doc comment would become the
// type's description and change the public schema.
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

#[derive(Default)]
pub struct NotificationsQuery;

#[Object]
impl NotificationsQuery {
    /// The signed-in user's notifications, newest first.
    async fn notifications(
        &self,
        ctx: &Context<'_>,
        #[graphql(default_with = "Some(false)")] unread_only: Option<bool>,
        #[graphql(default = 20)] first: Option<i32>,
        after: Option<String>,
    ) -> GqlResult<NotificationConnection> {
        let p = signed_in(ctx)?;
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
}

#[derive(Default)]
pub struct NotificationsMutation;

#[Object]
impl NotificationsMutation {
    /// Marks one of the signed-in user's notifications read.
    async fn mark_notification_read(&self, ctx: &Context<'_>, id: ID) -> GqlResult<Notification> {
        let p = signed_in(ctx)?;
        Ok(Notification(
            clients(ctx).notifications.mark_read(p, &id).await.gql()?,
        ))
    }

    /// Marks all the signed-in user's notifications read; returns how many changed.
    async fn mark_all_notifications_read(&self, ctx: &Context<'_>) -> GqlResult<i32> {
        let p = signed_in(ctx)?;
        Ok(clients(ctx).notifications.mark_all_read(p).await.gql()? as i32)
    }

    /// Chooses what the signed-in user hears about; unset fields stay as they are.
    async fn update_preferences(
        &self,
        ctx: &Context<'_>,
        input: PreferencesInput,
    ) -> GqlResult<Preferences> {
        let p = signed_in(ctx)?;
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
}
