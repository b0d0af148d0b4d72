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
};
use flashdeal_producers::EventPublisher;
use flashdeal_schemas::{DealId, OrderId, StatusEvent, UserId, redis_keys};
use rdkafka::{Message, message::OwnedMessage};
use redis::{Script, aio::ConnectionManager};
use std::sync::LazyLock;

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

    /// Applies one batch of status events to Redis.
    pub async fn project_batch(&mut self, batch: &[OwnedMessage]) -> Result<usize, HandlerError> {
        let mut pipe = redis::pipe();
        let mut applied = 0;
        for msg in batch {
            let event = match msg.payload().map(StatusEvent::decode) {
                Some(Ok(e)) => e,
                Some(Err(e)) => {
                    dead_letter(&self.publisher, "projector", msg, &e.to_string()).await?;
                    continue;
                }
                None => {
                    dead_letter(&self.publisher, "projector", msg, "empty payload").await?;
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
            settle(&mut pipe, order, deal, user, qty, verdict);
            let key = redis_keys::order_status(order);
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
            applied += 1;
        }
        if applied > 0 {
            // A pipelined EVALSHA needs the script in Redis's cache; after a
            // Redis restart it is gone (NOSCRIPT), so load it again and let
            // the consume loop retry the batch.
            if !self.script_loaded {
                SETTLE.load_async(&mut self.redis).await?;
                self.script_loaded = true;
            }
            if let Err(e) = pipe.query_async::<()>(&mut self.redis).await {
                if e.kind() == redis::ErrorKind::Server(redis::ServerErrorKind::NoScript) {
                    self.script_loaded = false;
                }
                return Err(e.into());
            }
        }
        Ok(applied)
    }
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
    pipe.invoke_script(&call).ignore();
}

impl BatchHandler for Projector {
    fn name(&self) -> &'static str {
        "projector"
    }

    async fn handle(&mut self, batch: &[OwnedMessage]) -> Result<(), HandlerError> {
        self.project_batch(batch).await.map(|_| ())
    }
}
