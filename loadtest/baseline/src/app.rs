//! The HTTP application: shared state, the routes (the same paths as
//! FlashDeal's gateway, with the gateway's body limit and problem+json
//! fallbacks), and serving until a shutdown future resolves. The listener is
//! bound by the caller so a test or a script can pick the port.

use crate::{auth, deals, orders};
use axum::{
    Router,
    extract::DefaultBodyLimit,
    http::StatusCode,
    routing::{get, post},
};
use flashdeal_gateway::{
    auth::JwtKeys,
    error::{ApiError, kind, problem},
    json::MAX_BODY_BYTES,
};
use sqlx::PgPool;
use std::sync::Arc;
use tokio::net::TcpListener;

/// What every handler can reach.
#[derive(Clone)]
pub struct AppState {
    pub pool: PgPool,
    pub jwt: Arc<JwtKeys>,
}

/// The routes.
pub fn router(state: AppState) -> Router {
    Router::new()
        .route("/auth/signup", post(auth::signup))
        .route("/auth/login", post(auth::login))
        .route("/admin/deals", post(deals::create))
        .route("/deals", get(deals::list))
        .route("/deals/{id}", get(deals::get))
        .route("/orders", post(orders::place))
        .route("/orders/{id}", get(orders::get))
        .route("/healthz", get(|| async { "ok" }))
        .fallback(|| async { ApiError::NotFound("route") })
        .method_not_allowed_fallback(|| async {
            problem(
                StatusCode::METHOD_NOT_ALLOWED,
                kind::NOT_FOUND,
                "Method not allowed",
                "this route does not accept that method".to_owned(),
            )
        })
        .layer(DefaultBodyLimit::max(MAX_BODY_BYTES))
        .with_state(state)
}

/// The server bound to a listener, ready to serve.
pub struct App {
    listener: TcpListener,
    router: Router,
}

impl App {
    pub fn build(listener: TcpListener, state: AppState) -> Self {
        Self {
            listener,
            router: router(state),
        }
    }

    pub fn local_addr(&self) -> std::io::Result<std::net::SocketAddr> {
        self.listener.local_addr()
    }

    /// Serves until `shutdown` resolves, then finishes in-flight requests.
    pub async fn run_until_stopped(
        self,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> std::io::Result<()> {
        axum::serve(self.listener, self.router)
            .with_graceful_shutdown(shutdown)
            .await
    }
}

/// Resolves on ctrl-c or SIGTERM.
pub async fn shutdown_signal() {
    let ctrl_c = async {
        if tokio::signal::ctrl_c().await.is_err() {
            std::future::pending::<()>().await;
        }
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut sig) => {
                sig.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {}
        () = terminate => {}
    }
    println!("shutting down");
}
