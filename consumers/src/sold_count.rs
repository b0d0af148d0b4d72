//! Back-propagation of sales into the product store: `OrderConfirmed` on
//! `orders.status` → `catalog.deals.sold_count`, written with the catalog's
//! own role (the orders service never writes the catalog schema). Each
//! order counts once: `catalog.sold_orders` remembers the orders counted,
//! so redelivered or replayed confirmations add nothing.

use crate::{
    consume_loop::{BatchHandler, HandlerError},
    dead_letter::dead_letter,
    tally::Tally,
};
use flashdeal_producers::EventPublisher;
use flashdeal_schemas::StatusEvent;
use rdkafka::{Message, message::OwnedMessage};
use sqlx::PgPool;

/// The consumer group of the sold-count consumer.
pub const GROUP: &str = "catalog-sold-count";

pub struct SoldCount {
    pool: PgPool,
    publisher: EventPublisher,
}

impl SoldCount {
    pub fn new(pool: PgPool, publisher: EventPublisher) -> Self {
        Self { pool, publisher }
    }

    /// Counts the batch's confirmations; `applied` is the orders counted
    /// for the first time, `duplicates` those already counted.
    pub async fn count_batch(&self, batch: &[OwnedMessage]) -> Result<Tally, HandlerError> {
        let (mut orders, mut deals, mut quantities) = (Vec::new(), Vec::new(), Vec::new());
        let mut tally = Tally::default();
        for msg in batch {
            match msg.payload().map(StatusEvent::decode) {
                Some(Ok(StatusEvent::Confirmed(c))) => {
                    orders.push(c.order_id.0);
                    deals.push(c.deal_id.0);
                    quantities.push(c.quantity);
                }
                Some(Ok(_)) => tally.other += 1,
                Some(Err(e)) => {
                    dead_letter(&self.publisher, "catalog-sold-count", msg, &e.to_string()).await?;
                    tally.dead_lettered += 1;
                }
                None => {
                    dead_letter(&self.publisher, "catalog-sold-count", msg, "empty payload")
                        .await?;
                    tally.dead_lettered += 1;
                }
            }
        }
        if orders.is_empty() {
            return Ok(tally);
        }
        let counted = sqlx::query_file_scalar!(
            "../sql/queries/count_sold_orders.sql",
            &orders,
            &deals,
            &quantities
        )
        .fetch_one(&self.pool)
        .await?;
        let confirmations = orders.len() as u64;
        tally.applied = u64::try_from(counted).unwrap_or(0).min(confirmations);
        tally.duplicates = confirmations - tally.applied;
        Ok(tally)
    }
}

impl BatchHandler for SoldCount {
    fn name(&self) -> &'static str {
        "catalog-sold-count"
    }

    async fn handle(&mut self, batch: &[OwnedMessage]) -> Result<(), HandlerError> {
        self.count_batch(batch).await.map(|_| ())
    }
}
