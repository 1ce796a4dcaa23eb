//! Access tokens (short-lived HS256 JWTs with the algorithm pinned), opaque refresh tokens
//! stored only as hashes, and the service credential derived from the same secret.

use std::time::Duration;

use base64::Engine;
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use rand::RngCore;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::AuthError;

const ISSUER: &str = "bazaar";

/// What an access token says.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AccessClaims {
    /// The user id.
    pub sub: String,
    /// `CUSTOMER` or `ADMIN` at the time of issue.
    pub role: String,
    pub iss: String,
    pub iat: i64,
    pub exp: i64,
    /// Unique per token, so two tokens issued in the same second differ.
    pub jti: String,
}

/// Signs and checks access tokens with one HS256 secret.
#[derive(Clone)]
pub struct TokenKeys {
    encoding: EncodingKey,
    decoding: DecodingKey,
    validation: Validation,
    ttl: Duration,
}

impl std::fmt::Debug for TokenKeys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TokenKeys")
            .field("ttl", &self.ttl)
            .finish_non_exhaustive()
    }
}

impl TokenKeys {
    pub fn new(secret: &[u8], ttl: Duration) -> Result<Self, AuthError> {
        if secret.len() < crate::MIN_SECRET_LEN {
            return Err(AuthError::WeakSecret);
        }
        // Only HS256 is accepted, whatever the token's header claims.
        let mut validation = Validation::new(Algorithm::HS256);
        validation.set_issuer(&[ISSUER]);
        validation.set_required_spec_claims(&["exp", "iat", "iss", "sub"]);
        validation.leeway = 5;
        Ok(TokenKeys {
            encoding: EncodingKey::from_secret(secret),
            decoding: DecodingKey::from_secret(secret),
            validation,
            ttl,
        })
    }

    /// Seconds an access token lives.
    pub fn ttl_secs(&self) -> i64 {
        self.ttl.as_secs() as i64
    }

    pub fn issue(&self, user_id: &str, role: &str) -> Result<String, AuthError> {
        let now = chrono::Utc::now().timestamp();
        let claims = AccessClaims {
            sub: user_id.to_owned(),
            role: role.to_owned(),
            iss: ISSUER.to_owned(),
            iat: now,
            exp: now + self.ttl_secs(),
            jti: uuid::Uuid::now_v7().to_string(),
        };
        jsonwebtoken::encode(&Header::new(Algorithm::HS256), &claims, &self.encoding)
            .map_err(|e| AuthError::Sign(e.to_string()))
    }

    pub fn verify(&self, token: &str) -> Result<AccessClaims, AuthError> {
        jsonwebtoken::decode::<AccessClaims>(token, &self.decoding, &self.validation)
            .map(|data| data.claims)
            .map_err(|_| AuthError::Invalid)
    }
}

/// A new opaque refresh token: 256 random bits, URL-safe.
pub fn new_refresh_token() -> String {
    let mut bytes = [0u8; 32];
    rand::rng().fill_bytes(&mut bytes);
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}

/// How a refresh token is stored: its SHA-256. The token itself has 256 bits of entropy, so a
/// fast hash is enough and lets us look it up by hash.
pub fn hash_refresh_token(token: &str) -> String {
    hex::encode(Sha256::digest(token.as_bytes()))
}

/// The credential bazaar services present to each other, derived from the JWT secret so a
/// deployment has one secret to manage. Knowing it does not reveal the secret.
pub fn service_token(secret: &[u8]) -> String {
    let mut h = Sha256::new();
    h.update(b"bazaar internal service credential v1\0");
    h.update(secret);
    hex::encode(h.finalize())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn keys() -> TokenKeys {
        TokenKeys::new(&[7u8; 32], Duration::from_secs(900)).unwrap()
    }

    #[test]
    fn issued_token_verifies_and_carries_claims() {
        let token = keys().issue("user-1", "ADMIN").unwrap();
        let claims = keys().verify(&token).unwrap();
        assert_eq!(
            (claims.sub.as_str(), claims.role.as_str()),
            ("user-1", "ADMIN")
        );
        assert_eq!(claims.exp - claims.iat, 900);
    }

    #[test]
    fn rejects_short_secret_other_key_expired_and_alg_none() {
        assert!(matches!(
            TokenKeys::new(b"short", Duration::from_secs(1)),
            Err(AuthError::WeakSecret)
        ));
        let other = TokenKeys::new(&[8u8; 32], Duration::from_secs(900)).unwrap();
        assert!(keys().verify(&other.issue("u", "ADMIN").unwrap()).is_err());
        let expired = TokenKeys::new(&[7u8; 32], Duration::ZERO).unwrap();
        let mut claims = keys().verify(&keys().issue("u", "ADMIN").unwrap()).unwrap();
        claims.exp -= 3600;
        let stale =
            jsonwebtoken::encode(&Header::new(Algorithm::HS256), &claims, &expired.encoding)
                .unwrap();
        assert!(keys().verify(&stale).is_err());
        // An unsigned token with "alg":"none" must never pass.
        let b64 = base64::engine::general_purpose::URL_SAFE_NO_PAD;
        let header = b64.encode(br#"{"alg":"none","typ":"JWT"}"#);
        let body = b64.encode(serde_json::to_vec(&claims).unwrap_or_default());
        assert!(keys().verify(&format!("{header}.{body}.")).is_err());
    }

    #[test]
    fn refresh_tokens_are_random_and_hashed() {
        let (a, b) = (new_refresh_token(), new_refresh_token());
        assert_ne!(a, b);
        assert_eq!(hash_refresh_token(&a), hash_refresh_token(&a));
        assert_eq!(hash_refresh_token(&a).len(), 64);
    }
}
