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
}

impl KafkaSettings {
    pub fn new(brokers: impl Into<String>) -> Self {
        Self {
            brokers: brokers.into(),
            delivery_timeout: Duration::from_secs(5),
            linger: Duration::from_millis(2),
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
            .set("compression.type", "lz4")
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
