//! `flashdeal recover-redis`: rebuild the deals Redis lost from PostgreSQL
//! and the unconsumed tail of `orders.intents`.
//!
//! Redis keeps nothing on disk here, so after a restart every deal is gone
//! and the gateway answers 503 for it (`reserve.lua` finds no meta; the
//! catalog knows the deal). A deal's units are then in exactly one of three
//! places, and that is what the rebuild adds up:
//!
//! - **confirmed**: a `confirmed` row in `orders.orders`;
//! - **pending**: an `OrderPlaced` between the order-writer group's
//!   committed offset and the high watermark, with no row and no
//!   `OrderExpired` in that tail — it keeps its reservation (pending-zset
//!   member with its original expiry, reservation record, user count), so
//!   the order-writer confirms it or the reconciler expires it as usual;
//! - **remaining**: stock − confirmed − pending.
//!
//! Everything before the committed offset has its row (offsets are
//! committed after the effect). The high watermarks are read, then read
//! again after the producer's delivery timeout, so an intent a gateway was
//! still producing when Redis died is in the tail. The confirmed units and
//! the rows of the tail's orders are read in one snapshot, so an order is
//! counted once. After the write, an order of the tail the order-writer
//! decided meanwhile (its verdict may have reached the projector before the
//! deal was back, and settled nothing) is settled here with `settle.lua`,
//! whose pending-zset guard makes that and the projector's settle one.
//!
//! Each deal is written by one script (`recover.lua`) with the same meta as
//! the catalog projector (version included), so later catalog events apply
//! on top and older ones are skipped; the projector waits on a lost deal's
//! events until then. Idempotency keys are not rebuilt (docs/runbook.md).

use crate::{catalog_projector::redis_status, order_writer};
use flashdeal_producers::KafkaSettings;
use flashdeal_schemas::{
    DealId, IntentEvent, OrderId, UserId,
    redis_keys::{self, DealKeys, ReservationRecord},
    topics,
};
use rdkafka::{
    Message, Offset, TopicPartitionList,
    consumer::{BaseConsumer, Consumer},
    error::KafkaError,
};
use redis::{Script, aio::ConnectionManager};
use sqlx::PgPool;
use std::{
    collections::{BTreeMap, HashMap, HashSet},
    sync::{Arc, LazyLock},
    time::{Duration, Instant},
};
use uuid::Uuid;

static RECOVER: LazyLock<Script> = LazyLock::new(|| Script::new(include_str!("recover.lua")));
static SETTLE: LazyLock<Script> = LazyLock::new(|| Script::new(include_str!("settle.lua")));

/// How long one broker request of the recovery may take.
const BROKER_TIMEOUT: Duration = Duration::from_secs(10);
/// How long reading the tail may take before the recovery gives up.
const TAIL_DEADLINE: Duration = Duration::from_secs(120);

/// Why the recovery stopped (nothing after the failing step was written).
#[derive(Debug, thiserror::Error)]
pub enum RecoverError {
    #[error("PostgreSQL: {0}")]
    Postgres(#[from] sqlx::Error),
    #[error("Redis: {0}")]
    Redis(#[from] redis::RedisError),
    #[error("reading {what} of {topic}: {source}", topic = topics::ORDERS_INTENTS)]
    Kafka {
        what: &'static str,
        source: KafkaError,
    },
    #[error("{topic} has no partitions on this broker", topic = topics::ORDERS_INTENTS)]
    NoPartitions,
    #[error(
        "the tail of {topic} was not read within {TAIL_DEADLINE:?} ({0} partition(s) unfinished)",
        topic = topics::ORDERS_INTENTS
    )]
    TailIncomplete(usize),
    #[error("the log reader task failed: {0}")]
    Join(#[from] tokio::task::JoinError),
}

fn broker_err(what: &'static str) -> impl FnOnce(KafkaError) -> RecoverError {
    move |source| RecoverError::Kafka { what, source }
}

/// What to rebuild and how.
#[derive(Clone, Debug)]
pub struct RecoverOptions {
    /// Only this deal (default: every catalog deal).
    pub deal: Option<DealId>,
    /// Compute and report, write nothing.
    pub dry_run: bool,
    /// Rebuild deals whose meta is still in Redis (overwrites live state:
    /// only with the gateways stopped).
    pub force: bool,
    /// How long to wait for intents still being produced: the producer's
    /// delivery timeout (`KafkaSettings::delivery_timeout`).
    pub tail_wait: Duration,
    /// How long restored idempotency keys live (the gateway's
    /// `FLASHDEAL_IDEMPOTENCY_TTL_SECS`).
    pub idempotency_ttl: Duration,
}

/// A reservation the log still holds: an intent of the unconsumed tail.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PendingIntent {
    pub order_id: OrderId,
    pub deal_id: DealId,
    pub partition: i32,
    pub offset: i64,
    pub record: ReservationRecord,
    pub idempotency_key: Option<String>,
}

/// The intents between the order-writer's committed offsets and the high
/// watermarks.
#[derive(Debug, Default)]
pub struct Tail {
    /// Messages read.
    pub read: usize,
    /// Messages appended during the delivery-timeout wait.
    pub grew_during_wait: i64,
    placed: HashMap<OrderId, PendingIntent>,
    expired: HashSet<OrderId>,
}

impl Tail {
    /// Adds one event at `partition`/`offset`, in log order (an order's
    /// intent and expiry share its key, so they share a partition). As in
    /// the order-writer, the first of an order's intent and expiry decides;
    /// the later one changes nothing. A redelivered intent keeps its first
    /// position.
    pub fn add(&mut self, partition: i32, offset: i64, event: IntentEvent) {
        self.read += 1;
        match event {
            // Expired before its intent arrived: the order-writer will
            // record it expired and ignore the intent.
            IntentEvent::Placed(p) if self.expired.contains(&p.order_id) => {}
            IntentEvent::Placed(p) => {
                self.placed.entry(p.order_id).or_insert(PendingIntent {
                    order_id: p.order_id,
                    deal_id: p.deal_id,
                    partition,
                    offset,
                    record: ReservationRecord {
                        user: p.user_id,
                        quantity: p.quantity,
                        unit_price_cents: p.unit_price_cents,
                        reserved_at_ms: p.reserved_at,
                        expires_at_ms: p.expires_at,
                    },
                    idempotency_key: p.idempotency_key,
                });
            }
            // An expiry decides only when it comes first: after its intent
            // the order-writer confirms the intent and ignores the expiry,
            // so the reservation is still held. (An intent consumed before
            // the tail has a row and counts as confirmed or expired there.)
            IntentEvent::Expired(e) => {
                if !self.placed.contains_key(&e.order_id) {
                    self.expired.insert(e.order_id);
                }
            }
        }
    }

    /// Intents of the tail with no expiry in it, in log order.
    pub fn unexpired(&self) -> Vec<&PendingIntent> {
        let mut v: Vec<&PendingIntent> = self
            .placed
            .values()
            .filter(|p| !self.expired.contains(&p.order_id))
            .collect();
        v.sort_by_key(|p| (p.partition, p.offset));
        v
    }
}

/// A deal as the catalog knows it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DealTerms {
    pub deal: DealId,
    pub stock: i64,
    /// The catalog status (`scheduled`, `paused`, `ended`).
    pub status: String,
    pub price_cents: i64,
    pub per_user_limit: i32,
    pub starts_at_ms: i64,
    pub ends_at_ms: i64,
    pub version: i64,
}

/// What one deal's Redis state is rebuilt to.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DealPlan {
    pub terms: DealTerms,
    pub confirmed: i64,
    pub pending: Vec<PendingIntent>,
    /// Units held per user: confirmed plus pending.
    pub users: BTreeMap<UserId, i64>,
    /// stock − confirmed − pending units (negative: oversold).
    pub remaining: i64,
}

impl DealPlan {
    /// Adds up a deal from its confirmed units per user and its pending
    /// intents (those with a row are not pending and must not be passed).
    pub fn new(
        terms: DealTerms,
        confirmed_by_user: &HashMap<UserId, i64>,
        pending: Vec<PendingIntent>,
    ) -> Self {
        let mut users: BTreeMap<UserId, i64> = confirmed_by_user
            .iter()
            .filter(|(_, u)| **u > 0)
            .map(|(k, v)| (*k, *v))
            .collect();
        for p in &pending {
            *users.entry(p.record.user).or_default() += i64::from(p.record.quantity);
        }
        let confirmed: i64 = confirmed_by_user.values().sum();
        let pending_units = pending_units(&pending);
        Self {
            remaining: terms.stock - confirmed - pending_units,
            terms,
            confirmed,
            pending,
            users,
        }
    }

    pub fn pending_units(&self) -> i64 {
        pending_units(&self.pending)
    }

    fn invocation(&self, force: bool) -> redis::ScriptInvocation<'static> {
        let t = &self.terms;
        let keys = DealKeys::new(t.deal);
        let mut call = RECOVER.prepare_invoke();
        call.key(keys.meta)
            .key(keys.stock)
            .key(keys.users)
            .key(keys.pending)
            .key(keys.reservations)
            .arg(if force { "1" } else { "0" })
            .arg(t.version)
            .arg(redis_status(&t.status))
            .arg(t.starts_at_ms)
            .arg(t.ends_at_ms)
            .arg(t.price_cents)
            .arg(t.per_user_limit)
            .arg(t.stock)
            .arg(self.remaining)
            .arg(self.users.len());
        for (user, units) in &self.users {
            call.arg(user.to_string()).arg(*units);
        }
        for p in &self.pending {
            call.arg(p.order_id.to_string())
                .arg(p.record.expires_at_ms)
                .arg(p.record.to_string());
        }
        call
    }
}

fn pending_units(pending: &[PendingIntent]) -> i64 {
    pending.iter().map(|p| i64::from(p.record.quantity)).sum()
}

/// What happened to one deal.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Outcome {
    Rebuilt,
    /// `--dry-run`: would have been rebuilt.
    WouldRebuild,
    /// Its meta is in Redis: it was not lost (use `--force` to rebuild).
    Present,
    /// Confirmed + pending exceed the stock: an incident, not written.
    Oversold,
}

impl Outcome {
    pub fn label(self) -> &'static str {
        match self {
            Self::Rebuilt => "rebuilt",
            Self::WouldRebuild => "would rebuild",
            Self::Present => "present, skipped",
            Self::Oversold => "OVERSOLD, not written",
        }
    }
}

/// One line of the report.
#[derive(Clone, Debug)]
pub struct DealReport {
    pub deal: DealId,
    pub outcome: Outcome,
    pub stock: i64,
    pub confirmed: i64,
    pub pending_orders: usize,
    pub pending_units: i64,
    pub remaining: i64,
}

/// What the recovery did.
#[derive(Debug, Default)]
pub struct Report {
    pub deals: Vec<DealReport>,
    /// Intents read from the unconsumed tail.
    pub tail_read: usize,
    pub tail_grew_during_wait: i64,
    /// Pending reservations the order-writer decided while the recovery ran,
    /// settled after the write.
    pub settled_after_write: usize,
    /// Idempotency keys restored (confirmed orders and pending intents).
    pub idempotency_keys: usize,
}

impl Report {
    /// Whether any deal could not be rebuilt.
    pub fn failed(&self) -> bool {
        self.deals.iter().any(|d| d.outcome == Outcome::Oversold)
    }
}

/// Rebuilds every lost deal (or `opts.deal`). `catalog` and `orders` may be
/// the same owner pool; each schema is read with its own queries.
#[tracing::instrument(skip_all, fields(deal_id = ?opts.deal, dry_run = opts.dry_run, force = opts.force))]
pub async fn recover(
    catalog: &PgPool,
    orders: &PgPool,
    redis: &mut ConnectionManager,
    kafka: &KafkaSettings,
    opts: &RecoverOptions,
) -> Result<Report, RecoverError> {
    let log = WriterOffsets::connect(kafka.clone()).await?;
    let tail = log.read_tail(opts.tail_wait).await?;
    tracing::info!(
        read = tail.read,
        grew_during_wait = tail.grew_during_wait,
        "read the unconsumed tail"
    );
    let deals: Vec<DealTerms> =
        sqlx::query_file!("../sql/queries/recover_deals.sql", opts.deal.map(|d| d.0))
            .fetch_all(catalog)
            .await?
            .into_iter()
            .map(|d| DealTerms {
                deal: DealId(d.deal_id),
                stock: i64::from(d.stock),
                status: d.status,
                price_cents: d.price_cents,
                per_user_limit: d.per_user_limit,
                starts_at_ms: d.starts_at.timestamp_millis(),
                ends_at_ms: d.ends_at.timestamp_millis(),
                version: d.version,
            })
            .collect();
    let ids: Vec<Uuid> = deals.iter().map(|d| d.deal.0).collect();
    let wanted: HashSet<DealId> = deals.iter().map(|d| d.deal).collect();
    let candidates: Vec<&PendingIntent> = tail
        .unexpired()
        .into_iter()
        .filter(|p| wanted.contains(&p.deal_id))
        .collect();

    // One snapshot: an order confirmed between two reads would otherwise
    // be counted twice or not at all.
    let mut tx = orders.begin().await?;
    sqlx::query_file!("../sql/queries/snapshot_read_only.sql")
        .execute(&mut *tx)
        .await?;
    let mut confirmed: HashMap<DealId, HashMap<UserId, i64>> = HashMap::new();
    for r in sqlx::query_file!("../sql/queries/recover_user_units.sql", &ids)
        .fetch_all(&mut *tx)
        .await?
    {
        confirmed
            .entry(DealId(r.deal_id))
            .or_default()
            .insert(UserId(r.user_id), r.units);
    }
    let mut keys: HashMap<DealId, Vec<(UserId, String, OrderId)>> = HashMap::new();
    for r in sqlx::query_file!("../sql/queries/recover_idempotency_keys.sql", &ids)
        .fetch_all(&mut *tx)
        .await?
    {
        keys.entry(DealId(r.deal_id)).or_default().push((
            UserId(r.user_id),
            r.idempotency_key,
            OrderId(r.order_id),
        ));
    }
    let candidate_ids: Vec<Uuid> = candidates.iter().map(|p| p.order_id.0).collect();
    let with_row: HashSet<Uuid> =
        sqlx::query_file!("../sql/queries/orders_present.sql", &candidate_ids)
            .fetch_all(&mut *tx)
            .await?
            .into_iter()
            .map(|r| r.order_id)
            .collect();
    tx.commit().await?;

    let mut pending_by_deal: HashMap<DealId, Vec<PendingIntent>> = HashMap::new();
    for p in candidates
        .into_iter()
        .filter(|p| !with_row.contains(&p.order_id.0))
    {
        pending_by_deal
            .entry(p.deal_id)
            .or_default()
            .push(p.clone());
    }

    let mut report = Report {
        tail_read: tail.read,
        tail_grew_during_wait: tail.grew_during_wait,
        ..Report::default()
    };
    let mut written: Vec<PendingIntent> = Vec::new();
    let empty = HashMap::new();
    for terms in deals {
        let deal = terms.deal;
        let plan = DealPlan::new(
            terms,
            confirmed.get(&deal).unwrap_or(&empty),
            pending_by_deal.remove(&deal).unwrap_or_default(),
        );
        let present: bool = redis::cmd("EXISTS")
            .arg(DealKeys::new(deal).meta)
            .query_async::<i64>(redis)
            .await?
            == 1;
        let outcome = if present && !opts.force {
            Outcome::Present
        } else if plan.remaining < 0 {
            tracing::error!(deal_id = %deal, remaining = plan.remaining, "confirmed and pending units exceed the stock");
            Outcome::Oversold
        } else if opts.dry_run {
            Outcome::WouldRebuild
        } else {
            // Keys first: until the meta exists the gateway answers 503, so
            // a retry can never slip between the deal and its keys.
            let deal_keys = keys.remove(&deal).unwrap_or_default();
            report.idempotency_keys +=
                restore_keys(redis, deal, &deal_keys, &plan.pending, opts.idempotency_ttl).await?;
            let applied: i64 = plan.invocation(opts.force).invoke_async(redis).await?;
            if applied == 1 {
                written.extend(plan.pending.iter().cloned());
                Outcome::Rebuilt
            } else {
                // The meta appeared since the check: not lost after all.
                Outcome::Present
            }
        };
        tracing::info!(deal_id = %deal, outcome = outcome.label(), confirmed = plan.confirmed, pending = plan.pending_units(), remaining = plan.remaining, "deal");
        report.deals.push(DealReport {
            deal,
            outcome,
            stock: plan.terms.stock,
            confirmed: plan.confirmed,
            pending_orders: plan.pending.len(),
            pending_units: plan.pending_units(),
            remaining: plan.remaining,
        });
    }
    if !written.is_empty() {
        record_accepted(redis, &written).await?;
        report.settled_after_write = settle_decided(orders, redis, &log, &written).await?;
    }
    log.close();
    Ok(report)
}

/// Restores `{deal:D}:idem:U:K` → order id for the deal's confirmed orders
/// and pending intents, so a client retrying with its key after the loss
/// gets its first order back instead of a second one. `SET NX`: a key the
/// gateway wrote since is kept. Returns how many keys were written.
async fn restore_keys(
    redis: &mut ConnectionManager,
    deal: DealId,
    confirmed: &[(UserId, String, OrderId)],
    pending: &[PendingIntent],
    ttl: Duration,
) -> Result<usize, RecoverError> {
    let deal_keys = DealKeys::new(deal);
    let all: Vec<(String, OrderId)> = confirmed
        .iter()
        .map(|(user, key, order)| (deal_keys.idempotency(*user, key), *order))
        .chain(pending.iter().filter_map(|p| {
            let key = p.idempotency_key.as_deref()?;
            Some((deal_keys.idempotency(p.record.user, key), p.order_id))
        }))
        .collect();
    if all.is_empty() {
        return Ok(0);
    }
    let mut pipe = redis::pipe();
    for (key, order) in &all {
        pipe.cmd("SET")
            .arg(key)
            .arg(order.to_string())
            .arg("NX")
            .arg("EX")
            .arg(ttl.as_secs().max(1))
            .ignore();
    }
    pipe.query_async::<()>(redis).await?;
    Ok(all.len())
}

/// `order:{id}` was lost too: pending orders show as accepted again (an
/// already projected verdict is kept, as the gateway does).
async fn record_accepted(
    redis: &mut ConnectionManager,
    pending: &[PendingIntent],
) -> Result<(), RecoverError> {
    let mut pipe = redis::pipe();
    for p in pending {
        let key = redis_keys::order_status(p.order_id);
        pipe.hset_nx(&key, "status", "accepted")
            .ignore()
            .hset_multiple(
                &key,
                &[
                    ("user_id", p.record.user.to_string()),
                    ("deal_id", p.deal_id.to_string()),
                    ("quantity", p.record.quantity.to_string()),
                ],
            )
            .ignore()
            .expire(&key, redis_keys::ORDER_STATUS_TTL_SECS)
            .ignore();
    }
    pipe.query_async::<()>(redis).await?;
    Ok(())
}

/// Settles the written reservations the order-writer decided while the
/// recovery ran: a row says confirmed or expired; no row behind its
/// committed offset means rejected. Returns how many were settled here
/// (the projector may have been first for some).
async fn settle_decided(
    orders: &PgPool,
    redis: &mut ConnectionManager,
    log: &WriterOffsets,
    written: &[PendingIntent],
) -> Result<usize, RecoverError> {
    // Offsets first: a row is committed before its offset.
    let committed = log.committed().await?;
    let ids: Vec<Uuid> = written.iter().map(|p| p.order_id.0).collect();
    let rows: HashMap<Uuid, String> = sqlx::query_file!("../sql/queries/orders_present.sql", &ids)
        .fetch_all(orders)
        .await?
        .into_iter()
        .map(|r| (r.order_id, r.status))
        .collect();
    let mut settled = 0;
    for p in written {
        let processed = committed
            .get(&p.partition)
            .is_some_and(|next| p.offset < *next);
        let verdict = match rows.get(&p.order_id.0).map(String::as_str) {
            Some("confirmed") => "confirmed",
            Some(_) => "released",
            None if processed => "released",
            None => continue,
        };
        let keys = DealKeys::new(p.deal_id);
        let mut call = SETTLE.prepare_invoke();
        call.key(&keys.pending)
            .key(&keys.reservations)
            .key(&keys.stock)
            .key(&keys.users)
            .arg(p.order_id.to_string())
            .arg(verdict)
            .arg(p.record.user.to_string())
            .arg(p.record.quantity);
        let removed: i64 = call.invoke_async(redis).await?;
        if removed == 1 {
            tracing::info!(order_id = %p.order_id, deal_id = %p.deal_id, verdict, "settled a reservation decided during the recovery");
            settled += 1;
        }
    }
    Ok(settled)
}

/// The order-writer group's view of `orders.intents`, read without joining
/// the group.
struct WriterOffsets {
    kafka: KafkaSettings,
    client: Arc<BaseConsumer>,
    partitions: Vec<i32>,
}

impl WriterOffsets {
    async fn connect(kafka: KafkaSettings) -> Result<Self, RecoverError> {
        let k = kafka.clone();
        tokio::task::spawn_blocking(move || {
            let client: BaseConsumer = k
                .consumer_config(order_writer::GROUP, "flashdeal-recover-redis")
                .create()
                .map_err(broker_err("a client"))?;
            let md = client
                .fetch_metadata(Some(topics::ORDERS_INTENTS), BROKER_TIMEOUT)
                .map_err(broker_err("the metadata"))?;
            let mut partitions: Vec<i32> = md
                .topics()
                .iter()
                .flat_map(|t| t.partitions().iter().map(|p| p.id()))
                .collect();
            partitions.sort_unstable();
            if partitions.is_empty() {
                return Err(RecoverError::NoPartitions);
            }
            Ok(Self {
                kafka: kafka.clone(),
                client: Arc::new(client),
                partitions,
            })
        })
        .await?
    }

    /// Per partition, the next offset the order-writer group will read
    /// (the low watermark when it has committed nothing).
    async fn committed(&self) -> Result<HashMap<i32, i64>, RecoverError> {
        let (client, partitions) = (Arc::clone(&self.client), self.partitions.clone());
        tokio::task::spawn_blocking(move || committed_blocking(&client, &partitions)).await?
    }

    /// High watermarks now, per partition.
    fn highs(client: &BaseConsumer, partitions: &[i32]) -> Result<HashMap<i32, i64>, RecoverError> {
        partitions
            .iter()
            .map(|p| {
                client
                    .fetch_watermarks(topics::ORDERS_INTENTS, *p, BROKER_TIMEOUT)
                    .map(|(_, high)| (*p, high))
                    .map_err(broker_err("the high watermarks"))
            })
            .collect()
    }

    /// Reads from the committed offsets to the high watermarks as they are
    /// after `wait`.
    async fn read_tail(&self, wait: Duration) -> Result<Tail, RecoverError> {
        let (client, partitions) = (Arc::clone(&self.client), self.partitions.clone());
        let start = tokio::task::spawn_blocking(move || {
            Ok::<_, RecoverError>((
                committed_blocking(&client, &partitions)?,
                Self::highs(&client, &partitions)?,
            ))
        });
        let (from, first_high) = start.await??;
        tracing::info!(
            wait_ms = wait.as_millis() as u64,
            "waiting for intents still in flight"
        );
        tokio::time::sleep(wait).await;
        let (client, partitions) = (Arc::clone(&self.client), self.partitions.clone());
        let high = tokio::task::spawn_blocking(move || Self::highs(&client, &partitions)).await??;
        let grew = high.values().sum::<i64>() - first_high.values().sum::<i64>();
        let kafka = self.kafka.clone();
        let mut tail =
            tokio::task::spawn_blocking(move || read_range(&kafka, &from, &high)).await??;
        tail.grew_during_wait = grew;
        Ok(tail)
    }

    /// librdkafka can block for a while dropping a client that fetched
    /// committed offsets: drop it off the async runtime, unwaited.
    fn close(self) {
        let client = self.client;
        std::thread::spawn(move || drop(client));
    }
}

fn committed_blocking(
    client: &BaseConsumer,
    partitions: &[i32],
) -> Result<HashMap<i32, i64>, RecoverError> {
    let mut tpl = TopicPartitionList::new();
    for p in partitions {
        tpl.add_partition(topics::ORDERS_INTENTS, *p);
    }
    let got = client
        .committed_offsets(tpl, BROKER_TIMEOUT)
        .map_err(broker_err("the order-writer's committed offsets"))?;
    let mut out = HashMap::new();
    for p in partitions {
        let next = match got
            .find_partition(topics::ORDERS_INTENTS, *p)
            .map(|e| e.offset())
        {
            Some(Offset::Offset(o)) => o,
            _ => {
                client
                    .fetch_watermarks(topics::ORDERS_INTENTS, *p, BROKER_TIMEOUT)
                    .map_err(broker_err("the low watermarks"))?
                    .0
            }
        };
        out.insert(*p, next);
    }
    Ok(out)
}

/// Reads `[from, to)` of every partition with a throwaway, never-committing
/// reader. Undecodable messages are the order-writer's to dead-letter.
fn read_range(
    kafka: &KafkaSettings,
    from: &HashMap<i32, i64>,
    to: &HashMap<i32, i64>,
) -> Result<Tail, RecoverError> {
    let mut tail = Tail::default();
    let mut tpl = TopicPartitionList::new();
    let mut open: HashMap<i32, i64> = HashMap::new();
    for (p, start) in from {
        let end = to.get(p).copied().unwrap_or(*start);
        if *start < end {
            tpl.add_partition_offset(topics::ORDERS_INTENTS, *p, Offset::Offset(*start))
                .map_err(broker_err("a partition"))?;
            open.insert(*p, end);
        }
    }
    if open.is_empty() {
        return Ok(tail);
    }
    let reader: BaseConsumer = kafka
        .consumer_config(
            &format!("flashdeal-recover-redis-{}", Uuid::now_v7()),
            "flashdeal-recover-redis-reader",
        )
        .create()
        .map_err(broker_err("a reader"))?;
    reader.assign(&tpl).map_err(broker_err("an assignment"))?;
    let deadline = Instant::now() + TAIL_DEADLINE;
    while !open.is_empty() {
        if Instant::now() >= deadline {
            return Err(RecoverError::TailIncomplete(open.len()));
        }
        let Some(msg) = reader.poll(Duration::from_millis(200)) else {
            continue;
        };
        let msg = msg.map_err(broker_err("a message"))?;
        let (p, o) = (msg.partition(), msg.offset());
        let Some(end) = open.get(&p).copied() else {
            continue;
        };
        if o < end {
            match msg.payload().map(IntentEvent::decode) {
                Some(Ok(event)) => tail.add(p, o, event),
                _ => {
                    tracing::warn!(partition = p, offset = o, "undecodable intent skipped");
                    tail.read += 1;
                }
            }
        }
        if o + 1 >= end {
            open.remove(&p);
        }
    }
    Ok(tail)
}

#[cfg(test)]
mod tests {
    use super::*;
    use flashdeal_schemas::{OrderExpired, OrderPlaced};

    fn placed(deal: DealId, user: UserId, quantity: i32) -> OrderPlaced {
        OrderPlaced {
            event_id: Uuid::now_v7(),
            order_id: OrderId::new_v7(),
            user_id: user,
            deal_id: deal,
            quantity,
            unit_price_cents: 1999,
            idempotency_key: None,
            reserved_at: 1_700_000_000_000,
            expires_at: 1_700_000_600_000,
        }
    }

    fn expiry_of(p: &OrderPlaced) -> OrderExpired {
        OrderExpired {
            event_id: Uuid::now_v7(),
            order_id: p.order_id,
            user_id: p.user_id,
            deal_id: p.deal_id,
            quantity: p.quantity,
            unit_price_cents: p.unit_price_cents,
            reserved_at: p.reserved_at,
            expires_at: p.expires_at,
            occurred_at: p.expires_at,
        }
    }

    fn terms(deal: DealId, stock: i64) -> DealTerms {
        DealTerms {
            deal,
            stock,
            status: "scheduled".into(),
            price_cents: 1999,
            per_user_limit: 2,
            starts_at_ms: 0,
            ends_at_ms: i64::MAX,
            version: 3,
        }
    }

    /// The order-writer's rule: the first of intent and expiry decides.
    #[test]
    fn the_first_of_intent_and_expiry_in_the_tail_decides() {
        let (deal, user) = (DealId::new_v7(), UserId::new_v7());
        let (kept, late, early) = (
            placed(deal, user, 1),
            placed(deal, user, 1),
            placed(deal, user, 2),
        );
        let mut tail = Tail::default();
        tail.add(0, 5, IntentEvent::Expired(expiry_of(&early)));
        tail.add(0, 6, IntentEvent::Placed(early));
        tail.add(1, 3, IntentEvent::Placed(kept.clone()));
        tail.add(2, 7, IntentEvent::Placed(late.clone()));
        tail.add(2, 8, IntentEvent::Expired(expiry_of(&late)));
        // A redelivery (the gateway republishing a pending order) keeps the first position.
        tail.add(1, 9, IntentEvent::Placed(kept.clone()));
        let pending = tail.unexpired();
        assert_eq!(tail.read, 6);
        // `early` expired first: nothing held. `late`'s intent came first:
        // it will be confirmed, so its reservation is still held.
        assert_eq!(
            pending
                .iter()
                .map(|p| (p.order_id, p.partition, p.offset))
                .collect::<Vec<_>>(),
            vec![(kept.order_id, 1, 3), (late.order_id, 2, 7)]
        );
        assert_eq!(pending[0].record.expires_at_ms, kept.expires_at);
    }

    #[test]
    fn stock_is_conserved_and_users_hold_confirmed_plus_pending() {
        let deal = DealId::new_v7();
        let (a, b, c) = (UserId::new_v7(), UserId::new_v7(), UserId::new_v7());
        let confirmed = HashMap::from([(a, 2), (b, 1)]);
        let mut tail = Tail::default();
        tail.add(0, 0, IntentEvent::Placed(placed(deal, b, 1)));
        tail.add(0, 1, IntentEvent::Placed(placed(deal, c, 2)));
        let pending: Vec<PendingIntent> = tail.unexpired().into_iter().cloned().collect();
        let plan = DealPlan::new(terms(deal, 10), &confirmed, pending);
        assert_eq!(
            (plan.confirmed, plan.pending_units(), plan.remaining),
            (3, 3, 4)
        );
        assert_eq!(
            plan.terms.stock,
            plan.remaining + plan.confirmed + plan.pending_units()
        );
        assert_eq!(
            plan.users,
            BTreeMap::from([(a, 2), (b, 2), (c, 2)]),
            "per-user counts"
        );
        let over = DealPlan::new(terms(deal, 4), &confirmed, plan.pending.clone());
        assert!(
            over.remaining < 0,
            "an oversell shows as negative remaining"
        );
    }
}
