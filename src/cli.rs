//! The command line. Every flag also reads an environment variable
//! (all listed in `.env.example`).

use crate::{config::Config, roles, seed};
use clap::{Args, Parser, Subcommand};
use std::{net::SocketAddr, path::PathBuf, process::ExitCode};

#[derive(Parser, Debug)]
#[command(
    name = "flashdeal",
    version,
    about = "Event-driven flash-sale order system"
)]
pub struct Cli {
    #[command(flatten)]
    pub common: CommonArgs,
    #[command(subcommand)]
    pub command: Command,
}

/// Where the three backing services are, and shared knobs.
#[derive(Args, Debug, Clone)]
pub struct CommonArgs {
    /// PostgreSQL URL; the database is created if missing (`up`, `migrate`).
    #[arg(
        long,
        env = "DATABASE_URL",
        default_value = "postgres://postgres@127.0.0.1:5432/flashdeal",
        global = true
    )]
    pub database_url: String,
    /// Redis URL (the hot-path reservation store).
    #[arg(
        long,
        env = "REDIS_URL",
        default_value = "redis://127.0.0.1:6379",
        global = true
    )]
    pub redis_url: String,
    /// Kafka/Redpanda bootstrap servers. Unset: the embedded broker on
    /// 127.0.0.1:<broker-port> (started by `up` or `broker`).
    #[arg(long, env = "KAFKA_BROKERS", global = true)]
    pub kafka_brokers: Option<String>,
    /// Port of the embedded broker.
    #[arg(
        long,
        env = "FLASHDEAL_BROKER_PORT",
        default_value_t = 19092,
        global = true
    )]
    pub broker_port: u16,
    /// Directory for the embedded broker's log and the generated JWT secret.
    #[arg(
        long,
        env = "FLASHDEAL_DATA_DIR",
        default_value = ".flashdeal",
        global = true
    )]
    pub data_dir: PathBuf,
    /// Partitions of each topic, fixed at creation.
    #[arg(
        long,
        env = "FLASHDEAL_PARTITIONS",
        default_value_t = 12,
        global = true
    )]
    pub partitions: i32,
    /// Producer `linger.ms` (0–20): time to fill a batch before sending.
    #[arg(
        long,
        env = "FLASHDEAL_PRODUCER_LINGER_MS",
        default_value_t = 2,
        global = true
    )]
    pub producer_linger_ms: u64,
    /// Producer compression: lz4, zstd, snappy, gzip or none.
    #[arg(
        long,
        env = "FLASHDEAL_PRODUCER_COMPRESSION",
        default_value = "lz4",
        global = true
    )]
    pub producer_compression: String,
    /// Confluent-compatible schema registry (e.g. Redpanda's
    /// `http://redpanda:8081`). Set: every role registers the event schemas
    /// at boot (and fails if the registry is unreachable) and publishes with
    /// Confluent framing. Unset: Avro single-object encoding. Consumers
    /// read both either way.
    #[arg(long, env = "FLASHDEAL_SCHEMA_REGISTRY_URL", global = true)]
    pub schema_registry_url: Option<String>,
    /// Serve Prometheus `/metrics` on this address from roles that have no
    /// HTTP server of their own (order-writer, projector, reconciler, relay);
    /// the gateway serves it on its own port.
    #[arg(long, env = "FLASHDEAL_METRICS_ADDR", global = true)]
    pub metrics_addr: Option<SocketAddr>,
}

/// Settings of the HTTP gateway.
#[derive(Args, Debug, Clone)]
pub struct GatewayArgs {
    /// Address the gateway listens on.
    #[arg(long, env = "FLASHDEAL_HTTP_ADDR", default_value = "127.0.0.1:8080")]
    pub http_addr: SocketAddr,
    /// How long a reservation stays pending before it may expire (seconds).
    #[arg(long, env = "FLASHDEAL_RESERVATION_TTL_SECS", default_value_t = 600)]
    pub reservation_ttl_secs: u64,
    /// How long an Idempotency-Key is remembered (seconds).
    #[arg(long, env = "FLASHDEAL_IDEMPOTENCY_TTL_SECS", default_value_t = 86_400)]
    pub idempotency_ttl_secs: u64,
    /// Access token lifetime (seconds).
    #[arg(long, env = "FLASHDEAL_TOKEN_TTL_SECS", default_value_t = 3_600)]
    pub token_ttl_secs: u64,
    #[command(flatten)]
    pub rate_limit: RateLimitArgs,
}

/// The gateway's token buckets (docs/api.md, "Rate limits"). A rate of 0
/// turns that limit off.
#[derive(Args, Debug, Clone, PartialEq)]
pub struct RateLimitArgs {
    /// Requests per second each client IP may make, on average (0: off).
    #[arg(long, env = "FLASHDEAL_RATE_LIMIT_PER_IP_RPS", default_value_t = RateLimitArgs::DEFAULT.rate_limit_per_ip_rps)]
    pub rate_limit_per_ip_rps: f64,
    /// Requests an IP may send at once above its rate (bucket size).
    #[arg(long, env = "FLASHDEAL_RATE_LIMIT_PER_IP_BURST", default_value_t = RateLimitArgs::DEFAULT.rate_limit_per_ip_burst)]
    pub rate_limit_per_ip_burst: u32,
    /// Requests per second each authenticated user may make (0: off).
    #[arg(long, env = "FLASHDEAL_RATE_LIMIT_PER_USER_RPS", default_value_t = RateLimitArgs::DEFAULT.rate_limit_per_user_rps)]
    pub rate_limit_per_user_rps: f64,
    /// Requests a user may send at once above their rate (bucket size).
    #[arg(long, env = "FLASHDEAL_RATE_LIMIT_PER_USER_BURST", default_value_t = RateLimitArgs::DEFAULT.rate_limit_per_user_burst)]
    pub rate_limit_per_user_burst: u32,
    /// Proxies in front of the gateway that append the client to
    /// X-Forwarded-For (0: the header is ignored, the peer is the client).
    #[arg(long, env = "FLASHDEAL_RATE_LIMIT_TRUSTED_PROXY_HOPS", default_value_t = RateLimitArgs::DEFAULT.rate_limit_trusted_proxy_hops)]
    pub rate_limit_trusted_proxy_hops: usize,
    /// Do not limit loopback clients per IP (local runs, benchmarks).
    #[arg(long, env = "FLASHDEAL_RATE_LIMIT_EXEMPT_LOOPBACK", default_value_t = RateLimitArgs::DEFAULT.rate_limit_exempt_loopback, action = clap::ArgAction::Set)]
    pub rate_limit_exempt_loopback: bool,
    /// Most buckets kept per scope (IP, user); idle ones are evicted.
    #[arg(long, env = "FLASHDEAL_RATE_LIMIT_MAX_KEYS", default_value_t = RateLimitArgs::DEFAULT.rate_limit_max_keys)]
    pub rate_limit_max_keys: usize,
}

impl RateLimitArgs {
    /// The flags' defaults.
    pub const DEFAULT: Self = Self {
        rate_limit_per_ip_rps: 2000.0,
        rate_limit_per_ip_burst: 4000,
        rate_limit_per_user_rps: 1000.0,
        rate_limit_per_user_burst: 2000,
        rate_limit_trusted_proxy_hops: 0,
        rate_limit_exempt_loopback: true,
        rate_limit_max_keys: 100_000,
    };

    /// No limits at all.
    pub const OFF: Self = Self {
        rate_limit_per_ip_rps: 0.0,
        rate_limit_per_user_rps: 0.0,
        ..Self::DEFAULT
    };
}

impl Default for RateLimitArgs {
    fn default() -> Self {
        Self::DEFAULT
    }
}

/// Batching of the order-writer.
#[derive(Args, Debug, Clone)]
pub struct WriterArgs {
    /// Most intents written in one PostgreSQL transaction.
    #[arg(long, env = "FLASHDEAL_WRITER_BATCH_SIZE", default_value_t = 500)]
    pub batch_size: usize,
    /// Longest wait to fill a batch (milliseconds).
    #[arg(long, env = "FLASHDEAL_WRITER_BATCH_WAIT_MS", default_value_t = 5)]
    pub batch_wait_ms: u64,
}

/// Pace of the reconciler.
#[derive(Args, Debug, Clone)]
pub struct ReconcilerArgs {
    /// Time between two sweeps for expired reservations (milliseconds).
    #[arg(long, env = "FLASHDEAL_RECONCILE_INTERVAL_MS", default_value_t = 1_000)]
    pub reconcile_interval_ms: u64,
}

#[derive(Subcommand, Debug)]
pub enum Command {
    /// Everything in one process: embedded broker (unless KAFKA_BROKERS is
    /// set), migrations, topics, gateway, order-writer, projector and
    /// reconciler.
    Up {
        #[command(flatten)]
        gateway: GatewayArgs,
        #[command(flatten)]
        writer: WriterArgs,
        #[command(flatten)]
        reconciler: ReconcilerArgs,
    },
    /// Only the embedded Kafka-compatible broker, so roles can run as
    /// separate processes.
    Broker,
    /// Only the HTTP gateway.
    Gateway {
        #[command(flatten)]
        gateway: GatewayArgs,
    },
    /// Only the order-writer (orders.intents → PostgreSQL → orders.status,
    /// and catalog.events → its orders.deals read model).
    OrderWriter {
        #[command(flatten)]
        writer: WriterArgs,
    },
    /// Only the projectors (orders.status → Redis and catalog.sold_count,
    /// catalog.events → Redis).
    Projector,
    /// Only the reconciler (expired reservations → OrderExpired on the log).
    Reconciler {
        #[command(flatten)]
        reconciler: ReconcilerArgs,
    },
    /// Only the outbox relays (auth.outbox → auth.events, catalog.outbox →
    /// catalog.events); run several, one per outbox is active.
    Relay,
    /// Compare catalog, orders, Redis and the projections; print the
    /// differences with a fix for each; exit 1 when any exist.
    Audit(crate::audit::AuditArgs),
    /// After Redis came back empty (or lost some deals): rebuild each lost
    /// deal from PostgreSQL and the unconsumed tail of orders.intents, so it
    /// reopens (docs/runbook.md, "Redis loss").
    RecoverRedis(crate::recover::RecoverArgs),
    /// Re-read a topic: rewind an inactive group's offsets, or run the
    /// group's sink as a one-off group (docs/runbook.md, "Replay").
    Replay(crate::replay::ReplayArgs),
    /// Inspect and requeue dead letters (docs/runbook.md, "Dead letters").
    Dlq(crate::dlq::DlqArgs),
    /// Create the database if needed and apply migrations.
    Migrate,
    /// Create (or reset) the admin account and a demo deal.
    Seed(seed::SeedArgs),
}

impl Command {
    /// The role in trace service names (`flashdeal-<role>`).
    fn role(&self) -> &'static str {
        match self {
            Command::Up { .. } => "up",
            Command::Broker => "broker",
            Command::Gateway { .. } => "gateway",
            Command::OrderWriter { .. } => "order-writer",
            Command::Projector => "projector",
            Command::Reconciler { .. } => "reconciler",
            Command::Relay => "relay",
            _ => "cli",
        }
    }
}

impl Cli {
    /// Runs the command on a fresh runtime; errors are printed with their
    /// chain of causes and exit with status 1.
    pub fn run(self) -> ExitCode {
        let _telemetry = crate::telemetry::init(self.command.role());
        let runtime = match tokio::runtime::Builder::new_multi_thread()
            .enable_all()
            .build()
        {
            Ok(rt) => rt,
            Err(e) => {
                eprintln!("error: cannot start the async runtime: {e}");
                return ExitCode::FAILURE;
            }
        };
        let result = runtime.block_on(async move {
            let config = Config::from_args(self.common)?;
            match self.command {
                Command::Up {
                    gateway,
                    writer,
                    reconciler,
                } => roles::up(config, gateway, writer, reconciler).await,
                Command::Broker => roles::broker_only(config).await,
                Command::Gateway { gateway } => roles::gateway(config, gateway).await,
                Command::OrderWriter { writer } => roles::order_writer(config, writer).await,
                Command::Projector => roles::projector(config).await,
                Command::Relay => roles::relay(config).await,
                Command::Audit(args) => crate::audit::command(config, args).await,
                Command::RecoverRedis(args) => crate::recover::command(config, args).await,
                Command::Reconciler { reconciler } => roles::reconciler(config, reconciler).await,
                Command::Replay(args) => crate::replay::command(config, args).await,
                Command::Dlq(args) => crate::dlq::command(config, args).await,
                Command::Migrate => crate::database::migrate(&config.database_url)
                    .await
                    .map(|_| ()),
                Command::Seed(args) => seed::run(config, args).await,
            }
        });
        match result {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("error: {e:#}");
                ExitCode::FAILURE
            }
        }
    }
}
