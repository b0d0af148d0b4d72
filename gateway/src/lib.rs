//! FlashDeal's HTTP gateway.
//!
//! It authenticates, validates, reserves stock in Redis with one script and
//! appends an order intent to the log; everything slower happens behind the
//! log. `Application::build` takes a bound listener (port 0 in tests) and
//! already-built clients; `run_until_stopped` serves until the token fires.
//!
//! # Layout
//! - [`state`]: shared clients and settings.
//! - [`error`], [`json`]: problem+json errors and the JSON extractor.
//! - [`auth`]: passwords, JWTs, extractors, signup/login, account changes
//!   (password, block, key rotation) and the `auth.events` follower.
//! - [`catalog`]: products and deals (admin writes through the outbox, public read).
//! - [`orders`]: ingress (`reserve.lua` + intent) and status.
//! - [`health`]: health, readiness, metrics.
//! - [`openapi`]: the OpenAPI document (`/openapi.json`) and `/docs`.
//! - [`rate_limit`]: per-IP and per-user token buckets (429 + `Retry-After`).

pub mod auth;
pub mod catalog;
pub mod error;
pub mod health;
pub mod json;
pub mod openapi;
pub mod orders;
pub mod rate_limit;
#[cfg(test)]
mod router_tests;
pub mod state;

use axum::{Extension, Router, extract::DefaultBodyLimit, http::StatusCode, middleware};
use rate_limit::RateLimiter;
pub use state::{AppState, Databases, GatewaySettings};
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use tower_http::trace::TraceLayer;
use utoipa::OpenApi;
use utoipa_axum::{router::OpenApiRouter, routes};

/// Every route, each registered from its handler's `#[utoipa::path]`, so
/// the router and the OpenAPI document are one list.
pub fn api() -> OpenApiRouter<AppState> {
    OpenApiRouter::with_openapi(openapi::ApiDoc::openapi())
        .routes(routes!(auth::routes::signup))
        .routes(routes!(auth::routes::login))
        .routes(routes!(auth::routes::change_password))
        .routes(routes!(auth::admin::block_user))
        .routes(routes!(auth::admin::unblock_user))
        .routes(routes!(auth::admin::rotate_signing_key))
        .routes(routes!(catalog::deals::create_deal_handler))
        .routes(routes!(catalog::listing::list_deals))
        .routes(routes!(catalog::deals::get_deal))
        .routes(routes!(catalog::products::create, catalog::products::list))
        .routes(routes!(
            catalog::products::update,
            catalog::products::delete
        ))
        .routes(routes!(catalog::products::get))
        .routes(routes!(catalog::lifecycle::pause))
        .routes(routes!(catalog::lifecycle::resume))
        .routes(routes!(catalog::lifecycle::end))
        .routes(routes!(catalog::stock::adjust))
        .routes(routes!(orders::place_order))
        .routes(routes!(orders::get_order))
        .routes(routes!(health::healthz))
        .routes(routes!(health::readyz))
        .routes(routes!(health::metrics))
        .routes(routes!(openapi::openapi_json))
        .routes(routes!(openapi::docs))
}

/// The OpenAPI document of [`api`].
pub fn openapi_spec() -> utoipa::openapi::OpenApi {
    api().into_openapi()
}

/// The routes, with their middleware.
pub fn router(state: AppState) -> Router {
    let (routes, spec) = api().split_for_parts();
    let spec = openapi::SpecJson(match spec.to_json() {
        Ok(json) => json.into(),
        Err(e) => {
            tracing::error!(error = %e, "could not render the OpenAPI document");
            "{}".into()
        }
    });
    let limiter = RateLimiter::new(state.settings.rate_limit.clone(), state.jwt.clone());
    routes
        .fallback(|| async { error::ApiError::NotFound("route") })
        .method_not_allowed_fallback(|| async {
            error::problem(
                StatusCode::METHOD_NOT_ALLOWED,
                error::kind::NOT_FOUND,
                "Method not allowed",
                "this route does not accept that method".to_owned(),
            )
        })
        .layer(Extension(spec))
        .layer(DefaultBodyLimit::max(json::MAX_BODY_BYTES))
        .route_layer(middleware::from_fn(health::track_http))
        .layer(middleware::from_fn_with_state(limiter, rate_limit::enforce))
        .layer(TraceLayer::new_for_http())
        .with_state(state)
}

/// A gateway bound to a listener, ready to serve.
pub struct Application {
    listener: TcpListener,
    router: Router,
    auth_follower: Option<auth::follower::FollowerHandle>,
}

impl Application {
    pub fn build(listener: TcpListener, state: AppState) -> Self {
        Self {
            listener,
            router: router(state),
            auth_follower: None,
        }
    }

    /// Keeps the `auth.events` follower running as long as this gateway.
    pub fn with_auth_follower(mut self, follower: auth::follower::FollowerHandle) -> Self {
        self.auth_follower = Some(follower);
        self
    }

    pub fn local_addr(&self) -> std::io::Result<std::net::SocketAddr> {
        self.listener.local_addr()
    }

    /// Serves until `shutdown` fires, then finishes in-flight requests.
    pub async fn run_until_stopped(self, shutdown: CancellationToken) -> std::io::Result<()> {
        // The peer address is the per-IP rate limiter's client (unless a
        // trusted proxy says otherwise).
        let app = self
            .router
            .into_make_service_with_connect_info::<std::net::SocketAddr>();
        let served = axum::serve(self.listener, app)
            .with_graceful_shutdown(async move { shutdown.cancelled().await })
            .await;
        if let Some(follower) = self.auth_follower {
            follower.stop().await;
        }
        served
    }
}
