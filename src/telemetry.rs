//! Logs: readable by default, JSON with `LOG_FORMAT=json`; the filter comes
//! from `RUST_LOG` (default `info`, with the chatty dependencies at `warn`).

use tracing_subscriber::{EnvFilter, fmt};

pub fn init() {
    init_with_default("info,rdkafka=warn,librdkafka=warn,nisshi=warn,sqlx=warn,tower_http=warn");
}

/// As [`init`], with another filter when `RUST_LOG` is unset (tests use `warn`).
pub fn init_with_default(default_filter: &str) {
    let filter =
        EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(default_filter));
    let json = std::env::var("LOG_FORMAT").is_ok_and(|v| v.eq_ignore_ascii_case("json"));
    let builder = fmt().with_env_filter(filter).with_writer(std::io::stderr);
    // `try_init` so tests that run several roles in one process can call it.
    let _ = if json {
        builder.json().try_init()
    } else {
        builder.try_init()
    };
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
