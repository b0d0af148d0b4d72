//! Pause, resume and end a deal. A paused deal takes no orders until it is
//! resumed; an ended deal (stored so, or past its window) never takes any
//! again. Each move emits `DealPaused`/`DealResumed`/`DealEnded`; a move the
//! deal's state does not allow is a 409 and writes nothing.

use super::{change, view::DealDetail};
use crate::{auth::AdminUser, error::ApiError, state::AppState};
use axum::extract::{Path, State};
use chrono::{DateTime, Utc};
use flashdeal_schemas::store_events::deal_change;

/// An admin's move on a deal's lifecycle.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Action {
    Pause,
    Resume,
    End,
}

impl Action {
    /// The event it emits.
    pub fn change(self) -> &'static str {
        match self {
            Self::Pause => deal_change::PAUSED,
            Self::Resume => deal_change::RESUMED,
            Self::End => deal_change::ENDED,
        }
    }

    /// The stored status after the move, or why the deal cannot make it.
    pub fn next_status(
        self,
        stored: &str,
        ends_at: DateTime<Utc>,
        now: DateTime<Utc>,
    ) -> Result<&'static str, ApiError> {
        let over = stored == "ended" || now >= ends_at;
        match (self, stored) {
            (Self::End, "ended") => Err(ApiError::Conflict("the deal has already ended")),
            // Ending a deal past its window records what clients already see.
            (Self::End, _) => Ok("ended"),
            (_, _) if over => Err(ApiError::Conflict("the deal has ended")),
            (Self::Pause, "paused") => Err(ApiError::Conflict("the deal is already paused")),
            (Self::Pause, _) => Ok("paused"),
            (Self::Resume, "paused") => Ok("scheduled"),
            (Self::Resume, _) => Err(ApiError::Conflict("the deal is not paused")),
        }
    }
}

async fn apply(
    mut state: AppState,
    id: &str,
    action: Action,
) -> Result<axum::Json<DealDetail>, ApiError> {
    let deal = change::deal_id(id)?;
    let mut tx = state.db.catalog.begin().await?;
    let current = change::lock(&mut tx, deal).await?;
    let status = action.next_status(&current.status, current.ends_at, Utc::now())?;
    let row = change::write(&mut tx, deal, status, 0, action.change()).await?;
    tx.commit().await?;
    Ok(change::respond(&mut state, row).await)
}

/// Declares the route of one [`Action`]: each is its own operation in the
/// document (`operationId` = the handler's name) and differs from the others
/// only in its path and the word for what happened; all run [`apply`].
macro_rules! lifecycle_route {
    ($(#[doc = $doc:tt])* $name:ident, $path:tt, $done:tt, $action:expr) => {
        $(#[doc = $doc])*
        #[utoipa::path(post, path = $path, tag = "catalog",
            params(("id" = uuid::Uuid, Path, description = "The deal's id")),
            security(("bearer" = [])),
            responses(
                (status = 200, description = $done, body = DealDetail),
                crate::auth::extract::AdminRejections,
                (status = 404, response = crate::openapi::NotFound),
                (status = 409, response = crate::openapi::Conflict),
                (status = 429, response = crate::openapi::RateLimited),
                (status = 503, response = crate::openapi::Unavailable),
            )
        )]
        pub async fn $name(
            State(state): State<AppState>,
            _admin: AdminUser,
            Path(id): Path<String>,
        ) -> Result<axum::Json<DealDetail>, ApiError> {
            apply(state, &id, $action).await
        }
    };
}

lifecycle_route!(
    /// `POST /admin/deals/{id}/pause`.
    pause,
    "/admin/deals/{id}/pause",
    "Paused; the deal as committed",
    Action::Pause
);
lifecycle_route!(
    /// `POST /admin/deals/{id}/resume`.
    resume,
    "/admin/deals/{id}/resume",
    "Resumed; the deal as committed",
    Action::Resume
);
lifecycle_route!(
    /// `POST /admin/deals/{id}/end`.
    end,
    "/admin/deals/{id}/end",
    "Ended; the deal as committed",
    Action::End
);

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::Duration;

    #[test]
    fn the_lifecycle_allows_only_meaningful_moves() {
        let now = Utc::now();
        let open = now + Duration::hours(1);
        let past = now - Duration::seconds(1);
        let next = |a: Action, stored, ends| a.next_status(stored, ends, now).ok();
        assert_eq!(next(Action::Pause, "scheduled", open), Some("paused"));
        assert_eq!(next(Action::Pause, "paused", open), None);
        assert_eq!(next(Action::Pause, "ended", open), None);
        assert_eq!(next(Action::Pause, "scheduled", past), None);
        assert_eq!(next(Action::Resume, "paused", open), Some("scheduled"));
        assert_eq!(next(Action::Resume, "scheduled", open), None);
        assert_eq!(next(Action::Resume, "ended", open), None);
        assert_eq!(next(Action::Resume, "paused", past), None);
        assert_eq!(next(Action::End, "scheduled", open), Some("ended"));
        assert_eq!(next(Action::End, "paused", open), Some("ended"));
        assert_eq!(next(Action::End, "scheduled", past), Some("ended"));
        assert_eq!(next(Action::End, "ended", open), None);
    }

    #[test]
    fn a_refused_move_is_a_conflict() {
        let now = Utc::now();
        let err = Action::Resume.next_status("ended", now + Duration::hours(1), now);
        assert!(matches!(err, Err(ApiError::Conflict(_))));
    }
}
