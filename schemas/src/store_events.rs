//! Events of the auth and catalog stores, published from their outboxes by
//! the relays. Each carries the aggregate's whole state after the change
//! (event-carried state) and its `version`: a consumer applies an event only
//! when its version is newer than what it holds, so the duplicates a relay
//! crash produces, and replays, change nothing.

use crate::ids::{DealId, UserId};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

/// A user after a change (`change`: one of [`UserChange`]).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct UserChanged {
    pub event_id: Uuid,
    pub occurred_at: i64,
    pub change: String,
    pub user_id: UserId,
    pub email: String,
    pub role: String,
    pub status: String,
    pub sessions_revoked_before: Option<i64>,
    pub version: i64,
}

/// The kinds of user change (the outbox `type` and `event_type` header).
pub mod user_change {
    pub const REGISTERED: &str = "UserRegistered";
    pub const BLOCKED: &str = "UserBlocked";
    pub const UNBLOCKED: &str = "UserUnblocked";
    pub const PASSWORD_CHANGED: &str = "PasswordChanged";
}

/// A new JWT signing key is active.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SigningKeyRotated {
    pub event_id: Uuid,
    pub occurred_at: i64,
    pub kid: String,
    pub previous_kid: Option<String>,
}

/// A product after a change (`ProductUpserted` or `ProductDeleted`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProductChanged {
    pub event_id: Uuid,
    pub occurred_at: i64,
    pub change: String,
    pub product_id: Uuid,
    pub name: String,
    pub description: String,
    pub deleted: bool,
    pub version: i64,
}

pub mod product_change {
    pub const UPSERTED: &str = "ProductUpserted";
    pub const DELETED: &str = "ProductDeleted";
}

/// A deal after a change, with the change to its stock.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct DealChanged {
    pub event_id: Uuid,
    pub occurred_at: i64,
    pub change: String,
    pub deal_id: DealId,
    pub product_id: Uuid,
    pub price_cents: i64,
    pub stock: i32,
    pub stock_delta: i32,
    pub per_user_limit: i32,
    pub starts_at: i64,
    pub ends_at: i64,
    pub status: String,
    pub version: i64,
}

pub mod deal_change {
    pub const SCHEDULED: &str = "DealScheduled";
    pub const PAUSED: &str = "DealPaused";
    pub const RESUMED: &str = "DealResumed";
    pub const ENDED: &str = "DealEnded";
    pub const STOCK_ADJUSTED: &str = "StockAdjusted";
}
