//! `flashdeal seed`: an admin account (created, or its password and role
//! reset) and, when no deal is open, a demo deal that is active right away
//! (in Redis once the catalog relay and projector have applied its events).

use crate::{config::Config, database};
use anyhow::Context;
use chrono::{Duration, Utc};
use clap::Args;
use flashdeal_gateway::{
    auth::{
        password,
        routes::Credentials,
        users::{self, UserState},
    },
    catalog::{NewDeal, create_deal},
};
use flashdeal_schemas::store_events::user_change;

#[derive(Args, Debug)]
pub struct SeedArgs {
    /// The admin's email.
    #[arg(
        long,
        env = "FLASHDEAL_ADMIN_EMAIL",
        default_value = "admin@flashdeal.local"
    )]
    pub admin_email: String,
    /// The admin's password (or FLASHDEAL_ADMIN_PASSWORD_FILE).
    #[arg(long, env = "FLASHDEAL_ADMIN_PASSWORD", hide_env_values = true)]
    pub admin_password: Option<String>,
    /// Units of the demo deal.
    #[arg(long, default_value_t = 100)]
    pub demo_stock: i32,
    /// Per-user limit of the demo deal.
    #[arg(long, default_value_t = 2)]
    pub demo_limit: i32,
    /// Price of the demo deal in cents.
    #[arg(long, default_value_t = 1999)]
    pub demo_price_cents: i64,
    /// How long the demo deal stays open, in hours.
    #[arg(long, default_value_t = 24)]
    pub demo_hours: i64,
    /// Create the admin only.
    #[arg(long)]
    pub no_demo: bool,
    /// Add a demo deal even when open deals exist.
    #[arg(long)]
    pub force_demo: bool,
}

fn admin_password(args: &SeedArgs) -> anyhow::Result<String> {
    if let Some(p) = &args.admin_password {
        return Ok(p.clone());
    }
    let path = std::env::var("FLASHDEAL_ADMIN_PASSWORD_FILE").context(
        "set --admin-password, FLASHDEAL_ADMIN_PASSWORD or FLASHDEAL_ADMIN_PASSWORD_FILE",
    )?;
    Ok(std::fs::read_to_string(&path)
        .with_context(|| format!("reading {path}"))?
        .trim_end()
        .to_owned())
}

pub async fn run(config: Config, args: SeedArgs) -> anyhow::Result<()> {
    let creds = Credentials {
        email: args.admin_email.clone(),
        password: admin_password(&args)?,
    }
    .validate()
    .map_err(|e| anyhow::anyhow!("admin credentials: {e}"))?;
    let pg = database::migrate(&config.database_url).await?;
    let hash = password::hash(creds.password.clone())
        .await
        .map_err(|e| anyhow::anyhow!("{e}"))?;
    let mut tx = pg.begin().await?;
    let row = sqlx::query_file!(
        "sql/queries/upsert_admin.sql",
        uuid::Uuid::now_v7(),
        creds.email,
        hash
    )
    .fetch_one(&mut *tx)
    .await
    .context("creating the admin")?;
    let state = UserState {
        user_id: row.user_id,
        email: row.email,
        role: row.role,
        status: row.status,
        sessions_revoked_before: row.sessions_revoked_before,
        version: row.version,
    };
    let change = if row.inserted {
        user_change::REGISTERED
    } else {
        user_change::PASSWORD_CHANGED
    };
    users::record(&mut tx, &state, change)
        .await
        .map_err(|e| anyhow::anyhow!("recording the admin's event: {e}"))?;
    tx.commit().await?;
    let admin_id = state.user_id;
    println!("admin:     {} (user_id {admin_id})", creds.email);
    if args.no_demo {
        return Ok(());
    }
    let open = sqlx::query_file_scalar!("sql/queries/open_deal_count.sql")
        .fetch_one(&pg)
        .await?;
    if open > 0 && !args.force_demo {
        println!(
            "demo deal: skipped, {open} open deal(s) exist (see GET /deals; --force-demo adds one)"
        );
        return Ok(());
    }
    // The deal and its events commit together; it reaches Redis (and takes
    // orders) once the catalog relay and projector publish and apply them,
    // which `flashdeal up` runs.
    let deal = create_deal(
        &pg,
        &NewDeal {
            product_name: "FlashDeal demo headphones".to_owned(),
            product_description: "Noise-cancelling, limited run".to_owned(),
            product_id: None,
            price_cents: args.demo_price_cents,
            stock: args.demo_stock,
            per_user_limit: args.demo_limit,
            starts_at: None,
            ends_at: Utc::now() + Duration::hours(args.demo_hours),
        },
    )
    .await
    .map_err(|e| anyhow::anyhow!("creating the demo deal: {e}"))?;
    let deal = deal.deal;
    println!(
        "demo deal: {} ({} units, {} per user, until {}; orderable once the relay and projector have run)",
        deal.deal_id, deal.stock, deal.per_user_limit, deal.ends_at
    );
    Ok(())
}
