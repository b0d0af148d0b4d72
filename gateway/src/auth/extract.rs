//! Extractors for protected routes: a handler that takes [`AuthUser`] runs
//! only with a valid bearer token of a user who is not blocked (403) and
//! whose sessions were not revoked after it was issued (401); [`AdminUser`]
//! also requires the admin role. [`AdminRejections`] documents what it
//! refuses once for every admin route.

use super::jwt::{Claims, JwtKeys, Role};
use crate::{error::ApiError, rate_limit::VerifiedClaims, state::AppState};
use axum::{
    extract::FromRequestParts,
    http::{HeaderMap, request::Parts},
};
use flashdeal_schemas::UserId;

/// A caller with a valid access token.
#[derive(Clone, Debug)]
pub struct AuthUser {
    pub id: UserId,
    pub claims: Claims,
}

/// A caller with a valid access token and the admin role.
#[derive(Clone, Debug)]
pub struct AdminUser(pub AuthUser);

/// What [`AdminUser`] refuses a request with, for the `responses(...)` of
/// every admin route: 401 without a valid token, 403 without the role or
/// for a blocked account.
#[derive(utoipa::IntoResponses)]
pub enum AdminRejections {
    #[response(status = 401)]
    Unauthenticated(#[ref_response] crate::openapi::Unauthenticated),
    #[response(status = 403)]
    Forbidden(#[ref_response] crate::openapi::Forbidden),
}

/// The token of an `Authorization: Bearer <token>` header.
pub fn bearer_token(headers: &HeaderMap) -> Result<&str, ApiError> {
    let header =
        headers
            .get(axum::http::header::AUTHORIZATION)
            .ok_or(ApiError::Unauthenticated(
                "missing `Authorization: Bearer <token>` header",
            ))?;
    header
        .to_str()
        .ok()
        .and_then(|v| v.strip_prefix("Bearer "))
        .map(str::trim)
        .filter(|t| !t.is_empty())
        .ok_or(ApiError::Unauthenticated(
            "the Authorization header must be `Bearer <token>`",
        ))
}

/// Verifies the request's `Authorization: Bearer <token>` with `jwt`; for
/// extractors of any state (the benchmark baseline has its own).
pub fn bearer_claims(parts: &Parts, jwt: &JwtKeys) -> Result<Claims, ApiError> {
    jwt.verify(bearer_token(&parts.headers)?)
}

impl FromRequestParts<AppState> for AuthUser {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        // The rate limiter verified the token already when it limits per
        // user; verify here only when it did not.
        let claims = match parts.extensions.get::<VerifiedClaims>() {
            Some(VerifiedClaims(claims)) => claims.clone(),
            None => bearer_claims(parts, &state.jwt)?,
        };
        state.jwt.sessions().check(&claims)?;
        Ok(Self {
            id: claims.sub,
            claims,
        })
    }
}

impl FromRequestParts<AppState> for AdminUser {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        let user = AuthUser::from_request_parts(parts, state).await?;
        if user.claims.role == Role::Admin {
            Ok(Self(user))
        } else {
            Err(ApiError::Forbidden("this endpoint needs the admin role"))
        }
    }
}
