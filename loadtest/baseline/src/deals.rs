//! Deals: admins create them, anyone lists and reads them. The body
//! ([`NewDeal`]) and its rules, the list parameters and the view
//! ([`DealView`]) are the gateway's; only the SQL is the baseline's.
//! `remaining` is simply the `stock` column that every order decrements
//! (FlashDeal reads it from Redis instead).

use crate::{app::AppState, auth::AdminUser};
use axum::{
    extract::{Path, Query, State, rejection::QueryRejection},
    http::{HeaderValue, StatusCode, header},
    response::{IntoResponse, Response},
};
use chrono::{DateTime, Utc};
use flashdeal_gateway::{
    catalog::{DealView, ListParams, NewDeal, display_status},
    error::ApiError,
    json::Json,
};
use uuid::Uuid;

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

/// The stored status the gateway's [`display_status`] gets: the baseline
/// has no status column and cannot pause a deal, so its window alone decides
/// (`upcoming`, `active` or `ended`).
const STORED_STATUS: &str = "scheduled";

impl DealRow {
    fn view(self, now: DateTime<Utc>) -> DealView {
        DealView {
            status: display_status(STORED_STATUS, self.starts_at, self.ends_at, now),
            deal_id: self.deal_id.into(),
            product_id: self.product_id,
            product_name: self.product_name,
            price_cents: self.price_cents,
            stock: self.initial_stock,
            remaining: Some(i64::from(self.stock)),
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

    fn row(initial_stock: i32, stock: i32, starts_at: DateTime<Utc>) -> DealRow {
        DealRow {
            deal_id: Uuid::now_v7(),
            product_id: Uuid::now_v7(),
            product_name: "Espresso machine".to_owned(),
            price_cents: 4900,
            initial_stock,
            stock,
            per_user_limit: 2,
            starts_at,
            ends_at: starts_at + Duration::minutes(1),
            created_at: starts_at,
        }
    }

    #[test]
    fn the_view_shows_initial_stock_and_the_stock_column_as_remaining() {
        let t = Utc::now();
        let v = row(3, 1, t).view(t);
        assert_eq!((v.stock, v.remaining), (3, Some(1)));
        assert_eq!(v.per_user_limit, 2);
    }

    #[test]
    fn the_status_follows_the_half_open_window() {
        let t = Utc::now();
        let end = t + Duration::minutes(1);
        assert_eq!(
            row(1, 1, t).view(t - Duration::seconds(1)).status,
            "upcoming"
        );
        assert_eq!(row(1, 1, t).view(t).status, "active");
        assert_eq!(row(1, 1, t).view(end).status, "ended");
    }
}
