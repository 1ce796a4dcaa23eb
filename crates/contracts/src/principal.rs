//! Who is calling: the signed-in user and their role, as established by the gateway.

use serde::{Deserialize, Serialize};

use crate::ApiError;

#[cfg_attr(feature = "graphql", derive(async_graphql::Enum))]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum Role {
    Customer,
    Admin,
}

impl Role {
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Customer => "CUSTOMER",
            Role::Admin => "ADMIN",
        }
    }

    pub fn parse(s: &str) -> Option<Role> {
        match s {
            "CUSTOMER" => Some(Role::Customer),
            "ADMIN" => Some(Role::Admin),
            _ => None,
        }
    }
}

/// The caller of an internal API call.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
pub struct Principal {
    /// The signed-in user, if any.
    pub user: Option<CallerUser>,
    /// The end client's address, for rate limits.
    pub client_ip: Option<String>,
    /// The id of the client request this call serves (`x-request-id`).
    #[serde(default)]
    pub request_id: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CallerUser {
    pub id: String,
    pub role: Role,
}

impl Principal {
    pub fn anonymous() -> Self {
        Principal::default()
    }

    pub fn user(id: impl Into<String>, role: Role) -> Self {
        Principal {
            user: Some(CallerUser {
                id: id.into(),
                role,
            }),
            ..Principal::default()
        }
    }

    /// The signed-in user, or UNAUTHENTICATED.
    pub fn require_user(&self) -> Result<&CallerUser, ApiError> {
        self.user
            .as_ref()
            .ok_or_else(|| ApiError::unauthenticated("sign in first"))
    }

    /// The signed-in admin: UNAUTHENTICATED when anonymous, FORBIDDEN for customers.
    pub fn require_admin(&self) -> Result<&CallerUser, ApiError> {
        let user = self.require_user()?;
        if user.role == Role::Admin {
            Ok(user)
        } else {
            Err(ApiError::forbidden("admin role required"))
        }
    }

    pub fn is_admin(&self) -> bool {
        matches!(&self.user, Some(u) if u.role == Role::Admin)
    }

    /// True for the user `id` themself or an admin.
    pub fn may_see_user(&self, id: &str) -> bool {
        match &self.user {
            Some(u) => u.role == Role::Admin || u.id == id,
            None => false,
        }
    }
}
