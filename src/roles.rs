//! Wiring: build clients from [`Config`] and run each role until a shutdown
//! signal. `up` runs them all in one process; every role also runs alone,
//! any number of times (consumers share partitions through their group).

use crate::{
    cli::{GatewayArgs, ReconcilerArgs, WriterArgs},
    config::{self, Config, Service},
    database,
};
use anyhow::Context;
use flashdeal_consumers::{
    LoopSettings, catalog_projector::CatalogProjector, deal_read_model::DealReadModel,
    order_writer::OrderWriter, projector::Projector, run_consumer, sold_count::SoldCount,
};
use flashdeal_gateway::{AppState, Application, auth};
use flashdeal_producers::{
    EventPublisher, KafkaSettings,
    admin::ensure_topics,
    outbox::Outbox,
    reconciler::{Reconciler, ReconcilerSettings},
    relay::{Relay, RelaySettings},
};
use flashdeal_schemas::{Encoding, registry, topics};
use rdkafka::consumer::StreamConsumer;
use redis::aio::ConnectionManager;
use std::{sync::Arc, time::Duration};
use tokio::{net::TcpListener, task::JoinSet};
use tokio_util::sync::CancellationToken;

/// Connects to Redis with a connection manager (reconnects on its own).
pub async fn redis(url: &str) -> anyhow::Result<ConnectionManager> {
    let client = redis::Client::open(url).context("REDIS_URL is not a Redis URL")?;
    ConnectionManager::new(client)
        .await
        .with_context(|| format!("connecting to Redis at {}", database::redact(url)))
}

/// An idempotent, acks=all publisher.
pub fn publisher(kafka: &KafkaSettings, client_id: &str) -> anyhow::Result<EventPublisher> {
    let producer = kafka
        .producer_config(client_id)
        .create()
        .with_context(|| format!("creating a producer for {}", kafka.brokers))?;
    Ok(EventPublisher::new(producer))
}

/// How this role frames what it publishes: with `FLASHDEAL_SCHEMA_REGISTRY_URL`
/// set, registers every event schema there (idempotent: each role and each
/// restart gets the same ids), makes the registry the process's decoder of
/// Confluent ids, and answers Confluent framing; otherwise single-object
/// encoding.
pub async fn encoding(config: &Config) -> anyhow::Result<Encoding> {
    let Some(url) = &config.schema_registry_url else {
        return Ok(Encoding::SingleObject);
    };
    let registered = registry::register(url).await.with_context(|| {
        format!("registering the event schemas with the schema registry at {url} (FLASHDEAL_SCHEMA_REGISTRY_URL)")
    })?;
    registered.install_for_decoding();
    Ok(registered.encoding())
}

/// [`publisher`] with this role's [`encoding`].
pub async fn role_publisher(config: &Config, client_id: &str) -> anyhow::Result<EventPublisher> {
    Ok(publisher(&config.kafka(), client_id)?.with_encoding(encoding(config).await?))
}

/// Creates the order-path topics (idempotent), with a clear error when the
/// broker cannot be reached.
pub async fn topics(kafka: &KafkaSettings, partitions: i32) -> anyhow::Result<()> {
    tokio::time::timeout(
        Duration::from_secs(30),
        ensure_topics(kafka, &topics::ALL_TOPICS, partitions),
    )
    .await
    .with_context(|| format!("no answer from the broker at {} within 30s", kafka.brokers))?
    .with_context(|| format!("creating topics on {}", kafka.brokers))
}

/// Fires on ctrl-c or SIGTERM.
pub fn shutdown_on_signal() -> CancellationToken {
    let token = CancellationToken::new();
    let t = token.clone();
    tokio::spawn(async move {
        #[cfg(unix)]
        {
            use tokio::signal::unix::{SignalKind, signal};
            match signal(SignalKind::terminate()) {
                Ok(mut term) => {
                    tokio::select! {
                        _ = tokio::signal::ctrl_c() => {}
                        _ = term.recv() => {}
                    }
                }
                Err(_) => {
                    let _ = tokio::signal::ctrl_c().await;
                }
            }
        }
        #[cfg(not(unix))]
        let _ = tokio::signal::ctrl_c().await;
        tracing::info!("shutdown requested");
        t.cancel();
    });
    token
}

/// Builds the gateway on `listener`.
pub async fn build_gateway(
    config: &Config,
    args: &GatewayArgs,
    listener: TcpListener,
) -> anyhow::Result<Application> {
    let kafka = config.kafka();
    let settings = config::gateway_settings(args, &kafka)?;
    let jwt = Arc::new(config::jwt_keys(
        &config.data_dir,
        Duration::from_secs(args.token_ttl_secs),
    )?);
    let db = database::service_pools(config, 16).await?;
    auth::keyring::bootstrap(&db.auth, &jwt)
        .await
        .context("loading the JWT key ring from auth.signing_keys")?;
    // A retired key must leave the ring once its last token has expired,
    // even when no later rotation comes to trigger a reload.
    let (pool, ring) = (db.auth.clone(), Arc::clone(&jwt));
    tokio::spawn(async move {
        loop {
            tokio::time::sleep(Duration::from_secs(60)).await;
            if pool.is_closed() {
                break;
            }
            if let Err(e) = auth::keyring::load(&pool, &ring).await {
                tracing::warn!(error = %e, "reloading the JWT key ring");
            }
        }
    });
    // Blocked users and revoked sessions come from auth.events: do not serve
    // before the guard holds what the log held at boot.
    let follower = auth::follower::AuthEventsFollower::new(Arc::clone(&jwt), db.auth.clone());
    let mut follower = auth::follower::start(&kafka, follower)
        .await
        .context("following auth.events")?;
    follower
        .wait_caught_up(Duration::from_secs(30))
        .await
        .context("catching up with auth.events")?;
    let state = AppState {
        db,
        redis: redis(&config.redis_url).await?,
        publisher: role_publisher(config, "flashdeal-gateway").await?,
        jwt,
        settings: Arc::new(settings),
        metrics: crate::telemetry::metrics(),
    };
    Ok(Application::build(listener, state).with_auth_follower(follower))
}

/// A consumer in `group` for this process.
fn consumer(kafka: &KafkaSettings, group: &str) -> anyhow::Result<StreamConsumer> {
    let client_id = format!("flashdeal-{group}-{}", std::process::id());
    kafka
        .consumer_config(group, &client_id)
        .create()
        .with_context(|| format!("creating a consumer for {}", kafka.brokers))
}

/// A pool logged in as `service`'s own role.
pub async fn service_pool(
    config: &Config,
    service: Service,
    max: u32,
) -> anyhow::Result<sqlx::PgPool> {
    database::pool(&config.service_url(service)?, max)
        .await
        .with_context(|| format!("the {} service's pool", service.name()))
}

/// Runs the order-writer until `shutdown`, with its read model of the
/// catalog (`orders.deals`) beside it.
pub async fn run_order_writer(
    config: &Config,
    args: &WriterArgs,
    shutdown: CancellationToken,
) -> anyhow::Result<()> {
    if args.batch_size == 0 {
        anyhow::bail!("FLASHDEAL_WRITER_BATCH_SIZE must be at least 1");
    }
    let kafka = config.kafka();
    let pool = service_pool(config, Service::Orders, 4).await?;
    let publisher = role_publisher(config, "flashdeal-order-writer").await?;
    let writer = OrderWriter::new(pool.clone(), publisher.clone());
    let settings = LoopSettings {
        max_batch: args.batch_size,
        max_wait: Duration::from_millis(args.batch_wait_ms),
    };
    let deals = consumer(&kafka, flashdeal_consumers::deal_read_model::GROUP)?;
    let read_model = run_consumer(
        deals,
        topics::CATALOG_EVENTS,
        LoopSettings::default(),
        DealReadModel::new(pool, publisher),
        shutdown.clone(),
    );
    let consumer = consumer(&kafka, flashdeal_consumers::order_writer::GROUP)?;
    let writer = run_consumer(
        consumer,
        topics::ORDERS_INTENTS,
        settings,
        writer,
        shutdown.clone(),
    );
    let lag = lag_monitor(
        &kafka,
        flashdeal_consumers::order_writer::GROUP,
        topics::ORDERS_INTENTS,
        shutdown,
    );
    tokio::try_join!(read_model, writer, lag)?;
    Ok(())
}

/// Exports the lag of `group` on `topic` (the order path's two scaling
/// signals) every 2 s until `shutdown`.
async fn lag_monitor(
    kafka: &KafkaSettings,
    group: &'static str,
    topic: &'static str,
    shutdown: CancellationToken,
) -> Result<(), flashdeal_consumers::ConsumeError> {
    flashdeal_consumers::lag::run_lag_monitor(
        kafka,
        group,
        topic,
        Duration::from_secs(2),
        shutdown,
    )
    .await;
    Ok(())
}

/// Runs the projectors until `shutdown`: order status (`orders.status` →
/// Redis), deals (`catalog.events` → Redis) and sold counts
/// (`orders.status` → `catalog.deals`).
pub async fn run_projector(config: &Config, shutdown: CancellationToken) -> anyhow::Result<()> {
    let kafka = config.kafka();
    let redis = redis(&config.redis_url).await?;
    let publisher = role_publisher(config, "flashdeal-projector").await?;
    let status = run_consumer(
        consumer(&kafka, flashdeal_consumers::projector::GROUP)?,
        topics::ORDERS_STATUS,
        LoopSettings::default(),
        Projector::new(redis.clone(), publisher.clone()),
        shutdown.clone(),
    );
    let deals = run_consumer(
        consumer(&kafka, flashdeal_consumers::catalog_projector::GROUP)?,
        topics::CATALOG_EVENTS,
        LoopSettings::default(),
        CatalogProjector::new(redis, publisher.clone()),
        shutdown.clone(),
    );
    let sold = run_consumer(
        consumer(&kafka, flashdeal_consumers::sold_count::GROUP)?,
        topics::ORDERS_STATUS,
        LoopSettings::default(),
        SoldCount::new(service_pool(config, Service::Catalog, 2).await?, publisher),
        shutdown.clone(),
    );
    let lag = lag_monitor(
        &kafka,
        flashdeal_consumers::projector::GROUP,
        topics::ORDERS_STATUS,
        shutdown,
    );
    tokio::try_join!(status, deals, sold, lag)?;
    Ok(())
}

/// Runs one relay per outbox until `shutdown` (each active only while it
/// holds its outbox's advisory lock).
pub async fn run_relays(config: &Config, shutdown: CancellationToken) -> anyhow::Result<()> {
    let publisher = role_publisher(config, "flashdeal-relay").await?;
    let mut relays = Vec::new();
    for outbox in Outbox::ALL {
        let service = match outbox {
            Outbox::Auth => Service::Auth,
            Outbox::Catalog => Service::Catalog,
        };
        // The lock session, the listener and a spare.
        let pool = service_pool(config, service, 3).await?;
        relays.push(Relay::new(
            pool,
            outbox,
            publisher.clone(),
            RelaySettings::default(),
        ));
    }
    futures::future::join_all(relays.iter().map(|r| r.run(shutdown.clone()))).await;
    Ok(())
}

/// Runs the reconciler until `shutdown`.
pub async fn run_reconciler(
    config: &Config,
    args: &ReconcilerArgs,
    shutdown: CancellationToken,
) -> anyhow::Result<()> {
    if args.reconcile_interval_ms == 0 {
        anyhow::bail!("FLASHDEAL_RECONCILE_INTERVAL_MS must be at least 1");
    }
    let settings = ReconcilerSettings {
        interval: Duration::from_millis(args.reconcile_interval_ms),
        ..ReconcilerSettings::default()
    };
    let reconciler = Reconciler::new(
        redis(&config.redis_url).await?,
        role_publisher(config, "flashdeal-reconciler").await?,
        settings,
    );
    reconciler.run(shutdown).await;
    Ok(())
}

/// `flashdeal up`.
#[cfg_attr(not(feature = "embedded-broker"), allow(unused_mut))]
pub async fn up(
    mut config: Config,
    gateway_args: GatewayArgs,
    writer: WriterArgs,
    reconciler: ReconcilerArgs,
) -> anyhow::Result<()> {
    config.validate()?;
    let shutdown = shutdown_on_signal();
    let embedded = config.kafka_brokers.is_none();
    #[cfg(feature = "embedded-broker")]
    let _broker = match &config.kafka_brokers {
        Some(_) => None,
        None => {
            let b =
                crate::broker::EmbeddedBroker::start(config.broker_port, &config.data_dir).await?;
            config.kafka_brokers = Some(b.bootstrap());
            Some(b)
        }
    };
    #[cfg(not(feature = "embedded-broker"))]
    if config.kafka_brokers.is_none() {
        anyhow::bail!("KAFKA_BROKERS is required: this build has no embedded broker");
    }
    database::migrate(&config.database_url).await?;
    topics(&config.kafka(), config.partitions).await?;
    let listener = TcpListener::bind(gateway_args.http_addr)
        .await
        .with_context(|| {
            format!(
                "binding {} (set FLASHDEAL_HTTP_ADDR)",
                gateway_args.http_addr
            )
        })?;
    let app = build_gateway(&config, &gateway_args, listener).await?;
    let addr = app.local_addr()?;

    let mut roles = JoinSet::new();
    let (c, s) = (config.clone(), shutdown.clone());
    roles.spawn(async move {
        run_order_writer(&c, &writer, s)
            .await
            .context("order-writer")
    });
    let (c, s) = (config.clone(), shutdown.clone());
    roles.spawn(async move { run_projector(&c, s).await.context("projector") });
    let (c, s) = (config.clone(), shutdown.clone());
    roles.spawn(async move { run_relays(&c, s).await.context("relay") });
    let (c, s) = (config.clone(), shutdown.clone());
    roles.spawn(async move {
        run_reconciler(&c, &reconciler, s)
            .await
            .context("reconciler")
    });
    let s = shutdown.clone();
    roles.spawn(async move { app.run_until_stopped(s).await.context("gateway") });

    println!("FlashDeal is up.");
    println!("  gateway:  http://{addr}   (try: curl http://{addr}/deals)");
    let kind = if embedded {
        "embedded, data in "
    } else {
        "KAFKA_BROKERS"
    };
    let where_ = if embedded {
        config.data_dir.display().to_string()
    } else {
        String::new()
    };
    println!("  broker:   {} ({kind}{where_})", config.kafka().brokers);
    println!("  postgres: {}", database::redact(&config.database_url));
    println!("  redis:    {}", config.redis_url);
    println!("Press ctrl-c to stop.");
    wait_all(roles, shutdown).await
}

/// Waits for every role; the first failure stops the others.
async fn wait_all(
    mut roles: JoinSet<anyhow::Result<()>>,
    shutdown: CancellationToken,
) -> anyhow::Result<()> {
    let mut first_error = None;
    while let Some(res) = roles.join_next().await {
        let res = res.context("role task panicked").and_then(|r| r);
        if let Err(e) = res {
            tracing::error!(error = format!("{e:#}"), "role failed; stopping");
            shutdown.cancel();
            first_error.get_or_insert(e);
        }
    }
    first_error.map_or(Ok(()), Err)
}

/// `flashdeal broker`.
pub async fn broker_only(config: Config) -> anyhow::Result<()> {
    #[cfg(feature = "embedded-broker")]
    {
        let shutdown = shutdown_on_signal();
        let broker =
            crate::broker::EmbeddedBroker::start(config.broker_port, &config.data_dir).await?;
        let mut c = config.clone();
        c.kafka_brokers = Some(broker.bootstrap());
        topics(&c.kafka(), c.partitions).await?;
        println!("embedded broker listening on {}", broker.bootstrap());
        shutdown.cancelled().await;
        Ok(())
    }
    #[cfg(not(feature = "embedded-broker"))]
    {
        let _ = config;
        anyhow::bail!("this build has no embedded broker (built with --no-default-features)")
    }
}

/// `flashdeal gateway`.
pub async fn gateway(config: Config, args: GatewayArgs) -> anyhow::Result<()> {
    config.validate()?;
    let shutdown = shutdown_on_signal();
    topics(&config.kafka(), config.partitions).await?;
    let listener = TcpListener::bind(args.http_addr)
        .await
        .with_context(|| format!("binding {}", args.http_addr))?;
    let app = build_gateway(&config, &args, listener).await?;
    println!("gateway listening on http://{}", app.local_addr()?);
    app.run_until_stopped(shutdown).await.context("gateway")
}

/// Serves `/metrics` on `FLASHDEAL_METRICS_ADDR` (when set) until the
/// process ends: the roles without an HTTP server export their consumer,
/// relay and audit metrics this way.
pub async fn serve_metrics(addr: Option<std::net::SocketAddr>) -> anyhow::Result<()> {
    let Some(addr) = addr else {
        return Ok(());
    };
    let handle = crate::telemetry::metrics().context("installing the metrics recorder")?;
    let listener = TcpListener::bind(addr)
        .await
        .with_context(|| format!("binding FLASHDEAL_METRICS_ADDR {addr}"))?;
    let app = axum::Router::new().route(
        "/metrics",
        axum::routing::get(move || {
            let h = handle.clone();
            async move { h.render() }
        }),
    );
    tokio::spawn(async move {
        if let Err(e) = axum::serve(listener, app).await {
            tracing::error!(error = %e, "metrics server stopped");
        }
    });
    println!("metrics on http://{addr}/metrics");
    Ok(())
}

/// `flashdeal order-writer`.
pub async fn order_writer(config: Config, args: WriterArgs) -> anyhow::Result<()> {
    config.validate()?;
    topics(&config.kafka(), config.partitions).await?;
    serve_metrics(config.metrics_addr).await?;
    run_order_writer(&config, &args, shutdown_on_signal()).await
}

/// `flashdeal reconciler`.
pub async fn reconciler(config: Config, args: ReconcilerArgs) -> anyhow::Result<()> {
    config.validate()?;
    topics(&config.kafka(), config.partitions).await?;
    serve_metrics(config.metrics_addr).await?;
    run_reconciler(&config, &args, shutdown_on_signal()).await
}

/// `flashdeal relay`.
pub async fn relay(config: Config) -> anyhow::Result<()> {
    config.validate()?;
    topics(&config.kafka(), config.partitions).await?;
    serve_metrics(config.metrics_addr).await?;
    run_relays(&config, shutdown_on_signal()).await
}

/// `flashdeal projector`.
pub async fn projector(config: Config) -> anyhow::Result<()> {
    config.validate()?;
    topics(&config.kafka(), config.partitions).await?;
    serve_metrics(config.metrics_addr).await?;
    run_projector(&config, shutdown_on_signal()).await
}
