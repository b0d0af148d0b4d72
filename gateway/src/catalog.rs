//! The catalog slice: admins create deals; anyone lists and reads them.
//!
//! In this slice the deal's Redis state is loaded directly when the deal is
//! created (the catalog outbox relay replaces that with a projection from
//! the log; docs/decisions.md).

use crate::{auth::AdminUser, error::ApiError, json::Json, state::AppState};
use axum::{
    extract::{Path, Query, State},
    http::{HeaderValue, StatusCode, header},
    response::{IntoResponse, Response},
};
use chrono::{DateTime, Utc};
use flashdeal_schemas::{DealId, Quantity, redis_keys::DealKeys};
use redis::aio::ConnectionManager;
use serde::{Deserialize, Serialize};
use sqlx::PgPool;
use uuid::Uuid;

/// The largest stock one deal may hold.
pub const MAX_STOCK: i32 = 10_000_000;

/// Body of `POST /admin/deals`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NewDeal {
    pub product_name: String,
    #[serde(default)]
    pub product_description: String,
    pub price_cents: i64,
    pub stock: i32,
    pub per_user_limit: i32,
    /// Defaults to now.
    pub starts_at: Option<DateTime<Utc>>,
    pub ends_at: DateTime<Utc>,
}

impl NewDeal {
    /// Checks the deal against the catalog's rules; returns the effective
    /// `starts_at` (`now` when absent).
    pub fn validate(&self, now: DateTime<Utc>) -> Result<DateTime<Utc>, ApiError> {
        let v = |m: &str| Err(ApiError::Validation(m.to_owned()));
        let name = self.product_name.trim();
        if name.is_empty() || name.chars().count() > 200 {
            return v("`product_name` must be 1 to 200 characters");
        }
        if self.product_description.chars().count() > 4000 {
            return v("`product_description` must be at most 4000 characters");
        }
        if !(1..=100_000_000).contains(&self.price_cents) {
            return v("`price_cents` must be between 1 and 100000000");
        }
        if !(0..=MAX_STOCK).contains(&self.stock) {
            return v("`stock` must be between 0 and 10000000");
        }
        if !(1..=Quantity::MAX as i32).contains(&self.per_user_limit) {
            return v("`per_user_limit` must be between 1 and 1000");
        }
        let starts = self.starts_at.unwrap_or(now);
        if self.ends_at <= starts {
            return v("`ends_at` must be after `starts_at`");
        }
        if self.ends_at <= now {
            return v("`ends_at` must be in the future");
        }
        Ok(starts)
    }
}

/// A deal as clients see it.
#[derive(Debug, Serialize, Deserialize)]
pub struct DealView {
    pub deal_id: DealId,
    pub product_id: Uuid,
    pub product_name: String,
    pub price_cents: i64,
    pub stock: i32,
    /// Units still available to reserve (from Redis); absent if unknown.
    pub remaining: Option<i64>,
    pub per_user_limit: i32,
    pub starts_at: DateTime<Utc>,
    pub ends_at: DateTime<Utc>,
    /// `upcoming`, `active`, `ended` or `paused`.
    pub status: String,
    pub created_at: DateTime<Utc>,
}

/// The status clients see: a stored `paused`/`ended` wins, otherwise where
/// `now` falls in the `[starts, ends)` window.
pub fn display_status(
    stored: &str,
    starts: DateTime<Utc>,
    ends: DateTime<Utc>,
    now: DateTime<Utc>,
) -> String {
    match stored {
        "paused" | "ended" => stored.to_owned(),
        _ if now < starts => "upcoming".to_owned(),
        _ if now >= ends => "ended".to_owned(),
        _ => "active".to_owned(),
    }
}

/// `POST /admin/deals`.
pub async fn create_deal_handler(
    State(mut state): State<AppState>,
    _admin: AdminUser,
    Json(body): Json<NewDeal>,
) -> Result<Response, ApiError> {
    let deal = create_deal(&state.pg, &mut state.redis, &body).await?;
    let location = format!("/deals/{}", deal.deal_id);
    let mut res = (StatusCode::CREATED, axum::Json(deal)).into_response();
    if let Ok(loc) = HeaderValue::from_str(&location) {
        res.headers_mut().insert(header::LOCATION, loc);
    }
    Ok(res)
}

/// Creates the product and its deal in one transaction, then opens the
/// deal in Redis. Used by the HTTP handler and by `flashdeal seed`.
pub async fn create_deal(
    pg: &PgPool,
    redis: &mut ConnectionManager,
    new: &NewDeal,
) -> Result<DealView, ApiError> {
    let now = Utc::now();
    let starts_at = new.validate(now)?;
    let product_id = Uuid::now_v7();
    let deal_id = DealId::new_v7();
    let name = new.product_name.trim();
    let mut tx = pg.begin().await?;
    sqlx::query_file!(
        "../sql/queries/insert_product.sql",
        product_id,
        name,
        new.product_description
    )
    .execute(&mut *tx)
    .await?;
    let created_at = sqlx::query_file_scalar!(
        "../sql/queries/insert_deal.sql",
        deal_id.0,
        product_id,
        new.price_cents,
        new.stock,
        new.per_user_limit,
        starts_at,
        new.ends_at
    )
    .fetch_one(&mut *tx)
    .await?;
    tx.commit().await?;
    open_in_redis(redis, deal_id, new, starts_at).await?;
    tracing::info!(deal_id = %deal_id, stock = new.stock, "deal created");
    Ok(DealView {
        deal_id,
        product_id,
        product_name: name.to_owned(),
        price_cents: new.price_cents,
        stock: new.stock,
        remaining: Some(i64::from(new.stock)),
        per_user_limit: new.per_user_limit,
        starts_at,
        ends_at: new.ends_at,
        status: display_status("scheduled", starts_at, new.ends_at, now),
        created_at,
    })
}

/// Writes the deal's meta and stock in one MULTI/EXEC.
async fn open_in_redis(
    redis: &mut ConnectionManager,
    deal: DealId,
    new: &NewDeal,
    starts_at: DateTime<Utc>,
) -> Result<(), redis::RedisError> {
    let keys = DealKeys::new(deal);
    redis::pipe()
        .atomic()
        .hset_multiple(
            &keys.meta,
            &[
                ("status", "active".to_owned()),
                ("starts_at", starts_at.timestamp_millis().to_string()),
                ("ends_at", new.ends_at.timestamp_millis().to_string()),
                ("price_cents", new.price_cents.to_string()),
                ("per_user_limit", new.per_user_limit.to_string()),
                ("stock", new.stock.to_string()),
            ],
        )
        .ignore()
        .set(&keys.stock, new.stock)
        .ignore()
        .query_async(redis)
        .await
}

/// `true` when the catalog has this deal.
pub async fn deal_exists(pg: &PgPool, deal: DealId) -> Result<bool, ApiError> {
    Ok(
        sqlx::query_file_scalar!("../sql/queries/deal_exists.sql", deal.0)
            .fetch_one(pg)
            .await?
            .unwrap_or(false),
    )
}

macro_rules! deal_view {
    ($row:expr, $remaining:expr, $now:expr) => {{
        let r = $row;
        DealView {
            deal_id: DealId(r.deal_id),
            product_id: r.product_id,
            status: display_status(&r.status, r.starts_at, r.ends_at, $now),
            product_name: r.product_name,
            price_cents: r.price_cents,
            stock: r.stock,
            remaining: $remaining,
            per_user_limit: r.per_user_limit,
            starts_at: r.starts_at,
            ends_at: r.ends_at,
            created_at: r.created_at,
        }
    }};
}

/// `GET /deals/{id}`.
pub async fn get_deal(
    State(mut state): State<AppState>,
    Path(id): Path<String>,
) -> Result<axum::Json<DealView>, ApiError> {
    let id: DealId = id.parse().map_err(|_| ApiError::NotFound("deal"))?;
    let row = sqlx::query_file!("../sql/queries/deal_by_id.sql", id.0)
        .fetch_optional(&state.pg)
        .await?
        .ok_or(ApiError::NotFound("deal"))?;
    let remaining = remaining(&mut state.redis, &[id])
        .await
        .into_iter()
        .next()
        .flatten();
    Ok(axum::Json(deal_view!(row, remaining, Utc::now())))
}

#[derive(Deserialize)]
pub struct ListParams {
    pub limit: Option<i64>,
}

/// `GET /deals?limit=n`: deals that have not ended.
pub async fn list_deals(
    State(mut state): State<AppState>,
    Query(params): Query<ListParams>,
) -> Result<axum::Json<Vec<DealView>>, ApiError> {
    let limit = params.limit.unwrap_or(50);
    if !(1..=200).contains(&limit) {
        return Err(ApiError::Validation(
            "`limit` must be between 1 and 200".to_owned(),
        ));
    }
    let rows = sqlx::query_file!("../sql/queries/list_deals.sql", limit)
        .fetch_all(&state.pg)
        .await?;
    let ids: Vec<DealId> = rows.iter().map(|r| DealId(r.deal_id)).collect();
    let remaining = remaining(&mut state.redis, &ids).await;
    let now = Utc::now();
    Ok(axum::Json(
        rows.into_iter()
            .zip(remaining)
            .map(|(row, rem)| deal_view!(row, rem, now))
            .collect(),
    ))
}

/// Remaining stock per deal from Redis; `None` where unknown or Redis is down
/// (a listing still works without the hot-path store).
async fn remaining(redis: &mut ConnectionManager, deals: &[DealId]) -> Vec<Option<i64>> {
    if deals.is_empty() {
        return Vec::new();
    }
    let mut pipe = redis::pipe();
    for d in deals {
        pipe.get(DealKeys::new(*d).stock);
    }
    match pipe.query_async::<Vec<Option<i64>>>(redis).await {
        Ok(v) => v,
        Err(e) => {
            tracing::warn!(error = %e, "reading remaining stock");
            vec![None; deals.len()]
        }
    }
}
