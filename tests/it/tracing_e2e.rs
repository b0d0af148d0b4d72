//! One trace end to end: `POST /orders` → `orders.intents` (traceparent in
//! the record headers) → the order-writer → `orders.status` → the projector.
//!
//! The process-wide subscriber (`telemetry::init_with_default`, whichever
//! test installed it) carries an OpenTelemetry layer that builds spans with
//! the *global* tracer provider of the moment; this test installs one that
//! keeps finished spans in memory. Every test of the process runs in
//! parallel and may add spans to it, so the test finds its own by order id
//! and then by trace id.

use crate::harness::{Options, TestEnv, eventually};
use opentelemetry::{Value, trace::TraceId};
use opentelemetry_sdk::trace::{InMemorySpanExporter, SdkTracerProvider, SpanData};
use std::{sync::OnceLock, time::Duration};

/// The in-memory exporter behind the global tracer provider of this
/// process, installed on first use.
fn captured() -> &'static (SdkTracerProvider, InMemorySpanExporter) {
    static CAPTURE: OnceLock<(SdkTracerProvider, InMemorySpanExporter)> = OnceLock::new();
    CAPTURE.get_or_init(|| {
        let exporter = InMemorySpanExporter::default();
        let provider = SdkTracerProvider::builder()
            .with_simple_exporter(exporter.clone())
            .build();
        opentelemetry::global::set_tracer_provider(provider.clone());
        (provider, exporter)
    })
}

fn attr<'a>(span: &'a SpanData, key: &str) -> Option<&'a Value> {
    span.attributes
        .iter()
        .find(|kv| kv.key.as_str() == key)
        .map(|kv| &kv.value)
}

fn is(span: &SpanData, key: &str, value: &str) -> bool {
    attr(span, key).is_some_and(|v| v.as_str() == value)
}

/// The finished spans of `trace`, once the three hops are there.
fn hops(spans: &[SpanData], trace: TraceId, order_id: &str) -> Option<[SpanData; 2]> {
    let of = |role: &str| {
        spans
            .iter()
            .find(|s| {
                s.span_context.trace_id() == trace
                    && s.name == "process"
                    && is(s, "role", role)
                    && is(s, "order_id", order_id)
            })
            .cloned()
    };
    Some([of("order-writer")?, of("projector")?])
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn an_order_is_one_trace_from_the_gateway_to_the_projector() {
    let (provider, exporter) = captured();
    let env = TestEnv::start(Options::default()).await;
    let deal = env.create_deal(5, 1).await;
    let (_, token) = env.customer_token();
    let (status, body) = env.order(&token, deal, 1, None).await;
    assert_eq!(status, 202, "{body}");
    let order_id = body["order_id"].as_str().expect("order_id").to_owned();
    let location = format!("/orders/{order_id}");
    eventually(
        "the order to be confirmed",
        Duration::from_secs(30),
        || async {
            let v = env.get_json(&location, &token).await?;
            (v["status"] == "confirmed").then_some(())
        },
    )
    .await;

    // Spans are exported when they end, the projector's right after its
    // Redis pipeline and the writer's batch span after the writer's: poll.
    let (gateway, [writer, projector], batch) =
        eventually("the order's spans", Duration::from_secs(10), || async {
            provider.force_flush().ok()?;
            let spans = exporter.get_finished_spans().ok()?;
            let gateway = spans
                .iter()
                .find(|s| s.name == "POST /orders" && is(s, "order_id", &order_id))?
                .clone();
            let hops = hops(&spans, gateway.span_context.trace_id(), &order_id)?;
            // The message span links to the consume loop's batch span.
            let batch = hops[0].links.links.iter().find_map(|l| {
                spans
                    .iter()
                    .find(|s| s.span_context.span_id() == l.span_context.span_id())
            })?;
            let batch = batch.clone();
            Some((gateway, hops, batch))
        })
        .await;

    let trace = gateway.span_context.trace_id();
    println!(
        "trace {trace}: {} {} → {} {} (role {:?}) → {} {} (role {:?})",
        gateway.name,
        gateway.span_context.span_id(),
        writer.name,
        writer.span_context.span_id(),
        attr(&writer, "role").map(Value::as_str),
        projector.name,
        projector.span_context.span_id(),
        attr(&projector, "role").map(Value::as_str),
    );
    assert_eq!(
        (
            writer.span_context.trace_id(),
            projector.span_context.trace_id()
        ),
        (trace, trace),
        "one trace from the gateway to the projector"
    );
    // Each hop's parent is the span that produced the record it consumed,
    // carried in the record's traceparent header (a remote parent).
    assert_eq!(
        (writer.parent_span_id, writer.parent_span_is_remote),
        (gateway.span_context.span_id(), true),
        "the order-writer continues the gateway's span"
    );
    assert_eq!(
        (projector.parent_span_id, projector.parent_span_is_remote),
        (writer.span_context.span_id(), true),
        "the projector continues the order-writer's span"
    );
    assert_eq!(batch.name, "consume_batch");
    assert!(is(&batch, "role", "order-writer"), "{:?}", batch.attributes);
    env.finish().await;
}
