//! A one-off replay: a fresh group reads the plan's range (target offsets
//! up to the ends fixed when the plan was made) into a sink, then stops.
//! The live group is not touched and keeps running; the sink's idempotency
//! makes the overlap harmless. The consumer is assigned, not subscribed, so
//! it never joins (or rebalances) any group.

use super::{Plan, ReplayError, ReplaySink};
use crate::tally::Tally;
use rdkafka::{
    Message, Offset, TopicPartitionList,
    consumer::{Consumer, StreamConsumer},
    message::OwnedMessage,
};
use std::{collections::HashMap, time::Duration};
use tokio::time::{Instant, sleep, timeout};
use tokio_util::sync::CancellationToken;

/// Batching, idleness and progress of a one-off replay.
#[derive(Clone, Copy, Debug)]
pub struct OneOffSettings {
    pub max_batch: usize,
    pub max_wait: Duration,
    /// Give up when no message arrives for this long with some still due.
    pub idle_limit: Duration,
    /// How often `progress` is called.
    pub progress_every: Duration,
}

impl Default for OneOffSettings {
    fn default() -> Self {
        Self {
            max_batch: 500,
            max_wait: Duration::from_millis(20),
            idle_limit: Duration::from_secs(30),
            progress_every: Duration::from_secs(1),
        }
    }
}

/// What a one-off replay did.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Summary {
    /// Messages the plan said to read.
    pub total: u64,
    pub tally: Tally,
}

/// Reads `plan`'s range with `consumer` (a fresh group id) into `sink`;
/// calls `progress(read, total)` every `settings.progress_every`. A batch
/// that fails transiently is retried with capped backoff until `shutdown`.
pub async fn run_one_off<S: ReplaySink>(
    consumer: StreamConsumer,
    plan: &Plan,
    sink: &mut S,
    settings: OneOffSettings,
    mut progress: impl FnMut(u64, u64) + Send,
    shutdown: CancellationToken,
) -> Result<Summary, ReplayError> {
    let total = plan.to_read();
    let mut ends: HashMap<i32, i64> = HashMap::new();
    let mut tpl = TopicPartitionList::new();
    for p in &plan.partitions {
        if let Some(t) = p.target.filter(|t| *t < p.end) {
            ends.insert(p.partition, p.end);
            tpl.add_partition_offset(&plan.topic, p.partition, Offset::Offset(t))
                .map_err(|source| ReplayError::Kafka {
                    what: "building the assignment",
                    source,
                })?;
        }
    }
    let mut summary = Summary {
        total,
        tally: Tally::default(),
    };
    if ends.is_empty() {
        progress(0, total);
        return Ok(summary);
    }
    consumer.assign(&tpl).map_err(|source| ReplayError::Kafka {
        what: "assigning the partitions",
        source,
    })?;
    tracing::info!(role = sink.name(), topic = %plan.topic, total, "one-off replay started");
    let result = read_range(
        &consumer,
        &mut ends,
        sink,
        settings,
        &mut progress,
        &shutdown,
        &mut summary,
    )
    .await;
    progress(summary.tally.read(), total);
    // Dropping a consumer can block on the broker (maybe embedded in this
    // runtime): drop it on the blocking pool, bounded.
    let _ = timeout(
        Duration::from_secs(10),
        tokio::task::spawn_blocking(move || drop(consumer)),
    )
    .await;
    result.map(|()| summary)
}

async fn read_range<S: ReplaySink>(
    consumer: &StreamConsumer,
    ends: &mut HashMap<i32, i64>,
    sink: &mut S,
    settings: OneOffSettings,
    progress: &mut (impl FnMut(u64, u64) + Send),
    shutdown: &CancellationToken,
    summary: &mut Summary,
) -> Result<(), ReplayError> {
    let mut last_progress = Instant::now();
    let mut last_message = Instant::now();
    let mut batch: Vec<OwnedMessage> = Vec::with_capacity(settings.max_batch);
    while !ends.is_empty() {
        let interrupted = || ReplayError::Interrupted {
            read: summary.tally.read(),
            total: summary.total,
        };
        // Wait for a first message, then fill the batch for at most max_wait.
        let wait = if batch.is_empty() {
            settings.progress_every
        } else {
            settings.max_wait
        };
        let received = tokio::select! {
            _ = shutdown.cancelled() => return Err(interrupted()),
            r = timeout(wait, consumer.recv()) => r,
        };
        let timed_out = received.is_err();
        match received {
            Ok(Ok(m)) => {
                last_message = Instant::now();
                let p = m.partition();
                if let Some(end) = ends.get(&p).copied() {
                    if m.offset() < end {
                        batch.push(m.detach());
                    }
                    if m.offset() + 1 >= end {
                        ends.remove(&p);
                    }
                }
            }
            Ok(Err(e)) => tracing::warn!(error = %e, "consumer error during replay"),
            Err(_) => {}
        }
        let flush = !batch.is_empty()
            && (batch.len() >= settings.max_batch || timed_out || ends.is_empty());
        if flush {
            summary.tally += apply(sink, &batch, shutdown)
                .await
                .ok_or_else(interrupted)?;
            batch.clear();
        }
        if last_progress.elapsed() >= settings.progress_every {
            progress(summary.tally.read(), summary.total);
            last_progress = Instant::now();
        }
        if !ends.is_empty() && batch.is_empty() && last_message.elapsed() >= settings.idle_limit {
            return Err(ReplayError::Stalled {
                idle_secs: settings.idle_limit.as_secs(),
                remaining: summary.total.saturating_sub(summary.tally.read()),
                total: summary.total,
            });
        }
    }
    Ok(())
}

/// The batch's tally once applied; `None` if shutdown came first.
async fn apply<S: ReplaySink>(
    sink: &mut S,
    batch: &[OwnedMessage],
    shutdown: &CancellationToken,
) -> Option<Tally> {
    let mut backoff = crate::consume_loop::retry_backoff();
    loop {
        match sink.replay_batch(batch).await {
            Ok(t) => return Some(t),
            Err(e) => {
                let delay = backoff.next().unwrap_or(Duration::from_secs(5));
                tracing::warn!(role = sink.name(), error = %e, retry_in_ms = delay.as_millis() as u64, "replayed batch failed, retrying");
                tokio::select! {
                    _ = shutdown.cancelled() => return None,
                    _ = sleep(delay) => {}
                }
            }
        }
    }
}
