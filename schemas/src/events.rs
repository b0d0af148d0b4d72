//! Event structs, field for field the records in `avro/*.avsc`. Times are
//! milliseconds since the epoch (`timestamp-millis`).

use crate::ids::{DealId, OrderId, UserId};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

/// Milliseconds since the Unix epoch, the unit of every event timestamp.
pub fn now_millis() -> i64 {
    chrono::Utc::now().timestamp_millis()
}

/// An order intent: stock is reserved in Redis; the order-writer persists it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct OrderPlaced {
    pub event_id: Uuid,
    pub order_id: OrderId,
    pub user_id: UserId,
    pub deal_id: DealId,
    pub quantity: i32,
    pub unit_price_cents: i64,
    pub idempotency_key: Option<String>,
    pub reserved_at: i64,
    pub expires_at: i64,
}

/// The order row is committed; the reservation is now a sale.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct OrderConfirmed {
    pub event_id: Uuid,
    pub order_id: OrderId,
    pub user_id: UserId,
    pub deal_id: DealId,
    pub quantity: i32,
    pub occurred_at: i64,
}

/// The intent was refused; its reserved stock goes back to the deal.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct OrderRejected {
    pub event_id: Uuid,
    pub order_id: OrderId,
    pub user_id: UserId,
    pub deal_id: DealId,
    pub quantity: i32,
    pub reason: String,
    pub occurred_at: i64,
}

impl OrderConfirmed {
    /// The confirmation of `placed`, with a new event id.
    pub fn of(placed: &OrderPlaced) -> Self {
        Self {
            event_id: Uuid::now_v7(),
            order_id: placed.order_id,
            user_id: placed.user_id,
            deal_id: placed.deal_id,
            quantity: placed.quantity,
            occurred_at: now_millis(),
        }
    }
}

impl OrderRejected {
    /// The rejection of `placed` for `reason`, with a new event id.
    pub fn of(placed: &OrderPlaced, reason: impl Into<String>) -> Self {
        Self {
            event_id: Uuid::now_v7(),
            order_id: placed.order_id,
            user_id: placed.user_id,
            deal_id: placed.deal_id,
            quantity: placed.quantity,
            reason: reason.into(),
            occurred_at: now_millis(),
        }
    }
}

/// A reservation stayed pending past its expiry; appended by the reconciler.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct OrderExpired {
    pub event_id: Uuid,
    pub order_id: OrderId,
    pub user_id: UserId,
    pub deal_id: DealId,
    pub quantity: i32,
    pub unit_price_cents: i64,
    pub reserved_at: i64,
    pub expires_at: i64,
    pub occurred_at: i64,
}

/// The order was recorded as expired; its reserved stock goes back.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReservationReleased {
    pub event_id: Uuid,
    pub order_id: OrderId,
    pub user_id: UserId,
    pub deal_id: DealId,
    pub quantity: i32,
    pub reason: String,
    pub occurred_at: i64,
}

impl ReservationReleased {
    /// The release of `expired`'s reservation, with a new event id.
    pub fn of(expired: &OrderExpired) -> Self {
        Self {
            event_id: Uuid::now_v7(),
            order_id: expired.order_id,
            user_id: expired.user_id,
            deal_id: expired.deal_id,
            quantity: expired.quantity,
            reason: "reservation expired".to_owned(),
            occurred_at: now_millis(),
        }
    }
}
