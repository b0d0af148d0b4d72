//! The reconciler: reservations that stayed pending past their expiry become
//! `OrderExpired` on `orders.intents`, keyed by order id like their intent.
//!
//! It only appends to the log; it never touches stock. The order-writer
//! decides intent-vs-expiry (the first in the log wins) and the projector
//! returns the stock once, when it removes the order from the pending set.
//! Until then a later sweep may append the same expiry again, which the
//! order-writer absorbs; an expiry is re-sent at most every
//! `republish_after` so a lagging pipeline is not flooded.

use crate::{EventPublisher, PublishError};
use flashdeal_schemas::{
    OrderExpired, OrderId,
    events::now_millis,
    redis_keys::{DealKeys, ReservationRecord, deal_of_key},
    topics,
};
use redis::aio::ConnectionManager;
use std::{
    collections::HashMap,
    time::{Duration, Instant},
};
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

/// How often and how much the reconciler sweeps.
#[derive(Clone, Copy, Debug)]
pub struct ReconcilerSettings {
    pub interval: Duration,
    /// Most expiries appended per deal per sweep.
    pub batch: usize,
    pub republish_after: Duration,
}

impl Default for ReconcilerSettings {
    fn default() -> Self {
        Self {
            interval: Duration::from_secs(1),
            batch: 1_000,
            republish_after: Duration::from_secs(30),
        }
    }
}

/// Why a sweep failed (it is retried at the next interval).
#[derive(Debug, thiserror::Error)]
pub enum ReconcileError {
    #[error("Redis: {0}")]
    Redis(#[from] redis::RedisError),
    #[error("publishing expiries: {0}")]
    Publish(#[from] PublishError),
}

pub struct Reconciler {
    redis: ConnectionManager,
    publisher: EventPublisher,
    settings: ReconcilerSettings,
    sent: HashMap<OrderId, Instant>,
}

impl Reconciler {
    pub fn new(
        redis: ConnectionManager,
        publisher: EventPublisher,
        settings: ReconcilerSettings,
    ) -> Self {
        Self {
            redis,
            publisher,
            settings,
            sent: HashMap::new(),
        }
    }

    /// Sweeps every `interval` until `shutdown`.
    pub async fn run(mut self, shutdown: CancellationToken) {
        tracing::info!(
            interval_ms = self.settings.interval.as_millis() as u64,
            "reconciling expired reservations"
        );
        loop {
            tokio::select! {
                _ = shutdown.cancelled() => break,
                _ = tokio::time::sleep(self.settings.interval) => {}
            }
            match self.sweep(now_millis()).await {
                Ok(0) => {}
                Ok(n) => tracing::info!(expired = n, "expiries appended"),
                Err(e) => tracing::warn!(error = %e, "sweep failed; retrying next interval"),
            }
        }
        tracing::info!("reconciler stopped");
    }

    /// One pass over every deal's pending set: appends `OrderExpired` for
    /// each reservation whose expiry is before `now_ms`. Returns how many.
    pub async fn sweep(&mut self, now_ms: i64) -> Result<usize, ReconcileError> {
        let republish_after = self.settings.republish_after;
        self.sent.retain(|_, at| at.elapsed() < republish_after);
        let mut appended = 0;
        for key in self.pending_keys().await? {
            let Some(deal) = deal_of_key(&key) else {
                continue;
            };
            let due: Vec<String> = redis::cmd("ZRANGEBYSCORE")
                .arg(&key)
                .arg("-inf")
                .arg(now_ms)
                .arg("LIMIT")
                .arg(0)
                .arg(self.settings.batch)
                .query_async(&mut self.redis)
                .await?;
            let due: Vec<(OrderId, String)> = due
                .into_iter()
                .filter_map(|s| Some((s.parse::<OrderId>().ok()?, s)))
                .filter(|(id, _)| !self.sent.contains_key(id))
                .collect();
            if due.is_empty() {
                continue;
            }
            let records: Vec<Option<String>> = redis::cmd("HMGET")
                .arg(DealKeys::new(deal).reservations)
                .arg(due.iter().map(|(_, s)| s.as_str()).collect::<Vec<_>>())
                .query_async(&mut self.redis)
                .await?;
            let expiries: Vec<OrderExpired> = due
                .iter()
                .zip(records)
                .filter_map(|((order_id, _), record)| {
                    // Settled between the two reads: nothing to expire.
                    let r: ReservationRecord = record?.parse().ok()?;
                    Some(OrderExpired {
                        event_id: Uuid::now_v7(),
                        order_id: *order_id,
                        user_id: r.user,
                        deal_id: deal,
                        quantity: r.quantity,
                        unit_price_cents: r.unit_price_cents,
                        reserved_at: r.reserved_at_ms,
                        expires_at: r.expires_at_ms,
                        occurred_at: now_ms,
                    })
                })
                .collect();
            self.publisher
                .publish_by_order(topics::ORDERS_INTENTS, &expiries, |e| {
                    (e.order_id, e.event_id)
                })
                .await?;
            for e in &expiries {
                tracing::debug!(order_id = %e.order_id, deal_id = %deal, "reservation expired");
                self.sent.insert(e.order_id, Instant::now());
            }
            metrics::counter!("flashdeal_reservations_expired_total")
                .increment(expiries.len() as u64);
            appended += expiries.len();
        }
        Ok(appended)
    }

    /// Every deal's pending-set key (SCAN, so Redis is never blocked).
    async fn pending_keys(&mut self) -> Result<Vec<String>, redis::RedisError> {
        let mut keys = Vec::new();
        let mut cursor: u64 = 0;
        loop {
            let (next, batch): (u64, Vec<String>) = redis::cmd("SCAN")
                .arg(cursor)
                .arg("MATCH")
                .arg("{deal:*}:pending")
                .arg("COUNT")
                .arg(1000)
                .query_async(&mut self.redis)
                .await?;
            keys.extend(batch);
            if next == 0 {
                return Ok(keys);
            }
            cursor = next;
        }
    }
}
