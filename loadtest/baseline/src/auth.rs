//! Accounts and access tokens, shaped like FlashDeal's so the k6 setup phase
//! is the same against both servers.
//!
//! **BENCHMARK ONLY — NEVER USE THIS SCHEME FOR REAL USERS.** Passwords are
//! stored and compared IN PLAIN TEXT (`baseline.users.password`). The control
//! group measures only the order path; FlashDeal's argon2id hashing would
//! make k6's signup of thousands of users slow.
//!
//! Everything but the storage is the gateway's: its credential rules
//! ([`Credentials::validate`]), its response bodies, and its [`JwtKeys`]
//! (pinned HS256 with a `kid`; `iss`, `aud` and `exp` checked), built here
//! with the baseline's own secret, `kid`, issuer and audience. The
//! `AuthUser`/`AdminUser` extractors are the baseline's, since they read its
//! [`AppState`].

use crate::app::AppState;
use axum::{
    extract::{FromRequestParts, State},
    http::{StatusCode, request::Parts},
};
use flashdeal_gateway::{
    auth::{
        JwtKeys, Role,
        extract::bearer_claims,
        jwt::WeakSecret,
        routes::{Credentials, SignedUp, Token},
    },
    error::ApiError,
    json::Json,
};
use std::time::Duration;
use uuid::Uuid;

/// How long an access token is valid (FlashDeal's default).
const TOKEN_TTL: Duration = Duration::from_secs(3600);

/// The baseline's token keys for `secret`, which must be at least 32 bytes.
pub fn jwt_keys(secret: &[u8]) -> Result<JwtKeys, WeakSecret> {
    JwtKeys::hs256(
        "baseline",
        secret,
        "flashdeal-baseline",
        "flashdeal-baseline",
        TOKEN_TTL,
    )
}

/// A caller with a valid access token.
#[derive(Clone, Debug)]
pub struct AuthUser {
    pub id: Uuid,
    pub role: Role,
}

/// Proof that the caller has a valid access token with the admin role.
#[derive(Clone, Copy, Debug)]
pub struct AdminUser;

impl FromRequestParts<AppState> for AuthUser {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        let claims = bearer_claims(parts, &state.jwt)?;
        Ok(Self {
            id: claims.sub.0,
            role: claims.role,
        })
    }
}

impl FromRequestParts<AppState> for AdminUser {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        let user = AuthUser::from_request_parts(parts, state).await?;
        if user.role == Role::Admin {
            Ok(Self)
        } else {
            Err(ApiError::Forbidden("this endpoint needs the admin role"))
        }
    }
}

/// `POST /auth/signup`: creates a customer; 409 when the email is taken.
pub async fn signup(
    State(state): State<AppState>,
    Json(body): Json<Credentials>,
) -> Result<(StatusCode, axum::Json<SignedUp>), ApiError> {
    let creds = body.validate()?;
    let user_id: Uuid = sqlx::query_scalar(
        "INSERT INTO baseline.users (user_id, email, password, role) VALUES ($1, $2, $3, 'customer')
         ON CONFLICT (email) DO NOTHING RETURNING user_id",
    )
    .bind(Uuid::now_v7())
    .bind(&creds.email)
    .bind(&creds.password)
    .fetch_optional(&state.pool)
    .await?
    .ok_or(ApiError::Conflict(
        "an account with this email already exists",
    ))?;
    Ok((
        StatusCode::CREATED,
        axum::Json(SignedUp {
            user_id: user_id.into(),
            email: creds.email,
        }),
    ))
}

/// `POST /auth/login`: plain-text comparison (benchmark only), then a token.
pub async fn login(
    State(state): State<AppState>,
    Json(body): Json<Credentials>,
) -> Result<axum::Json<Token>, ApiError> {
    const BAD: ApiError = ApiError::Unauthenticated("wrong email or password");
    let email = body.email.trim().to_lowercase();
    let row: Option<(Uuid, String, String)> =
        sqlx::query_as("SELECT user_id, password, role FROM baseline.users WHERE email = $1")
            .bind(&email)
            .fetch_optional(&state.pool)
            .await?;
    let Some((user_id, password, role)) = row else {
        return Err(BAD);
    };
    if password != body.password {
        return Err(BAD);
    }
    let role =
        Role::parse(&role).ok_or_else(|| ApiError::Internal(format!("unknown role {role}")))?;
    Ok(axum::Json(Token {
        access_token: state.jwt.issue(user_id.into(), role)?,
        token_type: "Bearer",
        expires_in: state.jwt.ttl().as_secs(),
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn baseline_tokens_last_an_hour_and_name_the_baseline() {
        let keys = jwt_keys(&[7; 32]).unwrap();
        assert_eq!(keys.ttl().as_secs(), 3600, "login's `expires_in`");
        let user = Uuid::now_v7();
        let claims = keys
            .verify(&keys.issue(user.into(), Role::Admin).unwrap())
            .unwrap();
        assert_eq!((claims.sub.0, claims.role), (user, Role::Admin));
        assert_eq!(
            (claims.iss.as_str(), claims.aud.as_str()),
            ("flashdeal-baseline", "flashdeal-baseline")
        );
        assert!(jwt_keys(b"too short").is_err());
    }
}
