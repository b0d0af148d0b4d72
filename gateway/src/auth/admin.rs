//! Admin actions on accounts and keys: `POST /admin/users/{id}/block`,
//! `POST /admin/users/{id}/unblock`, `POST /admin/auth/signing-keys/rotate`.
//!
//! Each records its event in `auth.outbox` in the transaction of its write;
//! asking for the state a user already has writes nothing and records no
//! event (`changed: false`), so a retried request is harmless.

use super::{
    AdminUser, keyring,
    users::{self, UserState, UserView},
};
use crate::{error::ApiError, state::AppState};
use axum::{
    extract::{Path, State},
    http::StatusCode,
};
use flashdeal_schemas::{UserId, store_events::user_change};

/// Declares the route that sets one [`Status`]: block and unblock are two
/// operations in the document (`operationId` = the handler's name) that
/// differ only in their path; both run [`set_status`].
macro_rules! status_route {
    ($(#[doc = $doc:tt])* $name:ident, $path:tt, $to:expr) => {
        $(#[doc = $doc])*
        #[utoipa::path(post, path = $path, tag = "admin",
            params(("id" = uuid::Uuid, Path, description = "The user's id")),
            security(("bearer" = [])),
            responses(
                (status = 200, description = "The user as it is now (`changed: false` when it already was)", body = UserView),
                crate::auth::extract::AdminRejections,
                (status = 404, response = crate::openapi::NotFound),
                (status = 429, response = crate::openapi::RateLimited),
                (status = 503, response = crate::openapi::Unavailable),
            )
        )]
        pub async fn $name(
            State(state): State<AppState>,
            admin: AdminUser,
            Path(id): Path<String>,
        ) -> Result<axum::Json<UserView>, ApiError> {
            set_status(&state, &admin, &id, $to).await
        }
    };
}

status_route!(
    /// `POST /admin/users/{id}/block`: the user's tokens are refused with 403
    /// on every gateway once the event reaches it (this one at once).
    block_user,
    "/admin/users/{id}/block",
    Status::Blocked
);
status_route!(
    /// `POST /admin/users/{id}/unblock`.
    unblock_user,
    "/admin/users/{id}/unblock",
    Status::Active
);

#[derive(Clone, Copy)]
enum Status {
    Active,
    Blocked,
}

impl Status {
    fn as_str(self) -> &'static str {
        match self {
            Self::Active => "active",
            Self::Blocked => "blocked",
        }
    }

    fn change(self) -> &'static str {
        match self {
            Self::Active => user_change::UNBLOCKED,
            Self::Blocked => user_change::BLOCKED,
        }
    }
}

async fn set_status(
    state: &AppState,
    admin: &AdminUser,
    id: &str,
    to: Status,
) -> Result<axum::Json<UserView>, ApiError> {
    let user: UserId = id.parse().map_err(|_| ApiError::NotFound("user"))?;
    let mut tx = state.db.auth.begin().await?;
    let updated = sqlx::query_file_as!(
        UserState,
        "../sql/queries/set_user_status.sql",
        user.0,
        to.as_str()
    )
    .fetch_optional(&mut *tx)
    .await?;
    let Some(updated) = updated else {
        tx.rollback().await?;
        let current = sqlx::query_file_as!(UserState, "../sql/queries/user_state.sql", user.0)
            .fetch_optional(&state.db.auth)
            .await?
            .ok_or(ApiError::NotFound("user"))?;
        return Ok(axum::Json(current.view(false)));
    };
    let ev = users::record(&mut tx, &updated, to.change()).await?;
    tx.commit().await?;
    state.jwt.sessions().apply(&ev);
    tracing::info!(user_id = %user, admin_id = %admin.0.id, change = to.change(), version = updated.version, "user status changed");
    Ok(axum::Json(updated.view(true)))
}

/// `POST /admin/auth/signing-keys/rotate`: 201 with the new `kid`.
#[utoipa::path(post, path = "/admin/auth/signing-keys/rotate", tag = "admin",
    security(("bearer" = [])),
    responses(
        (status = 201, description = "A new active signing key", body = keyring::Rotated),
        crate::auth::extract::AdminRejections,
        (status = 429, response = crate::openapi::RateLimited),
        (status = 503, response = crate::openapi::Unavailable),
    )
)]
pub async fn rotate_signing_key(
    State(state): State<AppState>,
    admin: AdminUser,
) -> Result<(StatusCode, axum::Json<keyring::Rotated>), ApiError> {
    let rotated = keyring::rotate(&state.db.auth, &state.jwt).await?;
    tracing::info!(admin_id = %admin.0.id, kid = %rotated.kid, "signing key rotation requested");
    Ok((StatusCode::CREATED, axum::Json(rotated)))
}
