//! `flashdeal dlq list|show|requeue`: wiring for the operators' side of dead
//! letters (`flashdeal_consumers::dead_letters`): which client reads, which
//! producer requeues, and what is printed.

use crate::{
    broker_client::{BROKER_TIMEOUT, CALL_TIMEOUT, with_client},
    config::Config,
    roles,
};
use anyhow::{Context, bail};
use clap::{Args, Subcommand};
use flashdeal_consumers::dead_letters::{self, DeadLetter};
use flashdeal_schemas::topics;
use rdkafka::Message;

/// `flashdeal dlq`.
#[derive(Args, Debug, Clone)]
pub struct DlqArgs {
    #[command(subcommand)]
    pub command: DlqCommand,
}

#[derive(Subcommand, Debug, Clone)]
pub enum DlqCommand {
    /// Per DLQ topic: how many messages, and for each its partition/offset,
    /// origin, error, event type and time.
    List {
        /// One topic (`orders.intents` or `orders.intents.dlq`); default: every DLQ.
        #[arg(long)]
        topic: Option<String>,
    },
    /// One message: headers, payload as hex, and decoded when it decodes.
    Show {
        /// The DLQ topic, e.g. `orders.intents.dlq`.
        #[arg(long)]
        topic: String,
        /// The message's partition in the DLQ topic.
        #[arg(long)]
        partition: i32,
        /// The message's offset in the DLQ topic.
        #[arg(long)]
        offset: i64,
    },
    /// Re-produce a message (key, payload, headers minus dlq.*) to its
    /// original topic with acks=all. It stays in the DLQ (Kafka cannot
    /// delete a record): note the offset printed.
    Requeue {
        /// The DLQ topic, e.g. `orders.intents.dlq`.
        #[arg(long)]
        topic: String,
        /// The message's partition in the DLQ topic.
        #[arg(long, required_unless_present = "all", conflicts_with = "all")]
        partition: Option<i32>,
        /// The message's offset in the DLQ topic.
        #[arg(long, required_unless_present = "all", conflicts_with = "all")]
        offset: Option<i64>,
        /// Every message of the DLQ topic.
        #[arg(long)]
        all: bool,
    },
}

/// `orders.intents` → `orders.intents.dlq`; a DLQ name stays as it is.
pub fn dlq_name(topic: &str) -> String {
    if topic.ends_with(".dlq") {
        topic.to_owned()
    } else {
        topics::dlq(topic)
    }
}

fn reader_group() -> String {
    format!("flashdeal-dlq-reader-{}", uuid::Uuid::now_v7())
}

/// Every message of each DLQ topic (`topic`, or all of them).
pub async fn list(
    config: &Config,
    topic: Option<&str>,
) -> anyhow::Result<Vec<(String, Vec<DeadLetter>)>> {
    let names: Vec<String> = match topic {
        Some(t) => vec![dlq_name(t)],
        None => topics::ALL_TOPICS
            .iter()
            .filter(|t| t.ends_with(".dlq"))
            .map(|t| (*t).to_owned())
            .collect(),
    };
    let mut out = Vec::with_capacity(names.len());
    for name in names {
        let n = name.clone();
        let letters = with_client(&config.kafka(), &reader_group(), move |c| {
            dead_letters::read_all(c, &n, CALL_TIMEOUT / 2)
        })
        .await?
        .with_context(|| format!("reading {name}"))?;
        out.push((name, letters));
    }
    Ok(out)
}

/// The message of `topic` at `partition`/`offset`.
pub async fn show(
    config: &Config,
    topic: &str,
    partition: i32,
    offset: i64,
) -> anyhow::Result<DeadLetter> {
    let name = dlq_name(topic);
    Ok(with_client(&config.kafka(), &reader_group(), move |c| {
        dead_letters::read_one(c, &name, partition, offset, BROKER_TIMEOUT)
    })
    .await??)
}

/// One requeued message: where it was in the DLQ and where it went.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Requeued {
    pub dlq: String,
    pub dlq_partition: i32,
    pub dlq_offset: i64,
    pub topic: String,
    pub partition: i32,
    pub offset: i64,
}

/// Requeues one message (`Some((partition, offset))`) or all of `topic`.
pub async fn requeue(
    config: &Config,
    topic: &str,
    which: Option<(i32, i64)>,
) -> anyhow::Result<Vec<Requeued>> {
    let letters = match which {
        Some((p, o)) => vec![show(config, topic, p, o).await?],
        None => list(config, Some(topic))
            .await?
            .into_iter()
            .flat_map(|(_, l)| l)
            .collect(),
    };
    let publisher = roles::publisher(&config.kafka(), "flashdeal-dlq-requeue")?;
    let mut done = Vec::with_capacity(letters.len());
    for l in &letters {
        let (topic, partition, offset) = dead_letters::requeue(publisher.producer(), l)
            .await
            .with_context(|| {
                format!(
                    "requeueing {} partition {} offset {}",
                    l.message.topic(),
                    l.message.partition(),
                    l.message.offset()
                )
            })?;
        done.push(Requeued {
            dlq: l.message.topic().to_owned(),
            dlq_partition: l.message.partition(),
            dlq_offset: l.message.offset(),
            topic,
            partition,
            offset,
        });
    }
    Ok(done)
}

fn time(ms: Option<i64>) -> String {
    ms.and_then(chrono::DateTime::<chrono::Utc>::from_timestamp_millis)
        .map_or_else(|| "-".to_owned(), |t| t.to_rfc3339())
}

fn or_dash<T: ToString>(v: Option<T>) -> String {
    v.map_or_else(|| "-".to_owned(), |v| v.to_string())
}

/// `flashdeal dlq …`.
pub async fn command(config: Config, args: DlqArgs) -> anyhow::Result<()> {
    // `show` decodes payloads, which may be Confluent-framed.
    crate::roles::encoding(&config).await?;
    match args.command {
        DlqCommand::List { topic } => {
            for (name, letters) in list(&config, topic.as_deref()).await? {
                println!("{name}: {} message(s)", letters.len());
                for l in &letters {
                    println!(
                        "  partition {} offset {}  from {}/{}/{}  event_type {}  at {}\n    error: {}",
                        l.message.partition(),
                        l.message.offset(),
                        or_dash(l.original_topic.as_deref()),
                        or_dash(l.original_partition),
                        or_dash(l.original_offset),
                        or_dash(l.event_type.as_deref()),
                        time(l.timestamp_ms()),
                        or_dash(l.error.as_deref()),
                    );
                }
            }
        }
        DlqCommand::Show {
            topic,
            partition,
            offset,
        } => {
            let l = show(&config, &topic, partition, offset).await?;
            println!(
                "{} partition {} offset {} at {}",
                l.message.topic(),
                l.message.partition(),
                l.message.offset(),
                time(l.timestamp_ms())
            );
            println!("headers:");
            for (k, v) in l.headers() {
                println!("  {k}: {}", or_dash(v));
            }
            println!(
                "key (hex): {}",
                l.message
                    .key()
                    .map_or_else(|| "-".to_owned(), dead_letters::hex)
            );
            println!(
                "payload (hex): {}",
                l.message
                    .payload()
                    .map_or_else(|| "-".to_owned(), dead_letters::hex)
            );
            match l.decoded() {
                Some(d) => println!("decoded:\n{d}"),
                None => println!("decoded: does not decode as an event of its original topic"),
            }
        }
        DlqCommand::Requeue {
            topic,
            partition,
            offset,
            all,
        } => {
            let which = match (partition, offset, all) {
                (Some(p), Some(o), false) => Some((p, o)),
                (None, None, true) => None,
                _ => bail!("give --partition and --offset, or --all"),
            };
            let done = requeue(&config, &topic, which).await?;
            for r in &done {
                println!(
                    "requeued {} partition {} offset {} → {} partition {} offset {}",
                    r.dlq, r.dlq_partition, r.dlq_offset, r.topic, r.partition, r.offset
                );
            }
            println!(
                "{} message(s) requeued. They stay in the DLQ (Kafka cannot delete a record): remember the offsets above, and that a message which fails again is dead-lettered again.",
                done.len()
            );
        }
    }
    Ok(())
}
