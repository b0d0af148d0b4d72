//! `flashdeal-baseline`: the CONTROL GROUP of FlashDeal's benchmarks.
//!
//! A deliberately naive, synchronous order server that answers the same HTTP
//! API shape as FlashDeal (`docs/api.md`), so one k6 script drives both. There
//! is no Redis and no log: every `POST /orders` is one PostgreSQL transaction
//! that locks the deal row (`SELECT … FOR UPDATE`), checks the window, the
//! per-user limit and the stock, decrements the stock and inserts the order
//! as `confirmed`. Concurrent buyers of one deal therefore queue on that row
//! lock, which is exactly the bottleneck FlashDeal is designed to avoid.
//!
//! **Benchmark only; never use it for anything else.** Passwords are stored
//! in plain text (see [`auth`]) to keep k6's setup phase fast; the control
//! group only measures the order path.
//!
//! Beyond its SQL, its extractors and its order path, the baseline runs
//! FlashDeal's own code from `flashdeal-gateway`: the problem+json error type,
//! the JSON extractor and body limit, the credential and deal rules, the auth
//! and deal request and response bodies, and the JWT keys. 5xx causes are
//! logged to stderr (`RUST_LOG`, default `error`).
//!
//! # Layout
//! - `main.rs`: the command line; parses it and calls [`run`].
//! - [`db`]: creates the database, the `baseline` schema (`schema.sql`) and
//!   the admin user.
//! - [`app`]: shared state, the router, serving and graceful shutdown.
//! - [`auth`]: signup, login, the token keys and the `AuthUser`/`AdminUser`
//!   extractors.
//! - [`deals`]: admin deal creation, public listing and reading.
//! - [`orders`]: the naive order transaction and order status.

mod app;
mod auth;
mod db;
mod deals;
mod orders;

use anyhow::Context;
use clap::Parser;
use flashdeal_gateway::auth::routes::Credentials;
use std::{io::IsTerminal, net::SocketAddr, sync::Arc};
use tokio::net::TcpListener;
use tracing_subscriber::EnvFilter;

/// The control-group order server for FlashDeal's benchmarks (benchmark only).
#[derive(Debug, Parser)]
#[command(name = "flashdeal-baseline", version, about)]
struct Cli {
    /// PostgreSQL URL; the database is created if it does not exist.
    #[arg(
        long,
        env = "BASELINE_DATABASE_URL",
        default_value = "postgres://postgres@127.0.0.1:5432/flashdeal_baseline",
        hide_env_values = true
    )]
    database_url: String,

    /// Address the HTTP server listens on.
    #[arg(long, env = "BASELINE_HTTP_ADDR", default_value = "127.0.0.1:8090")]
    http_addr: SocketAddr,

    /// PostgreSQL connections (every in-flight order holds one).
    #[arg(long, env = "BASELINE_POOL_SIZE", default_value_t = 16)]
    pool_size: u32,

    /// HS256 signing secret for access tokens (at least 32 bytes).
    #[arg(
        long,
        env = "BASELINE_JWT_SECRET",
        default_value = "flashdeal-baseline-dev-secret-do-not-deploy",
        hide_env_values = true,
        hide_default_value = true
    )]
    jwt_secret: String,

    /// Email of the admin account upserted at start.
    #[arg(
        long,
        env = "BASELINE_ADMIN_EMAIL",
        default_value = "admin@flashdeal.local"
    )]
    admin_email: String,

    /// Password of the admin account upserted at start.
    #[arg(
        long,
        env = "BASELINE_ADMIN_PASSWORD",
        default_value = "change-me-locally",
        hide_env_values = true
    )]
    admin_password: String,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("error"));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal())
        .init();
    run(Cli::parse()).await
}

/// Prepares the database, serves until ctrl-c/SIGTERM, closes the pool.
async fn run(cli: Cli) -> anyhow::Result<()> {
    let jwt = auth::jwt_keys(cli.jwt_secret.as_bytes())?;
    let admin = Credentials {
        email: cli.admin_email,
        password: cli.admin_password,
    }
    .validate()
    .map_err(|e| anyhow::anyhow!("admin credentials: {e}"))?;

    let pool = db::prepare(&cli.database_url, cli.pool_size).await?;
    db::upsert_admin(&pool, &admin).await?;

    let listener = TcpListener::bind(cli.http_addr)
        .await
        .with_context(|| format!("binding {}", cli.http_addr))?;
    let state = app::AppState {
        pool: pool.clone(),
        jwt: Arc::new(jwt),
    };
    let app = app::App::build(listener, state);
    println!("baseline listening on http://{}", app.local_addr()?);
    app.run_until_stopped(app::shutdown_signal())
        .await
        .context("serving HTTP")?;
    pool.close().await;
    println!("baseline stopped");
    Ok(())
}
