//! The order-writer's own read model of the catalog (`orders.deals`): each
//! deal's price snapshot, per-user limit and window, learned from
//! `catalog.events` so the orders service never reads the catalog schema.
//! The order-writer rejects an intent that contradicts it.

use crate::{
    consume_loop::{BatchHandler, HandlerError},
    dead_letter::dead_letter,
    tally::Tally,
};
use chrono::{DateTime, Utc};
use flashdeal_producers::EventPublisher;
use flashdeal_schemas::{CatalogEvent, DealId, store_events::DealChanged};
use rdkafka::{Message, message::OwnedMessage};
use sqlx::PgPool;
use std::collections::HashMap;
use uuid::Uuid;

/// The consumer group of the read model (beside the order-writer's own).
pub const GROUP: &str = "order-writer-deals";

pub struct DealReadModel {
    pool: PgPool,
    publisher: EventPublisher,
}

impl DealReadModel {
    pub fn new(pool: PgPool, publisher: EventPublisher) -> Self {
        Self { pool, publisher }
    }

    /// Upserts the newest state of every deal in the batch (a version at or
    /// below the stored one changes nothing). `applied` counts the deals
    /// written; the batch's other deal events are duplicates (an older
    /// version, or one the table already held).
    pub async fn apply_batch(&self, batch: &[OwnedMessage]) -> Result<Tally, HandlerError> {
        let mut latest: HashMap<DealId, DealChanged> = HashMap::new();
        let mut tally = Tally::default();
        let mut deal_events = 0u64;
        for msg in batch {
            match msg.payload().map(CatalogEvent::decode) {
                Some(Ok(CatalogEvent::Deal(d))) => {
                    deal_events += 1;
                    if latest
                        .get(&d.deal_id)
                        .is_none_or(|held| held.version < d.version)
                    {
                        latest.insert(d.deal_id, d);
                    }
                }
                Some(Ok(CatalogEvent::Product(_))) => tally.other += 1,
                Some(Err(e)) => {
                    dead_letter(&self.publisher, "order-writer-deals", msg, &e.to_string()).await?;
                    tally.dead_lettered += 1;
                }
                None => {
                    dead_letter(&self.publisher, "order-writer-deals", msg, "empty payload")
                        .await?;
                    tally.dead_lettered += 1;
                }
            }
        }
        if latest.is_empty() {
            return Ok(tally);
        }
        let mut c = Cols::default();
        for d in latest.values() {
            let (Some(starts), Some(ends)) = (millis(d.starts_at), millis(d.ends_at)) else {
                tracing::warn!(deal_id = %d.deal_id, "deal window out of range; skipped");
                continue;
            };
            c.ids.push(d.deal_id.0);
            c.prices.push(d.price_cents);
            c.limits.push(d.per_user_limit);
            c.stocks.push(d.stock);
            c.statuses.push(d.status.clone());
            c.starts.push(starts);
            c.ends.push(ends);
            c.versions.push(d.version);
        }
        let done = sqlx::query_file!(
            "../sql/queries/upsert_order_deals.sql",
            &c.ids,
            &c.prices,
            &c.limits,
            &c.stocks,
            &c.statuses,
            &c.starts,
            &c.ends,
            &c.versions
        )
        .execute(&self.pool)
        .await?;
        tally.applied = done.rows_affected().min(deal_events);
        tally.duplicates = deal_events - tally.applied;
        Ok(tally)
    }
}

fn millis(ms: i64) -> Option<DateTime<Utc>> {
    DateTime::<Utc>::from_timestamp_millis(ms)
}

#[derive(Default)]
struct Cols {
    ids: Vec<Uuid>,
    prices: Vec<i64>,
    limits: Vec<i32>,
    stocks: Vec<i32>,
    statuses: Vec<String>,
    starts: Vec<DateTime<Utc>>,
    ends: Vec<DateTime<Utc>>,
    versions: Vec<i64>,
}

impl BatchHandler for DealReadModel {
    fn name(&self) -> &'static str {
        "order-writer-deals"
    }

    async fn handle(&mut self, batch: &[OwnedMessage]) -> Result<(), HandlerError> {
        self.apply_batch(batch).await.map(|_| ())
    }
}
