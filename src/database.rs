//! PostgreSQL: create the database when it is missing, apply migrations,
//! open pools.

use anyhow::Context;
use sqlx::{
    ConnectOptions, Connection, PgPool,
    postgres::{PgConnectOptions, PgConnection, PgPoolOptions},
};
use std::{str::FromStr, time::Duration};

/// The migrations of `sql/migrations`, embedded in the binary.
pub static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./sql/migrations");

/// A pool of `max` connections to `url`.
pub async fn pool(url: &str, max: u32) -> anyhow::Result<PgPool> {
    let opts = PgConnectOptions::from_str(url).context("DATABASE_URL is not a PostgreSQL URL")?;
    PgPoolOptions::new()
        .max_connections(max)
        .acquire_timeout(Duration::from_secs(5))
        .connect_with(opts)
        .await
        .with_context(|| format!("connecting to PostgreSQL at {}", redact(url)))
}

/// One pool per service, each logged in as the service's role.
pub async fn service_pools(
    config: &crate::config::Config,
    max_each: u32,
) -> anyhow::Result<flashdeal_gateway::Databases> {
    use crate::config::Service;
    let open = |s: Service| async move {
        let url = config.service_url(s)?;
        pool(&url, max_each)
            .await
            .with_context(|| format!("the {} service's pool (role {})", s.name(), s.role()))
    };
    Ok(flashdeal_gateway::Databases {
        auth: open(Service::Auth).await?,
        catalog: open(Service::Catalog).await?,
        orders: open(Service::Orders).await?,
    })
}

/// Creates the database named in `url` if it does not exist, then migrates.
pub async fn migrate(url: &str) -> anyhow::Result<PgPool> {
    create_database_if_missing(url).await?;
    let pool = pool(url, 4).await?;
    MIGRATOR.run(&pool).await.context("applying migrations")?;
    tracing::info!(applied = MIGRATOR.iter().count(), "migrations up to date");
    Ok(pool)
}

/// Creates the database named in `url` if it does not exist (connecting to
/// the `postgres` maintenance database). Also used by the benchmark baseline.
pub async fn create_database_if_missing(url: &str) -> anyhow::Result<()> {
    let opts = PgConnectOptions::from_str(url).context("DATABASE_URL is not a PostgreSQL URL")?;
    let Some(name) = opts.get_database().map(str::to_owned) else {
        return Ok(());
    };
    let mut admin: PgConnection = opts
        .clone()
        .database("postgres")
        .connect()
        .await
        .with_context(|| format!("connecting to PostgreSQL at {}", redact(url)))?;
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
        tracing::info!(database = name, "database created");
    }
    admin.close().await?;
    Ok(())
}

/// `url` without its password, for messages.
pub fn redact(url: &str) -> String {
    match url::Url::parse(url) {
        Ok(mut u) if u.password().is_some() => {
            let _ = u.set_password(Some("***"));
            u.to_string()
        }
        _ => url.to_owned(),
    }
}
