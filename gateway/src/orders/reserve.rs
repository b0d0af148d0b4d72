//! The reservation: `reserve.lua` run with EVALSHA, one round trip, atomic
//! per deal. Everything the hot path decides about stock is decided here.

use flashdeal_schemas::redis_keys::{MalformedRecord, ReservationRecord};
use flashdeal_schemas::{DealId, IdempotencyKey, OrderId, Quantity, UserId, redis_keys::DealKeys};
use redis::{RedisError, Script, Value, aio::ConnectionManager};
use std::sync::LazyLock;

static RESERVE: LazyLock<Script> = LazyLock::new(|| Script::new(include_str!("reserve.lua")));

/// One reservation request.
#[derive(Debug)]
pub struct ReserveRequest<'a> {
    pub deal: DealId,
    pub user: UserId,
    pub quantity: Quantity,
    pub order: OrderId,
    pub now_ms: i64,
    pub expires_at_ms: i64,
    pub idempotency_key: Option<&'a IdempotencyKey>,
    pub idempotency_ttl_secs: u64,
}

/// What the script decided.
#[derive(Debug, PartialEq, Eq)]
pub enum Reservation {
    Reserved {
        unit_price_cents: i64,
    },
    /// The key's order is settled (confirmed or rejected): answer with it.
    Duplicate(OrderId),
    /// The key's order is still pending: its intent may not be in the log,
    /// so the caller publishes it again (same order id, idempotent).
    DuplicatePending(OrderId, ReservationRecord),
    UnknownDeal,
    NotActive,
    LimitReached {
        limit: i64,
    },
    SoldOut,
}

/// The script replied with something it never returns.
fn protocol(what: &str) -> RedisError {
    RedisError::from((
        redis::ErrorKind::Client,
        "unexpected reply from reserve.lua",
        what.to_owned(),
    ))
}

fn text(v: Option<&Value>) -> Result<String, RedisError> {
    match v {
        Some(Value::BulkString(b)) => {
            String::from_utf8(b.clone()).map_err(|_| protocol("non-UTF-8 field"))
        }
        Some(Value::SimpleString(s)) => Ok(s.clone()),
        Some(Value::Int(i)) => Ok(i.to_string()),
        other => Err(protocol(&format!("{other:?}"))),
    }
}

fn number<T: std::str::FromStr>(s: &str) -> Result<T, RedisError> {
    s.parse().map_err(|_| protocol(s))
}

/// Runs the reservation script.
pub async fn reserve(
    redis: &mut ConnectionManager,
    req: &ReserveRequest<'_>,
) -> Result<Reservation, RedisError> {
    let keys = DealKeys::new(req.deal);
    let mut call = RESERVE.prepare_invoke();
    call.key(&keys.meta)
        .key(&keys.stock)
        .key(&keys.users)
        .key(&keys.pending)
        .key(&keys.reservations);
    if let Some(k) = req.idempotency_key {
        call.key(keys.idempotency(req.user, k.as_str()));
    }
    call.arg(req.user.to_string())
        .arg(req.quantity.get())
        .arg(req.now_ms)
        .arg(req.order.to_string())
        .arg(req.expires_at_ms)
        .arg(req.idempotency_ttl_secs);
    let started = std::time::Instant::now();
    let reply: Result<Vec<Value>, RedisError> = call.invoke_async(redis).await;
    let outcome = if reply.is_ok() { "ok" } else { "error" };
    metrics::histogram!("flashdeal_redis_reserve_seconds", "outcome" => outcome)
        .record(started.elapsed().as_secs_f64());
    let reply = reply?;
    let code = text(reply.first())?;
    let order_id =
        || text(reply.get(1)).and_then(|s| s.parse::<OrderId>().map_err(|_| protocol(&s)));
    Ok(match code.as_str() {
        "ok" => Reservation::Reserved {
            unit_price_cents: number(&text(reply.get(1))?)?,
        },
        "dup" => Reservation::Duplicate(order_id()?),
        "dup_pending" => Reservation::DuplicatePending(
            order_id()?,
            text(reply.get(2))?
                .parse()
                .map_err(|e: MalformedRecord| protocol(&e.to_string()))?,
        ),
        "unknown" => Reservation::UnknownDeal,
        "inactive" => Reservation::NotActive,
        "limit" => Reservation::LimitReached {
            limit: number(&text(reply.get(1))?)?,
        },
        "sold_out" => Reservation::SoldOut,
        other => return Err(protocol(other)),
    })
}
