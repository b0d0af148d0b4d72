//! Topic names (ARCHITECTURE §3). Keys are always the order id for order
//! topics so that a flash sale spreads over every partition.

/// Order intents: `OrderPlaced` (gateway), `OrderExpired` (reconciler).
pub const ORDERS_INTENTS: &str = "orders.intents";
/// Verdicts written by the order-writer: `OrderConfirmed`, `OrderRejected`,
/// `ReservationReleased`.
pub const ORDERS_STATUS: &str = "orders.status";

/// Users and signing keys, from the auth outbox (key = user id).
pub const AUTH_EVENTS: &str = "auth.events";
/// Products and deals, from the catalog outbox (key = product/deal id).
pub const CATALOG_EVENTS: &str = "catalog.events";

/// Every topic, created up front with its final partition count (the
/// embedded broker cannot add partitions later).
pub const ALL_TOPICS: [&str; 8] = [
    ORDERS_INTENTS,
    ORDERS_STATUS,
    AUTH_EVENTS,
    CATALOG_EVENTS,
    "orders.intents.dlq",
    "orders.status.dlq",
    "auth.events.dlq",
    "catalog.events.dlq",
];

/// The dead-letter topic for `topic`: `<topic>.dlq`.
pub fn dlq(topic: &str) -> String {
    format!("{topic}.dlq")
}

/// Header names every event carries besides its Avro body.
pub mod headers {
    /// The event's uuid v7, for consumer-side de-duplication.
    pub const EVENT_ID: &str = "event_id";
    /// The Avro record name, e.g. `OrderPlaced`.
    pub const EVENT_TYPE: &str = "event_type";
    /// On DLQ records: why the message was dead-lettered.
    pub const DLQ_ERROR: &str = "dlq.error";
    /// On DLQ records: where the message came from.
    pub const DLQ_TOPIC: &str = "dlq.original.topic";
    pub const DLQ_PARTITION: &str = "dlq.original.partition";
    pub const DLQ_OFFSET: &str = "dlq.original.offset";
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dlq_names_follow_the_topic() {
        assert_eq!(dlq(ORDERS_INTENTS), "orders.intents.dlq");
        assert!(ALL_TOPICS.contains(&dlq(ORDERS_STATUS).as_str()));
    }
}
