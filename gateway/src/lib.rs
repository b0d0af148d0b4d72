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

pub mod auth;
pub mod catalog;
pub mod error;
pub mod health;
pub mod json;
pub mod orders;
pub mod state;

use axum::{
    Router,
    extract::DefaultBodyLimit,
    http::StatusCode,
    middleware,
    routing::{get, post},
};
pub use state::{AppState, Databases, GatewaySettings};
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use tower_http::trace::TraceLayer;

/// The routes, with their middleware.
pub fn router(state: AppState) -> Router {
    Router::new()
        .route("/auth/signup", post(auth::routes::signup))
        .route("/auth/login", post(auth::routes::login))
        .route("/auth/password", post(auth::routes::change_password))
        .route("/admin/users/{id}/block", post(auth::admin::block_user))
        .route("/admin/users/{id}/unblock", post(auth::admin::unblock_user))
        .route("/admin/auth/signing-keys/rotate", post(auth::admin::rotate_signing_key))
        .route("/admin/deals", post(catalog::create_deal_handler))
        .route("/deals", get(catalog::list_deals))
        .route("/deals/{id}", get(catalog::get_deal))
        .route(
            "/admin/products",
            post(catalog::products::create).get(catalog::products::list),
        )
        .route(
            "/admin/products/{id}",
            axum::routing::patch(catalog::products::update).delete(catalog::products::delete),
        )
        .route("/products/{id}", get(catalog::products::get))
        .route("/admin/deals/{id}/pause", post(catalog::lifecycle::pause))
        .route("/admin/deals/{id}/resume", post(catalog::lifecycle::resume))
        .route("/admin/deals/{id}/end", post(catalog::lifecycle::end))
        .route("/admin/deals/{id}/stock", post(catalog::stock::adjust))
        .route("/orders", post(orders::place_order))
        .route("/orders/{id}", get(orders::get_order))
        .route("/healthz", get(health::healthz))
        .route("/readyz", get(health::readyz))
        .route("/metrics", get(health::metrics))
        .fallback(|| async { error::ApiError::NotFound("route") })
        .method_not_allowed_fallback(|| async {
            error::problem(
                StatusCode::METHOD_NOT_ALLOWED,
                error::kind::NOT_FOUND,
                "Method not allowed",
                "this route does not accept that method".to_owned(),
            )
        })
        .layer(DefaultBodyLimit::max(json::MAX_BODY_BYTES))
        .route_layer(middleware::from_fn(health::track_http))
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
        let served = axum::serve(self.listener, self.router)
            .with_graceful_shutdown(async move { shutdown.cancelled().await })
            .await;
        if let Some(follower) = self.auth_follower {
            follower.stop().await;
        }
        served
    }
}
