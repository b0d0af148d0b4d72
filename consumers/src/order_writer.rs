//! The order-writer: `orders.intents` → `orders.orders` → `orders.status`.
//!
//! One transaction per batch (`INSERT … SELECT FROM UNNEST … ON CONFLICT DO
//! NOTHING`), then a verdict per order on `orders.status`, then (in the
//! consume loop) the offset commit. A redelivered intent finds its row and is
//! confirmed again; an intent whose idempotency key already belongs to
//! another order is rejected, which releases its stock downstream.

use crate::{
    consume_loop::{BatchHandler, HandlerError},
    dead_letter::dead_letter,
};
use chrono::{DateTime, Utc};
use flashdeal_producers::{EventPublisher, PublishError, publisher::Outgoing};
use flashdeal_schemas::{
    IntentEvent, OrderConfirmed, OrderId, OrderPlaced, OrderRejected, codec::AvroEvent, topics,
};
use rdkafka::{Message, message::OwnedMessage};
use sqlx::PgPool;
use std::collections::{HashMap, HashSet};
use uuid::Uuid;

/// The consumer group every order-writer process joins.
pub const GROUP: &str = "order-writer";

pub struct OrderWriter {
    pool: PgPool,
    publisher: EventPublisher,
}

impl OrderWriter {
    pub fn new(pool: PgPool, publisher: EventPublisher) -> Self {
        Self { pool, publisher }
    }
}

/// The outcome of writing one batch, for tests and logs.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct BatchOutcome {
    pub confirmed: usize,
    pub rejected: usize,
    pub dead_lettered: usize,
}

impl BatchHandler for OrderWriter {
    fn name(&self) -> &'static str {
        "order-writer"
    }

    async fn handle(&mut self, batch: &[OwnedMessage]) -> Result<(), HandlerError> {
        let outcome = self.write_batch(batch).await?;
        tracing::debug!(?outcome, "batch written");
        Ok(())
    }
}

/// Why an intent can never be written, whatever is retried.
fn invalid(p: &OrderPlaced) -> Option<&'static str> {
    if p.quantity <= 0 {
        Some("quantity must be positive")
    } else if p.unit_price_cents <= 0 {
        Some("unit price must be positive")
    } else if DateTime::<Utc>::from_timestamp_millis(p.reserved_at).is_none() {
        Some("reserved_at out of range")
    } else {
        None
    }
}

impl OrderWriter {
    /// Processes one batch: the function tests call directly.
    pub async fn write_batch(&self, batch: &[OwnedMessage]) -> Result<BatchOutcome, HandlerError> {
        let mut outcome = BatchOutcome::default();
        let mut intents: Vec<OrderPlaced> = Vec::with_capacity(batch.len());
        let mut seen = HashSet::with_capacity(batch.len());
        for msg in batch {
            let decoded = msg.payload().map(IntentEvent::decode);
            let reason = match decoded {
                Some(Ok(IntentEvent::Placed(p))) => match invalid(&p) {
                    None => {
                        if seen.insert(p.order_id) {
                            intents.push(p);
                        }
                        continue;
                    }
                    Some(r) => r.to_owned(),
                },
                Some(Err(e)) => e.to_string(),
                None => "empty payload".to_owned(),
            };
            dead_letter(&self.publisher, "order-writer", msg, &reason).await?;
            outcome.dead_lettered += 1;
        }
        if intents.is_empty() {
            return Ok(outcome);
        }

        let present = self.insert(&intents).await?;
        let mut confirmed = Vec::new();
        let mut rejected = Vec::new();
        for p in &intents {
            match present.get(&p.order_id).map(String::as_str) {
                Some("confirmed") => confirmed.push(OrderConfirmed::of(p)),
                Some(other) => {
                    tracing::debug!(order_id = %p.order_id, status = other, "intent already settled");
                }
                None => rejected.push(OrderRejected::of(
                    p,
                    "idempotency key already used by another order",
                )),
            }
        }
        self.publish_status(&confirmed, |e| (e.order_id, e.event_id))
            .await?;
        self.publish_status(&rejected, |e| (e.order_id, e.event_id))
            .await?;
        outcome.confirmed = confirmed.len();
        outcome.rejected = rejected.len();
        metrics::counter!("flashdeal_orders_written_total", "outcome" => "confirmed")
            .increment(confirmed.len() as u64);
        metrics::counter!("flashdeal_orders_written_total", "outcome" => "rejected")
            .increment(rejected.len() as u64);
        Ok(outcome)
    }

    /// Publishes verdicts to `orders.status`, keyed by order id, and waits
    /// for every acknowledgement.
    async fn publish_status<E: AvroEvent>(
        &self,
        events: &[E],
        ids: impl Fn(&E) -> (OrderId, Uuid),
    ) -> Result<(), PublishError> {
        let keyed: Vec<([u8; 16], Uuid)> = events
            .iter()
            .map(|e| {
                let (order_id, event_id) = ids(e);
                (order_id.0.into_bytes(), event_id)
            })
            .collect();
        let out: Vec<_> = events
            .iter()
            .zip(&keyed)
            .map(|(event, (key, event_id))| Outgoing {
                topic: topics::ORDERS_STATUS,
                key,
                event_id: *event_id,
                event,
            })
            .collect();
        self.publisher.publish_all(&out).await
    }

    /// Inserts the batch in one transaction and returns the status of every
    /// order id of the batch that has a row afterwards.
    async fn insert(
        &self,
        intents: &[OrderPlaced],
    ) -> Result<HashMap<OrderId, String>, sqlx::Error> {
        let n = intents.len();
        let (mut order_ids, mut user_ids, mut deal_ids) = (
            Vec::with_capacity(n),
            Vec::with_capacity(n),
            Vec::with_capacity(n),
        );
        let (mut qty, mut price, mut keys) = (
            Vec::with_capacity(n),
            Vec::with_capacity(n),
            Vec::with_capacity(n),
        );
        let (mut event_ids, mut reserved_at) = (Vec::with_capacity(n), Vec::with_capacity(n));
        for p in intents {
            order_ids.push(p.order_id.0);
            user_ids.push(p.user_id.0);
            deal_ids.push(p.deal_id.0);
            qty.push(p.quantity);
            price.push(p.unit_price_cents);
            keys.push(p.idempotency_key.clone());
            event_ids.push(p.event_id);
            reserved_at
                .push(DateTime::<Utc>::from_timestamp_millis(p.reserved_at).unwrap_or_default());
        }
        let mut tx = self.pool.begin().await?;
        sqlx::query_file!(
            "../sql/queries/insert_orders.sql",
            &order_ids,
            &user_ids,
            &deal_ids,
            &qty,
            &price,
            &keys as &[Option<String>],
            &event_ids as &[Uuid],
            &reserved_at
        )
        .execute(&mut *tx)
        .await?;
        let rows = sqlx::query_file!("../sql/queries/orders_present.sql", &order_ids)
            .fetch_all(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(rows
            .into_iter()
            .map(|r| (OrderId(r.order_id), r.status))
            .collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use flashdeal_schemas::{DealId, UserId};

    fn intent(quantity: i32, unit_price_cents: i64, reserved_at: i64) -> OrderPlaced {
        OrderPlaced {
            event_id: Uuid::now_v7(),
            order_id: OrderId::new_v7(),
            user_id: UserId::new_v7(),
            deal_id: DealId::new_v7(),
            quantity,
            unit_price_cents,
            idempotency_key: None,
            reserved_at,
            expires_at: reserved_at.saturating_add(1),
        }
    }

    /// Everything the table's CHECK constraints would refuse is caught
    /// before the batch insert, so one bad intent cannot block a batch.
    #[test]
    fn intents_the_table_would_refuse_are_caught_before_the_insert() {
        assert_eq!(invalid(&intent(1, 100, 1_700_000_000_000)), None);
        assert!(invalid(&intent(0, 100, 1_700_000_000_000)).is_some());
        assert!(invalid(&intent(-2, 100, 1_700_000_000_000)).is_some());
        assert!(invalid(&intent(1, 0, 1_700_000_000_000)).is_some());
        assert!(invalid(&intent(1, 100, i64::MAX)).is_some());
    }
}
