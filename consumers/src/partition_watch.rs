//! What this consumer owns: the partitions assigned to it, logged and
//! exported when they change, so an operator (and the scaling test) can see
//! how members split a topic. Read from librdkafka's local state: no broker
//! round trip. The group's lag is measured by [`crate::lag`].

use rdkafka::consumer::{Consumer, StreamConsumer};

#[derive(Default)]
pub(crate) struct PartitionWatch {
    owned: Option<Vec<i32>>,
}

impl PartitionWatch {
    /// Logs and exports an assignment change.
    pub(crate) fn observe(&mut self, consumer: &StreamConsumer, role: &'static str, topic: &str) {
        let Ok(tpl) = consumer.assignment() else {
            return;
        };
        let mut now: Vec<i32> = tpl
            .elements()
            .iter()
            .filter(|e| e.topic() == topic)
            .map(|e| e.partition())
            .collect();
        now.sort_unstable();
        if self.owned.as_ref() != Some(&now) {
            let partitions = now.iter().map(i32::to_string).collect::<Vec<_>>().join(",");
            tracing::info!(role, topic, partitions, "partitions assigned");
            metrics::gauge!("flashdeal_consumer_assigned_partitions", "role" => role)
                .set(now.len() as f64);
            self.owned = Some(now);
        }
    }
}
