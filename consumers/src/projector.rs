//! The status projector: `orders.status` → Redis.
//!
//! For each verdict it settles the deal's pending reservation with
//! `settle.lua` (stock returns only for a rejection or an expiry, and only
//! once) and writes the order's status to `order:{id}`, which
//! `GET /orders/{id}` reads.
//! One pipeline per batch: a single round trip however large the batch.

use crate::{
    consume_loop::{BatchHandler, HandlerError},
    dead_letter::dead_letter,
    message_span::message_span,
    tally::Tally,
};
use flashdeal_producers::EventPublisher;
use flashdeal_schemas::{DealId, OrderId, StatusEvent, UserId, redis_keys};
use rdkafka::{Message, message::OwnedMessage};
use redis::{Script, aio::ConnectionManager};
use std::sync::LazyLock;
use tracing::{Instrument, Span};

/// The consumer group of the status projector.
pub const GROUP: &str = "projector";

static SETTLE: LazyLock<Script> = LazyLock::new(|| Script::new(include_str!("settle.lua")));

pub struct Projector {
    redis: ConnectionManager,
    publisher: EventPublisher,
    /// Whether `settle.lua` is known to be in Redis's script cache.
    script_loaded: bool,
}

impl Projector {
    pub fn new(redis: ConnectionManager, publisher: EventPublisher) -> Self {
        Self {
            redis,
            publisher,
            script_loaded: false,
        }
    }

    /// Applies one batch of status events to Redis. A verdict is a
    /// duplicate when its reservation was already settled and `order:{id}`
    /// already had its status.
    pub async fn project_batch(&mut self, batch: &[OwnedMessage]) -> Result<Tally, HandlerError> {
        let mut pipe = redis::pipe();
        let mut tally = Tally::default();
        let mut statuses = Vec::with_capacity(batch.len());
        let mut queued = 0;
        // Alive until the pipeline ran: each ends when its verdict is in Redis.
        let spans: Vec<Span> = batch.iter().map(|m| message_span(GROUP, m)).collect();
        for (msg, span) in batch.iter().zip(&spans) {
            let event = match msg.payload().map(StatusEvent::decode) {
                Some(Ok(e)) => e,
                Some(Err(e)) => {
                    dead_letter(&self.publisher, "projector", msg, &e.to_string())
                        .instrument(span.clone())
                        .await?;
                    tally.dead_lettered += 1;
                    continue;
                }
                None => {
                    dead_letter(&self.publisher, "projector", msg, "empty payload")
                        .instrument(span.clone())
                        .await?;
                    tally.dead_lettered += 1;
                    continue;
                }
            };
            let (order, deal, user, qty, verdict, status) = match &event {
                StatusEvent::Confirmed(e) => (
                    e.order_id,
                    e.deal_id,
                    e.user_id,
                    e.quantity,
                    "confirmed",
                    "confirmed",
                ),
                StatusEvent::Rejected(e) => (
                    e.order_id, e.deal_id, e.user_id, e.quantity, "released", "rejected",
                ),
                StatusEvent::Released(e) => (
                    e.order_id, e.deal_id, e.user_id, e.quantity, "released", "expired",
                ),
            };
            span.record("order_id", tracing::field::display(order));
            settle(&mut pipe, order, deal, user, qty, verdict);
            let key = redis_keys::order_status(order);
            // Read before the write, only to count what was new.
            pipe.hget(&key, "status");
            statuses.push(status);
            pipe.hset_multiple(
                &key,
                &[
                    ("status", status.to_owned()),
                    ("user_id", user.to_string()),
                    ("deal_id", deal.to_string()),
                    ("quantity", qty.to_string()),
                ],
            )
            .ignore()
            .expire(&key, redis_keys::ORDER_STATUS_TTL_SECS)
            .ignore();
            queued += 1;
        }
        if queued > 0 {
            // A pipelined EVALSHA needs the script in Redis's cache; after a
            // Redis restart it is gone (NOSCRIPT), so load it again and let
            // the consume loop retry the batch.
            if !self.script_loaded {
                SETTLE.load_async(&mut self.redis).await?;
                self.script_loaded = true;
            }
            // Per verdict: settle.lua's "removed" and the status before.
            let replies: Vec<(i64, Option<String>)> =
                match pipe.query_async::<Vec<redis::Value>>(&mut self.redis).await {
                    Ok(values) => pairs(values)?,
                    Err(e) => {
                        if e.kind() == redis::ErrorKind::Server(redis::ServerErrorKind::NoScript) {
                            self.script_loaded = false;
                        }
                        return Err(e.into());
                    }
                };
            for ((removed, before), status) in replies.into_iter().zip(statuses) {
                if removed == 1 || before.as_deref() != Some(status) {
                    tally.applied += 1;
                } else {
                    tally.duplicates += 1;
                }
            }
        }
        drop(spans);
        Ok(tally)
    }
}

/// The pipeline's replies, two per verdict, as (removed, status before).
fn pairs(values: Vec<redis::Value>) -> Result<Vec<(i64, Option<String>)>, redis::RedisError> {
    let mut out = Vec::with_capacity(values.len() / 2);
    let mut it = values.into_iter();
    while let (Some(removed), Some(before)) = (it.next(), it.next()) {
        out.push((
            redis::from_redis_value(removed)?,
            redis::from_redis_value(before)?,
        ));
    }
    Ok(out)
}

fn settle(
    pipe: &mut redis::Pipeline,
    order: OrderId,
    deal: DealId,
    user: UserId,
    qty: i32,
    verdict: &str,
) {
    let keys = redis_keys::DealKeys::new(deal);
    let mut call = SETTLE.prepare_invoke();
    call.key(&keys.pending)
        .key(&keys.reservations)
        .key(&keys.stock)
        .key(&keys.users)
        .arg(order.to_string())
        .arg(verdict)
        .arg(user.to_string())
        .arg(qty);
    pipe.invoke_script(&call);
}

impl BatchHandler for Projector {
    fn name(&self) -> &'static str {
        "projector"
    }

    async fn handle(&mut self, batch: &[OwnedMessage]) -> Result<(), HandlerError> {
        self.project_batch(batch).await.map(|_| ())
    }
}
