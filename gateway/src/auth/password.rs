//! Password hashing with argon2id (the `argon2` crate's defaults: RFC 9106
//! second recommendation). Hashing costs tens of milliseconds of CPU, so it
//! runs on the blocking pool, never on a runtime worker.

use crate::error::ApiError;
use argon2::{Argon2, PasswordHasher, PasswordVerifier};

/// Hashes `password` into a PHC string (`$argon2id$v=19$…`).
pub async fn hash(password: String) -> Result<String, ApiError> {
    tokio::task::spawn_blocking(move || {
        Argon2::default()
            .hash_password(password.as_bytes())
            .map(|h| h.to_string())
            .map_err(|e| ApiError::Internal(format!("argon2: {e}")))
    })
    .await
    .map_err(|e| ApiError::Internal(format!("hashing task: {e}")))?
}

/// `true` when `password` matches the PHC string `hash`.
pub async fn verify(password: String, hash: String) -> Result<bool, ApiError> {
    tokio::task::spawn_blocking(move || {
        Argon2::default()
            .verify_password(password.as_bytes(), hash.as_str())
            .is_ok()
    })
    .await
    .map_err(|e| ApiError::Internal(format!("verifying task: {e}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_hash_verifies_its_password_only() {
        let h = hash("correct horse".to_owned()).await.unwrap();
        assert!(h.starts_with("$argon2id$"));
        assert!(verify("correct horse".to_owned(), h.clone()).await.unwrap());
        assert!(!verify("wrong horse".to_owned(), h).await.unwrap());
    }
}
