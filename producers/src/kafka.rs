//! Client settings, each one named (rust-rdkafka examples' habit): the
//! defaults of librdkafka are not what a system that must not lose an
//! accepted order wants.

use rdkafka::ClientConfig;
use std::time::Duration;

/// Where the log is and how long a produce may take before it is reported
/// as failed (the gateway then answers 503).
#[derive(Clone, Debug)]
pub struct KafkaSettings {
    /// `host:port[,host:port…]`, e.g. the embedded broker or Redpanda.
    pub brokers: String,
    /// librdkafka's `message.timeout.ms` (= Kafka's `delivery.timeout.ms`).
    pub delivery_timeout: Duration,
    /// librdkafka's `linger.ms`: how long to wait to fill a batch.
    pub linger: Duration,
    /// `compression.type`: `lz4` (default), `zstd`, `snappy`, `gzip` or `none`.
    pub compression: String,
}

impl KafkaSettings {
    pub fn new(brokers: impl Into<String>) -> Self {
        Self {
            brokers: brokers.into(),
            delivery_timeout: Duration::from_secs(5),
            linger: Duration::from_millis(2),
            compression: "lz4".to_owned(),
        }
    }

    /// An idempotent, `acks=all` producer: a retry after a lost ack cannot
    /// write the message twice, and an ack means every in-sync replica has it.
    pub fn producer_config(&self, client_id: &str) -> ClientConfig {
        let mut c = ClientConfig::new();
        c.set("bootstrap.servers", &self.brokers)
            .set("client.id", client_id)
            .set("enable.idempotence", "true")
            .set("acks", "all")
            .set("max.in.flight.requests.per.connection", "5")
            .set("compression.type", &self.compression)
            .set("linger.ms", self.linger.as_millis().to_string())
            .set(
                "message.timeout.ms",
                self.delivery_timeout.as_millis().to_string(),
            )
            .set("socket.keepalive.enable", "true");
        c
    }

    /// A consumer in `group` that never auto-commits: offsets are committed
    /// by the consume loop only after the effect of a batch is durable.
    pub fn consumer_config(&self, group: &str, client_id: &str) -> ClientConfig {
        let mut c = ClientConfig::new();
        c.set("bootstrap.servers", &self.brokers)
            .set("client.id", client_id)
            .set("group.id", group)
            .set("enable.auto.commit", "false")
            .set("enable.auto.offset.store", "false")
            .set("auto.offset.reset", "earliest")
            // Incremental rebalances: a member joining or leaving moves only
            // the partitions that change owner; the others keep flowing.
            .set("partition.assignment.strategy", "cooperative-sticky")
            .set("session.timeout.ms", "6000")
            .set("heartbeat.interval.ms", "1000")
            .set("fetch.wait.max.ms", "5")
            .set("enable.partition.eof", "false");
        c
    }

    /// An admin client's settings.
    pub fn admin_config(&self) -> ClientConfig {
        let mut c = ClientConfig::new();
        c.set("bootstrap.servers", &self.brokers);
        c
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The settings the no-loss and no-duplicate arguments rest on
    /// (docs/decisions.md); changing one must be a conscious decision.
    #[test]
    fn producers_are_idempotent_and_wait_for_all_replicas() {
        let c = KafkaSettings::new("b:9092").producer_config("t");
        assert_eq!(c.get("enable.idempotence"), Some("true"));
        assert_eq!(c.get("acks"), Some("all"));
        assert_eq!(c.get("message.timeout.ms"), Some("5000"));
        let linger: u64 = c
            .get("linger.ms")
            .and_then(|v| v.parse().ok())
            .unwrap_or(u64::MAX);
        assert!(
            linger <= 5,
            "linger.ms {linger} would add latency to every 202"
        );
    }

    #[test]
    fn consumers_commit_only_what_the_loop_commits() {
        let c = KafkaSettings::new("b:9092").consumer_config("g", "t");
        assert_eq!(c.get("enable.auto.commit"), Some("false"));
        assert_eq!(c.get("enable.auto.offset.store"), Some("false"));
        assert_eq!(c.get("auto.offset.reset"), Some("earliest"));
        assert_eq!(c.get("group.id"), Some("g"));
    }
}
