//! The notifications service's internal API (`POST /internal/<op>`), called by the gateway.

use axum::extract::State;
use axum::routing::post;
use axum::{Json, Router};
use bazaar_contracts::notifications::{
    ListNotificationsRequest, Notification, NotificationIdRequest, Preferences, PreferencesRequest,
    UpdatePreferencesRequest,
};
use bazaar_contracts::page::Page;
use bazaar_contracts::{Caller, Input};
use bazaar_runtime::ServiceResult;

use crate::app::Notifications;

pub fn routes(notifications: Notifications) -> Router {
    Router::new()
        .route("/internal/notifications", post(list))
        .route("/internal/mark-read", post(mark_read))
        .route("/internal/mark-all-read", post(mark_all_read))
        .route("/internal/preferences", post(preferences))
        .route("/internal/update-preferences", post(update_preferences))
        .with_state(notifications)
}

async fn list(
    State(n): State<Notifications>,
    Caller(p): Caller,
    Input(req): Input<ListNotificationsRequest>,
) -> ServiceResult<Json<Page<Notification>>> {
    Ok(Json(n.list(&p, &req).await?))
}

async fn mark_read(
    State(n): State<Notifications>,
    Caller(p): Caller,
    Input(req): Input<NotificationIdRequest>,
) -> ServiceResult<Json<Notification>> {
    Ok(Json(n.mark_read(&p, &req.id).await?))
}

/// The body is an empty object; it is not read.
async fn mark_all_read(
    State(n): State<Notifications>,
    Caller(p): Caller,
) -> ServiceResult<Json<i64>> {
    Ok(Json(n.mark_all_read(&p).await?))
}

async fn preferences(
    State(n): State<Notifications>,
    Caller(p): Caller,
    Input(req): Input<PreferencesRequest>,
) -> ServiceResult<Json<Preferences>> {
    Ok(Json(n.preferences(&p, &req.user_id).await?))
}

async fn update_preferences(
    State(n): State<Notifications>,
    Caller(p): Caller,
    Input(req): Input<UpdatePreferencesRequest>,
) -> ServiceResult<Json<Preferences>> {
    Ok(Json(n.update_preferences(&p, &req).await?))
}
