//! The operators' side of dead letters: read `<topic>.dlq`, describe one
//! message (its origin, the error, the payload decoded when it can be), and
//! requeue a message to the topic it came from once its cause is fixed.
//! Kafka cannot delete a record, so a requeued message stays in the DLQ;
//! the operator keeps the offset of what was requeued.
//!
//! The reads block on the broker; run them on a blocking thread.

use flashdeal_schemas::{
    AuthEvent, CatalogEvent, IntentEvent, StatusEvent,
    topics::{self, headers},
};
use rdkafka::{
    Message, Offset, Timestamp, TopicPartitionList,
    consumer::{BaseConsumer, Consumer},
    error::KafkaError,
    message::{Header, Headers, OwnedHeaders, OwnedMessage},
    producer::{FutureProducer, FutureRecord},
};
use std::time::{Duration, Instant};

/// Why a DLQ could not be read or a message requeued.
#[derive(Debug, thiserror::Error)]
pub enum DeadLetterError {
    #[error("{what}: {source}")]
    Kafka {
        what: &'static str,
        source: KafkaError,
    },
    #[error("{0} is not a dead-letter topic (expected <topic>.dlq)")]
    NotADlq(String),
    #[error("no message at {topic} partition {partition} offset {offset}")]
    NotFound {
        topic: String,
        partition: i32,
        offset: i64,
    },
    #[error("the message at offset {0} has no dlq.original.topic header: nowhere to requeue it")]
    NoOrigin(i64),
    #[error("reading {topic} timed out with {remaining} messages unread")]
    Timeout { topic: String, remaining: i64 },
    #[error("the broker did not acknowledge the requeued message")]
    Canceled,
}

fn kafka(what: &'static str) -> impl FnOnce(KafkaError) -> DeadLetterError {
    move |source| DeadLetterError::Kafka { what, source }
}

/// One message of a DLQ, with its dead-letter headers parsed.
#[derive(Clone, Debug)]
pub struct DeadLetter {
    pub message: OwnedMessage,
    pub original_topic: Option<String>,
    pub original_partition: Option<i32>,
    pub original_offset: Option<i64>,
    pub error: Option<String>,
    pub event_type: Option<String>,
}

impl DeadLetter {
    pub fn of(message: OwnedMessage) -> Self {
        let h = |name: &str| header(&message, name);
        Self {
            original_topic: h(headers::DLQ_TOPIC),
            original_partition: h(headers::DLQ_PARTITION).and_then(|v| v.parse().ok()),
            original_offset: h(headers::DLQ_OFFSET).and_then(|v| v.parse().ok()),
            error: h(headers::DLQ_ERROR),
            event_type: h(headers::EVENT_TYPE),
            message,
        }
    }

    /// When the message was dead-lettered (ms since the epoch).
    pub fn timestamp_ms(&self) -> Option<i64> {
        match self.message.timestamp() {
            Timestamp::CreateTime(t) | Timestamp::LogAppendTime(t) => Some(t),
            Timestamp::NotAvailable => None,
        }
    }

    /// Every header as (name, value), values lossily as UTF-8.
    pub fn headers(&self) -> Vec<(String, Option<String>)> {
        self.message
            .headers()
            .map(|hs| {
                hs.iter()
                    .map(|h| {
                        (
                            h.key.to_owned(),
                            h.value.map(|v| String::from_utf8_lossy(v).into_owned()),
                        )
                    })
                    .collect()
            })
            .unwrap_or_default()
    }

    /// The payload decoded with the original topic's decoder, as Debug;
    /// `None` when it does not decode (usually why it is here).
    pub fn decoded(&self) -> Option<String> {
        let topic = self.original_topic.as_deref()?;
        let bytes = self.message.payload()?;
        match topic {
            topics::ORDERS_INTENTS => IntentEvent::decode(bytes).ok().map(|e| format!("{e:#?}")),
            topics::ORDERS_STATUS => StatusEvent::decode(bytes).ok().map(|e| format!("{e:#?}")),
            topics::AUTH_EVENTS => AuthEvent::decode(bytes).ok().map(|e| format!("{e:#?}")),
            topics::CATALOG_EVENTS => CatalogEvent::decode(bytes).ok().map(|e| format!("{e:#?}")),
            _ => None,
        }
    }
}

fn header(m: &OwnedMessage, name: &str) -> Option<String> {
    m.headers().and_then(|hs| {
        hs.iter()
            .find(|h| h.key == name)
            .and_then(|h| h.value.map(|v| String::from_utf8_lossy(v).into_owned()))
    })
}

/// Lowercase hex, for payloads and keys.
pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Checks that `topic` names a DLQ.
pub fn check_dlq(topic: &str) -> Result<(), DeadLetterError> {
    if topic.ends_with(".dlq") && topic.len() > 4 {
        Ok(())
    } else {
        Err(DeadLetterError::NotADlq(topic.to_owned()))
    }
}

/// Every message of `dlq` up to its high watermarks as of now, per
/// partition in offset order. `client` is an unsubscribed consumer (its
/// group is never committed).
pub fn read_all(
    client: &BaseConsumer,
    dlq: &str,
    timeout: Duration,
) -> Result<Vec<DeadLetter>, DeadLetterError> {
    check_dlq(dlq)?;
    let metadata = client
        .fetch_metadata(Some(dlq), timeout)
        .map_err(kafka("reading the topic's metadata"))?;
    let partitions = metadata
        .topics()
        .iter()
        .find(|t| t.name() == dlq && t.error().is_none())
        .map_or(0, |t| t.partitions().len());
    let mut tpl = TopicPartitionList::new();
    let mut ends = std::collections::HashMap::new();
    let mut remaining = 0i64;
    for p in 0..i32::try_from(partitions).unwrap_or(0) {
        let (low, high) = client
            .fetch_watermarks(dlq, p, timeout)
            .map_err(kafka("reading watermarks"))?;
        if high > low {
            tpl.add_partition_offset(dlq, p, Offset::Offset(low))
                .map_err(kafka("building the assignment"))?;
            ends.insert(p, high);
            remaining += high - low;
        }
    }
    let mut out = Vec::new();
    if remaining == 0 {
        return Ok(out);
    }
    client.assign(&tpl).map_err(kafka("assigning the DLQ"))?;
    let deadline = Instant::now() + timeout;
    while remaining > 0 {
        if Instant::now() >= deadline {
            return Err(DeadLetterError::Timeout {
                topic: dlq.to_owned(),
                remaining,
            });
        }
        if let Some(Ok(m)) = client.poll(Duration::from_millis(200))
            && ends
                .get(&m.partition())
                .is_some_and(|end| m.offset() < *end)
        {
            remaining -= 1;
            out.push(DeadLetter::of(m.detach()));
        }
    }
    out.sort_by_key(|d| (d.message.partition(), d.message.offset()));
    Ok(out)
}

/// The message of `dlq` at `partition`/`offset`.
pub fn read_one(
    client: &BaseConsumer,
    dlq: &str,
    partition: i32,
    offset: i64,
    timeout: Duration,
) -> Result<DeadLetter, DeadLetterError> {
    check_dlq(dlq)?;
    let not_found = || DeadLetterError::NotFound {
        topic: dlq.to_owned(),
        partition,
        offset,
    };
    let (low, high) = client
        .fetch_watermarks(dlq, partition, timeout)
        .map_err(|_| not_found())?;
    if !(low..high).contains(&offset) {
        return Err(not_found());
    }
    let mut tpl = TopicPartitionList::new();
    tpl.add_partition_offset(dlq, partition, Offset::Offset(offset))
        .map_err(kafka("building the assignment"))?;
    client.assign(&tpl).map_err(kafka("assigning the DLQ"))?;
    let deadline = Instant::now() + timeout;
    while Instant::now() < deadline {
        if let Some(Ok(m)) = client.poll(Duration::from_millis(200))
            && m.partition() == partition
            && m.offset() >= offset
        {
            return if m.offset() == offset {
                Ok(DeadLetter::of(m.detach()))
            } else {
                Err(not_found())
            };
        }
    }
    Err(not_found())
}

/// Produces the dead letter's original key, payload and headers (minus the
/// `dlq.*` ones) to its original topic and waits for the ack (the producer
/// must be acks=all). Returns where it landed.
pub async fn requeue(
    producer: &FutureProducer,
    letter: &DeadLetter,
) -> Result<(String, i32, i64), DeadLetterError> {
    let topic = letter
        .original_topic
        .clone()
        .ok_or(DeadLetterError::NoOrigin(letter.message.offset()))?;
    let mut hdrs = OwnedHeaders::new();
    if let Some(original) = letter.message.headers() {
        for h in original.iter().filter(|h| !h.key.starts_with("dlq.")) {
            hdrs = hdrs.insert(Header {
                key: h.key,
                value: h.value,
            });
        }
    }
    let mut record: FutureRecord<'_, [u8], [u8]> = FutureRecord::to(&topic).headers(hdrs);
    if let Some(key) = letter.message.key() {
        record = record.key(key);
    }
    if let Some(payload) = letter.message.payload() {
        record = record.payload(payload);
    }
    let delivery = producer
        .send_result(record)
        .map_err(|(e, _)| DeadLetterError::Kafka {
            what: "requeueing",
            source: e,
        })?;
    match delivery.await {
        Ok(Ok(d)) => {
            tracing::info!(
                dlq = letter.message.topic(),
                dlq_partition = letter.message.partition(),
                dlq_offset = letter.message.offset(),
                topic = %topic,
                partition = d.partition,
                offset = d.offset,
                "dead letter requeued"
            );
            Ok((topic, d.partition, d.offset))
        }
        Ok(Err((e, _))) => Err(DeadLetterError::Kafka {
            what: "requeueing",
            source: e,
        }),
        Err(_) => Err(DeadLetterError::Canceled),
    }
}
