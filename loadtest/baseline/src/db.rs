//! Database bootstrap. The control group has no migrations: at start it
//! creates its database if missing and runs the idempotent `schema.sql`
//! (`CREATE … IF NOT EXISTS`), so `flashdeal-baseline` alone is enough to get
//! a benchmark target on a fresh PostgreSQL.

use anyhow::Context;
use flashdeal_gateway::auth::{Role, routes::ValidCredentials};
use sqlx::{
    ConnectOptions, Connection, PgPool,
    postgres::{PgConnectOptions, PgConnection, PgPoolOptions},
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
    create_database_if_missing(&opts).await?;
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

async fn create_database_if_missing(opts: &PgConnectOptions) -> anyhow::Result<()> {
    let Some(name) = opts.get_database().map(str::to_owned) else {
        return Ok(());
    };
    let mut admin: PgConnection = opts
        .clone()
        .database("postgres")
        .connect()
        .await
        .with_context(|| format!("connecting to {}", describe(opts)))?;
    let exists: bool =
        sqlx::query_scalar("SELECT EXISTS (SELECT 1 FROM pg_database WHERE datname = $1)")
            .bind(&name)
            .fetch_one(&mut admin)
            .await?;
    if !exists {
        // Identifiers cannot be bound; quote it as PostgreSQL does.
        let quoted = format!("\"{}\"", name.replace('"', "\"\""));
        sqlx::raw_sql(sqlx::AssertSqlSafe(format!("CREATE DATABASE {quoted}")))
            .execute(&mut admin)
            .await
            .with_context(|| format!("creating database {name}"))?;
        println!("created database {name}");
    }
    admin.close().await?;
    Ok(())
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
