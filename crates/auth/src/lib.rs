//! Credentials: password hashing, access and refresh tokens, and the credential services
//! present to each other.

mod error;
mod password;
mod tokens;

pub use error::AuthError;
pub use password::{hash_password, verify_password};
pub use tokens::{AccessClaims, TokenKeys, hash_refresh_token, new_refresh_token, service_token};

/// Shortest JWT secret we accept: HS256 is only as strong as its key.
pub const MIN_SECRET_LEN: usize = 32;
