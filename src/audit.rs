//! `flashdeal audit`: do the stores agree?
//!
//! Compares, per deal, the catalog (stock, sold_count, terms), the orders
//! store (confirmed units, per-user units, the `orders.deals` read model,
//! every order's status) and Redis (deal meta, remaining stock, pending
//! reservations, order status projection). Each difference comes with a
//! recommended fix (docs/runbook.md explains them). Reads each schema with
//! its own query; nothing joins across schemas. Meaningful at quiescence:
//! while orders are in flight, `--wait` re-checks until the stores agree.

use anyhow::Context;
use flashdeal_schemas::{
    DealId, OrderId,
    redis_keys::{self, DealKeys, ReservationRecord},
};
use redis::aio::ConnectionManager;
use sqlx::PgPool;
use std::{collections::HashMap, fmt::Write as _};
use uuid::Uuid;

/// One disagreement between two stores.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Difference {
    pub kind: &'static str,
    pub deal: DealId,
    pub expected: String,
    pub actual: String,
    pub fix: String,
}

/// The kinds of difference, as the gauge's `kind` label and the runbook's headings.
pub mod kind {
    pub const MISSING_IN_REDIS: &str = "deal_missing_in_redis";
    pub const META: &str = "deal_meta_mismatch";
    pub const CONSERVATION: &str = "stock_conservation";
    pub const OVERSOLD: &str = "oversold";
    pub const PER_USER_LIMIT: &str = "per_user_limit";
    pub const SOLD_COUNT: &str = "sold_count";
    pub const READ_MODEL: &str = "read_model";
    pub const ORDER_STATUS: &str = "order_status";
    pub const STALE_PENDING: &str = "stale_pending";
    pub const ALL: [&str; 9] = [
        MISSING_IN_REDIS,
        META,
        CONSERVATION,
        OVERSOLD,
        PER_USER_LIMIT,
        SOLD_COUNT,
        READ_MODEL,
        ORDER_STATUS,
        STALE_PENDING,
    ];
}

/// A deal's hot-path state in Redis.
#[derive(Debug, Default)]
struct RedisDeal {
    meta: HashMap<String, String>,
    remaining: Option<i64>,
    pending_units: i64,
    pending_expired: usize,
}

/// Audits every deal (or one) and returns the differences found.
pub async fn run(
    pg: &PgPool,
    redis: &mut ConnectionManager,
    only: Option<DealId>,
    now_ms: i64,
) -> anyhow::Result<Vec<Difference>> {
    let deals = sqlx::query_file!("sql/queries/audit_deals.sql", only.map(|d| d.0))
        .fetch_all(pg)
        .await
        .context("reading catalog.deals")?;
    let ids: Vec<Uuid> = deals.iter().map(|d| d.deal_id).collect();
    let confirmed: HashMap<Uuid, i64> =
        sqlx::query_file!("sql/queries/audit_confirmed_units.sql", &ids)
            .fetch_all(pg)
            .await?
            .into_iter()
            .map(|r| (r.deal_id, r.units))
            .collect();
    let most_per_user: HashMap<Uuid, i64> =
        sqlx::query_file!("sql/queries/audit_user_units.sql", &ids)
            .fetch_all(pg)
            .await?
            .into_iter()
            .map(|r| (r.deal_id, r.units))
            .collect();
    let read_model: HashMap<Uuid, (i64, i32, i64)> =
        sqlx::query_file!("sql/queries/audit_read_model.sql", &ids)
            .fetch_all(pg)
            .await?
            .into_iter()
            .map(|r| (r.deal_id, (r.price_cents, r.per_user_limit, r.version)))
            .collect();
    let orders = sqlx::query_file!(
        "sql/queries/audit_orders.sql",
        &ids,
        // A margin below the TTL: the projection expires that long after
        // the projector wrote it, a little after the row was created.
        (redis_keys::ORDER_STATUS_TTL_SECS - 3600) as f64
    )
    .fetch_all(pg)
    .await?;
    let projected = order_statuses(redis, orders.iter().map(|o| OrderId(o.order_id))).await?;

    let mut out = Vec::new();
    for d in &deals {
        let deal = DealId(d.deal_id);
        let keys = DealKeys::new(deal);
        let r = redis_deal(redis, &keys, now_ms).await?;
        let mut diff = |kind, expected: String, actual: String, fix: String| {
            out.push(Difference {
                kind,
                deal,
                expected,
                actual,
                fix,
            })
        };
        let sold = confirmed.get(&d.deal_id).copied().unwrap_or(0);
        let stock = i64::from(d.stock);
        if sold > stock {
            diff(
                kind::OVERSOLD,
                format!("confirmed <= {stock}"),
                format!("confirmed = {sold}"),
                "incident: stop the deal (POST /admin/deals/{id}/pause) and refund the excess"
                    .into(),
            );
        }
        if let Some(most) = most_per_user.get(&d.deal_id)
            && *most > i64::from(d.per_user_limit)
        {
            diff(
                kind::PER_USER_LIMIT,
                format!("<= {} per user", d.per_user_limit),
                format!("{most} for one user"),
                "incident: cancel the excess orders of that user".into(),
            );
        }
        if i64::from(d.sold_count) != sold {
            diff(
                kind::SOLD_COUNT,
                format!("sold_count = {sold} (confirmed in orders)"),
                format!("sold_count = {}", d.sold_count),
                "check lag of group catalog-sold-count; if it is 0, replay orders.status into it from earliest (idempotent)".into(),
            );
        }
        match read_model.get(&d.deal_id) {
            None => diff(
                kind::READ_MODEL,
                format!("orders.deals has version {}", d.version),
                "absent".into(),
                "check lag of group order-writer-deals; replay catalog.events into it (idempotent)"
                    .into(),
            ),
            Some((price, limit, version))
                if *price != d.price_cents || *limit != d.per_user_limit || *version != d.version =>
            {
                diff(
                    kind::READ_MODEL,
                    format!("price {} limit {} version {}", d.price_cents, d.per_user_limit, d.version),
                    format!("price {price} limit {limit} version {version}"),
                    "check lag of group order-writer-deals; replay catalog.events into it (idempotent)".into(),
                )
            }
            Some(_) => {}
        }
        if r.meta.is_empty() {
            diff(
                kind::MISSING_IN_REDIS,
                format!("{} present", keys.meta),
                "absent".into(),
                "Redis lost the deal: rebuild it from PostgreSQL and the log (docs/runbook.md, Redis loss)".into(),
            );
            continue;
        }
        let expected_meta = [
            (
                "status",
                flashdeal_consumers::catalog_projector::redis_status(&d.status).to_owned(),
            ),
            ("price_cents", d.price_cents.to_string()),
            ("per_user_limit", d.per_user_limit.to_string()),
            ("stock", d.stock.to_string()),
            ("starts_at", d.starts_at.timestamp_millis().to_string()),
            ("ends_at", d.ends_at.timestamp_millis().to_string()),
            ("version", d.version.to_string()),
        ];
        for (field, want) in expected_meta {
            let got = r.meta.get(field).map_or("absent", String::as_str);
            if got != want {
                diff(
                    kind::META,
                    format!("{}.{field} = {want}", keys.meta),
                    got.to_owned(),
                    "check lag of group catalog-projector; if it is 0, re-project catalog.events (docs/runbook.md)".into(),
                );
            }
        }
        let remaining = r.remaining.unwrap_or(0);
        let accounted = remaining + sold + r.pending_units;
        if accounted != stock {
            diff(
                kind::CONSERVATION,
                format!(
                    "stock {stock} = remaining + confirmed {sold} + pending {}",
                    r.pending_units
                ),
                format!(
                    "remaining {} (sum {accounted})",
                    r.remaining.map_or("absent".to_owned(), |v| v.to_string())
                ),
                format!(
                    "at quiescence: redis-cli SET '{}' {}",
                    keys.stock,
                    stock - sold - r.pending_units
                ),
            );
        }
        if r.pending_expired > 0 {
            diff(
                kind::STALE_PENDING,
                "no reservation pending past its expiry".into(),
                format!("{} pending past expiry", r.pending_expired),
                "make sure a reconciler runs (flashdeal reconciler)".into(),
            );
        }
        let (mut wrong, mut example) = (0usize, None);
        for o in orders.iter().filter(|o| o.deal_id == d.deal_id) {
            let got = projected.get(&OrderId(o.order_id)).map(String::as_str);
            if got != Some(o.status.as_str()) {
                wrong += 1;
                example.get_or_insert_with(|| {
                    format!(
                        "order:{} = {}, PostgreSQL {}",
                        o.order_id,
                        got.unwrap_or("absent"),
                        o.status
                    )
                });
            }
        }
        if let Some(example) = example {
            diff(
                kind::ORDER_STATUS,
                "every order's status projected".into(),
                format!("{wrong} differ, e.g. {example}"),
                "check lag of group projector; replay orders.status into it (idempotent)".into(),
            );
        }
    }
    Ok(out)
}

async fn redis_deal(
    redis: &mut ConnectionManager,
    keys: &DealKeys,
    now_ms: i64,
) -> anyhow::Result<RedisDeal> {
    type Read = (
        HashMap<String, String>,
        Option<i64>,
        Vec<(String, i64)>,
        HashMap<String, String>,
    );
    let (meta, remaining, pending, resv): Read = redis::pipe()
        .hgetall(&keys.meta)
        .get(&keys.stock)
        .zrange_withscores(&keys.pending, 0, -1)
        .hgetall(&keys.reservations)
        .query_async(redis)
        .await
        .context("reading the deal from Redis")?;
    let pending_units = pending
        .iter()
        .filter_map(|(order, _)| resv.get(order))
        .filter_map(|rec| rec.parse::<ReservationRecord>().ok())
        .map(|rec| i64::from(rec.quantity))
        .sum();
    let pending_expired = pending
        .iter()
        .filter(|(_, expires)| *expires < now_ms)
        .count();
    Ok(RedisDeal {
        meta,
        remaining,
        pending_units,
        pending_expired,
    })
}

/// The projected status of each order (absent when Redis has none).
async fn order_statuses(
    redis: &mut ConnectionManager,
    orders: impl Iterator<Item = OrderId>,
) -> anyhow::Result<HashMap<OrderId, String>> {
    let orders: Vec<OrderId> = orders.collect();
    let mut out = HashMap::with_capacity(orders.len());
    for chunk in orders.chunks(1000) {
        let mut pipe = redis::pipe();
        for o in chunk {
            pipe.hget(redis_keys::order_status(*o), "status");
        }
        let got: Vec<Option<String>> = pipe.query_async(redis).await?;
        out.extend(chunk.iter().zip(got).filter_map(|(o, s)| Some((*o, s?))));
    }
    Ok(out)
}

/// The differences as a table, one row per difference, fix underneath.
pub fn render(diffs: &[Difference]) -> String {
    let mut s = String::new();
    if diffs.is_empty() {
        return "no differences: catalog, orders, Redis and the projections agree\n".to_owned();
    }
    let _ = writeln!(s, "{:<22} {:<36} {:<44} ACTUAL", "KIND", "DEAL", "EXPECTED");
    for d in diffs {
        let _ = writeln!(
            s,
            "{:<22} {:<36} {:<44} {}",
            d.kind, d.deal, d.expected, d.actual
        );
        let _ = writeln!(s, "{:<22} fix: {}", "", d.fix);
    }
    let _ = writeln!(s, "{} difference(s)", diffs.len());
    s
}

/// Sets `flashdeal_inconsistencies{kind}` for every kind (0 when clean).
pub fn export(diffs: &[Difference]) {
    for k in kind::ALL {
        let n = diffs.iter().filter(|d| d.kind == k).count();
        metrics::gauge!("flashdeal_inconsistencies", "kind" => k).set(n as f64);
    }
}

/// Flags of `flashdeal audit`.
#[derive(clap::Args, Debug, Clone)]
pub struct AuditArgs {
    /// Audit only this deal.
    #[arg(long)]
    pub deal: Option<DealId>,
    /// Re-check for up to this many seconds until the stores agree (use it
    /// right after a burst: in-flight orders are not differences).
    #[arg(long, default_value_t = 0)]
    pub wait_secs: u64,
    /// Keep auditing every this many seconds and export the
    /// `flashdeal_inconsistencies` gauge on --metrics-addr.
    #[arg(long, env = "FLASHDEAL_AUDIT_WATCH_SECS")]
    pub watch_secs: Option<u64>,
    /// Where `--watch-secs` serves `/metrics`.
    #[arg(
        long,
        env = "FLASHDEAL_AUDIT_METRICS_ADDR",
        default_value = "127.0.0.1:9464"
    )]
    pub metrics_addr: std::net::SocketAddr,
}

/// `flashdeal audit`: prints the table; fails when differences remain.
pub async fn command(config: crate::config::Config, args: AuditArgs) -> anyhow::Result<()> {
    let pg = crate::database::pool(&config.database_url, 2).await?;
    let mut redis = crate::roles::redis(&config.redis_url).await?;
    if let Some(every) = args.watch_secs {
        return watch(
            &pg,
            &mut redis,
            &args,
            std::time::Duration::from_secs(every.max(1)),
        )
        .await;
    }
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(args.wait_secs);
    let diffs = loop {
        let diffs = run(
            &pg,
            &mut redis,
            args.deal,
            flashdeal_schemas::events::now_millis(),
        )
        .await?;
        if diffs.is_empty() || std::time::Instant::now() >= deadline {
            break diffs;
        }
        eprintln!(
            "{} difference(s); re-checking until the stores settle",
            diffs.len()
        );
        tokio::time::sleep(std::time::Duration::from_millis(500)).await;
    };
    print!("{}", render(&diffs));
    if diffs.is_empty() {
        Ok(())
    } else {
        anyhow::bail!(
            "{} difference(s) between the stores (docs/runbook.md)",
            diffs.len()
        )
    }
}

async fn watch(
    pg: &PgPool,
    redis: &mut ConnectionManager,
    args: &AuditArgs,
    every: std::time::Duration,
) -> anyhow::Result<()> {
    crate::roles::serve_metrics(Some(args.metrics_addr)).await?;
    println!(
        "auditing every {}s; gauge on http://{}/metrics",
        every.as_secs(),
        args.metrics_addr
    );
    let shutdown = crate::roles::shutdown_on_signal();
    while !shutdown.is_cancelled() {
        match run(
            pg,
            redis,
            args.deal,
            flashdeal_schemas::events::now_millis(),
        )
        .await
        {
            Ok(diffs) => {
                export(&diffs);
                tracing::info!(differences = diffs.len(), "audit");
            }
            Err(e) => tracing::warn!(error = format!("{e:#}"), "audit failed"),
        }
        tokio::select! {
            _ = shutdown.cancelled() => {}
            _ = tokio::time::sleep(every) => {}
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_clean_audit_says_so_and_a_difference_carries_its_fix() {
        assert!(render(&[]).starts_with("no differences"));
        let d = Difference {
            kind: kind::CONSERVATION,
            deal: DealId::new_v7(),
            expected: "stock 10 = remaining + confirmed 3 + pending 0".into(),
            actual: "remaining 6 (sum 9)".into(),
            fix: "at quiescence: redis-cli SET 'k' 7".into(),
        };
        let table = render(std::slice::from_ref(&d));
        assert!(table.contains("stock_conservation") && table.contains("fix: at quiescence"));
        assert!(table.ends_with("1 difference(s)\n"));
    }
}
