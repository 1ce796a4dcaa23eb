//! The users service's internal API (`POST /internal/<op>`), called by the gateway.

use axum::extract::State;
use axum::routing::post;
use axum::{Json, Router};
use bazaar_contracts::page::{Page, PageRequest};
use bazaar_contracts::users::{
    AuthResult, LoginRequest, RefreshTokenRequest, RegisterRequest, SetRoleRequest,
    UpdateProfileRequest, User, UserIdRequest, UserIdsRequest,
};
use bazaar_contracts::{ApiError, Caller, Input};
use bazaar_runtime::ServiceResult;

use crate::app::Accounts;
use crate::store;

pub fn routes(accounts: Accounts) -> Router {
    Router::new()
        .route("/internal/register", post(register))
        .route("/internal/login", post(login))
        .route("/internal/refresh-token", post(refresh_token))
        .route("/internal/logout", post(logout))
        .route("/internal/update-profile", post(update_profile))
        .route("/internal/set-role", post(set_role))
        .route("/internal/user", post(user))
        .route("/internal/users-by-id", post(users_by_id))
        .route("/internal/users", post(users))
        .with_state(accounts)
}

async fn register(
    State(a): State<Accounts>,
    Caller(p): Caller,
    Input(req): Input<RegisterRequest>,
) -> ServiceResult<Json<AuthResult>> {
    Ok(Json(a.register(&p, req).await?))
}

async fn login(
    State(a): State<Accounts>,
    Caller(p): Caller,
    Input(req): Input<LoginRequest>,
) -> ServiceResult<Json<AuthResult>> {
    Ok(Json(a.login(&p, req).await?))
}

async fn refresh_token(
    State(a): State<Accounts>,
    Input(req): Input<RefreshTokenRequest>,
) -> ServiceResult<Json<AuthResult>> {
    Ok(Json(a.refresh(&req.refresh_token).await?))
}

async fn logout(
    State(a): State<Accounts>,
    Input(req): Input<RefreshTokenRequest>,
) -> ServiceResult<Json<bool>> {
    Ok(Json(a.logout(&req.refresh_token).await?))
}

async fn update_profile(
    State(a): State<Accounts>,
    Caller(p): Caller,
    Input(req): Input<UpdateProfileRequest>,
) -> ServiceResult<Json<User>> {
    Ok(Json(a.update_profile(&p, req).await?))
}

async fn set_role(
    State(a): State<Accounts>,
    Caller(p): Caller,
    Input(req): Input<SetRoleRequest>,
) -> ServiceResult<Json<User>> {
    Ok(Json(a.set_role(&p, &req.id, req.role).await?))
}

/// The user if the caller may see them (themself or an admin); `null` otherwise, so that
/// probing ids reveals nothing.
async fn user(
    State(a): State<Accounts>,
    Caller(p): Caller,
    Input(req): Input<UserIdRequest>,
) -> ServiceResult<Json<Option<User>>> {
    if !p.may_see_user(&req.id) {
        return Ok(Json(None));
    }
    Ok(Json(store::user_by_id(&a.db, &req.id).await?))
}

async fn users_by_id(
    State(a): State<Accounts>,
    Caller(p): Caller,
    Input(req): Input<UserIdsRequest>,
) -> ServiceResult<Json<Vec<User>>> {
    let visible: Vec<String> = req
        .ids
        .into_iter()
        .filter(|id| p.may_see_user(id))
        .collect();
    Ok(Json(store::users_by_ids(&a.db, &visible).await?))
}

async fn users(
    State(a): State<Accounts>,
    Caller(p): Caller,
    Input(req): Input<PageRequest>,
) -> ServiceResult<Json<Page<User>>> {
    p.require_admin()?;
    if !(0..=100).contains(&req.first) {
        return Err(ApiError::bad_input("first", "first: must be between 0 and 100").into());
    }
    let (items, has_next_page, total_count) =
        store::list_users(&a.db, req.first, req.after.as_deref()).await?;
    Ok(Json(Page {
        items,
        has_next_page,
        total_count,
    }))
}
