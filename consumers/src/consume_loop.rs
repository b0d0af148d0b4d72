//! The one consume loop. It knows nothing about orders: it batches, hands
//! the batch to a [`BatchHandler`], retries transient failures with capped
//! exponential backoff (never skipping, never committing past an unapplied
//! message), and commits offsets only after the handler returned `Ok`.

use crate::partition_watch::PartitionWatch;
use backon::{BackoffBuilder, ExponentialBuilder};
use rdkafka::{
    Message, Offset, TopicPartitionList,
    consumer::{CommitMode, Consumer, StreamConsumer},
    error::KafkaError,
    message::OwnedMessage,
};
use std::{collections::HashMap, time::Duration};
use tokio::time::{Instant, sleep, timeout_at};
use tokio_util::sync::CancellationToken;

/// How big and how old a batch may get before it is processed.
#[derive(Clone, Copy, Debug)]
pub struct LoopSettings {
    pub max_batch: usize,
    pub max_wait: Duration,
}

impl Default for LoopSettings {
    fn default() -> Self {
        Self {
            max_batch: 500,
            max_wait: Duration::from_millis(5),
        }
    }
}

/// A handler's failure. Messages that can never be applied are the
/// handler's to dead-letter; what it returns is retried.
#[derive(Debug, thiserror::Error)]
pub enum HandlerError {
    #[error("PostgreSQL: {0}")]
    Postgres(#[from] sqlx::Error),
    #[error("Redis: {0}")]
    Redis(#[from] redis::RedisError),
    #[error("publishing: {0}")]
    Publish(#[from] flashdeal_producers::PublishError),
    /// Redis lost the deal; retried until `flashdeal recover-redis` rebuilt it.
    #[error(
        "deal {deal} is not in Redis (lost?): version {version} waits for `flashdeal recover-redis`"
    )]
    DealLost {
        deal: flashdeal_schemas::DealId,
        version: i64,
    },
}

/// Why the loop stopped other than by cancellation.
#[derive(Debug, thiserror::Error)]
pub enum ConsumeError {
    #[error("subscribing to {topic}: {source}")]
    Subscribe { topic: String, source: KafkaError },
}

/// Applies one batch of messages durably. Called again with the same batch
/// after an error, so it must be idempotent.
pub trait BatchHandler {
    /// A short name for logs and metrics (`order-writer`, `projector`).
    fn name(&self) -> &'static str;
    fn handle(
        &mut self,
        batch: &[OwnedMessage],
    ) -> impl Future<Output = Result<(), HandlerError>> + Send;
}

/// Runs `handler` on `topic` until `shutdown` is cancelled, then commits what
/// it applied and returns. The consumer leaves its group when dropped.
pub async fn run_consumer<H: BatchHandler + Send>(
    consumer: StreamConsumer,
    topic: &str,
    settings: LoopSettings,
    mut handler: H,
    shutdown: CancellationToken,
) -> Result<(), ConsumeError> {
    consumer
        .subscribe(&[topic])
        .map_err(|source| ConsumeError::Subscribe {
            topic: topic.to_owned(),
            source,
        })?;
    let name = handler.name();
    tracing::info!(role = name, topic, "consuming");
    let mut last_applied = None;
    let mut watch = PartitionWatch::default();
    loop {
        let Some(batch) = next_batch(&consumer, settings, &shutdown).await else {
            break;
        };
        watch.observe(&consumer, name, topic);
        if batch.is_empty() {
            continue;
        }
        if !apply_with_retry(&mut handler, topic, &batch, &shutdown).await {
            // Cancelled mid-retry: nothing past the last applied batch is committed.
            break;
        }
        metrics::histogram!("flashdeal_consumer_batch_size", "role" => name)
            .record(batch.len() as f64);
        metrics::counter!("flashdeal_consumer_messages_total", "role" => name)
            .increment(batch.len() as u64);
        let offsets = next_offsets(&batch);
        commit(&consumer, &offsets, CommitMode::Async);
        last_applied = Some(offsets);
    }
    // The last applied batch was committed asynchronously; commit it once
    // more synchronously so a clean shutdown leaves nothing to redeliver,
    // then leave the group. Both block on the broker, which may be embedded
    // in this very runtime: run them on the blocking pool, bounded in time.
    let leave = tokio::task::spawn_blocking(move || {
        if let Some(offsets) = last_applied {
            commit(&consumer, &offsets, CommitMode::Sync);
        }
        drop(consumer);
    });
    if tokio::time::timeout(Duration::from_secs(15), leave)
        .await
        .is_err()
    {
        tracing::warn!(role = name, "leaving the consumer group timed out");
    }
    tracing::info!(role = name, topic, "stopped");
    Ok(())
}

/// Waits for a first message, then gathers more until the batch is full or
/// `max_wait` has passed. `None` when shutdown was requested; an empty
/// batch after a second without messages (so the loop can look around).
async fn next_batch(
    consumer: &StreamConsumer,
    settings: LoopSettings,
    shutdown: &CancellationToken,
) -> Option<Vec<OwnedMessage>> {
    let idle = sleep(Duration::from_secs(1));
    tokio::pin!(idle);
    let first = loop {
        tokio::select! {
            _ = shutdown.cancelled() => return None,
            _ = &mut idle => return Some(Vec::new()),
            m = consumer.recv() => match m {
                Ok(m) => break m.detach(),
                Err(e) => {
                    tracing::warn!(error = %e, "consumer error");
                    sleep(Duration::from_millis(100)).await;
                }
            },
        }
    };
    let mut batch = Vec::with_capacity(settings.max_batch);
    batch.push(first);
    let deadline = Instant::now() + settings.max_wait;
    while batch.len() < settings.max_batch {
        match timeout_at(deadline, consumer.recv()).await {
            Ok(Ok(m)) => batch.push(m.detach()),
            Ok(Err(e)) => tracing::warn!(error = %e, "consumer error"),
            Err(_) => break,
        }
    }
    Some(batch)
}

/// `true` once the batch is applied; `false` if shutdown came first.
///
/// The `consume_batch` span covers every attempt; each message's own span
/// (a child of its producer's trace, see [`crate::message_span`]) links to it.
#[tracing::instrument(
    name = "consume_batch",
    skip_all,
    fields(role = handler.name(), topic = %topic, batch_size = batch.len())
)]
async fn apply_with_retry<H: BatchHandler>(
    handler: &mut H,
    topic: &str,
    batch: &[OwnedMessage],
    shutdown: &CancellationToken,
) -> bool {
    let mut backoff = retry_backoff();
    loop {
        match handler.handle(batch).await {
            Ok(()) => return true,
            Err(e) => {
                let delay = backoff.next().unwrap_or(Duration::from_secs(5));
                tracing::warn!(role = handler.name(), error = %e, retry_in_ms = delay.as_millis() as u64, "batch failed, retrying");
                metrics::counter!("flashdeal_consumer_retries_total", "role" => handler.name())
                    .increment(1);
                tokio::select! {
                    _ = shutdown.cancelled() => return false,
                    _ = sleep(delay) => {}
                }
            }
        }
    }
}

/// The retry policy for a batch that failed on a transient error (store
/// down): capped exponential backoff with jitter, never giving up (a batch
/// is never skipped). Shared by the consume loop and one-off replays.
pub(crate) fn retry_backoff() -> impl Iterator<Item = Duration> {
    ExponentialBuilder::default()
        .with_min_delay(Duration::from_millis(50))
        .with_max_delay(Duration::from_secs(5))
        .with_jitter()
        .without_max_times()
        .build()
}

/// Per partition, the offset after the batch's last message.
fn next_offsets(batch: &[OwnedMessage]) -> TopicPartitionList {
    let mut next: HashMap<(&str, i32), i64> = HashMap::new();
    for m in batch {
        let e = next.entry((m.topic(), m.partition())).or_insert(0);
        *e = (*e).max(m.offset() + 1);
    }
    let mut tpl = TopicPartitionList::with_capacity(next.len());
    for ((topic, partition), offset) in next {
        if let Err(e) = tpl.add_partition_offset(topic, partition, Offset::Offset(offset)) {
            tracing::warn!(error = %e, "building commit list");
        }
    }
    tpl
}

fn commit(consumer: &StreamConsumer, offsets: &TopicPartitionList, mode: CommitMode) {
    if let Err(e) = consumer.commit(offsets, mode) {
        // A revoked partition cannot be committed; its new owner re-applies
        // the batch, which the idempotent sinks absorb.
        tracing::warn!(error = %e, "commit failed; batch may be redelivered");
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rdkafka::{Timestamp, message::OwnedMessage};

    fn msg(topic: &str, partition: i32, offset: i64) -> OwnedMessage {
        OwnedMessage::new(
            None,
            None,
            topic.to_owned(),
            Timestamp::NotAvailable,
            partition,
            offset,
            None,
        )
    }

    #[test]
    fn commits_the_offset_after_the_last_message_of_each_partition() {
        let batch = [
            msg("t", 0, 7),
            msg("t", 1, 3),
            msg("t", 0, 9),
            msg("t", 0, 8),
            msg("u", 0, 1),
        ];
        let tpl = next_offsets(&batch);
        let mut got: Vec<(String, i32, Offset)> = tpl
            .elements()
            .iter()
            .map(|e| (e.topic().to_owned(), e.partition(), e.offset()))
            .collect();
        got.sort_by_key(|(t, p, _)| (t.clone(), *p));
        assert_eq!(
            got,
            vec![
                ("t".to_owned(), 0, Offset::Offset(10)),
                ("t".to_owned(), 1, Offset::Offset(4)),
                ("u".to_owned(), 0, Offset::Offset(2)),
            ]
        );
    }
}
