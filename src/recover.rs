//! `flashdeal recover-redis`: wiring for
//! [`flashdeal_consumers::recover`], which rebuilds the deals Redis lost
//! (it keeps nothing on disk) from PostgreSQL and the unconsumed tail of
//! `orders.intents`. Until then the gateway answers 503 for those deals;
//! once a deal's meta is back, it takes orders again with nothing
//! restarted. The procedure and its limits are in docs/runbook.md
//! ("Redis loss").

use anyhow::Context;
use flashdeal_consumers::recover::{self, Outcome, RecoverOptions, Report};
use flashdeal_schemas::DealId;
use std::fmt::Write as _;

/// Flags of `flashdeal recover-redis`.
#[derive(clap::Args, Debug, Clone)]
pub struct RecoverArgs {
    /// Rebuild only this deal.
    #[arg(long)]
    pub deal: Option<DealId>,
    /// Compute and print what would be written; write nothing.
    #[arg(long)]
    pub dry_run: bool,
    /// Also rebuild deals whose meta is still in Redis (overwrites live
    /// state: stop the gateways first).
    #[arg(long)]
    pub force: bool,
    /// How long restored idempotency keys live (as the gateway's setting).
    #[arg(long, env = "FLASHDEAL_IDEMPOTENCY_TTL_SECS", default_value_t = 86_400)]
    pub idempotency_ttl_secs: u64,
}

/// Runs the recovery and prints a table per deal and a summary; fails when
/// a deal could not be rebuilt.
pub async fn command(config: crate::config::Config, args: RecoverArgs) -> anyhow::Result<()> {
    // The owner's pool: the catalog and orders schemas are each read with
    // their own queries.
    let pg = crate::database::pool(&config.database_url, 2).await?;
    // The intents' tail may be Confluent-framed: decode through the registry.
    crate::roles::encoding(&config).await?;
    let mut redis = crate::roles::redis(&config.redis_url).await?;
    let kafka = config.kafka();
    let opts = RecoverOptions {
        deal: args.deal,
        dry_run: args.dry_run,
        force: args.force,
        tail_wait: kafka.delivery_timeout,
        idempotency_ttl: std::time::Duration::from_secs(args.idempotency_ttl_secs),
    };
    eprintln!(
        "reading the unconsumed tail of orders.intents (waiting {:?} for intents in flight)",
        opts.tail_wait
    );
    let report = recover::recover(&pg, &pg, &mut redis, &kafka, &opts)
        .await
        .context("recovering Redis")?;
    print!("{}", render(&report, args.dry_run));
    if report.failed() {
        anyhow::bail!("some deals were not rebuilt (see the table; run `flashdeal audit`)");
    }
    if args.deal.is_some() && report.deals.is_empty() {
        anyhow::bail!("the catalog has no such deal");
    }
    Ok(())
}

/// One row per deal, then a summary.
pub fn render(report: &Report, dry_run: bool) -> String {
    let mut s = String::new();
    let _ = writeln!(
        s,
        "{:<36} {:<22} {:>8} {:>10} {:>14} {:>10}",
        "DEAL", "OUTCOME", "STOCK", "CONFIRMED", "PENDING", "REMAINING"
    );
    for d in &report.deals {
        let _ = writeln!(
            s,
            "{:<36} {:<22} {:>8} {:>10} {:>14} {:>10}",
            d.deal.to_string(),
            d.outcome.label(),
            d.stock,
            d.confirmed,
            format!("{} ({} orders)", d.pending_units, d.pending_orders),
            d.remaining
        );
    }
    let count = |o: Outcome| report.deals.iter().filter(|d| d.outcome == o).count();
    let rebuilt = if dry_run {
        format!("{} would be rebuilt", count(Outcome::WouldRebuild))
    } else {
        format!("{} rebuilt", count(Outcome::Rebuilt))
    };
    let _ = writeln!(
        s,
        "{} deal(s): {rebuilt}, {} present (skipped), {} oversold (not written); \
         tail: {} intent(s) read, {} appended during the wait; {} reservation(s) settled after the write; \
         {} idempotency key(s) restored",
        report.deals.len(),
        count(Outcome::Present),
        count(Outcome::Oversold),
        report.tail_read,
        report.tail_grew_during_wait,
        report.settled_after_write,
        report.idempotency_keys
    );
    s
}

#[cfg(test)]
mod tests {
    use super::*;
    use flashdeal_consumers::recover::DealReport;

    #[test]
    fn the_table_shows_each_deal_and_the_summary_counts_outcomes() {
        let report = Report {
            deals: vec![
                DealReport {
                    deal: DealId::new_v7(),
                    outcome: Outcome::Rebuilt,
                    stock: 50,
                    confirmed: 38,
                    pending_orders: 2,
                    pending_units: 2,
                    remaining: 10,
                },
                DealReport {
                    deal: DealId::new_v7(),
                    outcome: Outcome::Present,
                    stock: 5,
                    confirmed: 0,
                    pending_orders: 0,
                    pending_units: 0,
                    remaining: 5,
                },
            ],
            tail_read: 3,
            tail_grew_during_wait: 1,
            settled_after_write: 0,
            idempotency_keys: 0,
        };
        let table = render(&report, false);
        assert!(table.contains("rebuilt") && table.contains("2 (2 orders)"));
        assert!(table.contains("2 deal(s): 1 rebuilt, 1 present (skipped), 0 oversold"));
        assert!(!report.failed());
    }
}
