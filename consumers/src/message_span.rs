//! One span per consumed message, continuing the trace its producer started.
//!
//! A batch mixes messages of many traces (one per order), so a batch span
//! cannot be their common parent. We pick parent-per-message: each message
//! gets a `process` span whose parent is the context extracted from its
//! `traceparent`/`tracestate` headers, so `POST /orders` → order-writer →
//! projector reads as one trace. The message span also *links* to the
//! batch span that is current when it is created (the consume loop's
//! `consume_batch`), so a trace viewer can go from an order to the batch
//! that carried it, and the batch's own timing (retries included) stays in
//! one place. Whatever a handler publishes for a message it publishes
//! inside that message's span (see
//! `EventPublisher::publish_by_order_in`), which hands the trace on.
//!
//! Without an OpenTelemetry layer the span is a plain `tracing` span and no
//! header is parsed.

use opentelemetry::{
    propagation::Extractor,
    trace::{TraceContextExt, TraceId},
};
use rdkafka::{
    Message,
    message::{Headers, OwnedMessage},
};
use tracing::Span;
use tracing_opentelemetry::OpenTelemetrySpanExt;

/// A span for `msg` as handled by `role`, child of the trace in its headers.
/// Record `order_id` on it once the payload is decoded.
pub fn message_span(role: &'static str, msg: &OwnedMessage) -> Span {
    let span = tracing::info_span!(
        "process",
        otel.kind = "consumer",
        role,
        topic = msg.topic(),
        partition = msg.partition(),
        offset = msg.offset(),
        order_id = tracing::field::Empty,
    );
    if span.is_disabled() {
        return span;
    }
    let batch = Span::current().context();
    let parent = opentelemetry::global::get_text_map_propagator(|p| p.extract(&Carrier(msg)));
    if parent.span().span_context().trace_id() != TraceId::INVALID {
        // Fails only without an OpenTelemetry layer: then there is nothing to link.
        let _ = span.set_parent(parent);
    }
    let batch = batch.span().span_context().clone();
    if batch.is_valid() {
        span.add_link(batch);
    }
    span
}

/// A message's headers as a propagator carrier (UTF-8 values only).
struct Carrier<'a>(&'a OwnedMessage);

impl Extractor for Carrier<'_> {
    fn get(&self, key: &str) -> Option<&str> {
        let headers = self.0.headers()?;
        headers
            .iter()
            .find(|h| h.key == key)
            .and_then(|h| std::str::from_utf8(h.value?).ok())
    }

    fn keys(&self) -> Vec<&str> {
        self.0
            .headers()
            .map(|h| h.iter().map(|h| h.key).collect())
            .unwrap_or_default()
    }
}
