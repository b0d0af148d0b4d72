//! `/healthz` (the process is alive), `/readyz` (PostgreSQL, Redis and the
//! broker answer) and `/metrics` (Prometheus text).

use crate::state::AppState;
use axum::{
    extract::{MatchedPath, Request, State},
    http::StatusCode,
    middleware::Next,
    response::{IntoResponse, Response},
};
use rdkafka::producer::Producer;
use serde::Serialize;
use std::time::{Duration, Instant};

#[utoipa::path(get, path = "/healthz", tag = "operations",
    responses((status = 200, description = "The process is alive", content_type = "text/plain", body = String, example = "ok"))
)]
pub async fn healthz() -> &'static str {
    "ok"
}

/// Whether each dependency answered `/readyz` within a second.
#[derive(Serialize, utoipa::ToSchema)]
pub struct Readiness {
    pub postgres: bool,
    pub redis: bool,
    pub broker: bool,
}

/// 200 when every dependency answers within a second, else 503 naming them.
#[utoipa::path(get, path = "/readyz", tag = "operations",
    responses(
        (status = 200, description = "PostgreSQL, Redis and the broker answered", body = Readiness),
        (status = 503, description = "At least one dependency did not answer", body = Readiness),
    )
)]
pub async fn readyz(State(mut state): State<AppState>) -> Response {
    let deadline = Duration::from_secs(1);
    let pg = tokio::time::timeout(deadline, sqlx::query("SELECT 1").execute(&state.db.orders))
        .await
        .is_ok_and(|r| r.is_ok());
    let redis = tokio::time::timeout(
        deadline,
        redis::cmd("PING").query_async::<String>(&mut state.redis),
    )
    .await
    .is_ok_and(|r| r.is_ok());
    let producer = state.publisher.producer().clone();
    let broker = tokio::task::spawn_blocking(move || {
        producer.client().fetch_metadata(None, deadline).is_ok()
    })
    .await
    .unwrap_or(false);
    let status = if pg && redis && broker {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    let readiness = Readiness {
        postgres: pg,
        redis,
        broker,
    };
    (status, axum::Json(readiness)).into_response()
}

/// Prometheus text exposition.
#[utoipa::path(get, path = "/metrics", tag = "operations",
    responses(
        (status = 200, description = "Prometheus text format", content_type = "text/plain", body = String),
        (status = 404, description = "This process records no metrics", content_type = "text/plain", body = String),
    )
)]
pub async fn metrics(State(state): State<AppState>) -> Response {
    record_pool_stats(&state);
    match &state.metrics {
        Some(handle) => handle.render().into_response(),
        None => (StatusCode::NOT_FOUND, "metrics are not enabled").into_response(),
    }
}

/// Each service pool's connections, sampled when `/metrics` is scraped.
fn record_pool_stats(state: &AppState) {
    for (service, pool) in [
        ("auth", &state.db.auth),
        ("catalog", &state.db.catalog),
        ("orders", &state.db.orders),
    ] {
        let (size, idle) = (pool.size(), pool.num_idle() as u32);
        metrics::gauge!("flashdeal_pg_pool_connections", "service" => service, "state" => "idle")
            .set(f64::from(idle));
        metrics::gauge!("flashdeal_pg_pool_connections", "service" => service, "state" => "in_use")
            .set(f64::from(size.saturating_sub(idle)));
        metrics::gauge!("flashdeal_pg_pool_max_connections", "service" => service)
            .set(f64::from(pool.options().get_max_connections()));
    }
}

/// Records request count and latency per route template and status.
pub async fn track_http(req: Request, next: Next) -> Response {
    let started = Instant::now();
    let route = req
        .extensions()
        .get::<MatchedPath>()
        .map_or_else(|| "unmatched".to_owned(), |p| p.as_str().to_owned());
    let method = req.method().to_string();
    let res = next.run(req).await;
    let status = res.status().as_u16().to_string();
    metrics::histogram!("flashdeal_http_request_seconds", "route" => route, "method" => method, "status" => status)
        .record(started.elapsed().as_secs_f64());
    res
}
