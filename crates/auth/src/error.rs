//! The credentials crate's one error: a secret too weak to sign with, a token that does not
//! verify, or signing or hashing that failed.

#[derive(Debug, thiserror::Error)]
pub enum AuthError {
    #[error("the JWT secret must be at least {} bytes", crate::MIN_SECRET_LEN)]
    WeakSecret,
    #[error("invalid or expired token")]
    Invalid,
    #[error("cannot sign token: {0}")]
    Sign(String),
    #[error("password hashing failed: {0}")]
    Hash(String),
}
