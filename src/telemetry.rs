//! Logs, traces and the Prometheus recorder.
//!
//! Logs are readable by default, JSON with `LOG_FORMAT=json`; the filter
//! comes from `RUST_LOG` (default `info`, with the chatty dependencies at
//! `warn`). In JSON, a line logged inside a traced span carries that span's
//! `trace_id` and `span_id`.
//!
//! Traces are OpenTelemetry, off by default. `OTEL_TRACES_EXPORTER=otlp` or
//! an `OTEL_EXPORTER_OTLP_ENDPOINT` (or `…_TRACES_ENDPOINT`) turns on an
//! OTLP/HTTP (protobuf) exporter that reads the standard `OTEL_*` variables
//! itself (endpoint, headers, timeout, `OTEL_BSP_*` batching,
//! `OTEL_TRACES_SAMPLER`); the service is `OTEL_SERVICE_NAME`, else
//! `flashdeal-<role>`. `OTEL_SDK_DISABLED=true` or `OTEL_TRACES_EXPORTER=none`
//! keep it off. The W3C TraceContext propagator is always installed, so
//! `traceparent` crosses Kafka (see `flashdeal_producers::trace_headers`).
//!
//! Off means no OpenTelemetry layer at all: a span costs what a `tracing`
//! span costs. With JSON logs and no exporter, spans get ids (for the log
//! lines) from a never-sampling tracer: nothing is recorded or exported.

use opentelemetry::{
    Context, global,
    trace::{SpanBuilder, TraceContextExt, Tracer, TracerProvider as _},
};
use opentelemetry_sdk::{
    Resource,
    propagation::TraceContextPropagator,
    trace::{Sampler, SdkTracerProvider},
};
use std::fmt::Write as _;
use tracing::{Event, Subscriber, level_filters::LevelFilter};
use tracing_subscriber::{
    EnvFilter, Layer, Registry,
    filter::Targets,
    fmt::{self, FmtContext, FormatEvent, FormatFields, format::Writer},
    layer::SubscriberExt,
    registry::LookupSpan,
    util::SubscriberInitExt,
};

/// The instrumentation scope of every FlashDeal span.
const TRACER: &str = "flashdeal";

type BoxedLayer = Box<dyn Layer<Registry> + Send + Sync>;

/// Keeps the trace exporter running; dropping it flushes what is buffered.
#[must_use = "dropping it shuts the trace exporter down"]
#[derive(Debug, Default)]
pub struct Telemetry {
    exporting: Option<SdkTracerProvider>,
}

impl Drop for Telemetry {
    fn drop(&mut self) {
        if let Some(provider) = self.exporting.take()
            && let Err(e) = provider.shutdown()
        {
            eprintln!("warning: flushing traces: {e}");
        }
    }
}

/// Logs and, when configured, traces for `role` (`gateway`, `order-writer`…).
pub fn init(role: &str) -> Telemetry {
    global::set_text_map_propagator(TraceContextPropagator::new());
    let json = json_logs();
    let provider = if exporter_enabled() {
        match otlp_provider(role) {
            Ok(p) => Some(p),
            Err(e) => {
                eprintln!("warning: traces off, the OTLP exporter failed to build: {e}");
                None
            }
        }
    } else {
        None
    };
    let exporting = provider.is_some();
    // JSON logs want ids to correlate lines even when nothing is exported.
    let provider = provider.or_else(|| {
        json.then(|| {
            SdkTracerProvider::builder()
                .with_sampler(Sampler::AlwaysOff)
                .build()
        })
    });
    let otel = provider
        .as_ref()
        .map(|p| otel_layer(OpenTelemetryLayer::new(p.tracer(TRACER))));
    install(
        "info,rdkafka=warn,librdkafka=warn,nisshi=warn,sqlx=warn,tower_http=warn",
        json,
        otel,
    );
    if let Some(p) = &provider {
        global::set_tracer_provider(p.clone());
    }
    Telemetry {
        exporting: provider.filter(|_| exporting),
    }
}

/// For tests (several roles in one process): logs with another filter
/// when `RUST_LOG` is unset (tests use `warn`), and an OpenTelemetry layer
/// that builds each span with whatever provider `opentelemetry::global`
/// holds at that moment (a no-op one until a test installs its own), so a
/// test can capture spans whichever test installed the subscriber first.
pub fn init_with_default(default_filter: &str) {
    global::set_text_map_propagator(TraceContextPropagator::new());
    install(
        default_filter,
        json_logs(),
        Some(otel_layer(OpenTelemetryLayer::new(GlobalTracer))),
    );
}

type OpenTelemetryLayer<T> = tracing_opentelemetry::OpenTelemetryLayer<Registry, T>;

/// FlashDeal's own spans at `info` and above go to OpenTelemetry,
/// whatever `RUST_LOG` lets through to the logs.
fn otel_layer<T>(layer: OpenTelemetryLayer<T>) -> BoxedLayer
where
    T: Tracer + Send + Sync + 'static,
    T::Span: Send + Sync,
{
    layer
        .with_threads(false)
        .with_location(false)
        .with_filter(Targets::new().with_target("flashdeal", LevelFilter::INFO))
        .boxed()
}

/// One global subscriber: the log layer (filtered by `RUST_LOG`) and the
/// OpenTelemetry layer (its own filter). `try_init` so tests that run
/// several roles in one process can call it again.
fn install(default_filter: &str, json: bool, otel: Option<BoxedLayer>) {
    let filter =
        EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(default_filter));
    let logs = fmt::layer().with_writer(std::io::stderr);
    let logs: BoxedLayer = if json {
        logs.json()
            .event_format(WithTraceIds(fmt::format().json()))
            .with_filter(filter)
            .boxed()
    } else {
        logs.with_filter(filter).boxed()
    };
    let _ = Registry::default()
        .with(std::iter::once(logs).chain(otel).collect::<Vec<_>>())
        .try_init();
}

fn json_logs() -> bool {
    std::env::var("LOG_FORMAT").is_ok_and(|v| v.eq_ignore_ascii_case("json"))
}

fn env(name: &str) -> Option<String> {
    std::env::var(name).ok().filter(|v| !v.trim().is_empty())
}

/// The standard switches: disabled SDK, an explicit exporter, else an endpoint.
fn exporter_enabled() -> bool {
    if env("OTEL_SDK_DISABLED").is_some_and(|v| v.eq_ignore_ascii_case("true")) {
        return false;
    }
    match env("OTEL_TRACES_EXPORTER") {
        Some(v) if v.eq_ignore_ascii_case("otlp") => true,
        Some(v) => {
            if !v.eq_ignore_ascii_case("none") {
                eprintln!(
                    "warning: OTEL_TRACES_EXPORTER={v} is not supported (otlp, none): traces off"
                );
            }
            false
        }
        None => {
            env("OTEL_EXPORTER_OTLP_ENDPOINT").is_some()
                || env("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT").is_some()
        }
    }
}

fn otlp_provider(role: &str) -> Result<SdkTracerProvider, opentelemetry_otlp::ExporterBuildError> {
    if let Some(p) = env("OTEL_EXPORTER_OTLP_PROTOCOL").filter(|p| !p.starts_with("http/protobuf"))
    {
        eprintln!("warning: OTEL_EXPORTER_OTLP_PROTOCOL={p}: only http/protobuf is built in");
    }
    let exporter = opentelemetry_otlp::SpanExporter::builder()
        .with_http()
        .build()?;
    let service = env("OTEL_SERVICE_NAME").unwrap_or_else(|| format!("flashdeal-{role}"));
    // The builder also reads OTEL_RESOURCE_ATTRIBUTES; the sampler comes
    // from OTEL_TRACES_SAMPLER, the batching from OTEL_BSP_*.
    Ok(SdkTracerProvider::builder()
        .with_resource(Resource::builder().with_service_name(service).build())
        .with_batch_exporter(exporter)
        .build())
}

/// A tracer that asks `opentelemetry::global` for the provider on every
/// span, so the provider can be installed after the subscriber (tests).
#[derive(Clone, Copy, Debug)]
struct GlobalTracer;

impl Tracer for GlobalTracer {
    type Span = global::BoxedSpan;

    fn build_with_context(&self, builder: SpanBuilder, parent_cx: &Context) -> Self::Span {
        global::tracer(TRACER).build_with_context(builder, parent_cx)
    }
}

/// The JSON event format plus `trace_id`/`span_id` of the current
/// OpenTelemetry span (the innermost traced span that is entered).
struct WithTraceIds<F>(F);

impl<S, N, F> FormatEvent<S, N> for WithTraceIds<F>
where
    S: Subscriber + for<'a> LookupSpan<'a>,
    N: for<'a> FormatFields<'a> + 'static,
    F: FormatEvent<S, N>,
{
    fn format_event(
        &self,
        ctx: &FmtContext<'_, S, N>,
        mut writer: Writer<'_>,
        event: &Event<'_>,
    ) -> std::fmt::Result {
        let cx = Context::current();
        let span = cx.span();
        let ids = span.span_context();
        if !ids.is_valid() {
            return self.0.format_event(ctx, writer, event);
        }
        let mut line = String::with_capacity(256);
        self.0.format_event(ctx, Writer::new(&mut line), event)?;
        // The inner format writes one object and a newline: reopen it.
        let Some(object) = line.trim_end().strip_suffix('}') else {
            return writer.write_str(&line);
        };
        let mut out = String::with_capacity(line.len() + 72);
        out.push_str(object);
        write!(
            out,
            r#","trace_id":"{}","span_id":"{}"}}"#,
            ids.trace_id(),
            ids.span_id()
        )?;
        writeln!(writer, "{out}")
    }
}

/// Installs the Prometheus recorder once per process and returns its handle.
pub fn metrics() -> Option<metrics_exporter_prometheus::PrometheusHandle> {
    static HANDLE: std::sync::OnceLock<Option<metrics_exporter_prometheus::PrometheusHandle>> =
        std::sync::OnceLock::new();
    HANDLE
        .get_or_init(|| {
            metrics_exporter_prometheus::PrometheusBuilder::new()
                .install_recorder()
                .ok()
        })
        .clone()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A JSON log line inside a traced span names the span's ids.
    #[test]
    fn json_lines_carry_the_trace_and_span_ids() {
        #[derive(Clone, Default)]
        struct Buf(std::sync::Arc<std::sync::Mutex<Vec<u8>>>);
        impl std::io::Write for Buf {
            fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
                self.0
                    .lock()
                    .map_err(|_| std::io::ErrorKind::Other)?
                    .extend_from_slice(b);
                Ok(b.len())
            }
            fn flush(&mut self) -> std::io::Result<()> {
                Ok(())
            }
        }
        let buf = Buf::default();
        let writer = buf.clone();
        let provider = SdkTracerProvider::builder().build();
        let subscriber = Registry::default()
            .with(
                fmt::layer()
                    .json()
                    .event_format(WithTraceIds(fmt::format().json()))
                    .with_writer(move || writer.clone()),
            )
            .with(tracing_opentelemetry::layer().with_tracer(provider.tracer(TRACER)));
        tracing::subscriber::with_default(subscriber, || {
            tracing::info!("outside");
            tracing::info_span!("request").in_scope(|| tracing::info!(order_id = 7, "inside"));
        });
        let text = String::from_utf8(buf.0.lock().expect("lock").clone()).expect("utf-8");
        let lines: Vec<serde_json::Value> = text
            .lines()
            .map(|l| serde_json::from_str(l).expect("one JSON object per line"))
            .collect();
        assert_eq!(lines.len(), 2, "{text}");
        assert!(lines[0].get("trace_id").is_none(), "{text}");
        let trace_id = lines[1]["trace_id"].as_str().expect("trace_id");
        assert_eq!(trace_id.len(), 32, "{text}");
        assert_eq!(
            lines[1]["span_id"].as_str().map(str::len),
            Some(16),
            "{text}"
        );
        assert_eq!(lines[1]["fields"]["order_id"], 7, "{text}");
    }
}
