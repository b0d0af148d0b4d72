//! What every handler can reach. Clients are built by the binary and passed
//! in (library crates never read the environment).

use crate::{auth::JwtKeys, rate_limit::RateLimitSettings};
use flashdeal_producers::EventPublisher;
use metrics_exporter_prometheus::PrometheusHandle;
use redis::aio::ConnectionManager;
use sqlx::PgPool;
use std::{sync::Arc, time::Duration};

/// Gateway policy knobs, validated by the binary at boot.
#[derive(Clone, Debug)]
pub struct GatewaySettings {
    /// How long a reservation stays pending before it may be expired; must
    /// exceed the producer's delivery timeout (ARCHITECTURE §5).
    pub reservation_ttl: Duration,
    /// How long an `Idempotency-Key` is remembered.
    pub idempotency_ttl: Duration,
    /// Per-IP and per-user token buckets (none by default).
    pub rate_limit: RateLimitSettings,
}

impl Default for GatewaySettings {
    fn default() -> Self {
        Self {
            reservation_ttl: Duration::from_secs(600),
            idempotency_ttl: Duration::from_secs(24 * 3600),
            rate_limit: RateLimitSettings::default(),
        }
    }
}

/// One pool per service, each logged in as that service's PostgreSQL role
/// (`flashdeal_auth`, `flashdeal_catalog`, `flashdeal_orders`), which can
/// touch only its own schema.
#[derive(Clone, Debug)]
pub struct Databases {
    pub auth: PgPool,
    pub catalog: PgPool,
    pub orders: PgPool,
}

/// Shared handler state; cheap to clone.
#[derive(Clone)]
pub struct AppState {
    pub db: Databases,
    pub redis: ConnectionManager,
    pub publisher: EventPublisher,
    pub jwt: Arc<JwtKeys>,
    pub settings: Arc<GatewaySettings>,
    pub metrics: Option<PrometheusHandle>,
}
