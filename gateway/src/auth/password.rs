//! Password hashing with argon2id (the `argon2` crate's defaults: RFC 9106
//! second recommendation, 19 MiB and ~tens of ms of CPU per hash).
//!
//! Hashing runs on the blocking pool, never on a runtime worker, and at
//! most one hash per core runs at a time: the benchmark's profile showed a
//! burst of signups/logins running hundreds of hashes at once (the blocking
//! pool allows 512 threads), which took the gateway to 1.6 GB of RSS and
//! starved the order path of CPU. Waiting for a permit costs a login a few
//! milliseconds; it costs `POST /orders` nothing.

use crate::error::ApiError;
use argon2::{Argon2, PasswordHasher, PasswordVerifier};
use std::sync::LazyLock;
use tokio::sync::Semaphore;

/// One permit per core: a process-wide CPU and memory budget for hashing.
static HASHING: LazyLock<Semaphore> =
    LazyLock::new(|| Semaphore::new(std::thread::available_parallelism().map_or(2, usize::from)));

/// Runs `f` on the blocking pool once a hashing permit is free.
async fn hashing<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> Result<T, ApiError> {
    let _permit = HASHING
        .acquire()
        .await
        .map_err(|e| ApiError::Internal(format!("hashing permits: {e}")))?;
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| ApiError::Internal(format!("hashing task: {e}")))
}

/// Hashes `password` into a PHC string (`$argon2id$v=19$…`).
pub async fn hash(password: String) -> Result<String, ApiError> {
    hashing(move || {
        Argon2::default()
            .hash_password(password.as_bytes())
            .map(|h| h.to_string())
            .map_err(|e| ApiError::Internal(format!("argon2: {e}")))
    })
    .await?
}

/// `true` when `password` matches the PHC string `hash`.
pub async fn verify(password: String, hash: String) -> Result<bool, ApiError> {
    hashing(move || {
        Argon2::default()
            .verify_password(password.as_bytes(), hash.as_str())
            .is_ok()
    })
    .await
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
