//! A user's state as `auth.events` carries it, and the one way a change to
//! it is recorded: the `UserChanged` event goes into `auth.outbox` in the
//! transaction that changed the row (the relay publishes it later).

use crate::error::ApiError;
use chrono::{DateTime, Utc};
use flashdeal_producers::outbox::{self, Entry, Outbox};
use flashdeal_schemas::{UserId, events::now_millis, store_events::UserChanged};
use serde::Serialize;
use sqlx::PgConnection;
use uuid::Uuid;

/// A row of `auth.users` without its password hash, as the queries that
/// change a user return it (`RETURNING user_id, email, role, status,
/// sessions_revoked_before, version`).
#[derive(Clone, Debug)]
pub struct UserState {
    pub user_id: Uuid,
    pub email: String,
    pub role: String,
    pub status: String,
    pub sessions_revoked_before: Option<DateTime<Utc>>,
    pub version: i64,
}

/// What the admin API answers about a user.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct UserView {
    #[schema(value_type = uuid::Uuid)]
    pub user_id: UserId,
    pub email: String,
    pub role: String,
    pub status: String,
    pub version: i64,
    /// `false` when the request asked for the state the user already had.
    pub changed: bool,
}

impl UserState {
    pub fn view(self, changed: bool) -> UserView {
        UserView {
            user_id: UserId(self.user_id),
            email: self.email,
            role: self.role,
            status: self.status,
            version: self.version,
            changed,
        }
    }

    /// The event describing this state after `change`.
    pub fn event(&self, change: &str) -> UserChanged {
        UserChanged {
            event_id: Uuid::now_v7(),
            occurred_at: now_millis(),
            change: change.to_owned(),
            user_id: UserId(self.user_id),
            email: self.email.clone(),
            role: self.role.clone(),
            status: self.status.clone(),
            sessions_revoked_before: self.sessions_revoked_before.map(|t| t.timestamp_millis()),
            version: self.version,
        }
    }
}

/// Adds `UserChanged(change)` for `state` to `auth.outbox` inside `tx`,
/// which must hold the user's row lock (it just wrote the row). Returns the
/// event so the caller can apply it to its own session guard after commit.
pub async fn record(
    tx: &mut PgConnection,
    state: &UserState,
    change: &str,
) -> Result<UserChanged, ApiError> {
    let ev = state.event(change);
    outbox::append(
        tx,
        Outbox::Auth,
        Entry {
            aggregate_type: "user",
            aggregate_id: &state.user_id.to_string(),
            change,
            event_id: ev.event_id,
            event: &ev,
        },
    )
    .await?;
    Ok(ev)
}
