//! The notifications service's internal API, called by the gateway: one handler per route of
//! `bazaar_contracts::notifications`.

use axum::Router;
use bazaar_contracts::notifications::{
    ListNotifications, ListNotificationsRequest, MarkAllRead, MarkRead, Notification,
    NotificationIdRequest, Preferences, PreferencesOfUser, PreferencesRequest, UpdatePreferences,
    UpdatePreferencesRequest,
};
use bazaar_contracts::page::Page;
use bazaar_contracts::{Empty, Principal, Routes};
use bazaar_runtime::ServiceResult;

use crate::app::Notifications;

pub fn routes(notifications: Notifications) -> Router {
    Routes::new()
        .serve::<ListNotifications>(list)
        .serve::<MarkRead>(mark_read)
        .serve::<MarkAllRead>(mark_all_read)
        .serve::<PreferencesOfUser>(preferences)
        .serve::<UpdatePreferences>(update_preferences)
        .with_state(notifications)
}

async fn list(
    n: Notifications,
    p: Principal,
    req: ListNotificationsRequest,
) -> ServiceResult<Page<Notification>> {
    n.list(&p, &req).await
}

async fn mark_read(
    n: Notifications,
    p: Principal,
    req: NotificationIdRequest,
) -> ServiceResult<Notification> {
    n.mark_read(&p, &req.id).await
}

async fn mark_all_read(n: Notifications, p: Principal, _: Empty) -> ServiceResult<i64> {
    n.mark_all_read(&p).await
}

async fn preferences(
    n: Notifications,
    p: Principal,
    req: PreferencesRequest,
) -> ServiceResult<Preferences> {
    n.preferences(&p, &req.user_id).await
}

async fn update_preferences(
    n: Notifications,
    p: Principal,
    req: UpdatePreferencesRequest,
) -> ServiceResult<Preferences> {
    n.update_preferences(&p, &req).await
}
