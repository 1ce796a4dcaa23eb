//! The notifications service's internal API: a user's notifications and preferences.

use serde::{Deserialize, Serialize};

use crate::page::Page;
use crate::{ApiError, Empty, Principal, ServiceClient};

#[cfg_attr(feature = "graphql", derive(async_graphql::Enum))]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum NotificationKind {
    Welcome,
    OrderUpdate,
    Promotion,
    Recommendation,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Notification {
    pub id: String,
    pub user_id: String,
    pub kind: NotificationKind,
    pub title: String,
    pub body: String,
    pub read: bool,
    pub created_at: i64,
}

/// What a user wants to hear about. Everything is on until switched off.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Preferences {
    pub order_updates: bool,
    pub promotions: bool,
    pub recommendations: bool,
}

impl Default for Preferences {
    fn default() -> Self {
        Preferences {
            order_updates: true,
            promotions: true,
            recommendations: true,
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ListNotificationsRequest {
    pub first: i64,
    /// The id of the last notification of the previous page (newest first).
    pub after: Option<String>,
    pub unread_only: bool,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct NotificationIdRequest {
    pub id: String,
}

/// `None` leaves a preference as it is.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct UpdatePreferencesRequest {
    pub order_updates: Option<bool>,
    pub promotions: Option<bool>,
    pub recommendations: Option<bool>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PreferencesRequest {
    /// Whose preferences: the caller themself, or anyone for an admin.
    pub user_id: String,
}

routes! {
    /// The caller's notifications, newest first.
    query ListNotifications = "notifications": ListNotificationsRequest => Page<Notification>;
    /// Marks one of the caller's notifications read (NOT_FOUND for anyone else's).
    command MarkRead = "mark-read": NotificationIdRequest => Notification;
    /// Marks all the caller's notifications read; answers how many changed.
    command MarkAllRead = "mark-all-read": Empty => i64;
    /// A user's preferences: the caller's own, or anyone's for an admin.
    query PreferencesOfUser = "preferences": PreferencesRequest => Preferences;
    command UpdatePreferences = "update-preferences": UpdatePreferencesRequest => Preferences;
}

/// Typed calls to the notifications service. Every call acts for the signed-in caller.
#[derive(Clone)]
pub struct NotificationsClient(pub ServiceClient);

impl NotificationsClient {
    /// The caller's notifications, newest first.
    pub async fn list(
        &self,
        p: &Principal,
        req: &ListNotificationsRequest,
    ) -> Result<Page<Notification>, ApiError> {
        self.0.call::<ListNotifications>(p, req).await
    }
    /// Marks one of the caller's notifications read (NOT_FOUND for anyone else's).
    pub async fn mark_read(&self, p: &Principal, id: &str) -> Result<Notification, ApiError> {
        let req = NotificationIdRequest { id: id.to_owned() };
        self.0.call::<MarkRead>(p, &req).await
    }
    /// Marks all the caller's notifications read; returns how many changed.
    pub async fn mark_all_read(&self, p: &Principal) -> Result<i64, ApiError> {
        self.0.call::<MarkAllRead>(p, &Empty {}).await
    }
    pub async fn preferences(&self, p: &Principal, user_id: &str) -> Result<Preferences, ApiError> {
        let req = PreferencesRequest {
            user_id: user_id.to_owned(),
        };
        self.0.call::<PreferencesOfUser>(p, &req).await
    }
    pub async fn update_preferences(
        &self,
        p: &Principal,
        req: &UpdatePreferencesRequest,
    ) -> Result<Preferences, ApiError> {
        self.0.call::<UpdatePreferences>(p, req).await
    }
}
