//! `POST /auth/signup`, `POST /auth/login` and `POST /auth/password`.
//!
//! Signup and password change record a `UserChanged` in `auth.outbox` in
//! the transaction of their write. Login records nothing: a flash sale
//! starts with thousands of logins in a burst, each event would be one more
//! outbox row, relay round trip and message that every gateway replays on
//! start, and no consumer needs to know that a user logged in (tokens are
//! verified statelessly; only changes to what a token is worth are events).

use super::{
    AuthUser,
    jwt::Role,
    password,
    users::{self, UserState},
};
use crate::{error::ApiError, json::Json, state::AppState};
use axum::{extract::State, http::StatusCode};
use flashdeal_schemas::{UserId, events::now_millis, store_events::user_change};
use serde::{Deserialize, Serialize};
use sqlx::PgPool;
use utoipa::ToSchema;

/// Credentials as sent by clients.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Credentials {
    #[schema(example = "ada@example.com", max_length = 254)]
    pub email: String,
    #[schema(min_length = 8, max_length = 256, example = "correct horse battery")]
    pub password: String,
}

/// A validated email (lower-cased) and password.
pub struct ValidCredentials {
    pub email: String,
    pub password: String,
}

impl Credentials {
    /// Checks the shape of the credentials; the same rules for signup and seed.
    pub fn validate(self) -> Result<ValidCredentials, ApiError> {
        let email = self.email.trim().to_lowercase();
        let plausible = email.len() <= 254
            && email.split_once('@').is_some_and(|(local, domain)| {
                !local.is_empty()
                    && domain.contains('.')
                    && !domain.starts_with('.')
                    && !domain.ends_with('.')
            })
            && !email.chars().any(|c| c.is_whitespace() || c.is_control());
        if !plausible {
            return Err(ApiError::Validation(
                "`email` must be an email address".to_owned(),
            ));
        }
        check_password_shape("password", &self.password)?;
        Ok(ValidCredentials {
            email,
            password: self.password,
        })
    }
}

/// Passwords are 8 to 256 characters (signup, seed, password change).
fn check_password_shape(field: &str, password: &str) -> Result<(), ApiError> {
    if (8..=256).contains(&password.chars().count()) {
        Ok(())
    } else {
        Err(ApiError::Validation(format!(
            "`{field}` must be 8 to 256 characters"
        )))
    }
}

/// A new account.
#[derive(Serialize, ToSchema)]
pub struct SignedUp {
    #[schema(value_type = uuid::Uuid)]
    pub user_id: UserId,
    pub email: String,
}

/// An access token.
#[derive(Serialize, ToSchema)]
pub struct Token {
    /// A JWT for `Authorization: Bearer <token>`.
    pub access_token: String,
    #[schema(example = "Bearer")]
    pub token_type: &'static str,
    /// Seconds until the token expires.
    pub expires_in: u64,
}

/// Creates a customer account.
#[utoipa::path(post, path = "/auth/signup", tag = "auth", request_body = Credentials,
    responses(
        (status = 201, description = "Account created", body = SignedUp),
        (status = 409, response = crate::openapi::Conflict),
        crate::json::Rejections,
        (status = 429, response = crate::openapi::RateLimited),
        (status = 503, response = crate::openapi::Unavailable),
    )
)]
pub async fn signup(
    State(state): State<AppState>,
    Json(body): Json<Credentials>,
) -> Result<(StatusCode, axum::Json<SignedUp>), ApiError> {
    let creds = body.validate()?;
    let user_id = create_user(&state.db.auth, &creds, Role::Customer).await?;
    Ok((
        StatusCode::CREATED,
        axum::Json(SignedUp {
            user_id,
            email: creds.email,
        }),
    ))
}

/// Inserts a user and its `UserRegistered` in one transaction; 409 when
/// the email is taken.
pub async fn create_user(
    pg: &PgPool,
    creds: &ValidCredentials,
    role: Role,
) -> Result<UserId, ApiError> {
    let hash = password::hash(creds.password.clone()).await?;
    let id = UserId::new_v7();
    let mut tx = pg.begin().await?;
    let user = sqlx::query_file_as!(
        UserState,
        "../sql/queries/register_user.sql",
        id.0,
        creds.email,
        hash,
        role.as_str()
    )
    .fetch_optional(&mut *tx)
    .await?
    .ok_or(ApiError::Conflict(
        "an account with this email already exists",
    ))?;
    users::record(&mut tx, &user, user_change::REGISTERED).await?;
    tx.commit().await?;
    Ok(UserId(user.user_id))
}

/// Exchanges credentials for an access token; 403 for a blocked account
/// (said only to a caller who knows the password). Emits no event (see the
/// module doc).
#[utoipa::path(post, path = "/auth/login", tag = "auth", request_body = Credentials,
    responses(
        (status = 200, description = "Logged in", body = Token),
        (status = 401, response = crate::openapi::Unauthenticated),
        (status = 403, response = crate::openapi::Forbidden),
        crate::json::Rejections,
        (status = 429, response = crate::openapi::RateLimited),
        (status = 503, response = crate::openapi::Unavailable),
    )
)]
pub async fn login(
    State(state): State<AppState>,
    Json(body): Json<Credentials>,
) -> Result<axum::Json<Token>, ApiError> {
    const BAD: ApiError = ApiError::Unauthenticated("wrong email or password");
    let email = body.email.trim().to_lowercase();
    let row = sqlx::query_file!("../sql/queries/user_for_login.sql", email)
        .fetch_optional(&state.db.auth)
        .await?;
    let Some(row) = row else {
        // Spend the same time as a real check so response time does not
        // reveal which emails have accounts.
        let _ = password::verify(body.password, DUMMY_HASH.to_owned()).await;
        return Err(BAD);
    };
    if !password::verify(body.password, row.password_hash).await? {
        return Err(BAD);
    }
    if row.status != "active" {
        return Err(ApiError::Forbidden("this account is blocked"));
    }
    let role = Role::parse(&row.role)
        .ok_or_else(|| ApiError::Internal(format!("unknown role {}", row.role)))?;
    let access_token = state.jwt.issue(UserId(row.user_id), role)?;
    Ok(axum::Json(Token {
        access_token,
        token_type: "Bearer",
        expires_in: state.jwt.ttl().as_secs(),
    }))
}

/// Body of `POST /auth/password`.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PasswordChange {
    pub current_password: String,
    #[schema(min_length = 8, max_length = 256)]
    pub new_password: String,
}

/// Changes the caller's password and revokes every token issued before
/// (`sessions_revoked_before`, `PasswordChanged` on `auth.events`); answers
/// with a fresh token issued at the revocation instant, so the caller stays
/// logged in. 403 when `current_password` is wrong.
///
/// Both hashes are computed outside the transaction (argon2 takes tens of
/// ms); the update applies only if the stored hash is still the one that
/// was verified, so of two concurrent changes one wins and the other gets 409.
///
/// The revocation instant is this gateway's clock; another instance whose
/// clock lags may issue tokens that count as revoked for as long as the lag.
#[utoipa::path(post, path = "/auth/password", tag = "auth", request_body = PasswordChange,
    security(("bearer" = [])),
    responses(
        (status = 200, description = "Password changed; a fresh token", body = Token),
        (status = 401, response = crate::openapi::Unauthenticated),
        (status = 403, response = crate::openapi::Forbidden),
        (status = 409, response = crate::openapi::Conflict),
        crate::json::Rejections,
        (status = 429, response = crate::openapi::RateLimited),
        (status = 503, response = crate::openapi::Unavailable),
    )
)]
pub async fn change_password(
    State(state): State<AppState>,
    user: AuthUser,
    Json(body): Json<PasswordChange>,
) -> Result<axum::Json<Token>, ApiError> {
    check_password_shape("new_password", &body.new_password)?;
    let row = sqlx::query_file!("../sql/queries/user_password_hash.sql", user.id.0)
        .fetch_optional(&state.db.auth)
        .await?
        .ok_or(ApiError::Unauthenticated("this account no longer exists"))?;
    if row.status != "active" {
        return Err(ApiError::Forbidden("this account is blocked"));
    }
    if !password::verify(body.current_password, row.password_hash.clone()).await? {
        return Err(ApiError::Forbidden("`current_password` is wrong"));
    }
    let role = Role::parse(&row.role)
        .ok_or_else(|| ApiError::Internal(format!("unknown role {}", row.role)))?;
    let new_hash = password::hash(body.new_password).await?;
    let now_ms = now_millis();
    let revoked_before = chrono::DateTime::from_timestamp_millis(now_ms)
        .ok_or_else(|| ApiError::Internal("the clock is out of range".to_owned()))?;
    let mut tx = state.db.auth.begin().await?;
    let changed = sqlx::query_file_as!(
        UserState,
        "../sql/queries/change_password.sql",
        user.id.0,
        new_hash,
        revoked_before,
        row.password_hash
    )
    .fetch_optional(&mut *tx)
    .await?
    .ok_or(ApiError::Conflict(
        "the password was changed concurrently; log in again",
    ))?;
    let ev = users::record(&mut tx, &changed, user_change::PASSWORD_CHANGED).await?;
    tx.commit().await?;
    // This instance refuses the old tokens at once; the others when the
    // event reaches them (the same version then changes nothing here).
    state.jwt.sessions().apply(&ev);
    tracing::info!(user_id = %user.id, version = changed.version, "password changed, older tokens revoked");
    let access_token = state.jwt.issue_at(user.id, role, now_ms)?;
    Ok(axum::Json(Token {
        access_token,
        token_type: "Bearer",
        expires_in: state.jwt.ttl().as_secs(),
    }))
}

/// An argon2id hash of a random password, verified when the email is unknown.
const DUMMY_HASH: &str = "$argon2id$v=19$m=19456,t=2,p=1$c29tZXNhbHRzb21lc2FsdA$mZ0Ny0aPMhbcfo3SBz2PNfFCpLadT2w1dcVlsEuYGkU";
