//! A message a handler can never apply (undecodable, or refused by a
//! constraint) is copied to `<topic>.dlq` with the reason and its origin in
//! headers, so the partition keeps moving and an operator can look at it.

use flashdeal_producers::{EventPublisher, PublishError};
use flashdeal_schemas::topics::{self, headers};
use rdkafka::{
    Message,
    message::{Header, Headers, OwnedHeaders, OwnedMessage},
    producer::FutureRecord,
};

/// Copies `msg` to its DLQ topic and waits for the broker's ack.
pub async fn dead_letter(
    publisher: &EventPublisher,
    role: &'static str,
    msg: &OwnedMessage,
    reason: &str,
) -> Result<(), PublishError> {
    let dlq = topics::dlq(msg.topic());
    tracing::warn!(
        role,
        topic = msg.topic(),
        partition = msg.partition(),
        offset = msg.offset(),
        reason,
        "dead-lettering message"
    );
    let partition = msg.partition().to_string();
    let offset = msg.offset().to_string();
    let mut hdrs = OwnedHeaders::new();
    if let Some(original) = msg.headers() {
        for h in original.iter() {
            hdrs = hdrs.insert(h);
        }
    }
    for (key, value) in [
        (headers::DLQ_ERROR, reason),
        (headers::DLQ_TOPIC, msg.topic()),
        (headers::DLQ_PARTITION, partition.as_str()),
        (headers::DLQ_OFFSET, offset.as_str()),
    ] {
        hdrs = hdrs.insert(Header {
            key,
            value: Some(value.as_bytes()),
        });
    }
    let mut record: FutureRecord<'_, [u8], [u8]> = FutureRecord::to(&dlq).headers(hdrs);
    if let Some(key) = msg.key() {
        record = record.key(key);
    }
    if let Some(payload) = msg.payload() {
        record = record.payload(payload);
    }
    let delivery = publisher
        .producer()
        .send_result(record)
        .map_err(|(e, _)| PublishError::Kafka(e))?;
    match delivery.await {
        Ok(Ok(_)) => {
            metrics::counter!("flashdeal_dlq_messages_total", "role" => role, "topic" => msg.topic().to_owned())
                .increment(1);
            Ok(())
        }
        Ok(Err((e, _))) => Err(PublishError::Kafka(e)),
        Err(_) => Err(PublishError::Canceled),
    }
}
