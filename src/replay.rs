//! `flashdeal replay`: wiring for the replay in `flashdeal_consumers::replay`.
//! Parses the operator's flags, builds the group's own sink (chosen by the
//! group name), prints the plan table, progress and the summary.

use crate::{
    broker_client::{BROKER_TIMEOUT, with_client},
    config::{Config, Service},
    roles,
};
use anyhow::{Context, bail};
use chrono::{DateTime, FixedOffset};
use clap::Args;
use flashdeal_consumers::{
    catalog_projector::{self, CatalogProjector},
    deal_read_model::{self, DealReadModel},
    order_writer::{self, OrderWriter},
    projector::{self, Projector},
    replay::{self, OneOffSettings, Plan, ReplaySink, StartAt, Summary},
    sold_count::{self, SoldCount},
};
use flashdeal_schemas::topics;
use rdkafka::consumer::StreamConsumer;
use std::io::Write;
use tokio_util::sync::CancellationToken;

/// `flashdeal replay`.
#[derive(Args, Debug, Clone, Default)]
pub struct ReplayArgs {
    /// The topic to re-read.
    #[arg(long, required_unless_present = "rebuild_projections")]
    pub topic: Option<String>,
    /// The consumer group whose offsets are rewound, or whose sink a
    /// one-off replay feeds: order-writer, order-writer-deals, projector,
    /// catalog-projector, catalog-sold-count.
    #[arg(long, required_unless_present = "rebuild_projections")]
    pub group: Option<String>,
    /// Where to start: `earliest`, `latest`, or `PARTITION:OFFSET,…`
    /// (other partitions are left alone).
    #[arg(long, value_parser = parse_spec, conflicts_with = "from_time")]
    pub from_offset: Option<StartAt>,
    /// Where to start: the first message at or after this RFC 3339 time.
    #[arg(long, value_parser = parse_time)]
    pub from_time: Option<DateTime<FixedOffset>>,
    /// With --one-off: stop before the first message at or after this
    /// RFC 3339 time (default: the end of the log when the replay starts).
    #[arg(long, value_parser = parse_time, requires = "one_off")]
    pub to_time: Option<DateTime<FixedOffset>>,
    /// Print the plan and change nothing.
    #[arg(long)]
    pub dry_run: bool,
    /// Instead of rewinding the group, run its sink under a fresh group
    /// `<GROUP>-replay-<uuid>` up to the end, then exit; the live group
    /// keeps running.
    #[arg(long)]
    pub one_off: bool,
    /// Rebuild the Redis order-status projection (`order:{id}`): the
    /// projector's sink over orders.status from earliest, as a one-off.
    #[arg(long, conflicts_with_all = ["topic", "group", "from_offset", "from_time", "to_time", "one_off"])]
    pub rebuild_projections: bool,
}

fn parse_spec(s: &str) -> Result<StartAt, String> {
    s.parse().map_err(|e: replay::ReplayError| e.to_string())
}

fn parse_time(s: &str) -> Result<DateTime<FixedOffset>, String> {
    DateTime::parse_from_rfc3339(s)
        .map_err(|e| format!("{s:?} is not an RFC 3339 time (e.g. 2025-01-31T12:00:00Z): {e}"))
}

/// What a replay did.
#[derive(Debug)]
pub enum Report {
    /// `--dry-run`: the plan, nothing changed.
    DryRun(Plan),
    /// The group's committed offsets are now the plan's targets.
    Rewound(Plan),
    /// A one-off group read the plan's range into the sink.
    OneOff { plan: Plan, summary: Summary },
}

/// `flashdeal replay`: runs it and prints the outcome.
pub async fn command(config: Config, args: ReplayArgs) -> anyhow::Result<()> {
    let report = run(&config, &args, true).await?;
    match &report {
        Report::DryRun(plan) => {
            println!("{plan}");
            println!("dry run: nothing changed");
        }
        Report::Rewound(plan) => {
            println!("{plan}");
            println!(
                "group {} rewound: its consumers re-read from the new offsets when they start",
                plan.group
            );
        }
        Report::OneOff { plan, summary } => {
            println!("{plan}");
            println!("{}", summary_line(summary));
        }
    }
    Ok(())
}

/// The one-line summary of a one-off replay.
pub fn summary_line(s: &Summary) -> String {
    format!(
        "replayed: read {} of {}, applied {}, skipped as duplicate {}, other (rejected / not for this sink) {}, dead-lettered {}",
        s.tally.read(),
        s.total,
        s.tally.applied,
        s.tally.duplicates,
        s.tally.other,
        s.tally.dead_lettered
    )
}

/// Runs a replay; the function tests call. With `progress`, one line a
/// second goes to stderr during a one-off replay.
pub async fn run(config: &Config, args: &ReplayArgs, progress: bool) -> anyhow::Result<Report> {
    let (topic, group, start, one_off) = if args.rebuild_projections {
        (
            topics::ORDERS_STATUS.to_owned(),
            projector::GROUP.to_owned(),
            StartAt::Earliest,
            true,
        )
    } else {
        let topic = args.topic.clone().context("--topic is required")?;
        let group = args.group.clone().context("--group is required")?;
        let start = match (&args.from_offset, &args.from_time) {
            (Some(spec), None) => spec.clone(),
            (None, Some(t)) => StartAt::Time(t.timestamp_millis()),
            _ => bail!("give exactly one of --from-offset and --from-time"),
        };
        (topic, group, start, args.one_off)
    };
    if args.to_time.is_some() && !one_off {
        bail!("--to-time only bounds a --one-off replay (a rewound group reads on to the end)");
    }
    if one_off {
        // Fail before touching anything if the group has no sink here.
        sink_topic(&group).and_then(|t| {
            (t == topic).then_some(()).with_context(|| {
                format!("group {group} consumes {t}, not {topic}: its sink cannot replay {topic}")
            })
        })?;
    }
    let kafka = config.kafka();
    let until = args.to_time.map(|t| t.timestamp_millis());
    let plan = {
        let (topic, group, start) = (topic.clone(), group.clone(), start.clone());
        with_client(&kafka, &group.clone(), move |c| {
            replay::plan(c, &topic, &group, &start, until, BROKER_TIMEOUT)
        })
        .await??
    };
    if args.dry_run {
        return Ok(Report::DryRun(plan));
    }
    if !one_off {
        let p = plan.clone();
        with_client(&kafka, &group, move |c| {
            replay::rewind(c, &p, BROKER_TIMEOUT)
        })
        .await??;
        return Ok(Report::Rewound(plan));
    }
    let summary = one_off_into(config, &plan, progress).await?;
    Ok(Report::OneOff { plan, summary })
}

/// The topic a known group consumes (and so the sink it has).
fn sink_topic(group: &str) -> anyhow::Result<&'static str> {
    Ok(match group {
        order_writer::GROUP => topics::ORDERS_INTENTS,
        projector::GROUP | sold_count::GROUP => topics::ORDERS_STATUS,
        catalog_projector::GROUP | deal_read_model::GROUP => topics::CATALOG_EVENTS,
        other => bail!(
            "group {other} has no sink to replay into (known: {}, {}, {}, {}, {}); rewinding its offsets works without --one-off",
            order_writer::GROUP,
            deal_read_model::GROUP,
            projector::GROUP,
            catalog_projector::GROUP,
            sold_count::GROUP
        ),
    })
}

/// Builds the group's own sink and feeds it the plan's range.
async fn one_off_into(config: &Config, plan: &Plan, progress: bool) -> anyhow::Result<Summary> {
    let publisher = roles::role_publisher(config, "flashdeal-replay").await?;
    match plan.group.as_str() {
        order_writer::GROUP => {
            let pool = roles::service_pool(config, Service::Orders, 4).await?;
            drive(config, plan, OrderWriter::new(pool, publisher), progress).await
        }
        deal_read_model::GROUP => {
            let pool = roles::service_pool(config, Service::Orders, 2).await?;
            drive(config, plan, DealReadModel::new(pool, publisher), progress).await
        }
        projector::GROUP => {
            let redis = roles::redis(&config.redis_url).await?;
            drive(config, plan, Projector::new(redis, publisher), progress).await
        }
        catalog_projector::GROUP => {
            let redis = roles::redis(&config.redis_url).await?;
            drive(
                config,
                plan,
                CatalogProjector::new(redis, publisher),
                progress,
            )
            .await
        }
        sold_count::GROUP => {
            let pool = roles::service_pool(config, Service::Catalog, 2).await?;
            drive(config, plan, SoldCount::new(pool, publisher), progress).await
        }
        other => sink_topic(other).map(|_| Summary::default()),
    }
}

async fn drive<S: ReplaySink>(
    config: &Config,
    plan: &Plan,
    mut sink: S,
    progress: bool,
) -> anyhow::Result<Summary> {
    let group = format!("{}-replay-{}", plan.group, uuid::Uuid::now_v7());
    let consumer: StreamConsumer = config
        .kafka()
        .consumer_config(&group, &format!("flashdeal-replay-{}", std::process::id()))
        .create()
        .context("creating the replay consumer")?;
    let shutdown = if progress {
        roles::shutdown_on_signal()
    } else {
        CancellationToken::new()
    };
    let topic = plan.topic.clone();
    let report = move |read: u64, total: u64| {
        if progress {
            let mut err = std::io::stderr().lock();
            let _ = write!(err, "\rreplay {topic}: {read}/{total} messages");
            if read >= total {
                let _ = writeln!(err);
            }
            let _ = err.flush();
        }
    };
    tracing::info!(group = %group, topic = %plan.topic, sink = sink.name(), "one-off replay");
    let summary = replay::run_one_off(
        consumer,
        plan,
        &mut sink,
        OneOffSettings::default(),
        report,
        shutdown,
    )
    .await?;
    Ok(summary)
}
