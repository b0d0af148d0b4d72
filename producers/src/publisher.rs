//! Publishing an event means: encode it (Avro single-object, or Confluent
//! framing when the publisher was given a registry's [`Encoding`]), key it, attach
//! `event_id`/`event_type` headers (and the caller's trace context, see
//! [`crate::trace_headers`]), and wait for the broker's acknowledgement.
//! Nothing downstream of a publish may run before that acknowledgement.

use flashdeal_schemas::{Encoding, OrderId, codec::AvroEvent, topics::headers};
use futures::future::try_join_all;
use rdkafka::{
    error::KafkaError,
    message::{Header, OwnedHeaders},
    producer::{FutureProducer, FutureRecord},
};
use std::time::Instant;
use uuid::Uuid;

/// Why an event was not acknowledged by the broker.
#[derive(Debug, thiserror::Error)]
pub enum PublishError {
    #[error("encoding {event}: {source}")]
    Encode {
        event: &'static str,
        source: flashdeal_schemas::CodecError,
    },
    #[error("broker did not acknowledge: {0}")]
    Kafka(#[from] KafkaError),
    #[error("producer dropped the delivery before it completed")]
    Canceled,
}

/// A shared, cheap-to-clone producer that publishes Avro events.
///
/// Its framing is a value it holds, chosen once at boot
/// ([`with_encoding`](Self::with_encoding)), rather than process-wide
/// state: one process may run publishers for different systems (the
/// integration tests do), and the choice stays visible where the publisher
/// is built.
#[derive(Clone)]
pub struct EventPublisher {
    producer: FutureProducer,
    encoding: Encoding,
}

impl std::fmt::Debug for EventPublisher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EventPublisher").finish_non_exhaustive()
    }
}

/// One event to publish: topic, key and the event's id for the header.
pub struct Outgoing<'a, E> {
    pub topic: &'a str,
    pub key: &'a [u8],
    pub event_id: Uuid,
    pub event: &'a E,
}

impl EventPublisher {
    /// A publisher that writes Avro single-object encoding.
    pub fn new(producer: FutureProducer) -> Self {
        Self {
            producer,
            encoding: Encoding::SingleObject,
        }
    }

    /// The same publisher framing events with `encoding` (Confluent framing
    /// when a schema registry is configured).
    pub fn with_encoding(mut self, encoding: Encoding) -> Self {
        self.encoding = encoding;
        self
    }

    pub fn encoding(&self) -> &Encoding {
        &self.encoding
    }

    pub fn producer(&self) -> &FutureProducer {
        &self.producer
    }

    /// Publishes one event and waits for `acks=all`. Returns (partition, offset).
    pub async fn publish<E: AvroEvent>(
        &self,
        out: Outgoing<'_, E>,
    ) -> Result<(i32, i64), PublishError> {
        let started = Instant::now();
        let result = self.enqueue(&out)?.await;
        let outcome = if result.is_ok() { "ok" } else { "error" };
        metrics::histogram!("flashdeal_produce_seconds", "topic" => out.topic.to_owned(), "outcome" => outcome)
            .record(started.elapsed().as_secs_f64());
        result
    }

    /// Publishes every event of a batch concurrently (they share librdkafka's
    /// batches) and returns once all are acknowledged, or the first error.
    pub async fn publish_all<E: AvroEvent>(
        &self,
        batch: &[Outgoing<'_, E>],
    ) -> Result<(), PublishError> {
        let futures = batch
            .iter()
            .map(|o| self.enqueue(o))
            .collect::<Result<Vec<_>, _>>()?;
        try_join_all(futures).await.map(|_| ())
    }

    /// Publishes order events to `topic`, each keyed by its order id (the key
    /// of every order topic), and waits for every acknowledgement. `ids`
    /// names an event's order id and event id.
    pub async fn publish_by_order<E: AvroEvent>(
        &self,
        topic: &str,
        events: &[E],
        ids: impl Fn(&E) -> (OrderId, Uuid),
    ) -> Result<(), PublishError> {
        self.publish_by_order_in(topic, events, ids, |_| None).await
    }

    /// As [`publish_by_order`](Self::publish_by_order), with each event
    /// enqueued inside the span `span_of` names for it (the consumed message
    /// it answers), so its `traceparent` continues that message's trace
    /// rather than the batch's.
    pub async fn publish_by_order_in<'s, E: AvroEvent>(
        &self,
        topic: &str,
        events: &[E],
        ids: impl Fn(&E) -> (OrderId, Uuid),
        span_of: impl Fn(&E) -> Option<&'s tracing::Span>,
    ) -> Result<(), PublishError> {
        let keyed: Vec<([u8; 16], Uuid)> = events
            .iter()
            .map(|e| {
                let (order_id, event_id) = ids(e);
                (order_id.0.into_bytes(), event_id)
            })
            .collect();
        let out: Vec<_> = events
            .iter()
            .zip(&keyed)
            .map(|(event, (key, event_id))| Outgoing {
                topic,
                key,
                event_id: *event_id,
                event,
            })
            .collect();
        let futures = events
            .iter()
            .zip(&out)
            .map(|(event, o)| match span_of(event) {
                Some(span) => span.in_scope(|| self.enqueue(o)),
                None => self.enqueue(o),
            })
            .collect::<Result<Vec<_>, _>>()?;
        try_join_all(futures).await.map(|_| ())
    }

    /// Hands the record to librdkafka now (`send_result`), so a batch is
    /// enqueued before anything is awaited.
    fn enqueue<E: AvroEvent>(
        &self,
        out: &Outgoing<'_, E>,
    ) -> Result<impl Future<Output = Result<(i32, i64), PublishError>> + use<E>, PublishError> {
        let payload = self
            .encoding
            .encode(out.event)
            .map_err(|source| PublishError::Encode {
                event: E::NAME,
                source,
            })?;
        self.enqueue_raw(out.topic, out.key, &payload, out.event_id, E::NAME)
    }

    /// Enqueues an already-encoded event (the outbox relay's rows) with its
    /// `event_id` and `event_type` headers; the future resolves on the ack.
    pub fn enqueue_raw(
        &self,
        topic: &str,
        key: &[u8],
        payload: &[u8],
        event_id: Uuid,
        event_type: &str,
    ) -> Result<impl Future<Output = Result<(i32, i64), PublishError>> + use<>, PublishError> {
        let event_id = event_id.to_string();
        let headers = OwnedHeaders::new_with_capacity(4)
            .insert(Header {
                key: headers::EVENT_ID,
                value: Some(event_id.as_bytes()),
            })
            .insert(Header {
                key: headers::EVENT_TYPE,
                value: Some(event_type.as_bytes()),
            });
        let headers = crate::trace_headers::with_current_context(headers);
        let record = FutureRecord::to(topic)
            .key(key)
            .payload(payload)
            .headers(headers);
        let delivery = self
            .producer
            .send_result(record)
            .map_err(|(e, _)| PublishError::Kafka(e))?;
        Ok(async move {
            match delivery.await {
                Ok(Ok(d)) => Ok((d.partition, d.offset)),
                Ok(Err((e, _))) => Err(PublishError::Kafka(e)),
                Err(_) => Err(PublishError::Canceled),
            }
        })
    }
}
