//! The session guard: which users are blocked and which tokens a password
//! change revoked, held in memory so `POST /orders` checks them without a
//! database round trip.
//!
//! It is fed by `auth.events` ([`super::follower`]) and, for the instance
//! that made a change, by the handler right after its commit. Each
//! `UserChanged` carries the user's whole state and its `version`; the
//! guard applies an event only when its version is newer than the one it
//! holds, so relay duplicates, replays from the earliest offset and the
//! local apply followed by the same event from the log change nothing.
//!
//! Memory: only users whose state ever differed from "active, no
//! revocation" get an entry (their version must be remembered so that a
//! stale duplicate cannot undo a newer change); a user who only signed up
//! costs nothing.

use super::jwt::Claims;
use crate::error::ApiError;
use flashdeal_schemas::{UserId, store_events::UserChanged};
use std::{
    collections::HashMap,
    sync::{PoisonError, RwLock},
};

/// What the guard knows about one user.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct UserSessions {
    version: i64,
    blocked: bool,
    /// Tokens issued before this instant (ms) are refused.
    revoked_before_ms: Option<i64>,
}

/// Whether an event changed the guard.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Applied {
    /// The event was newer than what the guard held.
    New,
    /// The guard already held this version or a newer one.
    Stale,
}

/// Blocked users and per-user revocation instants.
#[derive(Debug, Default)]
pub struct SessionGuard {
    users: RwLock<HashMap<UserId, UserSessions>>,
}

impl SessionGuard {
    /// Applies `ev` if its version is newer than the user's known version.
    pub fn apply(&self, ev: &UserChanged) -> Applied {
        let state = UserSessions {
            version: ev.version,
            // Any status but `active` (including one added later) refuses.
            blocked: ev.status != "active",
            revoked_before_ms: ev.sessions_revoked_before,
        };
        let mut users = self.users.write().unwrap_or_else(PoisonError::into_inner);
        match users.get_mut(&ev.user_id) {
            Some(held) if held.version >= ev.version => return Applied::Stale,
            Some(held) => *held = state,
            // A user in the default state needs no entry: absence already
            // means "allowed", and older events cannot be newer than it.
            None if !state.blocked && state.revoked_before_ms.is_none() => {}
            None => {
                users.insert(ev.user_id, state);
            }
        }
        metrics::gauge!("flashdeal_session_guard_users").set(users.len() as f64);
        Applied::New
    }

    /// Refuses a blocked user's token (403) and a token issued before the
    /// user's sessions were revoked (401).
    pub fn check(&self, claims: &Claims) -> Result<(), ApiError> {
        let users = self.users.read().unwrap_or_else(PoisonError::into_inner);
        let Some(user) = users.get(&claims.sub) else {
            return Ok(());
        };
        if user.blocked {
            return Err(ApiError::Forbidden("this account is blocked"));
        }
        match user.revoked_before_ms {
            Some(before) if i128::from(claims.issued_at_ms()) < i128::from(before) => Err(
                ApiError::Unauthenticated("this access token was revoked, log in again"),
            ),
            _ => Ok(()),
        }
    }

    /// How many users the guard holds an entry for.
    pub fn len(&self) -> usize {
        self.users
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::auth::jwt::Role;
    use flashdeal_schemas::store_events::user_change;
    use uuid::Uuid;

    fn event(
        user: UserId,
        change: &str,
        status: &str,
        revoked: Option<i64>,
        v: i64,
    ) -> UserChanged {
        UserChanged {
            event_id: Uuid::now_v7(),
            occurred_at: 1_700_000_000_000,
            change: change.to_owned(),
            user_id: user,
            email: "a@example.com".to_owned(),
            role: "customer".to_owned(),
            status: status.to_owned(),
            sessions_revoked_before: revoked,
            version: v,
        }
    }

    fn claims(user: UserId, iat_ms: u64) -> Claims {
        Claims {
            sub: user,
            role: Role::Customer,
            iss: "i".to_owned(),
            aud: "a".to_owned(),
            iat: iat_ms / 1000,
            iat_ms: Some(iat_ms),
            exp: u64::MAX,
            jti: Uuid::now_v7(),
        }
    }

    fn status(guard: &SessionGuard, c: &Claims) -> u16 {
        match guard.check(c) {
            Ok(()) => 200,
            Err(e) => axum::response::IntoResponse::into_response(e)
                .status()
                .as_u16(),
        }
    }

    #[test]
    fn a_blocked_user_is_refused_and_an_unblocked_one_allowed_again() {
        let g = SessionGuard::default();
        let u = UserId::new_v7();
        let c = claims(u, 5_000);
        assert_eq!(status(&g, &c), 200);
        assert_eq!(
            g.apply(&event(u, user_change::REGISTERED, "active", None, 1)),
            Applied::New
        );
        assert!(g.is_empty(), "a plain signup needs no entry");
        g.apply(&event(u, user_change::BLOCKED, "blocked", None, 2));
        assert_eq!(status(&g, &c), 403);
        g.apply(&event(u, user_change::UNBLOCKED, "active", None, 3));
        assert_eq!(status(&g, &c), 200);
    }

    #[test]
    fn tokens_issued_before_a_password_change_are_refused() {
        let g = SessionGuard::default();
        let u = UserId::new_v7();
        g.apply(&event(
            u,
            user_change::PASSWORD_CHANGED,
            "active",
            Some(10_500),
            2,
        ));
        assert_eq!(status(&g, &claims(u, 10_499)), 401);
        assert_eq!(status(&g, &claims(u, 10_500)), 200, "the fresh token");
        // A legacy token (no iat_ms) from the same second counts as older.
        let legacy = Claims {
            iat_ms: None,
            ..claims(u, 10_999)
        };
        assert_eq!(status(&g, &legacy), 401);
        assert_eq!(status(&g, &claims(UserId::new_v7(), 0)), 200, "other users");
    }

    #[test]
    fn duplicates_and_replays_change_nothing() {
        let g = SessionGuard::default();
        let u = UserId::new_v7();
        let c = claims(u, 5_000);
        let history = [
            event(u, user_change::REGISTERED, "active", None, 1),
            event(u, user_change::BLOCKED, "blocked", None, 2),
            event(u, user_change::UNBLOCKED, "active", None, 3),
        ];
        for ev in &history {
            assert_eq!(g.apply(ev), Applied::New);
        }
        assert_eq!(status(&g, &c), 200);
        // A relay crash republishes the batch; a restart replays it all.
        for ev in history.iter().chain(&history) {
            assert_eq!(g.apply(ev), Applied::Stale, "version {}", ev.version);
        }
        assert_eq!(status(&g, &c), 200, "a stale UserBlocked must not re-block");
        // The same version with another event id is still the same state.
        let mut dup = history[1].clone();
        dup.event_id = Uuid::now_v7();
        assert_eq!(g.apply(&dup), Applied::Stale);
        assert_eq!(status(&g, &c), 200);
        assert_eq!(g.len(), 1);
    }

    #[test]
    fn out_of_order_older_versions_are_ignored() {
        let g = SessionGuard::default();
        let u = UserId::new_v7();
        g.apply(&event(u, user_change::BLOCKED, "blocked", None, 4));
        assert_eq!(
            g.apply(&event(u, user_change::UNBLOCKED, "active", None, 3)),
            Applied::Stale
        );
        assert_eq!(status(&g, &claims(u, 1)), 403);
    }
}
