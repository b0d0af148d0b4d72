//! The catalog projector: `catalog.events` → each deal's Redis state, the
//! only way a deal reaches the hot path.
//!
//! `apply_deal.lua` writes the deal's meta (status, window, price, limit,
//! total stock) and adds the event's stock delta to the remaining stock,
//! once per deal version. A catalog `scheduled` deal is `active` in Redis:
//! `reserve.lua` checks the window itself. Product events carry nothing the
//! hot path needs and are skipped.
//!
//! A deal that is absent from Redis while its event is not its first
//! version was lost with Redis: the projector waits (the batch is retried,
//! nothing committed) until `flashdeal recover-redis` has rebuilt it.

use crate::{
    consume_loop::{BatchHandler, HandlerError},
    dead_letter::dead_letter,
    tally::Tally,
};
use flashdeal_producers::EventPublisher;
use flashdeal_schemas::{CatalogEvent, redis_keys::DealKeys, store_events::DealChanged};
use rdkafka::{Message, message::OwnedMessage};
use redis::{Script, aio::ConnectionManager};
use std::sync::LazyLock;

/// The consumer group of the catalog projector.
pub const GROUP: &str = "catalog-projector";

static APPLY_DEAL: LazyLock<Script> = LazyLock::new(|| Script::new(include_str!("apply_deal.lua")));

pub struct CatalogProjector {
    redis: ConnectionManager,
    publisher: EventPublisher,
}

impl CatalogProjector {
    pub fn new(redis: ConnectionManager, publisher: EventPublisher) -> Self {
        Self { redis, publisher }
    }

    /// Applies one batch; `applied` counts the deal versions that were new.
    pub async fn project_batch(&mut self, batch: &[OwnedMessage]) -> Result<Tally, HandlerError> {
        let mut tally = Tally::default();
        for msg in batch {
            let deal = match msg.payload().map(CatalogEvent::decode) {
                Some(Ok(CatalogEvent::Deal(d))) => d,
                Some(Ok(CatalogEvent::Product(_))) => {
                    tally.other += 1;
                    continue;
                }
                Some(Err(e)) => {
                    dead_letter(&self.publisher, "catalog-projector", msg, &e.to_string()).await?;
                    tally.dead_lettered += 1;
                    continue;
                }
                None => {
                    dead_letter(&self.publisher, "catalog-projector", msg, "empty payload").await?;
                    tally.dead_lettered += 1;
                    continue;
                }
            };
            // In order, one script per event: a deal's events depend on the
            // version the previous one left.
            let new: i64 = invocation(&deal).invoke_async(&mut self.redis).await?;
            if new == -1 {
                // Retried (not skipped) until `recover-redis` has rebuilt
                // the deal at some version; this event then applies on top
                // of it, or is skipped if the rebuild already includes it.
                return Err(HandlerError::DealLost {
                    deal: deal.deal_id,
                    version: deal.version,
                });
            }
            if new == 1 {
                tally.applied += 1;
            } else {
                tally.duplicates += 1;
                metrics::counter!("flashdeal_duplicate_events_total", "role" => "catalog-projector")
                    .increment(1);
            }
            tracing::debug!(deal_id = %deal.deal_id, version = deal.version, change = deal.change, new, "deal event");
        }
        Ok(tally)
    }
}

/// The Redis status of a catalog status.
pub fn redis_status(catalog_status: &str) -> &str {
    match catalog_status {
        "scheduled" => "active",
        other => other,
    }
}

fn invocation(d: &DealChanged) -> redis::ScriptInvocation<'static> {
    let keys = DealKeys::new(d.deal_id);
    let mut call = APPLY_DEAL.prepare_invoke();
    call.key(keys.meta)
        .key(keys.stock)
        .arg(d.version)
        .arg(redis_status(&d.status))
        .arg(d.starts_at)
        .arg(d.ends_at)
        .arg(d.price_cents)
        .arg(d.per_user_limit)
        .arg(d.stock)
        .arg(d.stock_delta);
    call
}

impl BatchHandler for CatalogProjector {
    fn name(&self) -> &'static str {
        "catalog-projector"
    }

    async fn handle(&mut self, batch: &[OwnedMessage]) -> Result<(), HandlerError> {
        self.project_batch(batch).await.map(|_| ())
    }
}
