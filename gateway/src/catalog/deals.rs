//! Deals: a product offered at a price, in a window, with a stock and a
//! per-user limit. Creating one (`DealScheduled`, plus `ProductUpserted`
//! when the body names a new product) commits with its events; the deal
//! reaches Redis, and so becomes orderable, once the projector applies them.

use super::{
    MAX_STOCK, events,
    products::{self, Product},
    projection,
};
use crate::{auth::AdminUser, error::ApiError, json::Json, state::AppState};
use axum::{
    extract::{Path, State},
    http::{HeaderValue, StatusCode, header},
    response::{IntoResponse, Response},
};
use chrono::{DateTime, Utc};
use flashdeal_schemas::{DealId, Quantity, store_events::deal_change};
use serde::{Deserialize, Serialize};
use sqlx::PgPool;
use uuid::Uuid;

/// Body of `POST /admin/deals`: a new product (`product_name`,
/// `product_description`) or an existing one (`product_id`).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NewDeal {
    #[serde(default)]
    pub product_name: String,
    #[serde(default)]
    pub product_description: String,
    #[serde(default)]
    pub product_id: Option<Uuid>,
    pub price_cents: i64,
    pub stock: i32,
    pub per_user_limit: i32,
    /// Defaults to now.
    pub starts_at: Option<DateTime<Utc>>,
    pub ends_at: DateTime<Utc>,
}

/// Which product a new deal sells.
#[derive(Debug, PartialEq, Eq)]
pub enum ProductChoice<'a> {
    Existing(Uuid),
    New { name: &'a str, description: &'a str },
}

impl NewDeal {
    /// The product the body names, by id or inline (never both).
    pub fn product(&self) -> Result<ProductChoice<'_>, ApiError> {
        let inline = !self.product_name.trim().is_empty() || !self.product_description.is_empty();
        match self.product_id {
            Some(_) if inline => Err(ApiError::Validation(
                "give `product_id` (an existing product) or `product_name` (a new one), not both"
                    .to_owned(),
            )),
            Some(id) => Ok(ProductChoice::Existing(id)),
            None if self.product_name.trim().is_empty() => Err(ApiError::Validation(
                "give `product_name` (a new product) or `product_id` (an existing one)".to_owned(),
            )),
            None => Ok(ProductChoice::New {
                name: products::valid_name(&self.product_name)?,
                description: products::valid_description(&self.product_description)?,
            }),
        }
    }

    /// Checks the deal against the catalog's rules; returns the effective
    /// `starts_at` (`now` when absent).
    pub fn validate(&self, now: DateTime<Utc>) -> Result<DateTime<Utc>, ApiError> {
        let v = |m: &str| Err(ApiError::Validation(m.to_owned()));
        self.product()?;
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

/// A deal as every deal query returns it.
#[derive(Clone, Debug)]
pub struct DealRow {
    pub deal_id: Uuid,
    pub product_id: Uuid,
    pub product_name: String,
    pub price_cents: i64,
    pub stock: i32,
    pub sold_count: i32,
    pub per_user_limit: i32,
    pub starts_at: DateTime<Utc>,
    pub ends_at: DateTime<Utc>,
    /// Stored: `scheduled`, `paused` or `ended`.
    pub status: String,
    pub version: i64,
    pub created_at: DateTime<Utc>,
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

/// What the catalog API answers for a deal: the view plus what only the
/// catalog knows.
#[derive(Debug, Serialize, Deserialize)]
pub struct DealDetail {
    #[serde(flatten)]
    pub deal: DealView,
    /// Units confirmed sold (learned from the order log).
    pub sold_count: i32,
}

impl DealDetail {
    pub fn new(row: DealRow, remaining: Option<i64>, now: DateTime<Utc>) -> Self {
        Self {
            deal: DealView {
                deal_id: DealId(row.deal_id),
                product_id: row.product_id,
                status: display_status(&row.status, row.starts_at, row.ends_at, now),
                product_name: row.product_name,
                price_cents: row.price_cents,
                stock: row.stock,
                remaining,
                per_user_limit: row.per_user_limit,
                starts_at: row.starts_at,
                ends_at: row.ends_at,
                created_at: row.created_at,
            },
            sold_count: row.sold_count,
        }
    }
}

/// The status clients see: `ended` once stored so or the window is over,
/// then a stored `paused`, otherwise where `now` falls in the window.
/// `list_deals.sql` filters by the same rule.
pub fn display_status(
    stored: &str,
    starts: DateTime<Utc>,
    ends: DateTime<Utc>,
    now: DateTime<Utc>,
) -> String {
    match stored {
        "ended" => "ended",
        _ if now >= ends => "ended",
        "paused" => "paused",
        _ if now < starts => "upcoming",
        _ => "active",
    }
    .to_owned()
}

/// `POST /admin/deals`: 201 with `Location: /deals/{id}`.
pub async fn create_deal_handler(
    State(state): State<AppState>,
    _admin: AdminUser,
    Json(body): Json<NewDeal>,
) -> Result<Response, ApiError> {
    let deal = create_deal(&state.db.catalog, &body).await?;
    let location = format!("/deals/{}", deal.deal.deal_id);
    let mut res = (StatusCode::CREATED, axum::Json(deal)).into_response();
    if let Ok(loc) = HeaderValue::from_str(&location) {
        res.headers_mut().insert(header::LOCATION, loc);
    }
    Ok(res)
}

/// Creates the deal (and its product when named inline) with their events
/// in one transaction. Used by the HTTP handler and by `flashdeal seed`.
pub async fn create_deal(pg: &PgPool, new: &NewDeal) -> Result<DealDetail, ApiError> {
    let now = Utc::now();
    let starts_at = new.validate(now)?;
    let mut tx = pg.begin().await?;
    let product = match new.product()? {
        ProductChoice::Existing(id) => {
            sqlx::query_file_as!(Product, "../sql/queries/product_for_deal.sql", id)
                .fetch_optional(&mut *tx)
                .await?
                .ok_or_else(|| {
                    ApiError::Validation("`product_id` names no product (or a deleted one)".into())
                })?
        }
        ProductChoice::New { name, description } => {
            products::insert(&mut tx, name, description).await?
        }
    };
    let row = sqlx::query_file_as!(
        DealRow,
        "../sql/queries/insert_deal.sql",
        Uuid::now_v7(),
        product.product_id,
        new.price_cents,
        new.stock,
        new.per_user_limit,
        starts_at,
        new.ends_at
    )
    .fetch_one(&mut *tx)
    .await?;
    let ev = events::deal_changed(deal_change::SCHEDULED, &row, row.stock);
    events::append_deal(&mut tx, &ev).await?;
    tx.commit().await?;
    tracing::info!(deal_id = %row.deal_id, product_id = %row.product_id, stock = row.stock, "deal scheduled");
    let remaining = Some(i64::from(row.stock));
    Ok(DealDetail::new(row, remaining, now))
}

/// `GET /deals/{id}`.
pub async fn get_deal(
    State(mut state): State<AppState>,
    Path(id): Path<String>,
) -> Result<axum::Json<DealDetail>, ApiError> {
    let id: DealId = id.parse().map_err(|_| ApiError::NotFound("deal"))?;
    let row = sqlx::query_file_as!(DealRow, "../sql/queries/deal_by_id.sql", id.0)
        .fetch_optional(&state.db.catalog)
        .await?
        .ok_or(ApiError::NotFound("deal"))?;
    let remaining = projection::remaining_one(&mut state.redis, id).await;
    Ok(axum::Json(DealDetail::new(row, remaining, Utc::now())))
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::Duration;

    fn body() -> NewDeal {
        NewDeal {
            product_name: "Kettle".to_owned(),
            product_description: String::new(),
            product_id: None,
            price_cents: 999,
            stock: 10,
            per_user_limit: 2,
            starts_at: None,
            ends_at: Utc::now() + Duration::hours(1),
        }
    }

    #[test]
    fn a_deal_names_its_product_inline_or_by_id_never_both() {
        let id = Uuid::now_v7();
        let now = Utc::now();
        assert!(body().validate(now).is_ok());
        let by_id = NewDeal {
            product_name: String::new(),
            product_id: Some(id),
            ..body()
        };
        assert_eq!(by_id.product().unwrap(), ProductChoice::Existing(id));
        assert!(by_id.validate(now).is_ok());
        let both = NewDeal {
            product_id: Some(id),
            ..body()
        };
        assert!(matches!(both.validate(now), Err(ApiError::Validation(_))));
        let description_with_id = NewDeal {
            product_description: "x".to_owned(),
            ..by_id
        };
        assert!(description_with_id.validate(now).is_err());
        let neither = NewDeal {
            product_name: "  ".to_owned(),
            ..body()
        };
        assert!(neither.validate(now).is_err());
    }

    #[test]
    fn the_numbers_and_the_window_are_bounded() {
        let now = Utc::now();
        let bad = [
            NewDeal {
                price_cents: 0,
                ..body()
            },
            NewDeal {
                stock: -1,
                ..body()
            },
            NewDeal {
                stock: MAX_STOCK + 1,
                ..body()
            },
            NewDeal {
                per_user_limit: 0,
                ..body()
            },
            NewDeal {
                ends_at: now - Duration::seconds(1),
                ..body()
            },
            NewDeal {
                starts_at: Some(now + Duration::hours(2)),
                ..body()
            },
        ];
        for b in bad {
            assert!(b.validate(now).is_err(), "{b:?}");
        }
        assert!(NewDeal { stock: 0, ..body() }.validate(now).is_ok());
    }

    #[test]
    fn ended_wins_then_paused_then_the_window() {
        let t = Utc::now();
        let end = t + Duration::minutes(1);
        let s = |stored, now| display_status(stored, t, end, now);
        assert_eq!(s("scheduled", t - Duration::seconds(1)), "upcoming");
        assert_eq!(s("scheduled", t), "active");
        assert_eq!(s("scheduled", end), "ended");
        assert_eq!(s("paused", t - Duration::seconds(1)), "paused");
        assert_eq!(s("paused", t), "paused");
        assert_eq!(s("paused", end), "ended");
        assert_eq!(s("ended", t), "ended");
    }
}
