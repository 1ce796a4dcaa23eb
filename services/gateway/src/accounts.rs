//! The accounts slice of the schema: sign-up, sign-in, tokens, profiles and roles, and the
//! batch loader that resolves a user wherever another slice shows one.

use std::collections::HashMap;

use async_graphql::dataloader::Loader;
use async_graphql::{Context, ID, InputObject, Object, SimpleObject};
use bazaar_contracts::page::PageRequest;
use bazaar_contracts::users::{
    self, Address, LoginRequest, RefreshTokenRequest, RegisterRequest, SetRoleRequest,
    UpdateProfileRequest, UsersClient,
};
use bazaar_contracts::{ApiError, Principal, Role};
use chrono::{DateTime, Utc};

use crate::context::{admin, clients, principal, signed_in};
use crate::error::{GqlResult, OrGql};
use crate::loaders::{self, Batched};
use crate::notifications::Preferences;
use crate::pagination::{connection, decode_cursor, page_size};

/// An account. Never exposes a password or its hash: the service does not send them.
pub struct User(pub users::User);

#[Object]
impl User {
    async fn id(&self) -> ID {
        ID(self.0.id.clone())
    }
    async fn email(&self) -> &str {
        &self.0.email
    }
    async fn name(&self) -> &str {
        &self.0.name
    }
    async fn role(&self) -> Role {
        self.0.role
    }
    async fn phone(&self) -> Option<&str> {
        self.0.phone.as_deref()
    }
    async fn address(&self) -> Option<&Address> {
        self.0.address.as_ref()
    }
    async fn created_at(&self) -> DateTime<Utc> {
        bazaar_db::from_millis(self.0.created_at)
    }
    async fn updated_at(&self) -> DateTime<Utc> {
        bazaar_db::from_millis(self.0.updated_at)
    }
    /// What this user hears about (visible to the user themself and admins).
    async fn preferences(&self, ctx: &Context<'_>) -> GqlResult<Preferences> {
        Ok(clients(ctx)
            .notifications
            .preferences(principal(ctx), &self.0.id)
            .await
            .gql()?
            .into())
    }
}

#[derive(SimpleObject)]
pub struct AuthPayload {
    pub access_token: String,
    pub refresh_token: String,
    /// Seconds until `accessToken` expires.
    pub expires_in: i32,
    pub user: User,
}

impl From<users::AuthResult> for AuthPayload {
    fn from(a: users::AuthResult) -> Self {
        AuthPayload {
            access_token: a.access_token,
            refresh_token: a.refresh_token,
            expires_in: a.expires_in as i32,
            user: User(a.user),
        }
    }
}

connection!(UserConnection, UserEdge, User);

/// Loads users by id for one request's caller.
pub struct UserLoader {
    users: UsersClient,
    principal: Principal,
}

impl UserLoader {
    pub fn for_request(users: &UsersClient, principal: &Principal) -> Batched<Self> {
        loaders::for_request(UserLoader {
            users: users.clone(),
            principal: principal.clone(),
        })
    }
}

impl Loader<String> for UserLoader {
    type Value = users::User;
    type Error = ApiError;

    /// The users service leaves out anyone the caller may not see.
    async fn load(&self, ids: &[String]) -> Result<HashMap<String, users::User>, ApiError> {
        let users = self
            .users
            .users_by_id(&self.principal, ids.to_vec())
            .await?;
        Ok(users.into_iter().map(|u| (u.id.clone(), u)).collect())
    }
}

#[derive(InputObject)]
pub struct UpdateProfileInput {
    pub name: Option<String>,
    /// An empty string removes the phone number.
    pub phone: Option<String>,
    pub address: Option<Address>,
}

#[derive(Default)]
pub struct AccountsQuery;

#[Object]
impl AccountsQuery {
    /// The signed-in user; null when not signed in.
    async fn me(&self, ctx: &Context<'_>) -> GqlResult<Option<User>> {
        let p = principal(ctx);
        let Some(caller) = &p.user else {
            return Ok(None);
        };
        Ok(clients(ctx)
            .users
            .user(p, &caller.id)
            .await
            .gql()?
            .map(User))
    }

    /// A user by id: admins see anyone, users see themselves; anyone else gets null.
    async fn user(&self, ctx: &Context<'_>, id: ID) -> GqlResult<Option<User>> {
        let p = principal(ctx);
        if !p.may_see_user(&id) {
            return Ok(None);
        }
        Ok(clients(ctx).users.user(p, &id).await.gql()?.map(User))
    }

    /// Every user, oldest first (admins only).
    async fn users(
        &self,
        ctx: &Context<'_>,
        #[graphql(default = 20)] first: Option<i32>,
        after: Option<String>,
    ) -> GqlResult<UserConnection> {
        let p = admin(ctx)?;
        let req = PageRequest {
            first: page_size(first.unwrap_or(20)).gql()?,
            after: decode_cursor(after.as_deref()).gql()?,
        };
        let page = clients(ctx).users.list(p, &req).await.gql()?;
        Ok(UserConnection::from_page(page, |u| &u.id, User))
    }
}

#[derive(Default)]
pub struct AccountsMutation;

#[Object]
impl AccountsMutation {
    /// Creates a customer account and signs it in.
    async fn register(&self, ctx: &Context<'_>, input: RegisterRequest) -> GqlResult<AuthPayload> {
        Ok(clients(ctx)
            .users
            .register(principal(ctx), &input)
            .await
            .gql()?
            .into())
    }

    /// Signs in. A wrong password and an unknown email give the same UNAUTHENTICATED.
    async fn login(
        &self,
        ctx: &Context<'_>,
        email: String,
        password: String,
    ) -> GqlResult<AuthPayload> {
        Ok(clients(ctx)
            .users
            .login(principal(ctx), &LoginRequest { email, password })
            .await
            .gql()?
            .into())
    }

    /// Exchanges a refresh token for new tokens; the presented one stops working.
    async fn refresh_token(
        &self,
        ctx: &Context<'_>,
        refresh_token: String,
    ) -> GqlResult<AuthPayload> {
        let req = RefreshTokenRequest { refresh_token };
        Ok(clients(ctx)
            .users
            .refresh_token(principal(ctx), &req)
            .await
            .gql()?
            .into())
    }

    /// Ends the session of this refresh token. False when the token is unknown.
    async fn logout(&self, ctx: &Context<'_>, refresh_token: String) -> GqlResult<bool> {
        clients(ctx)
            .users
            .logout(principal(ctx), &RefreshTokenRequest { refresh_token })
            .await
            .gql()
    }

    /// Changes the signed-in user's name, phone or address.
    async fn update_profile(
        &self,
        ctx: &Context<'_>,
        input: UpdateProfileInput,
    ) -> GqlResult<User> {
        let p = signed_in(ctx)?;
        let req = UpdateProfileRequest {
            name: input.name,
            phone: input.phone,
            address: input.address,
        };
        Ok(User(
            clients(ctx).users.update_profile(p, &req).await.gql()?,
        ))
    }

    /// Grants or removes the admin role (admins only).
    async fn set_user_role(&self, ctx: &Context<'_>, id: ID, role: Role) -> GqlResult<User> {
        let p = admin(ctx)?;
        let req = SetRoleRequest { id: id.0, role };
        Ok(User(clients(ctx).users.set_role(p, &req).await.gql()?))
    }
}
