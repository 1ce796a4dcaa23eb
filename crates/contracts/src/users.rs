//! The users service's internal API: accounts, sign-in and tokens.

use serde::{Deserialize, Serialize};

use crate::page::{Page, PageRequest};
use crate::{ApiError, Principal, Role, ServiceClient};

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(
    feature = "graphql",
    derive(async_graphql::SimpleObject, async_graphql::InputObject),
    graphql(input_name = "AddressInput")
)]
#[serde(rename_all = "camelCase")]
pub struct Address {
    pub line1: String,
    pub line2: Option<String>,
    pub city: String,
    pub postal_code: String,
    pub country: String,
}

/// A user as other services and the gateway see it: never a password or its hash.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct User {
    pub id: String,
    pub email: String,
    pub name: String,
    pub role: Role,
    pub phone: Option<String>,
    pub address: Option<Address>,
    pub created_at: i64,
    pub updated_at: i64,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(
    feature = "graphql",
    derive(async_graphql::InputObject),
    graphql(name = "RegisterInput")
)]
#[serde(rename_all = "camelCase")]
pub struct RegisterRequest {
    pub email: String,
    pub password: String,
    pub name: String,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct LoginRequest {
    pub email: String,
    pub password: String,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RefreshTokenRequest {
    pub refresh_token: String,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AuthResult {
    pub access_token: String,
    pub refresh_token: String,
    /// Seconds until the access token expires.
    pub expires_in: i64,
    pub user: User,
}

/// Fields left `None` stay as they are. `address: Some(None)` is not expressible on purpose:
/// an address is replaced, not removed.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct UpdateProfileRequest {
    pub name: Option<String>,
    pub phone: Option<String>,
    pub address: Option<Address>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct UserIdRequest {
    pub id: String,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct UserIdsRequest {
    pub ids: Vec<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SetRoleRequest {
    pub id: String,
    pub role: Role,
}

routes! {
    command Register = "register": RegisterRequest => AuthResult;
    command Login = "login": LoginRequest => AuthResult;
    /// Rotates a refresh token within its family (a reused token revokes the family).
    command RefreshToken = "refresh-token": RefreshTokenRequest => AuthResult;
    /// Revokes the refresh token's family; answers whether there was one.
    command Logout = "logout": RefreshTokenRequest => bool;
    command UpdateProfile = "update-profile": UpdateProfileRequest => User;
    /// Gives a user another role (admins only).
    command SetRole = "set-role": SetRoleRequest => User;
    /// The user, when the caller may see them (themself or an admin); `None` otherwise.
    query UserById = "user": UserIdRequest => Option<User>;
    /// Users by id in one call (for batching); ids the caller may not see are left out.
    query UsersById = "users-by-id": UserIdsRequest => Vec<User>;
    /// Every user, a page at a time (admins only).
    query ListUsers = "users": PageRequest => Page<User>;
}

/// Typed calls to the users service.
#[derive(Clone)]
pub struct UsersClient(pub ServiceClient);

impl UsersClient {
    pub async fn register(
        &self,
        p: &Principal,
        req: &RegisterRequest,
    ) -> Result<AuthResult, ApiError> {
        self.0.call::<Register>(p, req).await
    }
    pub async fn login(&self, p: &Principal, req: &LoginRequest) -> Result<AuthResult, ApiError> {
        self.0.call::<Login>(p, req).await
    }
    pub async fn refresh_token(
        &self,
        p: &Principal,
        req: &RefreshTokenRequest,
    ) -> Result<AuthResult, ApiError> {
        self.0.call::<RefreshToken>(p, req).await
    }
    pub async fn logout(&self, p: &Principal, req: &RefreshTokenRequest) -> Result<bool, ApiError> {
        self.0.call::<Logout>(p, req).await
    }
    pub async fn update_profile(
        &self,
        p: &Principal,
        req: &UpdateProfileRequest,
    ) -> Result<User, ApiError> {
        self.0.call::<UpdateProfile>(p, req).await
    }
    pub async fn set_role(&self, p: &Principal, req: &SetRoleRequest) -> Result<User, ApiError> {
        self.0.call::<SetRole>(p, req).await
    }
    /// The user, when the caller may see them (themself or an admin); `None` otherwise.
    pub async fn user(&self, p: &Principal, id: &str) -> Result<Option<User>, ApiError> {
        let req = UserIdRequest { id: id.to_owned() };
        self.0.call::<UserById>(p, &req).await
    }
    /// Users by id in one call (for batching); ids the caller may not see are left out.
    pub async fn users_by_id(
        &self,
        p: &Principal,
        ids: Vec<String>,
    ) -> Result<Vec<User>, ApiError> {
        self.0.call::<UsersById>(p, &UserIdsRequest { ids }).await
    }
    pub async fn list(&self, p: &Principal, req: &PageRequest) -> Result<Page<User>, ApiError> {
        self.0.call::<ListUsers>(p, req).await
    }
}
