//! The catalog: admins manage products and deals, anyone lists and reads
//! them.
//!
//! Every write changes `catalog.*` and appends its event to
//! `catalog.outbox` in one transaction; the relay publishes the outbox to
//! `catalog.events` and the catalog projector applies it to Redis. So the
//! catalog never writes Redis: a deal reaches the hot path only through the
//! log, and replaying the log rebuilds it. It still *reads* Redis, for the
//! remaining stock it shows and to refuse a stock cut below what is
//! reserved.
//!
//! # Layout
//! - [`products`]: products CRUD (soft delete, refused while a deal is open).
//! - [`deals`]: the deal body and its rules, creating a deal, reading one.
//! - [`view`]: how a deal is shown (row, view, status clients see).
//! - [`listing`]: `GET /deals` with its search and status filters.
//! - [`lifecycle`]: pause, resume and end a deal.
//! - [`stock`]: add units to a deal or take them away.
//! - [`change`]: how a change to an existing deal is written (lock,
//!   decide, update, event).
//! - [`events`]: the `ProductChanged`/`DealChanged` each write appends.
//! - [`projection`]: what the catalog reads (never writes) from Redis.

pub mod change;
pub mod deals;
pub mod events;
pub mod lifecycle;
pub mod listing;
pub mod products;
pub mod projection;
pub mod stock;
pub mod view;

pub use deals::{NewDeal, create_deal, create_deal_handler, get_deal};
pub use listing::{ListParams, list_deals};
pub use view::{DealDetail, DealView, display_status};

use crate::error::ApiError;
use flashdeal_schemas::DealId;
use sqlx::PgPool;

/// The largest stock one deal may hold.
pub const MAX_STOCK: i32 = 10_000_000;

/// `true` when the catalog has this deal.
pub async fn deal_exists(pg: &PgPool, deal: DealId) -> Result<bool, ApiError> {
    Ok(
        sqlx::query_file_scalar!("../sql/queries/deal_exists.sql", deal.0)
            .fetch_one(pg)
            .await?
            .unwrap_or(false),
    )
}
