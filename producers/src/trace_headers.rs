//! W3C trace context (`traceparent`, `tracestate`) in record headers, so a
//! trace that starts at `POST /orders` continues in every consumer.
//!
//! The publisher injects the *current* OpenTelemetry context: whatever span
//! is entered when a record is enqueued becomes the parent of the
//! consumer's span. Without an OpenTelemetry layer (tracing off) the
//! current context holds no span and nothing is added, so the hot path pays
//! one thread-local read.

use opentelemetry::{Context, propagation::Injector, trace::TraceContextExt};
use rdkafka::message::{Header, OwnedHeaders};

/// The headers plus the current trace context, if there is one.
pub fn with_current_context(headers: OwnedHeaders) -> OwnedHeaders {
    let cx = Context::current();
    if !cx.span().span_context().is_valid() {
        return headers;
    }
    let mut fields = Fields(Vec::with_capacity(2));
    opentelemetry::global::get_text_map_propagator(|p| p.inject_context(&cx, &mut fields));
    fields.0.iter().fold(headers, |headers, (key, value)| {
        headers.insert(Header {
            key,
            value: Some(value.as_bytes()),
        })
    })
}

/// What the propagator writes, collected before it goes into the headers
/// (`OwnedHeaders::insert` takes the headers by value).
struct Fields(Vec<(String, String)>);

impl Injector for Fields {
    fn set(&mut self, key: &str, value: String) {
        self.0.push((key.to_owned(), value));
    }
}
