//! Deals: admins create them, anyone lists and reads them. The view has
//! FlashDeal's shape; `remaining` is simply the `stock` column that every
//! order decrements (FlashDeal reads it from Redis instead).

use crate::{
    app::{AppState, Json},
    auth::AdminUser,
    error::ApiError,
};
use axum::{
    extract::{Path, Query, State, rejection::QueryRejection},
    http::{HeaderValue, StatusCode, header},
    response::{IntoResponse, Response},
};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

/// The largest stock one deal may hold (as in FlashDeal).
const MAX_STOCK: i32 = 10_000_000;

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
    /// FlashDeal's rules; returns the effective `starts_at`.
    fn validate(&self, now: DateTime<Utc>) -> Result<DateTime<Utc>, ApiError> {
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
        if !(1..=crate::orders::Quantity::MAX).contains(&self.per_user_limit) {
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

#[derive(sqlx::FromRow)]
struct DealRow {
    deal_id: Uuid,
    product_id: Uuid,
    product_name: String,
    price_cents: i64,
    initial_stock: i32,
    stock: i32,
    per_user_limit: i32,
    starts_at: DateTime<Utc>,
    ends_at: DateTime<Utc>,
    created_at: DateTime<Utc>,
}

/// A deal as clients see it (FlashDeal's shape).
#[derive(Debug, Serialize)]
pub struct DealView {
    deal_id: Uuid,
    product_id: Uuid,
    product_name: String,
    price_cents: i64,
    /// Units the deal was created with.
    stock: i32,
    /// Units left.
    remaining: i64,
    per_user_limit: i32,
    starts_at: DateTime<Utc>,
    ends_at: DateTime<Utc>,
    /// `upcoming`, `active` or `ended` (the baseline cannot pause a deal).
    status: &'static str,
    created_at: DateTime<Utc>,
}

/// Where `now` falls in the deal's `[starts_at, ends_at)` window.
pub fn window_status(
    starts: DateTime<Utc>,
    ends: DateTime<Utc>,
    now: DateTime<Utc>,
) -> &'static str {
    if now < starts {
        "upcoming"
    } else if now >= ends {
        "ended"
    } else {
        "active"
    }
}

impl DealRow {
    fn view(self, now: DateTime<Utc>) -> DealView {
        DealView {
            status: window_status(self.starts_at, self.ends_at, now),
            deal_id: self.deal_id,
            product_id: self.product_id,
            product_name: self.product_name,
            price_cents: self.price_cents,
            stock: self.initial_stock,
            remaining: i64::from(self.stock),
            per_user_limit: self.per_user_limit,
            starts_at: self.starts_at,
            ends_at: self.ends_at,
            created_at: self.created_at,
        }
    }
}

/// `POST /admin/deals`: 201 with the deal and `Location: /deals/{id}`.
pub async fn create(
    State(state): State<AppState>,
    _admin: AdminUser,
    Json(body): Json<NewDeal>,
) -> Result<Response, ApiError> {
    let now = Utc::now();
    let starts_at = body.validate(now)?;
    let row: DealRow = sqlx::query_as(
        "INSERT INTO baseline.deals (deal_id, product_id, product_name, product_description,
             price_cents, initial_stock, stock, per_user_limit, starts_at, ends_at)
         VALUES ($1, $2, $3, $4, $5, $6, $6, $7, $8, $9)
         RETURNING deal_id, product_id, product_name, price_cents, initial_stock, stock,
             per_user_limit, starts_at, ends_at, created_at",
    )
    .bind(Uuid::now_v7())
    .bind(Uuid::now_v7())
    .bind(body.product_name.trim())
    .bind(&body.product_description)
    .bind(body.price_cents)
    .bind(body.stock)
    .bind(body.per_user_limit)
    .bind(starts_at)
    .bind(body.ends_at)
    .fetch_one(&state.pool)
    .await?;
    let location = format!("/deals/{}", row.deal_id);
    let mut res = (StatusCode::CREATED, axum::Json(row.view(now))).into_response();
    if let Ok(loc) = HeaderValue::from_str(&location) {
        res.headers_mut().insert(header::LOCATION, loc);
    }
    Ok(res)
}

/// `GET /deals/{id}`; a malformed id is a 404 like an unknown one.
pub async fn get(
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<axum::Json<DealView>, ApiError> {
    let id: Uuid = id.parse().map_err(|_| ApiError::NotFound("deal"))?;
    let row: DealRow = sqlx::query_as(
        "SELECT deal_id, product_id, product_name, price_cents, initial_stock, stock,
             per_user_limit, starts_at, ends_at, created_at
         FROM baseline.deals WHERE deal_id = $1",
    )
    .bind(id)
    .fetch_optional(&state.pool)
    .await?
    .ok_or(ApiError::NotFound("deal"))?;
    Ok(axum::Json(row.view(Utc::now())))
}

#[derive(Deserialize)]
pub struct ListParams {
    limit: Option<i64>,
}

/// `GET /deals?limit=n`: deals that have not ended, soonest first.
pub async fn list(
    State(state): State<AppState>,
    params: Result<Query<ListParams>, QueryRejection>,
) -> Result<axum::Json<Vec<DealView>>, ApiError> {
    let Query(params) = params.map_err(|e| ApiError::Validation(e.body_text()))?;
    let limit = params.limit.unwrap_or(50);
    if !(1..=200).contains(&limit) {
        return Err(ApiError::Validation(
            "`limit` must be between 1 and 200".to_owned(),
        ));
    }
    let rows: Vec<DealRow> = sqlx::query_as(
        "SELECT deal_id, product_id, product_name, price_cents, initial_stock, stock,
             per_user_limit, starts_at, ends_at, created_at
         FROM baseline.deals WHERE ends_at > now()
         ORDER BY starts_at, deal_id LIMIT $1",
    )
    .bind(limit)
    .fetch_all(&state.pool)
    .await?;
    let now = Utc::now();
    Ok(axum::Json(rows.into_iter().map(|r| r.view(now)).collect()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::Duration;

    fn deal(now: DateTime<Utc>) -> NewDeal {
        NewDeal {
            product_name: "Espresso machine".to_owned(),
            product_description: String::new(),
            price_cents: 4900,
            stock: 3,
            per_user_limit: 2,
            starts_at: None,
            ends_at: now + Duration::hours(1),
        }
    }

    #[test]
    fn a_new_deal_starts_now_unless_told_otherwise() {
        let now = Utc::now();
        assert_eq!(deal(now).validate(now), Ok(now));
    }

    #[test]
    fn out_of_range_deals_are_refused() {
        let now = Utc::now();
        let cases: [fn(&mut NewDeal, DateTime<Utc>); 6] = [
            |d, _| d.product_name = "   ".to_owned(),
            |d, _| d.price_cents = 0,
            |d, _| d.stock = -1,
            |d, _| d.per_user_limit = 1001,
            |d, now| d.ends_at = now - Duration::seconds(1),
            |d, now| d.starts_at = Some(now + Duration::hours(2)),
        ];
        for (i, break_it) in cases.iter().enumerate() {
            let mut d = deal(now);
            break_it(&mut d, now);
            assert!(
                matches!(d.validate(now), Err(ApiError::Validation(_))),
                "case {i} accepted"
            );
        }
    }

    #[test]
    fn the_window_is_half_open() {
        let t = Utc::now();
        let end = t + Duration::minutes(1);
        assert_eq!(window_status(t, end, t - Duration::seconds(1)), "upcoming");
        assert_eq!(window_status(t, end, t), "active");
        assert_eq!(window_status(t, end, end), "ended");
    }
}
