//! How every change to an existing deal is written: lock the row, decide on
//! its latest committed state, update it (numbering the version under that
//! lock), append the `DealChanged` it produced, commit. Changes of one deal
//! are thus decided one at a time and published in commit order.

use super::{
    events, projection,
    view::{DealDetail, DealRow},
};
use crate::{error::ApiError, state::AppState};
use chrono::Utc;
use flashdeal_schemas::DealId;
use sqlx::PgConnection;

/// A deal id from the path; a malformed one is a 404 like an unknown one.
pub fn deal_id(id: &str) -> Result<DealId, ApiError> {
    id.parse().map_err(|_| ApiError::NotFound("deal"))
}

/// Locks the deal until the transaction ends and returns its state.
pub async fn lock(tx: &mut PgConnection, deal: DealId) -> Result<DealRow, ApiError> {
    sqlx::query_file_as!(DealRow, "../sql/queries/deal_for_update.sql", deal.0)
        .fetch_optional(&mut *tx)
        .await?
        .ok_or(ApiError::NotFound("deal"))
}

/// Writes the decided change of a deal locked by [`lock`] and appends its
/// event (`change`, with `stock_delta`).
pub async fn write(
    tx: &mut PgConnection,
    deal: DealId,
    status: &str,
    stock_delta: i32,
    change: &str,
) -> Result<DealRow, ApiError> {
    let row = sqlx::query_file_as!(
        DealRow,
        "../sql/queries/update_deal.sql",
        deal.0,
        status,
        stock_delta
    )
    .fetch_one(&mut *tx)
    .await?;
    events::record_deal(tx, change, &row, stock_delta).await?;
    tracing::info!(deal_id = %deal, change, version = row.version, stock = row.stock, stock_delta, "deal changed");
    Ok(row)
}

/// The answer to a change: the deal as committed, with the remaining stock
/// Redis shows now (the projector applies the change shortly after).
pub async fn respond(state: &mut AppState, row: DealRow) -> axum::Json<DealDetail> {
    let remaining = projection::remaining_one(&mut state.redis, DealId(row.deal_id)).await;
    axum::Json(DealDetail::new(row, remaining, Utc::now()))
}
