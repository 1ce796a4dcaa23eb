//! Who is calling: a bearer access token (from the Authorization header, or a WebSocket's
//! `connection_init`) verified into a `Principal`.

use axum::http::{HeaderMap, header};
use bazaar_auth::TokenKeys;
use bazaar_contracts::{ApiError, Principal, Role};

/// No Authorization header: anonymous. A bearer token that does not verify (expired,
/// tampered, wrong algorithm): UNAUTHENTICATED, so the client knows to refresh.
pub fn authenticate(tokens: &TokenKeys, headers: &HeaderMap) -> Result<Principal, ApiError> {
    let Some(value) = headers.get(header::AUTHORIZATION) else {
        return Ok(Principal::anonymous());
    };
    let value = value
        .to_str()
        .map_err(|_| ApiError::unauthenticated("Authorization must be 'Bearer <accessToken>'"))?;
    verify_bearer(tokens, value)
}

/// Checks a `Bearer <accessToken>` value.
pub fn verify_bearer(tokens: &TokenKeys, value: &str) -> Result<Principal, ApiError> {
    let token = Some(value)
        .and_then(|v| {
            v.strip_prefix("Bearer ")
                .or_else(|| v.strip_prefix("bearer "))
        })
        .ok_or_else(|| ApiError::unauthenticated("Authorization must be 'Bearer <accessToken>'"))?;
    let claims = tokens
        .verify(token.trim())
        .map_err(|_| ApiError::unauthenticated("invalid or expired access token"))?;
    let role = Role::parse(&claims.role)
        .ok_or_else(|| ApiError::unauthenticated("invalid access token"))?;
    Ok(Principal::user(claims.sub, role))
}
