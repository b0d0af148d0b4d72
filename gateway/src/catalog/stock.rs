//! Adding units to a deal or taking them away (`StockAdjusted`, carrying
//! the delta the projector adds to the remaining stock in Redis).
//!
//! A cut may not go below what is already sold (`sold_count`, learned from
//! the order log) nor take units that are reserved: those are gone from
//! Redis' remaining stock, so a cut must fit in what Redis has left, plus
//! the adjustments it has not applied yet. The check runs under the deal's
//! row lock, so two cuts of one deal are checked one after the other. A
//! deal Redis holds no state for is refused with 503 (its reservations
//! may exist only in the log). Known gap: a reservation landing between the
//! check and the projector applying the cut can still take a unit the cut
//! removed; nothing downstream rejects it (the order-writer checks price,
//! limit and window, not stock), and `flashdeal audit` then reports
//! `oversold`/`stock_conservation`. Cut stock while the deal is paused.

use super::{
    MAX_STOCK, change, projection,
    view::{DealDetail, DealRow},
};
use crate::{auth::AdminUser, error::ApiError, json::Json, state::AppState};
use axum::extract::{Path, State};
use chrono::{DateTime, Utc};
use flashdeal_schemas::{DealId, store_events::deal_change};
use serde::Deserialize;

/// Body of `POST /admin/deals/{id}/stock`.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct StockChange {
    /// Units to add (positive) or take away (negative); not 0.
    #[schema(minimum = -10_000_000, maximum = 10_000_000, example = 50)]
    pub delta: i32,
}

impl StockChange {
    pub fn validate(&self) -> Result<i32, ApiError> {
        if self.delta == 0 {
            return Err(ApiError::Validation("`delta` must not be 0".to_owned()));
        }
        if self.delta.unsigned_abs() > MAX_STOCK.unsigned_abs() {
            return Err(ApiError::Validation(
                "`delta` must be between -10000000 and 10000000".to_owned(),
            ));
        }
        Ok(self.delta)
    }
}

/// The rules the catalog alone can check: the deal is not over, the new
/// stock stays within `sold_count..=MAX_STOCK`.
pub fn check_catalog(delta: i32, deal: &DealRow, now: DateTime<Utc>) -> Result<(), ApiError> {
    if deal.status == "ended" || now >= deal.ends_at {
        return Err(ApiError::Conflict("the deal has ended"));
    }
    let new = i64::from(deal.stock) + i64::from(delta);
    if new > i64::from(MAX_STOCK) {
        return Err(ApiError::Conflict(
            "the deal's stock would exceed 10000000 units",
        ));
    }
    if new < i64::from(deal.sold_count) {
        return Err(ApiError::Conflict(
            "the deal's stock cannot go below the units already sold",
        ));
    }
    Ok(())
}

/// A cut must fit in the units not reserved (`free`, see
/// [`projection::ProjectedStock::free`]).
pub fn check_reserved(delta: i32, free: i64) -> Result<(), ApiError> {
    if delta < 0 && free < i64::from(delta.unsigned_abs()) {
        return Err(ApiError::Conflict(
            "those units are reserved or sold; the stock cannot go below them",
        ));
    }
    Ok(())
}

/// `POST /admin/deals/{id}/stock` with `{"delta": n}`.
#[utoipa::path(post, path = "/admin/deals/{id}/stock", tag = "catalog", request_body = StockChange,
    params(("id" = uuid::Uuid, Path, description = "The deal's id")),
    security(("bearer" = [])),
    responses(
        (status = 200, description = "The deal as committed", body = DealDetail),
        crate::auth::extract::AdminRejections,
        (status = 404, response = crate::openapi::NotFound),
        (status = 409, response = crate::openapi::Conflict),
        crate::json::Rejections,
        (status = 429, response = crate::openapi::RateLimited),
        (status = 503, response = crate::openapi::Unavailable),
    )
)]
pub async fn adjust(
    State(mut state): State<AppState>,
    _admin: AdminUser,
    Path(id): Path<String>,
    Json(body): Json<StockChange>,
) -> Result<axum::Json<DealDetail>, ApiError> {
    let deal: DealId = change::deal_id(&id)?;
    let delta = body.validate()?;
    let mut tx = state.db.catalog.begin().await?;
    let current = change::lock(&mut tx, deal).await?;
    check_catalog(delta, &current, Utc::now())?;
    if delta < 0 {
        let projected = projection::stock(&mut state.redis, deal).await?.ok_or(
            ApiError::Unavailable(
                "the deal's reservations are not in Redis yet (or were lost: flashdeal recover-redis); retry",
            ),
        )?;
        check_reserved(delta, projected.free(current.stock))?;
    }
    let row = change::write(
        &mut tx,
        deal,
        &current.status,
        delta,
        deal_change::STOCK_ADJUSTED,
    )
    .await?;
    tx.commit().await?;
    Ok(change::respond(&mut state, row).await)
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::Duration;
    use uuid::Uuid;

    fn deal(stock: i32, sold_count: i32) -> DealRow {
        let now = Utc::now();
        DealRow {
            deal_id: Uuid::now_v7(),
            product_id: Uuid::now_v7(),
            product_name: "Kettle".to_owned(),
            price_cents: 999,
            stock,
            sold_count,
            per_user_limit: 2,
            starts_at: now,
            ends_at: now + Duration::hours(1),
            status: "scheduled".to_owned(),
            version: 1,
            created_at: now,
        }
    }

    #[test]
    fn a_delta_is_non_zero_and_bounded() {
        let v = |delta| StockChange { delta }.validate();
        assert!(matches!(v(0), Err(ApiError::Validation(_))));
        assert!(v(MAX_STOCK + 1).is_err());
        assert!(v(-MAX_STOCK - 1).is_err());
        assert!(v(i32::MIN).is_err());
        assert_eq!(v(-MAX_STOCK).unwrap(), -MAX_STOCK);
        assert_eq!(v(5).unwrap(), 5);
    }

    #[test]
    fn the_stock_stays_between_sold_and_the_maximum() {
        let now = Utc::now();
        assert!(check_catalog(-6, &deal(10, 4), now).is_ok());
        assert!(matches!(
            check_catalog(-7, &deal(10, 4), now),
            Err(ApiError::Conflict(_))
        ));
        assert!(check_catalog(MAX_STOCK - 10, &deal(10, 0), now).is_ok());
        assert!(check_catalog(MAX_STOCK - 9, &deal(10, 0), now).is_err());
    }

    #[test]
    fn an_ended_deal_keeps_its_stock() {
        let now = Utc::now();
        let ended = DealRow {
            status: "ended".to_owned(),
            ..deal(10, 0)
        };
        assert!(check_catalog(5, &ended, now).is_err());
        let past = deal(10, 0);
        assert!(check_catalog(5, &past, past.ends_at).is_err());
        let paused = DealRow {
            status: "paused".to_owned(),
            ..deal(10, 0)
        };
        assert!(check_catalog(5, &paused, now).is_ok());
    }

    #[test]
    fn a_cut_must_fit_in_the_free_units() {
        assert!(check_reserved(-3, 3).is_ok());
        assert!(matches!(check_reserved(-4, 3), Err(ApiError::Conflict(_))));
        assert!(check_reserved(-1, 0).is_err());
        assert!(check_reserved(5, 0).is_ok());
    }
}
