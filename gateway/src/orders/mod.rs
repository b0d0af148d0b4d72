//! Orders ingress (`POST /orders`) and status (`GET /orders/{id}`).
//!
//! The ingress only reserves (Redis, one script) and appends the intent
//! (log, acks=all); PostgreSQL is not on this path. A 202 is sent only after
//! the broker acknowledged the intent.

pub mod reserve;

use crate::{auth::AuthUser, error::ApiError, json::Json, state::AppState};
use axum::{
    extract::{Path, State},
    http::{HeaderMap, HeaderValue, StatusCode, header},
    response::{IntoResponse, Response},
};
use chrono::{DateTime, Utc};
use flashdeal_producers::publisher::Outgoing;
use flashdeal_schemas::{
    DealId, IdempotencyKey, OrderId, OrderPlaced, Quantity, UserId, events::now_millis, redis_keys,
    topics,
};
use reserve::{Reservation, ReserveRequest, reserve};
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use uuid::Uuid;

/// Body of `POST /orders`.
#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PlaceOrder {
    #[schema(value_type = uuid::Uuid)]
    pub deal_id: DealId,
    #[schema(value_type = u16, minimum = 1, maximum = 1000)]
    pub quantity: Quantity,
}

#[derive(Serialize, utoipa::ToSchema)]
struct Accepted {
    #[schema(value_type = uuid::Uuid)]
    order_id: OrderId,
    #[schema(example = "accepted")]
    status: &'static str,
}

/// Reads the optional `Idempotency-Key` header.
fn idempotency_key(headers: &HeaderMap) -> Result<Option<IdempotencyKey>, ApiError> {
    headers
        .get("idempotency-key")
        .map(|v| {
            v.to_str()
                .ok()
                .and_then(|s| IdempotencyKey::try_from(s.to_owned()).ok())
                .ok_or_else(|| {
                    ApiError::Validation(format!(
                        "`Idempotency-Key` must be 1 to {} visible ASCII characters",
                        IdempotencyKey::MAX_LEN
                    ))
                })
        })
        .transpose()
}

/// `POST /orders`: reserve, append the intent, answer 202.
///
/// Its span is the root of the order's trace: the intent's record headers
/// carry it (`traceparent`) to the order-writer and on to the projector.
#[tracing::instrument(
    name = "POST /orders",
    skip_all,
    fields(
        otel.kind = "server",
        http.route = "/orders",
        user_id = %user.id,
        deal_id = %body.deal_id,
        order_id = tracing::field::Empty,
    )
)]
#[utoipa::path(post, path = "/orders", tag = "orders", request_body = PlaceOrder, security(("bearer" = [])),
    params(("Idempotency-Key" = Option<String>, Header, description = "1 to 128 visible ASCII characters; a repeat answers the first order")),
    responses(
        (status = 202, description = "Reserved, and the intent is in the log", body = Accepted, headers(("Location" = String, description = "`/orders/{id}`"))),
        (status = 401, response = crate::openapi::Unauthenticated), (status = 403, response = crate::openapi::Forbidden),
        (status = 404, response = crate::openapi::NotFound), (status = 409, response = crate::openapi::OrderRefused),
        (status = 413, response = crate::openapi::PayloadTooLarge), (status = 415, response = crate::openapi::UnsupportedMediaType),
        (status = 422, response = crate::openapi::Invalid), (status = 429, response = crate::openapi::RateLimited),
        (status = 503, response = crate::openapi::Unavailable),
    )
)]
pub async fn place_order(
    State(mut state): State<AppState>,
    user: AuthUser,
    headers: HeaderMap,
    Json(body): Json<PlaceOrder>,
) -> Result<Response, ApiError> {
    let key = idempotency_key(&headers)?;
    let now_ms = now_millis();
    let order = OrderId::new_v7();
    let expires_at_ms = now_ms + state.settings.reservation_ttl.as_millis() as i64;
    let req = ReserveRequest {
        deal: body.deal_id,
        user: user.id,
        quantity: body.quantity,
        order,
        now_ms,
        expires_at_ms,
        idempotency_key: key.as_ref(),
        idempotency_ttl_secs: state.settings.idempotency_ttl.as_secs(),
    };
    let outcome = reserve(&mut state.redis, &req).await?;
    metrics::counter!("flashdeal_reservations_total", "outcome" => outcome_label(&outcome))
        .increment(1);
    let placed = |order_id, quantity, unit_price_cents, reserved_at, expires_at| OrderPlaced {
        event_id: Uuid::now_v7(),
        order_id,
        user_id: user.id,
        deal_id: body.deal_id,
        quantity,
        unit_price_cents,
        idempotency_key: key.as_ref().map(|k| k.as_str().to_owned()),
        reserved_at,
        expires_at,
    };
    let intent = match outcome {
        Reservation::Reserved { unit_price_cents } => placed(
            order,
            body.quantity.get() as i32,
            unit_price_cents,
            now_ms,
            expires_at_ms,
        ),
        Reservation::DuplicatePending(first, r) => placed(
            first,
            r.quantity,
            r.unit_price_cents,
            r.reserved_at_ms,
            r.expires_at_ms,
        ),
        Reservation::Duplicate(first) => {
            tracing::Span::current().record("order_id", tracing::field::display(first));
            return Ok(accepted(first));
        }
        Reservation::UnknownDeal => return Err(unknown_deal(&state, body.deal_id).await),
        Reservation::NotActive => return Err(ApiError::DealNotActive),
        Reservation::LimitReached { limit } => return Err(ApiError::LimitReached { limit }),
        Reservation::SoldOut => return Err(ApiError::SoldOut),
    };
    tracing::Span::current().record("order_id", tracing::field::display(intent.order_id));
    let key_bytes = intent.order_id.0.into_bytes();
    let out = Outgoing {
        topic: topics::ORDERS_INTENTS,
        key: &key_bytes,
        event_id: intent.event_id,
        event: &intent,
    };
    if let Err(e) = state.publisher.publish(out).await {
        // The reservation stays pending: only the log may release stock.
        tracing::error!(order_id = %intent.order_id, deal_id = %intent.deal_id, error = %e, "intent not acknowledged");
        return Err(ApiError::Unavailable(
            "the order log is unavailable, retry with the same Idempotency-Key",
        ));
    }
    record_accepted(&mut state, &intent).await;
    Ok(accepted(intent.order_id))
}

/// Writes `order:{id}` as accepted unless the projector already settled it.
/// Best effort: the status is also served from PostgreSQL once written.
async fn record_accepted(state: &mut AppState, intent: &OrderPlaced) {
    let key = redis_keys::order_status(intent.order_id);
    let result = redis::pipe()
        .hset_nx(&key, "status", "accepted")
        .ignore()
        .hset_multiple(
            &key,
            &[
                ("user_id", intent.user_id.to_string()),
                ("deal_id", intent.deal_id.to_string()),
                ("quantity", intent.quantity.to_string()),
            ],
        )
        .ignore()
        .expire(&key, redis_keys::ORDER_STATUS_TTL_SECS)
        .ignore()
        .query_async::<()>(&mut state.redis)
        .await;
    if let Err(e) = result {
        tracing::warn!(order_id = %intent.order_id, error = %e, "could not record accepted status");
    }
}

fn accepted(order: OrderId) -> Response {
    let mut res = (
        StatusCode::ACCEPTED,
        axum::Json(Accepted {
            order_id: order,
            status: "accepted",
        }),
    )
        .into_response();
    if let Ok(loc) = HeaderValue::from_str(&format!("/orders/{order}")) {
        res.headers_mut().insert(header::LOCATION, loc);
    }
    res
}

fn outcome_label(r: &Reservation) -> &'static str {
    match r {
        Reservation::Reserved { .. } => "reserved",
        Reservation::Duplicate(_) | Reservation::DuplicatePending(..) => "duplicate",
        Reservation::UnknownDeal => "unknown_deal",
        Reservation::NotActive => "not_active",
        Reservation::LimitReached { .. } => "limit",
        Reservation::SoldOut => "sold_out",
    }
}

/// Redis has no state for the deal: 404 if the catalog does not know it
/// either, 503 if it does (Redis lost it and must be reloaded).
async fn unknown_deal(state: &AppState, deal: DealId) -> ApiError {
    match crate::catalog::deal_exists(&state.db.catalog, deal).await {
        Ok(false) => ApiError::NotFound("deal"),
        Ok(true) => {
            tracing::error!(deal_id = %deal, "deal exists in the catalog but not in Redis");
            ApiError::Unavailable("this deal is temporarily unavailable")
        }
        Err(e) => e,
    }
}

/// An order as its owner sees it.
#[derive(Serialize, utoipa::ToSchema)]
pub struct OrderView {
    #[schema(value_type = uuid::Uuid)]
    pub order_id: OrderId,
    /// `accepted`, `confirmed`, `rejected` or `expired`.
    pub status: String,
    #[schema(value_type = uuid::Uuid)]
    pub deal_id: DealId,
    pub quantity: i32,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub unit_price_cents: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub created_at: Option<DateTime<Utc>>,
}

/// `GET /orders/{id}`: from the Redis projection, else PostgreSQL. Someone
/// else's order is a 404, not a 403, so ids cannot be probed.
#[utoipa::path(get, path = "/orders/{id}", tag = "orders", security(("bearer" = [])),
    params(("id" = uuid::Uuid, Path, description = "The order's id")),
    responses(
        (status = 200, description = "The order", body = OrderView),
        (status = 401, response = crate::openapi::Unauthenticated), (status = 403, response = crate::openapi::Forbidden),
        (status = 404, response = crate::openapi::NotFound), (status = 429, response = crate::openapi::RateLimited),
        (status = 503, response = crate::openapi::Unavailable),
    )
)]
pub async fn get_order(
    State(mut state): State<AppState>,
    user: AuthUser,
    Path(id): Path<String>,
) -> Result<axum::Json<OrderView>, ApiError> {
    let id: OrderId = id.parse().map_err(|_| ApiError::NotFound("order"))?;
    let cached: HashMap<String, String> = redis::cmd("HGETALL")
        .arg(redis_keys::order_status(id))
        .query_async(&mut state.redis)
        .await?;
    if let Some(view) = from_projection(id, user.id, &cached) {
        return Ok(axum::Json(view));
    }
    let row = sqlx::query_file!("../sql/queries/order_by_id.sql", id.0)
        .fetch_optional(&state.db.orders)
        .await?
        .filter(|r| r.user_id == user.id.0)
        .ok_or(ApiError::NotFound("order"))?;
    Ok(axum::Json(OrderView {
        order_id: id,
        status: row.status,
        deal_id: DealId(row.deal_id),
        quantity: row.quantity,
        unit_price_cents: Some(row.unit_price_cents),
        created_at: Some(row.created_at),
    }))
}

fn from_projection(id: OrderId, user: UserId, h: &HashMap<String, String>) -> Option<OrderView> {
    let owner: UserId = h.get("user_id")?.parse().ok()?;
    (owner == user).then_some(())?;
    Some(OrderView {
        order_id: id,
        status: h.get("status")?.clone(),
        deal_id: h.get("deal_id")?.parse().ok()?,
        quantity: h.get("quantity")?.parse().ok()?,
        unit_price_cents: None,
        created_at: None,
    })
}
