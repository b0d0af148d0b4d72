//! The events catalog writes append to `catalog.outbox`, built from the row
//! the write returned: each carries the aggregate's whole state after the
//! change and its `version`, so a consumer can apply it alone and skip what
//! it already holds.

use super::{products::Product, view::DealRow};
use crate::error::ApiError;
use chrono::Utc;
use flashdeal_producers::outbox::{self, Entry, Outbox};
use flashdeal_schemas::{
    codec::AvroEvent,
    store_events::{DealChanged, ProductChanged},
};
use sqlx::PgConnection;
use uuid::Uuid;

/// The `aggregatetype` of product events (key = product id).
pub const PRODUCT: &str = "product";
/// The `aggregatetype` of deal events (key = deal id).
pub const DEAL: &str = "deal";

/// The event of a product change (`deleted` for `ProductDeleted`).
pub fn product_changed(change: &str, p: &Product, deleted: bool) -> ProductChanged {
    ProductChanged {
        event_id: Uuid::now_v7(),
        occurred_at: Utc::now().timestamp_millis(),
        change: change.to_owned(),
        product_id: p.product_id,
        name: p.name.clone(),
        description: p.description.clone(),
        deleted,
        version: p.version,
    }
}

/// The event of a deal change; `stock_delta` is the initial stock for
/// `DealScheduled`, the delta for `StockAdjusted`, 0 otherwise.
pub fn deal_changed(change: &str, d: &DealRow, stock_delta: i32) -> DealChanged {
    DealChanged {
        event_id: Uuid::now_v7(),
        occurred_at: Utc::now().timestamp_millis(),
        change: change.to_owned(),
        deal_id: d.deal_id.into(),
        product_id: d.product_id,
        price_cents: d.price_cents,
        stock: d.stock,
        stock_delta,
        per_user_limit: d.per_user_limit,
        starts_at: d.starts_at.timestamp_millis(),
        ends_at: d.ends_at.timestamp_millis(),
        status: d.status.clone(),
        version: d.version,
    }
}

/// Appends `ProductChanged(change)` for the product a write just returned,
/// inside that write's transaction.
pub async fn record_product(
    tx: &mut PgConnection,
    change: &str,
    p: &Product,
    deleted: bool,
) -> Result<(), ApiError> {
    let ev = product_changed(change, p, deleted);
    append(tx, PRODUCT, p.product_id, &ev.change, ev.event_id, &ev).await
}

/// Appends `DealChanged(change)` for the deal a write just returned, inside
/// that write's transaction.
pub async fn record_deal(
    tx: &mut PgConnection,
    change: &str,
    d: &DealRow,
    stock_delta: i32,
) -> Result<(), ApiError> {
    let ev = deal_changed(change, d, stock_delta);
    append(tx, DEAL, d.deal_id, &ev.change, ev.event_id, &ev).await
}

/// The one way a catalog event enters `catalog.outbox`, keyed by its
/// aggregate's id.
async fn append<E: AvroEvent>(
    tx: &mut PgConnection,
    aggregate_type: &str,
    aggregate_id: Uuid,
    change: &str,
    event_id: Uuid,
    event: &E,
) -> Result<(), ApiError> {
    let entry = Entry {
        aggregate_type,
        aggregate_id: &aggregate_id.to_string(),
        change,
        event_id,
        event,
    };
    Ok(outbox::append(tx, Outbox::Catalog, entry).await?)
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::{Duration, TimeZone};
    use flashdeal_schemas::store_events::deal_change;

    #[test]
    fn a_deal_event_carries_the_row_and_survives_the_codec() {
        let t = Utc.timestamp_millis_opt(1_800_000_000_000).unwrap();
        let row = DealRow {
            deal_id: Uuid::now_v7(),
            product_id: Uuid::now_v7(),
            product_name: "Kettle".to_owned(),
            price_cents: 999,
            stock: 15,
            sold_count: 2,
            per_user_limit: 3,
            starts_at: t,
            ends_at: t + Duration::hours(1),
            status: "paused".to_owned(),
            version: 4,
            created_at: t,
        };
        let ev = deal_changed(deal_change::STOCK_ADJUSTED, &row, 5);
        assert_eq!((ev.stock, ev.stock_delta, ev.version), (15, 5, 4));
        assert_eq!(ev.starts_at, 1_800_000_000_000);
        assert_eq!(ev.ends_at - ev.starts_at, 3_600_000);
        let bytes = ev.encode().unwrap();
        match flashdeal_schemas::CatalogEvent::decode(&bytes).unwrap() {
            flashdeal_schemas::CatalogEvent::Deal(back) => assert_eq!(back, ev),
            other => panic!("decoded {other:?}"),
        }
    }
}
