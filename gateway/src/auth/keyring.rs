//! The JWT key ring in `auth.signing_keys`, shared by every gateway.
//!
//! The database is the ring's source of truth: the configured secret only
//! seeds an empty table ([`bootstrap`]). A rotation ([`rotate`]) retires
//! the active key, adds a random one and records `SigningKeyRotated` in the
//! same transaction; every gateway reloads the ring ([`load`]) when the
//! event reaches it, the rotating one at once. A retired key keeps
//! verifying for a token's lifetime, then is dropped.

use super::jwt::{JwtKeys, KeyRingError, SigningKey};
use crate::error::ApiError;
use flashdeal_producers::outbox::{self, Entry, Outbox};
use flashdeal_schemas::{codec::AvroEvent, events::now_millis, store_events::SigningKeyRotated};
use serde::Serialize;
use sqlx::PgPool;
use std::io::Read;
use uuid::Uuid;

/// The outbox aggregate (and log key) of every rotation: one key keeps
/// rotations in order on one partition.
const AGGREGATE: &str = "signing-keys";
/// `pg_advisory_xact_lock` key serialising rotations.
const ROTATION_LOCK: i64 = 0x0046_4400_0101;

/// Why the ring could not be read or installed.
#[derive(Debug, thiserror::Error)]
pub enum KeyRingLoadError {
    #[error("PostgreSQL: {0}")]
    Postgres(#[from] sqlx::Error),
    #[error("auth.signing_keys: {0}")]
    Invalid(#[from] KeyRingError),
    #[error("the configured JWT secret is not UTF-8 text")]
    NotText,
}

/// Seeds an empty `auth.signing_keys` with the configured key, then loads
/// the ring. A non-empty table wins over the configuration.
pub async fn bootstrap(pool: &PgPool, jwt: &JwtKeys) -> Result<(), KeyRingLoadError> {
    let key = jwt.configured_key();
    let secret = std::str::from_utf8(&key.secret).map_err(|_| KeyRingLoadError::NotText)?;
    let seeded = sqlx::query_file!("../sql/queries/signing_keys_bootstrap.sql", key.kid, secret)
        .execute(pool)
        .await?
        .rows_affected();
    if seeded == 1 {
        tracing::info!(kid = %key.kid, "seeded auth.signing_keys with the configured key");
    }
    load(pool, jwt).await
}

/// Replaces `jwt`'s ring with the keys that may still verify a token.
pub async fn load(pool: &PgPool, jwt: &JwtKeys) -> Result<(), KeyRingLoadError> {
    let rows = sqlx::query_file!(
        "../sql/queries/signing_keys_live.sql",
        jwt.retired_key_lifetime().as_secs_f64()
    )
    .fetch_all(pool)
    .await?;
    let mut active = None;
    let mut others = Vec::with_capacity(rows.len());
    for r in rows {
        let key = SigningKey {
            kid: r.kid,
            secret: r.secret.into_bytes(),
        };
        if r.active {
            active = Some(key);
        } else {
            others.push(key);
        }
    }
    jwt.replace_ring(active.as_ref(), &others)?;
    tracing::info!(
        active_kid = active.as_ref().map(|k| k.kid.as_str()),
        verifying = others.len() + 1,
        "JWT key ring loaded"
    );
    Ok(())
}

/// What `POST /admin/auth/signing-keys/rotate` answers.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct Rotated {
    pub kid: String,
    pub previous_kid: Option<String>,
}

/// Retires the active key, adds a random one, records `SigningKeyRotated`,
/// drops keys no unexpired token can name, and reloads this gateway's ring.
pub async fn rotate(pool: &PgPool, jwt: &JwtKeys) -> Result<Rotated, ApiError> {
    let secret = random_secret()?;
    let kid = format!("k-{}", Uuid::now_v7().simple());
    let mut tx = pool.begin().await?;
    sqlx::query_file!("../sql/queries/signing_keys_lock.sql", ROTATION_LOCK)
        .fetch_one(&mut *tx)
        .await?;
    let previous_kid = sqlx::query_file_scalar!("../sql/queries/signing_keys_retire_active.sql")
        .fetch_optional(&mut *tx)
        .await?;
    sqlx::query_file!("../sql/queries/signing_keys_insert.sql", kid, secret)
        .execute(&mut *tx)
        .await?;
    sqlx::query_file!(
        "../sql/queries/signing_keys_prune.sql",
        jwt.retired_key_lifetime().as_secs_f64()
    )
    .execute(&mut *tx)
    .await?;
    let ev = SigningKeyRotated {
        event_id: Uuid::now_v7(),
        occurred_at: now_millis(),
        kid: kid.clone(),
        previous_kid: previous_kid.clone(),
    };
    outbox::append(
        &mut tx,
        Outbox::Auth,
        Entry {
            aggregate_type: "signing_key",
            aggregate_id: AGGREGATE,
            change: SigningKeyRotated::NAME,
            event_id: ev.event_id,
            event: &ev,
        },
    )
    .await?;
    tx.commit().await?;
    load(pool, jwt).await.map_err(|e| match e {
        KeyRingLoadError::Postgres(e) => ApiError::from(e),
        other => ApiError::Internal(format!("reloading the key ring: {other}")),
    })?;
    Ok(Rotated { kid, previous_kid })
}

/// 32 random bytes as 64 hex characters (the HMAC secret is the text, like
/// the generated local secret).
fn random_secret() -> Result<String, ApiError> {
    let mut raw = [0u8; 32];
    std::fs::File::open("/dev/urandom")
        .and_then(|mut f| f.read_exact(&mut raw))
        .map_err(|e| ApiError::Internal(format!("reading /dev/urandom: {e}")))?;
    Ok(raw.iter().map(|b| format!("{b:02x}")).collect())
}
