//! The order-writer: `orders.intents` → `orders.orders` → `orders.status`.
//!
//! One transaction per batch (`INSERT … SELECT FROM UNNEST … ON CONFLICT DO
//! NOTHING`), then a verdict per order on `orders.status`, then (in the
//! consume loop) the offset commit.
//!
//! An order's intent (`OrderPlaced`) and its expiry (`OrderExpired`) share
//! the order id as key, so they sit on one partition in the order they were
//! appended: whichever comes first inserts the row (`confirmed` or
//! `expired`) and the other finds it and changes nothing. A redelivered
//! event finds its own row and republishes the same verdict, which the
//! projector applies at most once. An intent whose idempotency key already
//! belongs to another order is rejected, which releases its stock; so is an
//! intent that contradicts the deal as `orders.deals` (the order-writer's
//! read model of the catalog) knows it: another price, more than the
//! per-user limit, or a reservation outside the deal's window.

use crate::{
    consume_loop::{BatchHandler, HandlerError},
    dead_letter::dead_letter,
    message_span::message_span,
    tally::Tally,
};
use chrono::{DateTime, Utc};
use flashdeal_producers::EventPublisher;
use flashdeal_schemas::{
    IntentEvent, OrderConfirmed, OrderId, OrderPlaced, OrderRejected, ReservationReleased, topics,
};
use rdkafka::{Message, message::OwnedMessage};
use sqlx::PgPool;
use std::collections::{HashMap, HashSet};
use tracing::{Instrument, Span};
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
    pub released: usize,
    pub dead_lettered: usize,
    /// Rows this batch inserted (the intent or expiry that decided an order).
    pub inserted: usize,
    /// Events whose order already had its row (a redelivery, a replay, or
    /// the later of an intent/expiry pair): they changed nothing.
    pub duplicates: usize,
}

impl BatchOutcome {
    /// The batch in the counts every sink reports.
    pub fn tally(&self, read: usize) -> Tally {
        let applied = self.inserted as u64;
        let duplicates = self.duplicates as u64;
        let dead_lettered = self.dead_lettered as u64;
        Tally {
            applied,
            duplicates,
            other: (read as u64).saturating_sub(applied + duplicates + dead_lettered),
            dead_lettered,
        }
    }
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

/// The row an intent or an expiry would insert.
struct Row<'a> {
    order_id: OrderId,
    event: &'a IntentEvent,
    status: &'static str,
    idempotency_key: Option<String>,
    quantity: i32,
    unit_price_cents: i64,
    reserved_at: i64,
}

impl<'a> Row<'a> {
    fn of(event: &'a IntentEvent) -> Self {
        match event {
            IntentEvent::Placed(p) => Self {
                order_id: p.order_id,
                event,
                status: "confirmed",
                idempotency_key: p.idempotency_key.clone(),
                quantity: p.quantity,
                unit_price_cents: p.unit_price_cents,
                reserved_at: p.reserved_at,
            },
            // An expired order keeps no idempotency key: the key may be
            // used again, and an expiry must never conflict on it.
            IntentEvent::Expired(e) => Self {
                order_id: e.order_id,
                event,
                status: "expired",
                idempotency_key: None,
                quantity: e.quantity,
                unit_price_cents: e.unit_price_cents,
                reserved_at: e.reserved_at,
            },
        }
    }

    /// Why the table would refuse this row, whatever is retried. Checked
    /// before the batch insert, so one bad event cannot block a batch.
    fn invalid(&self) -> Option<&'static str> {
        if self.quantity <= 0 {
            Some("quantity must be positive")
        } else if self.unit_price_cents <= 0 {
            Some("unit price must be positive")
        } else if DateTime::<Utc>::from_timestamp_millis(self.reserved_at).is_none() {
            Some("reserved_at out of range")
        } else {
            None
        }
    }

    fn ids(&self) -> (Uuid, Uuid, Uuid) {
        match self.event {
            IntentEvent::Placed(p) => (p.user_id.0, p.deal_id.0, p.event_id),
            IntentEvent::Expired(e) => (e.user_id.0, e.deal_id.0, e.event_id),
        }
    }
}

/// The verdicts of one batch, published after the commit.
#[derive(Default)]
struct Verdicts {
    confirmed: Vec<OrderConfirmed>,
    rejected: Vec<OrderRejected>,
    released: Vec<ReservationReleased>,
}

impl Verdicts {
    /// What the log should say about `event`, given the status its order
    /// has in PostgreSQL after the batch's insert.
    fn add(&mut self, event: &IntentEvent, row_status: Option<&str>) {
        match (event, row_status) {
            (IntentEvent::Placed(p), Some("confirmed")) => {
                self.confirmed.push(OrderConfirmed::of(p));
            }
            (IntentEvent::Placed(p), None) => self.rejected.push(OrderRejected::of(
                p,
                "idempotency key already used by another order",
            )),
            (IntentEvent::Expired(e), Some("expired")) => {
                self.released.push(ReservationReleased::of(e));
            }
            // The other event of the pair came first and decided.
            (event, status) => tracing::debug!(?status, ?event, "order already decided"),
        }
    }
}

impl OrderWriter {
    /// Processes one batch: the function tests call directly.
    pub async fn write_batch(&self, batch: &[OwnedMessage]) -> Result<BatchOutcome, HandlerError> {
        let mut outcome = BatchOutcome::default();
        let mut events: Vec<IntentEvent> = Vec::with_capacity(batch.len());
        // Each verdict is published in the span of the message that decided
        // it, so the projector continues that order's trace.
        let spans: Vec<Span> = batch.iter().map(|m| message_span(GROUP, m)).collect();
        let mut span_of: HashMap<OrderId, &Span> = HashMap::with_capacity(batch.len());
        for (msg, span) in batch.iter().zip(&spans) {
            let reason = match msg.payload().map(IntentEvent::decode) {
                Some(Ok(event)) => match Row::of(&event).invalid() {
                    None => {
                        let order_id = Row::of(&event).order_id;
                        span.record("order_id", tracing::field::display(order_id));
                        span_of.entry(order_id).or_insert(span);
                        events.push(event);
                        continue;
                    }
                    Some(r) => r.to_owned(),
                },
                Some(Err(e)) => e.to_string(),
                None => "empty payload".to_owned(),
            };
            dead_letter(&self.publisher, "order-writer", msg, &reason)
                .instrument(span.clone())
                .await?;
            outcome.dead_lettered += 1;
        }
        // Log order within the batch: the first event of an order decides.
        let mut seen = HashSet::with_capacity(events.len());
        let rows: Vec<Row<'_>> = events
            .iter()
            .map(Row::of)
            .filter(|r| seen.insert(r.order_id))
            .collect();
        // The second event of an order within one batch changes nothing.
        outcome.duplicates = events.len() - rows.len();
        let mut verdicts = Verdicts::default();
        let snapshots = self.deal_snapshots(&rows).await?;
        let (rows, contradicted): (Vec<Row<'_>>, Vec<Row<'_>>) =
            rows.into_iter()
                .partition(|row| match (row.event, snapshots.get(&row.ids().1)) {
                    (IntentEvent::Placed(p), Some(deal)) => deal.contradiction(p).is_none(),
                    _ => true,
                });
        // A contradicting intent whose order already has a row was decided
        // before the read model knew better (redelivery, replay): it keeps
        // that decision, so PostgreSQL and the verdicts stay as they were.
        let mut rows = rows;
        if !contradicted.is_empty() {
            let ids: Vec<Uuid> = contradicted.iter().map(|r| r.order_id.0).collect();
            let decided: HashSet<Uuid> =
                sqlx::query_file!("../sql/queries/orders_present.sql", &ids)
                    .fetch_all(&self.pool)
                    .await?
                    .into_iter()
                    .map(|r| r.order_id)
                    .collect();
            for row in contradicted {
                if decided.contains(&row.order_id.0) {
                    rows.push(row);
                } else if let IntentEvent::Placed(p) = row.event {
                    let reason = snapshots
                        .get(&p.deal_id.0)
                        .and_then(|d| d.contradiction(p))
                        .unwrap_or("intent contradicts the deal");
                    tracing::warn!(order_id = %p.order_id, deal_id = %p.deal_id, reason, "intent contradicts the deal");
                    verdicts.rejected.push(OrderRejected::of(p, reason));
                }
            }
        }
        let (inserted, present) = if rows.is_empty() {
            (0, HashMap::new())
        } else {
            self.insert(&rows).await?
        };
        for row in &rows {
            verdicts.add(row.event, present.get(&row.order_id).map(String::as_str));
        }
        // Every row the insert did not add but finds afterwards was there
        // before: its order was already decided.
        let found = rows
            .iter()
            .filter(|r| present.contains_key(&r.order_id))
            .count();
        outcome.inserted = inserted;
        outcome.duplicates += found.saturating_sub(inserted);
        self.publisher
            .publish_by_order_in(
                topics::ORDERS_STATUS,
                &verdicts.confirmed,
                |e| (e.order_id, e.event_id),
                |e| span_of.get(&e.order_id).copied(),
            )
            .await?;
        self.publisher
            .publish_by_order_in(
                topics::ORDERS_STATUS,
                &verdicts.rejected,
                |e| (e.order_id, e.event_id),
                |e| span_of.get(&e.order_id).copied(),
            )
            .await?;
        self.publisher
            .publish_by_order_in(
                topics::ORDERS_STATUS,
                &verdicts.released,
                |e| (e.order_id, e.event_id),
                |e| span_of.get(&e.order_id).copied(),
            )
            .await?;
        outcome.confirmed = verdicts.confirmed.len();
        outcome.rejected = verdicts.rejected.len();
        outcome.released = verdicts.released.len();
        for (label, n) in [
            ("confirmed", outcome.confirmed),
            ("rejected", outcome.rejected),
            ("expired", outcome.released),
        ] {
            metrics::counter!("flashdeal_orders_written_total", "outcome" => label)
                .increment(n as u64);
        }
        Ok(outcome)
    }

    /// The read model's snapshot of every deal the batch's intents name
    /// (deals it has not heard of yet are absent: nothing to contradict).
    async fn deal_snapshots(
        &self,
        rows: &[Row<'_>],
    ) -> Result<HashMap<Uuid, DealSnapshot>, sqlx::Error> {
        let mut ids: Vec<Uuid> = rows.iter().map(|r| r.ids().1).collect();
        ids.sort_unstable();
        ids.dedup();
        if ids.is_empty() {
            return Ok(HashMap::new());
        }
        let found =
            sqlx::query_file_as!(DealSnapshot, "../sql/queries/order_deals_by_id.sql", &ids)
                .fetch_all(&self.pool)
                .await?;
        Ok(found.into_iter().map(|d| (d.deal_id, d)).collect())
    }

    /// Inserts the batch in one transaction and returns how many rows it
    /// added and the status of every order id of the batch that has a row
    /// afterwards.
    async fn insert(
        &self,
        rows: &[Row<'_>],
    ) -> Result<(usize, HashMap<OrderId, String>), sqlx::Error> {
        let n = rows.len();
        let mut cols = Columns::with_capacity(n);
        for r in rows {
            let (user, deal, event) = r.ids();
            cols.order_ids.push(r.order_id.0);
            cols.user_ids.push(user);
            cols.deal_ids.push(deal);
            cols.quantities.push(r.quantity);
            cols.prices.push(r.unit_price_cents);
            cols.statuses.push(r.status.to_owned());
            cols.keys.push(r.idempotency_key.clone());
            cols.event_ids.push(event);
            cols.reserved_at
                .push(DateTime::<Utc>::from_timestamp_millis(r.reserved_at).unwrap_or_default());
        }
        let mut tx = self.pool.begin().await?;
        let inserted = sqlx::query_file!(
            "../sql/queries/insert_orders.sql",
            &cols.order_ids,
            &cols.user_ids,
            &cols.deal_ids,
            &cols.quantities,
            &cols.prices,
            &cols.statuses,
            &cols.keys as &[Option<String>],
            &cols.event_ids,
            &cols.reserved_at
        )
        .execute(&mut *tx)
        .await?
        .rows_affected();
        let present = sqlx::query_file!("../sql/queries/orders_present.sql", &cols.order_ids)
            .fetch_all(&mut *tx)
            .await?;
        tx.commit().await?;
        let present = present
            .into_iter()
            .map(|r| (OrderId(r.order_id), r.status))
            .collect();
        Ok((usize::try_from(inserted).unwrap_or(usize::MAX), present))
    }
}

/// What `orders.deals` knows of a deal. Price, limit and window never
/// change after a deal is scheduled, so any version of it is authoritative.
#[derive(Debug)]
struct DealSnapshot {
    deal_id: Uuid,
    price_cents: i64,
    per_user_limit: i32,
    starts_at: DateTime<Utc>,
    ends_at: DateTime<Utc>,
}

impl DealSnapshot {
    /// Why `intent` cannot be an order of this deal, if it cannot.
    fn contradiction(&self, intent: &OrderPlaced) -> Option<&'static str> {
        let reserved = DateTime::<Utc>::from_timestamp_millis(intent.reserved_at)?;
        if intent.unit_price_cents != self.price_cents {
            Some("unit price differs from the deal's price")
        } else if intent.quantity > self.per_user_limit {
            Some("quantity exceeds the deal's per-user limit")
        } else if reserved < self.starts_at || reserved >= self.ends_at {
            Some("reserved outside the deal's window")
        } else {
            None
        }
    }
}

/// The batch as column arrays, the shape `UNNEST` takes.
struct Columns {
    order_ids: Vec<Uuid>,
    user_ids: Vec<Uuid>,
    deal_ids: Vec<Uuid>,
    quantities: Vec<i32>,
    prices: Vec<i64>,
    statuses: Vec<String>,
    keys: Vec<Option<String>>,
    event_ids: Vec<Uuid>,
    reserved_at: Vec<DateTime<Utc>>,
}

impl Columns {
    fn with_capacity(n: usize) -> Self {
        Self {
            order_ids: Vec::with_capacity(n),
            user_ids: Vec::with_capacity(n),
            deal_ids: Vec::with_capacity(n),
            quantities: Vec::with_capacity(n),
            prices: Vec::with_capacity(n),
            statuses: Vec::with_capacity(n),
            keys: Vec::with_capacity(n),
            event_ids: Vec::with_capacity(n),
            reserved_at: Vec::with_capacity(n),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use flashdeal_schemas::{DealId, OrderExpired, UserId};

    fn placed(quantity: i32, unit_price_cents: i64, reserved_at: i64) -> IntentEvent {
        IntentEvent::Placed(OrderPlaced {
            event_id: Uuid::now_v7(),
            order_id: OrderId::new_v7(),
            user_id: UserId::new_v7(),
            deal_id: DealId::new_v7(),
            quantity,
            unit_price_cents,
            idempotency_key: Some("k".to_owned()),
            reserved_at,
            expires_at: reserved_at.saturating_add(1),
        })
    }

    fn expired_of(event: &IntentEvent) -> IntentEvent {
        let IntentEvent::Placed(p) = event else {
            unreachable!("tests expire intents only")
        };
        IntentEvent::Expired(OrderExpired {
            event_id: Uuid::now_v7(),
            order_id: p.order_id,
            user_id: p.user_id,
            deal_id: p.deal_id,
            quantity: p.quantity,
            unit_price_cents: p.unit_price_cents,
            reserved_at: p.reserved_at,
            expires_at: p.expires_at,
            occurred_at: p.expires_at,
        })
    }

    #[test]
    fn rows_the_table_would_refuse_are_caught_before_the_insert() {
        assert_eq!(Row::of(&placed(1, 100, 1_700_000_000_000)).invalid(), None);
        assert!(
            Row::of(&placed(0, 100, 1_700_000_000_000))
                .invalid()
                .is_some()
        );
        assert!(
            Row::of(&placed(-2, 100, 1_700_000_000_000))
                .invalid()
                .is_some()
        );
        assert!(
            Row::of(&placed(1, 0, 1_700_000_000_000))
                .invalid()
                .is_some()
        );
        assert!(Row::of(&placed(1, 100, i64::MAX)).invalid().is_some());
    }

    #[test]
    fn an_expiry_row_is_expired_and_frees_the_idempotency_key() {
        let p = placed(2, 100, 1_700_000_000_000);
        let e = expired_of(&p);
        assert_eq!(
            (Row::of(&p).status, Row::of(&p).idempotency_key.is_some()),
            ("confirmed", true)
        );
        assert_eq!(
            (Row::of(&e).status, Row::of(&e).idempotency_key),
            ("expired", None)
        );
    }

    #[test]
    fn an_intent_that_contradicts_the_deal_is_named() {
        let IntentEvent::Placed(p) = placed(2, 100, 1_700_000_000_000) else {
            unreachable!()
        };
        let deal = DealSnapshot {
            deal_id: p.deal_id.0,
            price_cents: 100,
            per_user_limit: 2,
            starts_at: DateTime::<Utc>::from_timestamp_millis(1_600_000_000_000).unwrap(),
            ends_at: DateTime::<Utc>::from_timestamp_millis(1_800_000_000_000).unwrap(),
        };
        assert_eq!(deal.contradiction(&p), None);
        let cheaper = OrderPlaced {
            unit_price_cents: 99,
            ..p.clone()
        };
        assert!(deal.contradiction(&cheaper).unwrap().contains("price"));
        let greedy = OrderPlaced {
            quantity: 3,
            ..p.clone()
        };
        assert!(deal.contradiction(&greedy).unwrap().contains("limit"));
        let late = OrderPlaced {
            reserved_at: 1_800_000_000_000,
            ..p
        };
        assert!(deal.contradiction(&late).unwrap().contains("window"));
    }

    /// The decision table of intent vs expiry.
    #[test]
    fn the_first_of_intent_and_expiry_decides() {
        let p = placed(1, 100, 1_700_000_000_000);
        let e = expired_of(&p);
        let mut v = Verdicts::default();
        v.add(&p, Some("confirmed")); // intent first (or redelivered): confirm
        v.add(&e, Some("confirmed")); // expiry after confirmation: nothing
        v.add(&e, Some("expired")); // expiry first (or redelivered): release
        v.add(&p, Some("expired")); // intent after expiry: nothing
        v.add(&p, None); // key taken by another order: reject
        assert_eq!(
            (v.confirmed.len(), v.released.len(), v.rejected.len()),
            (1, 1, 1)
        );
    }
}
