//! Password hashing with argon2id (the `argon2` crate's defaults: RFC 9106
//! second recommendation, 19 MiB and ~tens of ms of CPU per hash).
//!
//! Hashing runs on a few dedicated threads (one per core), never on a
//! runtime worker. The benchmark's profile showed why: on tokio's blocking
//! pool a burst of signups/logins ran hundreds of hashes at once (it allows
//! 512 threads), and even when bounded by a semaphore each hash could land on
//! a different pool thread, whose malloc arena then kept its 19 MiB: the
//! gateway reached 1.6 GB, then 0.8 GB of RSS. A fixed set of threads bounds
//! both CPU and memory; a login waits a few milliseconds for a thread,
//! `POST /orders` never does.

use crate::error::ApiError;
use argon2::{Argon2, PasswordHasher, PasswordVerifier};
use std::sync::{
    LazyLock, Mutex,
    mpsc::{Sender, channel},
};
use tokio::sync::oneshot;

type Job = Box<dyn FnOnce() + Send>;

/// The hashing threads, started on first use; they live as long as the process.
static HASHERS: LazyLock<Mutex<Sender<Job>>> = LazyLock::new(|| {
    let (tx, rx) = channel::<Job>();
    let rx = std::sync::Arc::new(Mutex::new(rx));
    for i in 0..std::thread::available_parallelism().map_or(2, usize::from) {
        let rx = std::sync::Arc::clone(&rx);
        let spawned = std::thread::Builder::new()
            .name(format!("argon2-{i}"))
            .spawn(move || {
                loop {
                    // The lock is held only to take the next job.
                    let job = match rx.lock() {
                        Ok(rx) => rx.recv(),
                        Err(_) => return,
                    };
                    match job {
                        Ok(job) => job(),
                        Err(_) => return,
                    }
                }
            });
        if let Err(e) = spawned {
            tracing::error!(error = %e, "cannot start a password hashing thread");
        }
    }
    Mutex::new(tx)
});

/// Runs `f` on a hashing thread and waits for its result.
async fn hashing<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> Result<T, ApiError> {
    let (reply, result) = oneshot::channel();
    let job: Job = Box::new(move || {
        let _ = reply.send(f());
    });
    HASHERS
        .lock()
        .map_err(|_| ApiError::Internal("hashing threads poisoned".to_owned()))?
        .send(job)
        .map_err(|_| ApiError::Internal("hashing threads stopped".to_owned()))?;
    result
        .await
        .map_err(|_| ApiError::Internal("hashing job dropped".to_owned()))
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
