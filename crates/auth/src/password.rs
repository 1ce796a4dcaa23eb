//! Password hashing with argon2id at OWASP's recommended cost (19 MiB, t=2, p=1).

use argon2::{Algorithm, Argon2, Params, PasswordHasher, PasswordVerifier, Version};

use crate::AuthError;

fn hasher() -> Argon2<'static> {
    // The parameters are constants known to be valid.
    let params = Params::new(19 * 1024, 2, 1, None).unwrap_or_default();
    Argon2::new(Algorithm::Argon2id, Version::V0x13, params)
}

/// Hashes `password` into a PHC string (`$argon2id$v=19$m=19456,t=2,p=1$...`).
/// CPU-heavy: call from a blocking thread.
pub fn hash_password(password: &str) -> Result<String, AuthError> {
    hasher()
        .hash_password(password.as_bytes())
        .map(|h| h.to_string())
        .map_err(|e| AuthError::Hash(e.to_string()))
}

/// True when `password` matches `phc`. The parameters stored in `phc` are used, so raising the
/// cost later keeps old hashes valid. CPU-heavy: call from a blocking thread.
pub fn verify_password(password: &str, phc: &str) -> bool {
    hasher().verify_password(password.as_bytes(), phc).is_ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hashes_with_argon2id_and_verifies() {
        let phc = hash_password("correct horse").unwrap();
        assert!(phc.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"), "{phc}");
        assert!(verify_password("correct horse", &phc));
        assert!(!verify_password("wrong horse", &phc));
        assert!(!verify_password("correct horse", "not a hash"));
        assert_ne!(phc, hash_password("correct horse").unwrap(), "salted");
    }
}
