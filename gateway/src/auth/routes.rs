//! `POST /auth/signup` and `POST /auth/login`.

use super::{jwt::Role, password};
use crate::{error::ApiError, json::Json, state::AppState};
use axum::{extract::State, http::StatusCode};
use flashdeal_schemas::UserId;
use serde::{Deserialize, Serialize};
use sqlx::PgPool;

/// Credentials as sent by clients.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Credentials {
    pub email: String,
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
            && !email.chars().any(char::is_whitespace);
        if !plausible {
            return Err(ApiError::Validation(
                "`email` must be an email address".to_owned(),
            ));
        }
        if !(8..=256).contains(&self.password.chars().count()) {
            return Err(ApiError::Validation(
                "`password` must be 8 to 256 characters".to_owned(),
            ));
        }
        Ok(ValidCredentials {
            email,
            password: self.password,
        })
    }
}

#[derive(Serialize)]
pub struct SignedUp {
    pub user_id: UserId,
    pub email: String,
}

#[derive(Serialize)]
pub struct Token {
    pub access_token: String,
    pub token_type: &'static str,
    pub expires_in: u64,
}

/// Creates a customer account.
pub async fn signup(
    State(state): State<AppState>,
    Json(body): Json<Credentials>,
) -> Result<(StatusCode, axum::Json<SignedUp>), ApiError> {
    let creds = body.validate()?;
    let user_id = create_user(&state.pg, &creds, Role::Customer).await?;
    Ok((
        StatusCode::CREATED,
        axum::Json(SignedUp {
            user_id,
            email: creds.email,
        }),
    ))
}

/// Inserts a user; 409 when the email is taken.
pub async fn create_user(
    pg: &PgPool,
    creds: &ValidCredentials,
    role: Role,
) -> Result<UserId, ApiError> {
    let hash = password::hash(creds.password.clone()).await?;
    let id = UserId::new_v7();
    sqlx::query_file_scalar!(
        "../sql/queries/insert_user.sql",
        id.0,
        creds.email,
        hash,
        role.as_str()
    )
    .fetch_optional(pg)
    .await?
    .map(UserId)
    .ok_or(ApiError::Conflict(
        "an account with this email already exists",
    ))
}

/// Exchanges credentials for an access token.
pub async fn login(
    State(state): State<AppState>,
    Json(body): Json<Credentials>,
) -> Result<axum::Json<Token>, ApiError> {
    const BAD: ApiError = ApiError::Unauthenticated("wrong email or password");
    let email = body.email.trim().to_lowercase();
    let row = sqlx::query_file!("../sql/queries/user_by_email.sql", email)
        .fetch_optional(&state.pg)
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
    let role = Role::parse(&row.role)
        .ok_or_else(|| ApiError::Internal(format!("unknown role {}", row.role)))?;
    let access_token = state.jwt.issue(UserId(row.user_id), role)?;
    Ok(axum::Json(Token {
        access_token,
        token_type: "Bearer",
        expires_in: state.jwt.ttl().as_secs(),
    }))
}

/// An argon2id hash of a random password, verified when the email is unknown.
const DUMMY_HASH: &str = "$argon2id$v=19$m=19456,t=2,p=1$c29tZXNhbHRzb21lc2FsdA$mZ0Ny0aPMhbcfo3SBz2PNfFCpLadT2w1dcVlsEuYGkU";
