//! A short-lived, never-subscribed Kafka client for operator commands
//! (`replay`, `dlq`). librdkafka's admin-ish calls block, and dropping a
//! consumer right after a commit can hang, so the client lives on the
//! blocking pool: the answer comes back over a channel and the drop happens
//! there, without anyone waiting for it.

use anyhow::Context;
use flashdeal_producers::KafkaSettings;
use rdkafka::consumer::BaseConsumer;
use std::time::Duration;

/// How long one operator call may take in total.
pub const CALL_TIMEOUT: Duration = Duration::from_secs(60);
/// How long each broker round trip may take.
pub const BROKER_TIMEOUT: Duration = Duration::from_secs(10);

/// Runs `f` with a consumer whose `group.id` is `group` (it never joins the
/// group: it is not subscribed).
pub async fn with_client<R, F>(kafka: &KafkaSettings, group: &str, f: F) -> anyhow::Result<R>
where
    F: FnOnce(&BaseConsumer) -> R + Send + 'static,
    R: Send + 'static,
{
    let config = kafka.consumer_config(group, &format!("flashdeal-ops-{}", std::process::id()));
    let (tx, rx) = tokio::sync::oneshot::channel();
    tokio::task::spawn_blocking(move || {
        let client: BaseConsumer = match config.create() {
            Ok(c) => c,
            Err(e) => {
                let _ = tx.send(Err(e));
                return;
            }
        };
        let _ = tx.send(Ok(f(&client)));
        drop(client);
    });
    tokio::time::timeout(CALL_TIMEOUT, rx)
        .await
        .with_context(|| {
            format!(
                "no answer from the broker at {} within {}s",
                kafka.brokers,
                CALL_TIMEOUT.as_secs()
            )
        })?
        .context("the broker client's thread stopped")?
        .with_context(|| format!("creating a Kafka client for {}", kafka.brokers))
}
