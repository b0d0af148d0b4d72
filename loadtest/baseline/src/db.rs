//! Database bootstrap. The control group has no migrations: at start it
//! creates its database if missing and runs the idempotent `schema.sql`
//! (`CREATE … IF NOT EXISTS`), so `flashdeal-baseline` alone is enough to get
//! a benchmark target on a fresh PostgreSQL.

use anyhow::Context;
use flashdeal_gateway::auth::{Role, routes::ValidCredentials};
use sqlx::{
    PgPool,
    postgres::{PgConnectOptions, PgPoolOptions},
};
use std::{str::FromStr, time::Duration};
use uuid::Uuid;

/// The `baseline` schema, embedded in the binary.
const SCHEMA: &str = include_str!("schema.sql");

/// How long a request waits for a pool connection before it is a 503.
const ACQUIRE_TIMEOUT: Duration = Duration::from_secs(5);

/// Creates the database named in `url` if needed, applies the schema and
/// returns a pool of `size` connections.
pub async fn prepare(url: &str, size: u32) -> anyhow::Result<PgPool> {
    let opts = PgConnectOptions::from_str(url).context("--database-url is not a PostgreSQL URL")?;
    flashdeal::database::create_database_if_missing(url).await?;
    let pool = PgPoolOptions::new()
        .max_connections(size)
        .acquire_timeout(ACQUIRE_TIMEOUT)
        .connect_with(opts.clone())
        .await
        .with_context(|| format!("connecting to {}", describe(&opts)))?;
    sqlx::raw_sql(SCHEMA)
        .execute(&pool)
        .await
        .context("creating the baseline schema")?;
    Ok(pool)
}

/// Creates the admin account, or resets its password and role, so k6 can
/// log in as admin exactly as it does against FlashDeal.
pub async fn upsert_admin(pool: &PgPool, admin: &ValidCredentials) -> anyhow::Result<()> {
    sqlx::query(
        "INSERT INTO baseline.users (user_id, email, password, role) VALUES ($1, $2, $3, $4)
         ON CONFLICT (email) DO UPDATE SET password = EXCLUDED.password, role = EXCLUDED.role",
    )
    .bind(Uuid::now_v7())
    .bind(&admin.email)
    .bind(&admin.password)
    .bind(Role::Admin.as_str())
    .execute(pool)
    .await
    .context("upserting the admin user")?;
    Ok(())
}

/// `host:port/database` of `opts`, for messages (never the password).
fn describe(opts: &PgConnectOptions) -> String {
    format!(
        "PostgreSQL at {}:{}/{}",
        opts.get_host(),
        opts.get_port(),
        opts.get_database().unwrap_or("")
    )
}
