//! The naive order path this control group exists to measure. Each
//! `POST /orders` is ONE PostgreSQL transaction:
//!
//! ```sql
//! BEGIN;
//! SELECT … FROM baseline.deals WHERE deal_id = $1 FOR UPDATE;   -- every buyer of the deal queues here
//! SELECT order_id FROM baseline.orders WHERE (user, deal, key);  -- only with an Idempotency-Key
//! SELECT sum(quantity) FROM baseline.orders WHERE (user, deal);  -- per-user limit
//! UPDATE baseline.deals SET stock = stock - $2 WHERE deal_id = $1;
//! INSERT INTO baseline.orders … 'confirmed';
//! COMMIT;
//! ```
//!
//! The answer is FlashDeal's (202 `{"order_id","status":"accepted"}` with
//! `Location`), but the order is already `confirmed` when it is sent.

use crate::{app::AppState, auth::AuthUser};
use axum::{
    extract::{Path, State},
    http::{HeaderMap, HeaderValue, StatusCode, header},
    response::{IntoResponse, Response},
};
use chrono::{DateTime, Utc};
use flashdeal_gateway::{error::ApiError, json::Json};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

/// Units in one order: 1 to [`Quantity::MAX`] (FlashDeal's bounds).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize)]
#[serde(try_from = "i64")]
pub struct Quantity(i32);

impl Quantity {
    pub const MAX: i32 = 1_000;
}

impl TryFrom<i64> for Quantity {
    type Error = String;
    fn try_from(n: i64) -> Result<Self, String> {
        match i32::try_from(n) {
            Ok(q) if (1..=Self::MAX).contains(&q) => Ok(Self(q)),
            _ => Err(format!(
                "quantity must be between 1 and {}, got {n}",
                Self::MAX
            )),
        }
    }
}

/// The optional `Idempotency-Key` header: 1 to 128 visible ASCII characters.
#[derive(Debug, PartialEq, Eq)]
pub struct IdempotencyKey(String);

impl IdempotencyKey {
    pub const MAX_LEN: usize = 128;

    /// `None` without the header; 422 when it is malformed.
    fn from_headers(headers: &HeaderMap) -> Result<Option<Self>, ApiError> {
        let Some(value) = headers.get("idempotency-key") else {
            return Ok(None);
        };
        value
            .to_str()
            .ok()
            .filter(|s| {
                !s.is_empty() && s.len() <= Self::MAX_LEN && s.bytes().all(|b| b.is_ascii_graphic())
            })
            .map(|s| Some(Self(s.to_owned())))
            .ok_or_else(|| {
                ApiError::Validation(format!(
                    "`Idempotency-Key` must be 1 to {} visible ASCII characters",
                    Self::MAX_LEN
                ))
            })
    }
}

/// Body of `POST /orders`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PlaceOrder {
    pub deal_id: Uuid,
    pub quantity: Quantity,
}

/// The locked deal row: what the checks need.
#[derive(sqlx::FromRow)]
struct LockedDeal {
    price_cents: i64,
    stock: i32,
    per_user_limit: i32,
    starts_at: DateTime<Utc>,
    ends_at: DateTime<Utc>,
}

/// FlashDeal's rules, in its order: window, then per-user limit, then stock.
/// `held` is what the user already ordered from this deal.
fn check(deal: &LockedDeal, held: i64, qty: Quantity, now: DateTime<Utc>) -> Result<(), ApiError> {
    if now < deal.starts_at || now >= deal.ends_at {
        return Err(ApiError::DealNotActive);
    }
    if held + i64::from(qty.0) > i64::from(deal.per_user_limit) {
        return Err(ApiError::LimitReached {
            limit: i64::from(deal.per_user_limit),
        });
    }
    if deal.stock < qty.0 {
        return Err(ApiError::SoldOut);
    }
    Ok(())
}

/// `POST /orders`: the whole order in one transaction, then 202.
pub async fn place(
    State(state): State<AppState>,
    user: AuthUser,
    headers: HeaderMap,
    Json(body): Json<PlaceOrder>,
) -> Result<Response, ApiError> {
    let key = IdempotencyKey::from_headers(&headers)?;
    // Dropping `tx` on an early return rolls it back and releases the lock.
    let mut tx = state.pool.begin().await?;
    let deal: LockedDeal = sqlx::query_as(
        "SELECT price_cents, stock, per_user_limit, starts_at, ends_at
         FROM baseline.deals WHERE deal_id = $1 FOR UPDATE",
    )
    .bind(body.deal_id)
    .fetch_optional(&mut *tx)
    .await?
    .ok_or(ApiError::NotFound("deal"))?;

    // Under the row lock, so two retries with one key cannot both insert.
    if let Some(IdempotencyKey(k)) = &key {
        let first: Option<Uuid> = sqlx::query_scalar(
            "SELECT order_id FROM baseline.orders
             WHERE user_id = $1 AND deal_id = $2 AND idempotency_key = $3",
        )
        .bind(user.id)
        .bind(body.deal_id)
        .bind(k)
        .fetch_optional(&mut *tx)
        .await?;
        if let Some(first) = first {
            return Ok(accepted(first));
        }
    }

    let held: i64 = sqlx::query_scalar(
        "SELECT COALESCE(sum(quantity), 0)::bigint FROM baseline.orders
         WHERE user_id = $1 AND deal_id = $2",
    )
    .bind(user.id)
    .bind(body.deal_id)
    .fetch_one(&mut *tx)
    .await?;
    check(&deal, held, body.quantity, Utc::now())?;

    sqlx::query("UPDATE baseline.deals SET stock = stock - $2 WHERE deal_id = $1")
        .bind(body.deal_id)
        .bind(body.quantity.0)
        .execute(&mut *tx)
        .await?;
    let order_id = Uuid::now_v7();
    sqlx::query(
        "INSERT INTO baseline.orders
             (order_id, user_id, deal_id, quantity, unit_price_cents, status, idempotency_key)
         VALUES ($1, $2, $3, $4, $5, 'confirmed', $6)",
    )
    .bind(order_id)
    .bind(user.id)
    .bind(body.deal_id)
    .bind(body.quantity.0)
    .bind(deal.price_cents)
    .bind(key.map(|IdempotencyKey(k)| k))
    .execute(&mut *tx)
    .await?;
    tx.commit().await?;
    Ok(accepted(order_id))
}

#[derive(Serialize)]
struct Accepted {
    order_id: Uuid,
    status: &'static str,
}

/// 202 `{"order_id","status":"accepted"}` with `Location: /orders/{id}`.
fn accepted(order_id: Uuid) -> Response {
    let body = Accepted {
        order_id,
        status: "accepted",
    };
    let mut res = (StatusCode::ACCEPTED, axum::Json(body)).into_response();
    if let Ok(loc) = HeaderValue::from_str(&format!("/orders/{order_id}")) {
        res.headers_mut().insert(header::LOCATION, loc);
    }
    res
}

/// An order as its owner sees it.
#[derive(Serialize, sqlx::FromRow)]
pub struct OrderView {
    order_id: Uuid,
    status: String,
    deal_id: Uuid,
    quantity: i32,
    unit_price_cents: i64,
    created_at: DateTime<Utc>,
}

/// `GET /orders/{id}`: someone else's order is a 404, so ids cannot be probed.
pub async fn get(
    State(state): State<AppState>,
    user: AuthUser,
    Path(id): Path<String>,
) -> Result<axum::Json<OrderView>, ApiError> {
    let id: Uuid = id.parse().map_err(|_| ApiError::NotFound("order"))?;
    sqlx::query_as(
        "SELECT order_id, status, deal_id, quantity, unit_price_cents, created_at
         FROM baseline.orders WHERE order_id = $1 AND user_id = $2",
    )
    .bind(id)
    .bind(user.id)
    .fetch_optional(&state.pool)
    .await?
    .map(axum::Json)
    .ok_or(ApiError::NotFound("order"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::Duration;

    fn open_deal(stock: i32, limit: i32) -> LockedDeal {
        let now = Utc::now();
        LockedDeal {
            price_cents: 100,
            stock,
            per_user_limit: limit,
            starts_at: now - Duration::minutes(1),
            ends_at: now + Duration::minutes(1),
        }
    }

    fn q(n: i64) -> Quantity {
        Quantity::try_from(n).unwrap()
    }

    #[test]
    fn quantity_is_1_to_1000() {
        assert_eq!(serde_json::from_str::<Quantity>("1").unwrap(), Quantity(1));
        assert_eq!(
            serde_json::from_str::<Quantity>("1000").unwrap(),
            Quantity(1000)
        );
        for bad in ["0", "-1", "1001", "2.5", "\"2\"", "9223372036854775807"] {
            assert!(
                serde_json::from_str::<Quantity>(bad).is_err(),
                "{bad} accepted"
            );
        }
    }

    #[test]
    fn an_order_body_refuses_unknown_fields_and_bad_ids() {
        let id = Uuid::now_v7();
        let ok = format!(r#"{{"deal_id":"{id}","quantity":2}}"#);
        assert_eq!(serde_json::from_str::<PlaceOrder>(&ok).unwrap().deal_id, id);
        let extra = format!(r#"{{"deal_id":"{id}","quantity":2,"price":1}}"#);
        assert!(serde_json::from_str::<PlaceOrder>(&extra).is_err());
        assert!(serde_json::from_str::<PlaceOrder>(r#"{"deal_id":"x","quantity":2}"#).is_err());
    }

    #[test]
    fn idempotency_keys_are_visible_ascii_up_to_128() {
        let parse = |v: &str| {
            let mut h = HeaderMap::new();
            h.insert("idempotency-key", HeaderValue::from_str(v).unwrap());
            IdempotencyKey::from_headers(&h)
        };
        assert_eq!(
            IdempotencyKey::from_headers(&HeaderMap::new()).unwrap(),
            None
        );
        assert_eq!(
            parse("order-1").unwrap(),
            Some(IdempotencyKey("order-1".to_owned()))
        );
        assert!(parse(&"k".repeat(128)).is_ok());
        for bad in ["", "has space", &"k".repeat(129)] {
            assert!(parse(bad).is_err(), "{bad:?} accepted");
        }
    }

    #[test]
    fn checks_run_window_then_limit_then_stock() {
        let now = Utc::now();
        let mut ended = open_deal(0, 1);
        ended.ends_at = now;
        assert!(matches!(
            check(&ended, 5, q(5), now),
            Err(ApiError::DealNotActive)
        ));
        assert!(matches!(
            check(&open_deal(0, 2), 1, q(2), now),
            Err(ApiError::LimitReached { limit: 2 })
        ));
        assert!(matches!(
            check(&open_deal(1, 2), 0, q(2), now),
            Err(ApiError::SoldOut)
        ));
        assert!(check(&open_deal(2, 2), 0, q(2), now).is_ok());
    }
}
