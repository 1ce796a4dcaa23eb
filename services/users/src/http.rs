//! The users service's internal API, called by the gateway: one handler per route of
//! `bazaar_contracts::users`.

use axum::Router;
use bazaar_contracts::page::{Page, PageRequest};
use bazaar_contracts::users::{
    AuthResult, ListUsers, Login, LoginRequest, Logout, RefreshToken, RefreshTokenRequest,
    Register, RegisterRequest, SetRole, SetRoleRequest, UpdateProfile, UpdateProfileRequest, User,
    UserById, UserIdRequest, UserIdsRequest, UsersById,
};
use bazaar_contracts::{ApiError, Principal, Routes};
use bazaar_runtime::ServiceResult;

use crate::app::Accounts;
use crate::store;

pub fn routes(accounts: Accounts) -> Router {
    Routes::new()
        .serve::<Register>(register)
        .serve::<Login>(login)
        .serve::<RefreshToken>(refresh_token)
        .serve::<Logout>(logout)
        .serve::<UpdateProfile>(update_profile)
        .serve::<SetRole>(set_role)
        .serve::<UserById>(user)
        .serve::<UsersById>(users_by_id)
        .serve::<ListUsers>(users)
        .with_state(accounts)
}

async fn register(a: Accounts, p: Principal, req: RegisterRequest) -> ServiceResult<AuthResult> {
    a.register(&p, req).await
}

async fn login(a: Accounts, p: Principal, req: LoginRequest) -> ServiceResult<AuthResult> {
    a.login(&p, req).await
}

/// Refresh tokens speak for themselves: the principal is not consulted.
async fn refresh_token(
    a: Accounts,
    _: Principal,
    req: RefreshTokenRequest,
) -> ServiceResult<AuthResult> {
    a.refresh(&req.refresh_token).await
}

async fn logout(a: Accounts, _: Principal, req: RefreshTokenRequest) -> ServiceResult<bool> {
    a.logout(&req.refresh_token).await
}

async fn update_profile(
    a: Accounts,
    p: Principal,
    req: UpdateProfileRequest,
) -> ServiceResult<User> {
    a.update_profile(&p, req).await
}

async fn set_role(a: Accounts, p: Principal, req: SetRoleRequest) -> ServiceResult<User> {
    a.set_role(&p, &req.id, req.role).await
}

/// The user if the caller may see them (themself or an admin); `null` otherwise, so that
/// probing ids reveals nothing.
async fn user(a: Accounts, p: Principal, req: UserIdRequest) -> ServiceResult<Option<User>> {
    if !p.may_see_user(&req.id) {
        return Ok(None);
    }
    Ok(store::user_by_id(&a.db, &req.id).await?)
}

async fn users_by_id(a: Accounts, p: Principal, req: UserIdsRequest) -> ServiceResult<Vec<User>> {
    let visible: Vec<String> = req
        .ids
        .into_iter()
        .filter(|id| p.may_see_user(id))
        .collect();
    Ok(store::users_by_ids(&a.db, &visible).await?)
}

async fn users(a: Accounts, p: Principal, req: PageRequest) -> ServiceResult<Page<User>> {
    p.require_admin()?;
    if !(0..=100).contains(&req.first) {
        return Err(ApiError::bad_input("first", "first: must be between 0 and 100").into());
    }
    let (items, has_next_page, total_count) =
        store::list_users(&a.db, req.first, req.after.as_deref()).await?;
    Ok(Page {
        items,
        has_next_page,
        total_count,
    })
}
