//! Deals: a product offered at a price, in a window, with a stock and a
//! per-user limit. Creating one (`DealScheduled`, plus `ProductUpserted`
//! when the body names a new product) commits with its events; the deal
//! reaches Redis, and so becomes orderable, once the projector applies them.
//! How a deal is shown is [`super::view`]'s.

use super::{
    MAX_STOCK, events,
    products::{self, Product},
    projection,
    view::{DealDetail, DealRow},
};
use crate::{
    auth::AdminUser,
    error::ApiError,
    json::{self, Json},
    state::AppState,
};
use axum::{
    extract::{Path, State},
    response::Response,
};
use chrono::{DateTime, Utc};
use flashdeal_schemas::{DealId, Quantity, store_events::deal_change};
use serde::Deserialize;
use sqlx::PgPool;
use utoipa::ToSchema;
use uuid::Uuid;

/// Body of `POST /admin/deals`: a new product (`product_name`,
/// `product_description`) or an existing one (`product_id`).
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewDeal {
    /// The name of a new product (1 to 200 characters); or `product_id`.
    #[serde(default)]
    #[schema(example = "Espresso machine")]
    pub product_name: String,
    /// The description of a new product (at most 4000 characters).
    #[serde(default)]
    pub product_description: String,
    /// An existing product; or `product_name`.
    #[serde(default)]
    pub product_id: Option<Uuid>,
    #[schema(minimum = 1, maximum = 100_000_000, example = 4900)]
    pub price_cents: i64,
    #[schema(minimum = 0, maximum = 10_000_000, example = 300)]
    pub stock: i32,
    #[schema(minimum = 1, maximum = 1000, example = 1)]
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

/// `POST /admin/deals`: 201 with `Location: /deals/{id}`.
#[utoipa::path(post, path = "/admin/deals", tag = "catalog", request_body = NewDeal,
    security(("bearer" = [])),
    responses(
        (status = 201, description = "Deal scheduled", body = DealDetail, headers(("Location" = String, description = "`/deals/{id}`"))),
        crate::auth::extract::AdminRejections,
        crate::json::Rejections,
        (status = 429, response = crate::openapi::RateLimited),
        (status = 503, response = crate::openapi::Unavailable),
    )
)]
pub async fn create_deal_handler(
    State(state): State<AppState>,
    _admin: AdminUser,
    Json(body): Json<NewDeal>,
) -> Result<Response, ApiError> {
    let deal = create_deal(&state.db.catalog, &body).await?;
    Ok(json::created(
        &format!("/deals/{}", deal.deal.deal_id),
        deal,
    ))
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
    events::record_deal(&mut tx, deal_change::SCHEDULED, &row, row.stock).await?;
    tx.commit().await?;
    tracing::info!(deal_id = %row.deal_id, product_id = %row.product_id, stock = row.stock, "deal scheduled");
    let remaining = Some(i64::from(row.stock));
    Ok(DealDetail::new(row, remaining, now))
}

/// `GET /deals/{id}`.
#[utoipa::path(get, path = "/deals/{id}", tag = "catalog",
    params(("id" = uuid::Uuid, Path, description = "The deal's id")),
    responses(
        (status = 200, description = "The deal", body = DealDetail),
        (status = 404, response = crate::openapi::NotFound),
        (status = 429, response = crate::openapi::RateLimited),
        (status = 503, response = crate::openapi::Unavailable),
    )
)]
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
}
