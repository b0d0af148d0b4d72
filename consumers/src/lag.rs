//! Consumer-group lag, the number operators watch during a burst and KEDA
//! scales on: per partition, the high watermark minus the group's committed
//! offset (what has been appended but not yet applied and committed).
//!
//! Measured from outside the consume loop, by a client that shares the
//! group id but never joins the group (it only reads committed offsets and
//! watermarks), so a slow broker answer never delays a batch. Every member
//! of a group reports the same numbers; take the max across instances.

use flashdeal_producers::KafkaSettings;
use rdkafka::{
    Offset, TopicPartitionList,
    consumer::{BaseConsumer, Consumer},
    error::KafkaError,
};
use std::{sync::Arc, time::Duration};
use tokio_util::sync::CancellationToken;

/// The lag of each partition of `topic` for `group`: (partition, lag).
pub fn group_lag(
    client: &BaseConsumer,
    topic: &str,
    timeout: Duration,
) -> Result<Vec<(i32, i64)>, KafkaError> {
    let metadata = client.fetch_metadata(Some(topic), timeout)?;
    let partitions: Vec<i32> = metadata
        .topics()
        .iter()
        .filter(|t| t.name() == topic)
        .flat_map(|t| t.partitions().iter().map(|p| p.id()))
        .collect();
    let mut tpl = TopicPartitionList::with_capacity(partitions.len());
    for p in &partitions {
        tpl.add_partition(topic, *p);
    }
    let committed = client.committed_offsets(tpl, timeout)?;
    let mut out = Vec::with_capacity(partitions.len());
    for p in partitions {
        let (low, high) = client.fetch_watermarks(topic, p, timeout)?;
        // No commit yet: the group starts from earliest (auto.offset.reset).
        let from = match committed.find_partition(topic, p).map(|e| e.offset()) {
            Some(Offset::Offset(o)) => o,
            _ => low,
        };
        out.push((p, (high - from).max(0)));
    }
    Ok(out)
}

/// Exports `flashdeal_consumer_lag{group,topic,partition}` every `every`
/// until `shutdown`.
pub async fn run_lag_monitor(
    kafka: &KafkaSettings,
    group: &'static str,
    topic: &'static str,
    every: Duration,
    shutdown: CancellationToken,
) {
    let client: BaseConsumer = match kafka
        .consumer_config(group, &format!("flashdeal-lag-{group}"))
        .create()
    {
        Ok(c) => c,
        Err(e) => {
            tracing::warn!(group, error = %e, "no lag monitor");
            return;
        }
    };
    let client = Arc::new(client);
    while !shutdown.is_cancelled() {
        let c = Arc::clone(&client);
        let measured =
            tokio::task::spawn_blocking(move || group_lag(&c, topic, Duration::from_secs(2))).await;
        match measured {
            Ok(Ok(lags)) => {
                let mut total = 0;
                for (p, lag) in lags {
                    total += lag;
                    metrics::gauge!("flashdeal_consumer_lag", "group" => group, "topic" => topic, "partition" => p.to_string())
                        .set(lag as f64);
                }
                metrics::gauge!("flashdeal_consumer_group_lag", "group" => group, "topic" => topic)
                    .set(total as f64);
            }
            Ok(Err(e)) => tracing::debug!(group, error = %e, "measuring lag"),
            Err(e) => tracing::debug!(group, error = %e, "lag task"),
        }
        tokio::select! {
            _ = shutdown.cancelled() => {}
            _ = tokio::time::sleep(every) => {}
        }
    }
    // librdkafka can hang dropping a client right after committed(): drop it
    // on the blocking pool, bounded.
    let _ = tokio::time::timeout(
        Duration::from_secs(5),
        tokio::task::spawn_blocking(move || drop(client)),
    )
    .await;
}
