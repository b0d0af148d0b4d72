//! Replay for operators (ARCHITECTURE §5): re-read a topic from an earlier
//! point, either by rewinding an inactive group's committed offsets (its
//! processes re-read on their next start) or by running the group's own
//! sink under a fresh, one-off group id while the live group keeps
//! running. Both rest on the sinks being idempotent: a replayed message
//! either changes nothing (a duplicate) or does what it would have done.
//!
//! # Layout
//! - [`plan`]: where to start (`earliest`, `latest`, `P:O,…`, a time), where
//!   to stop, and the per-partition table an operator reads before acting.
//! - [`rewind`]: refuse while the group has members, else commit the plan.
//! - [`one_off`]: read the plan's range into a [`ReplaySink`], with progress.
//! - [`sink`]: the [`ReplaySink`] trait and its implementation per handler.

pub mod one_off;
pub mod plan;
pub mod rewind;
pub mod sink;

pub use one_off::{OneOffSettings, Summary, run_one_off};
pub use plan::{PartitionPlan, Plan, StartAt, plan};
pub use rewind::{active_members, rewind};
pub use sink::ReplaySink;

use rdkafka::error::KafkaError;

/// Why a replay could not be planned or run.
#[derive(Debug, thiserror::Error)]
pub enum ReplayError {
    #[error("{what}: {source}")]
    Kafka {
        what: &'static str,
        source: KafkaError,
    },
    #[error("topic {0} does not exist")]
    UnknownTopic(String),
    #[error(
        "bad offset spec {0:?}: expected `earliest`, `latest` or `PARTITION:OFFSET[,PARTITION:OFFSET…]`"
    )]
    BadSpec(String),
    #[error("topic {topic} has no partition {partition}")]
    NoSuchPartition { topic: String, partition: i32 },
    #[error("offset {offset} is outside partition {partition}'s range {low}..={high}")]
    OffsetOutOfRange {
        partition: i32,
        offset: i64,
        low: i64,
        high: i64,
    },
    #[error(
        "group {group} has {} active member(s) ({}): stop them first (a rewind of a live group would be overwritten by its next commit), or use --one-off to replay into the same sinks under a fresh group while it runs",
        members.len(),
        members.join(", ")
    )]
    GroupActive { group: String, members: Vec<String> },
    #[error("partition {partition}: committed {got:?} after the rewind, wanted {wanted}")]
    NotCommitted {
        partition: i32,
        wanted: i64,
        got: Option<i64>,
    },
    #[error("no message for {idle_secs}s with {remaining} of {total} still to read")]
    Stalled {
        idle_secs: u64,
        remaining: u64,
        total: u64,
    },
    #[error("the replay was interrupted after {read} of {total} messages")]
    Interrupted { read: u64, total: u64 },
}
