//! Accounts and access tokens, shaped like FlashDeal's so the k6 setup phase
//! is the same against both servers.
//!
//! **BENCHMARK ONLY — NEVER USE THIS SCHEME FOR REAL USERS.** Passwords are
//! stored and compared IN PLAIN TEXT (`baseline.users.password`). The control
//! group measures only the order path; FlashDeal's argon2id hashing would
//! make k6's signup of thousands of users slow, and the only crypto crate
//! this crate may use is `jsonwebtoken`.
//!
//! Tokens are HS256 JWTs with `{sub, role, exp}`; the algorithm is pinned, so
//! `alg: none` and every other algorithm are refused.

use crate::{
    app::{AppState, Json},
    error::ApiError,
};
use axum::{
    extract::{FromRequestParts, State},
    http::{StatusCode, header, request::Parts},
};
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation, decode, encode};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

/// How long an access token is valid (FlashDeal's default).
pub const TOKEN_TTL_SECS: u64 = 3600;

/// What a user may do.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    Customer,
    Admin,
}

impl Role {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Customer => "customer",
            Self::Admin => "admin",
        }
    }

    fn parse(s: &str) -> Option<Self> {
        match s {
            "customer" => Some(Self::Customer),
            "admin" => Some(Self::Admin),
            _ => None,
        }
    }
}

/// The claims of an access token.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Claims {
    pub sub: Uuid,
    pub role: Role,
    pub exp: u64,
}

/// The HS256 key pair and the validation policy.
pub struct JwtKeys {
    encoding: EncodingKey,
    decoding: DecodingKey,
    validation: Validation,
}

impl JwtKeys {
    /// Keys for `secret`, which must be at least 32 bytes.
    pub fn hs256(secret: &[u8]) -> anyhow::Result<Self> {
        anyhow::ensure!(
            secret.len() >= 32,
            "the JWT secret must be at least 32 bytes (got {})",
            secret.len()
        );
        let mut validation = Validation::new(Algorithm::HS256);
        validation.leeway = 5;
        validation.set_required_spec_claims(&["exp", "sub"]);
        Ok(Self {
            encoding: EncodingKey::from_secret(secret),
            decoding: DecodingKey::from_secret(secret),
            validation,
        })
    }

    pub fn issue(&self, user: Uuid, role: Role) -> Result<String, ApiError> {
        let claims = Claims {
            sub: user,
            role,
            exp: jsonwebtoken::get_current_timestamp() + TOKEN_TTL_SECS,
        };
        encode(&Header::new(Algorithm::HS256), &claims, &self.encoding)
            .map_err(|e| ApiError::Internal(format!("signing token: {e}")))
    }

    pub fn verify(&self, token: &str) -> Result<Claims, ApiError> {
        decode::<Claims>(token, &self.decoding, &self.validation)
            .map(|data| data.claims)
            .map_err(|_| ApiError::Unauthenticated("invalid or expired access token"))
    }
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
        let value = parts
            .headers
            .get(header::AUTHORIZATION)
            .ok_or(ApiError::Unauthenticated(
                "missing `Authorization: Bearer <token>` header",
            ))?;
        let token = value
            .to_str()
            .ok()
            .and_then(|v| v.strip_prefix("Bearer "))
            .map(str::trim)
            .filter(|t| !t.is_empty())
            .ok_or(ApiError::Unauthenticated(
                "the Authorization header must be `Bearer <token>`",
            ))?;
        let claims = state.jwt.verify(token)?;
        Ok(Self {
            id: claims.sub,
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

/// Credentials as sent by clients.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Credentials {
    pub email: String,
    pub password: String,
}

/// Credentials with a lower-cased, plausible email and an 8–256 character
/// password (FlashDeal's rules).
#[derive(Debug)]
pub struct ValidCredentials {
    pub email: String,
    /// Plain text, and stored as such: benchmark only.
    pub password: String,
}

impl Credentials {
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
    user_id: Uuid,
    email: String,
}

#[derive(Serialize)]
pub struct Token {
    access_token: String,
    token_type: &'static str,
    expires_in: u64,
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
            user_id,
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
        access_token: state.jwt.issue(user_id, role)?,
        token_type: "Bearer",
        expires_in: TOKEN_TTL_SECS,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn credentials_are_normalised_and_checked() {
        let ok = Credentials {
            email: "  Ada@Example.COM ".to_owned(),
            password: "correct horse".to_owned(),
        }
        .validate()
        .unwrap();
        assert_eq!(ok.email, "ada@example.com");
        for (email, password) in [
            ("ada.example.com", "long enough"),
            ("ada@localhost", "long enough"),
            ("@example.com", "long enough"),
            ("ada@example.com", "short"),
        ] {
            let c = Credentials {
                email: email.to_owned(),
                password: password.to_owned(),
            };
            assert!(c.validate().is_err(), "{email} / {password} accepted");
        }
    }

    #[test]
    fn tokens_verify_only_with_their_own_secret() {
        let keys = JwtKeys::hs256(&[7; 32]).unwrap();
        let user = Uuid::now_v7();
        let token = keys.issue(user, Role::Admin).unwrap();
        let claims = keys.verify(&token).unwrap();
        assert_eq!((claims.sub, claims.role), (user, Role::Admin));
        assert!(JwtKeys::hs256(&[8; 32]).unwrap().verify(&token).is_err());
        assert!(JwtKeys::hs256(b"too short").is_err());
    }
}
