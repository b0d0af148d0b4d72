//! Starts a complete FlashDeal (gateway, order-writer, projector) in this
//! process against real services, plus helpers to drive and inspect it.

use flashdeal::{
    broker::EmbeddedBroker,
    cli::{GatewayArgs, RateLimitArgs, ReconcilerArgs, WriterArgs},
    config::{self, Config},
    database, roles,
};
use flashdeal_gateway::auth::{JwtKeys, Role};
use flashdeal_schemas::{DealId, UserId, redis_keys::DealKeys};
use rdkafka::consumer::{BaseConsumer, Consumer};
use redis::aio::ConnectionManager;
use serde_json::{Value, json};
use sqlx::PgPool;
use std::{
    future::Future,
    path::PathBuf,
    time::{Duration, Instant},
};
use tokio::{net::TcpListener, task::JoinHandle};
use tokio_util::sync::CancellationToken;

pub const PARTITIONS: i32 = 6;

/// A running system for one test.
pub struct TestEnv {
    pub base: String,
    pub http: reqwest::Client,
    pub pg: PgPool,
    pub redis: ConnectionManager,
    pub config: Config,
    pub jwt: JwtKeys,
    pub data_dir: PathBuf,
    shutdown: CancellationToken,
    writer_shutdown: CancellationToken,
    tasks: Vec<JoinHandle<anyhow::Result<()>>>,
    _broker: EmbeddedBroker,
}

pub struct Options {
    /// Run the order-writer in this process (false: the test runs it).
    pub in_process_writer: bool,
    /// Run a reconciler sweeping at this interval (ms). Off by default: it
    /// scans the Redis every test shares.
    pub reconcile_interval_ms: Option<u64>,
    /// Run the outbox relays in this process (false: the test runs them).
    pub in_process_relay: bool,
    /// Use this Redis instead of TEST_REDIS_URL / the shared one (a test
    /// that restarts Redis runs its own).
    pub redis_url: Option<String>,
    /// The gateway's rate limits (the flags' defaults unless a test says).
    pub rate_limit: RateLimitArgs,
    /// Every role registers its schemas with this registry and publishes
    /// Confluent framing (unset: single-object encoding).
    pub schema_registry_url: Option<String>,
}

impl Default for Options {
    fn default() -> Self {
        Self {
            in_process_writer: true,
            reconcile_interval_ms: None,
            in_process_relay: true,
            redis_url: None,
            rate_limit: RateLimitArgs::default(),
            schema_registry_url: None,
        }
    }
}

async fn free_port() -> u16 {
    let l = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    l.local_addr().expect("addr").port()
}

impl TestEnv {
    pub async fn start(opts: Options) -> Self {
        flashdeal::telemetry::init_with_default("warn");
        let id = uuid::Uuid::now_v7().simple().to_string();
        let data_dir = std::env::temp_dir().join(format!("flashdeal-test-{id}"));
        let broker = EmbeddedBroker::start(free_port().await, &data_dir)
            .await
            .expect("embedded broker");
        let mut config = Config::with_services(
            format!("postgres://postgres@127.0.0.1:5432/fd_test_{id}"),
            opts.redis_url.clone().unwrap_or_else(|| {
                std::env::var("TEST_REDIS_URL")
                    .unwrap_or_else(|_| "redis://127.0.0.1:6379".to_owned())
            }),
            broker.bootstrap(),
            data_dir.clone(),
            PARTITIONS,
        );
        config.schema_registry_url = opts.schema_registry_url.clone();
        let pg = database::migrate(&config.database_url)
            .await
            .expect("migrate");
        roles::topics(&config.kafka(), PARTITIONS)
            .await
            .expect("topics");
        let gateway_args = GatewayArgs {
            http_addr: "127.0.0.1:0".parse().expect("addr"),
            reservation_ttl_secs: 600,
            idempotency_ttl_secs: 3600,
            token_ttl_secs: 3600,
            rate_limit: opts.rate_limit.clone(),
        };
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let app = roles::build_gateway(&config, &gateway_args, listener)
            .await
            .expect("gateway");
        let base = format!("http://{}", app.local_addr().expect("addr"));
        let shutdown = CancellationToken::new();
        let writer_shutdown = shutdown.child_token();
        let mut tasks = Vec::new();
        let s = shutdown.clone();
        tasks.push(tokio::spawn(
            async move { Ok(app.run_until_stopped(s).await?) },
        ));
        let (c, s) = (config.clone(), shutdown.clone());
        tasks.push(tokio::spawn(
            async move { roles::run_projector(&c, s).await },
        ));
        if opts.in_process_writer {
            let (c, s) = (config.clone(), writer_shutdown.clone());
            tasks.push(tokio::spawn(async move {
                roles::run_order_writer(&c, &writer_args(), s).await
            }));
        }
        if opts.in_process_relay {
            let (c, s) = (config.clone(), shutdown.clone());
            tasks.push(tokio::spawn(async move { roles::run_relays(&c, s).await }));
        }
        if let Some(ms) = opts.reconcile_interval_ms {
            let (c, s) = (config.clone(), shutdown.clone());
            let args = ReconcilerArgs {
                reconcile_interval_ms: ms,
            };
            tasks.push(tokio::spawn(async move {
                roles::run_reconciler(&c, &args, s).await
            }));
        }
        let jwt = config::jwt_keys(&data_dir, Duration::from_secs(3600)).expect("jwt keys");
        Self {
            base,
            http: reqwest::Client::builder()
                .pool_max_idle_per_host(256)
                .build()
                .expect("http client"),
            redis: roles::redis(&config.redis_url).await.expect("redis"),
            pg,
            config,
            jwt,
            data_dir,
            shutdown,
            writer_shutdown,
            tasks,
            _broker: broker,
        }
    }

    /// Stops every role (their consumers leave the group), then drops the
    /// test database.
    pub async fn finish(mut self) {
        self.writer_shutdown.cancel();
        self.shutdown.cancel();
        for t in self.tasks.drain(..) {
            match tokio::time::timeout(Duration::from_secs(20), t).await {
                Ok(Ok(Ok(()))) => {}
                other => panic!("a role did not stop cleanly: {other:?}"),
            }
        }
        self.pg.close().await;
        drop_database(&self.config.database_url).await;
        let _ = std::fs::remove_dir_all(&self.data_dir);
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    /// A token for a new random customer (the gateway only verifies tokens;
    /// signup/login have their own tests).
    pub fn customer_token(&self) -> (UserId, String) {
        let user = UserId::new_v7();
        (user, self.jwt.issue(user, Role::Customer).expect("token"))
    }

    pub fn admin_token(&self) -> String {
        self.jwt
            .issue(UserId::new_v7(), Role::Admin)
            .expect("token")
    }

    /// Creates a deal through the admin API and returns its id.
    pub async fn create_deal(&self, stock: i32, per_user_limit: i32) -> DealId {
        self.create_deal_with(json!({
            "product_name": "Test headphones",
            "price_cents": 1999,
            "stock": stock,
            "per_user_limit": per_user_limit,
            "ends_at": (chrono::Utc::now() + chrono::Duration::hours(1)).to_rfc3339(),
        }))
        .await
    }

    /// Creates a deal through the admin API and waits until the log has
    /// brought it to Redis (relay → catalog.events → catalog projector).
    pub async fn create_deal_with(&self, body: Value) -> DealId {
        let deal = self.create_deal_unprojected(body).await;
        self.wait_projected(deal).await;
        deal
    }

    /// Waits until the deal's meta is in Redis.
    pub async fn wait_projected(&self, deal: DealId) {
        let r = self.redis.clone();
        eventually(
            "the deal to reach Redis through the log",
            Duration::from_secs(30),
            || {
                let mut r = r.clone();
                async move {
                    let n: i64 = redis::cmd("EXISTS")
                        .arg(DealKeys::new(deal).meta)
                        .query_async(&mut r)
                        .await
                        .ok()?;
                    (n == 1).then_some(())
                }
            },
        )
        .await;
    }

    /// Creates a deal through the admin API without waiting for Redis.
    pub async fn create_deal_unprojected(&self, body: Value) -> DealId {
        let res = self
            .http
            .post(self.url("/admin/deals"))
            .bearer_auth(self.admin_token())
            .json(&body)
            .send()
            .await
            .expect("create deal");
        assert_eq!(res.status(), 201, "{:?}", res.text().await);
        let v: Value = res.json().await.expect("json");
        v["deal_id"]
            .as_str()
            .expect("deal_id")
            .parse()
            .expect("uuid")
    }

    /// Sends `POST /orders`; returns (status, body).
    pub async fn order(
        &self,
        token: &str,
        deal: DealId,
        qty: i64,
        key: Option<&str>,
    ) -> (u16, Value) {
        let mut req = self
            .http
            .post(self.url("/orders"))
            .bearer_auth(token)
            .json(&json!({ "deal_id": deal, "quantity": qty }));
        if let Some(k) = key {
            req = req.header("Idempotency-Key", k);
        }
        let res = req.send().await.expect("POST /orders");
        let status = res.status().as_u16();
        (status, res.json().await.unwrap_or(Value::Null))
    }

    pub async fn redis_stock(&self, deal: DealId) -> i64 {
        let mut r = self.redis.clone();
        redis::cmd("GET")
            .arg(DealKeys::new(deal).stock)
            .query_async::<Option<i64>>(&mut r)
            .await
            .expect("GET stock")
            .unwrap_or(-1)
    }

    pub async fn redis_pending(&self, deal: DealId) -> i64 {
        let mut r = self.redis.clone();
        redis::cmd("ZCARD")
            .arg(DealKeys::new(deal).pending)
            .query_async(&mut r)
            .await
            .expect("ZCARD")
    }

    /// Units in `orders.orders` confirmed for `deal`.
    pub async fn confirmed_units(&self, deal: DealId) -> i64 {
        sqlx::query_scalar::<_, Option<i64>>(
            "SELECT sum(quantity)::int8 FROM orders.orders WHERE deal_id = $1 AND status = 'confirmed'",
        )
        .bind(deal.0)
        .fetch_one(&self.pg)
        .await
        .expect("sum")
        .unwrap_or(0)
    }

    /// Waits until `group` has committed past `offset` on `partition` of `topic`:
    /// the message there has been applied.
    pub async fn wait_committed(&self, group: &str, topic: &str, partition: i32, offset: i64) {
        let consumer: BaseConsumer = self
            .config
            .kafka()
            .consumer_config(group, "test-offsets")
            .create()
            .expect("offsets client");
        let mut tpl = rdkafka::TopicPartitionList::new();
        tpl.add_partition(topic, partition);
        eventually(
            "the consumer group to commit past the message",
            Duration::from_secs(30),
            || {
                let committed = consumer
                    .committed_offsets(tpl.clone(), Duration::from_secs(5))
                    .ok()
                    .and_then(|t| t.find_partition(topic, partition).map(|p| p.offset()));
                async move {
                    matches!(committed, Some(rdkafka::Offset::Offset(o)) if o > offset)
                        .then_some(())
                }
            },
        )
        .await;
        // Dropping a consumer right after committed() can hang in librdkafka:
        // drop it on the blocking pool, bounded.
        let _ = tokio::time::timeout(
            Duration::from_secs(10),
            tokio::task::spawn_blocking(move || drop(consumer)),
        )
        .await;
    }

    /// Messages ever appended to `topic` (sum of high watermarks).
    pub fn topic_size(&self, topic: &str) -> i64 {
        let consumer: BaseConsumer = self
            .config
            .kafka()
            .admin_config()
            .create()
            .expect("watermark client");
        (0..PARTITIONS)
            .map(|p| {
                consumer
                    .fetch_watermarks(topic, p, Duration::from_secs(5))
                    .expect("watermarks")
                    .1
            })
            .sum()
    }
}

pub fn writer_args() -> WriterArgs {
    WriterArgs {
        batch_size: 200,
        batch_wait_ms: 5,
    }
}

/// Polls `check` until it returns `Some`, or panics with `what` after `limit`.
pub async fn eventually<T, F, Fut>(what: &str, limit: Duration, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Option<T>>,
{
    let deadline = Instant::now() + limit;
    loop {
        if let Some(v) = check().await {
            return v;
        }
        assert!(
            Instant::now() < deadline,
            "timed out after {limit:?} waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

impl TestEnv {
    /// A pool logged in as `service`'s own role.
    pub async fn service_pool(&self, service: flashdeal::config::Service) -> PgPool {
        roles::service_pool(&self.config, service, 2)
            .await
            .expect("service pool")
    }

    /// A relay for `outbox` that the test drives step by step.
    pub async fn relay(
        &self,
        outbox: flashdeal_producers::outbox::Outbox,
    ) -> flashdeal_producers::relay::Relay {
        use flashdeal::config::Service;
        let service = match outbox {
            flashdeal_producers::outbox::Outbox::Auth => Service::Auth,
            flashdeal_producers::outbox::Outbox::Catalog => Service::Catalog,
        };
        flashdeal_producers::relay::Relay::new(
            self.service_pool(service).await,
            outbox,
            roles::publisher(&self.config.kafka(), "test-relay").expect("publisher"),
            flashdeal_producers::relay::RelaySettings::default(),
        )
    }

    /// `POST /admin/deals/{id}/stock`; returns the status code.
    pub async fn adjust_stock(&self, deal: DealId, delta: i64) -> u16 {
        self.http
            .post(self.url(&format!("/admin/deals/{deal}/stock")))
            .bearer_auth(self.admin_token())
            .json(&json!({ "delta": delta }))
            .send()
            .await
            .expect("adjust stock")
            .status()
            .as_u16()
    }

    /// Rows waiting in `schema`.outbox.
    pub async fn outbox_rows(&self, schema: &str) -> i64 {
        let sql = match schema {
            "auth" => "SELECT count(*) FROM auth.outbox",
            "catalog" => "SELECT count(*) FROM catalog.outbox",
            other => panic!("no outbox in schema {other}"),
        };
        sqlx::query_scalar(sql)
            .fetch_one(&self.pg)
            .await
            .expect("count outbox")
    }

    /// Every message of `topic`, per partition in offset order, read from
    /// the beginning up to the high watermarks as they are now.
    pub async fn read_topic(&self, topic: &str) -> Vec<rdkafka::message::OwnedMessage> {
        use rdkafka::{Message, Offset, TopicPartitionList};
        let consumer: BaseConsumer = self
            .config
            .kafka()
            .consumer_config(&format!("test-read-{}", uuid::Uuid::now_v7()), "test-read")
            .create()
            .expect("reader");
        let topic = topic.to_owned();
        let read = tokio::task::spawn_blocking(move || {
            let mut tpl = TopicPartitionList::new();
            let mut remaining = 0i64;
            let mut high = std::collections::HashMap::new();
            for p in 0..PARTITIONS {
                let (_, h) = consumer
                    .fetch_watermarks(&topic, p, Duration::from_secs(5))
                    .expect("watermarks");
                high.insert(p, h);
                remaining += h;
                tpl.add_partition_offset(&topic, p, Offset::Beginning)
                    .expect("partition");
            }
            consumer.assign(&tpl).expect("assign");
            let mut out = Vec::new();
            let deadline = Instant::now() + Duration::from_secs(30);
            while remaining > 0 && Instant::now() < deadline {
                if let Some(Ok(m)) = consumer.poll(Duration::from_millis(200))
                    && m.offset() < high[&m.partition()]
                {
                    remaining -= 1;
                    out.push(m.detach());
                }
            }
            assert_eq!(remaining, 0, "could not read all of {topic}");
            out
        });
        tokio::time::timeout(Duration::from_secs(40), read)
            .await
            .expect("reading the topic timed out")
            .expect("reader panicked")
    }
}

impl TestEnv {
    /// `flashdeal <subcommand>` as a separate process against this test's
    /// services (the caller adds its own settings and spawns it).
    pub fn role_command(&self, subcommand: &str) -> std::process::Command {
        let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_flashdeal"));
        cmd.arg(subcommand)
            .env("DATABASE_URL", &self.config.database_url)
            .env("REDIS_URL", &self.config.redis_url)
            .env(
                "KAFKA_BROKERS",
                self.config.kafka_brokers.as_deref().unwrap_or_default(),
            )
            .env("FLASHDEAL_PARTITIONS", PARTITIONS.to_string())
            .env("FLASHDEAL_DATA_DIR", &self.data_dir)
            .env("RUST_LOG", "warn")
            .stdin(std::process::Stdio::null());
        if let Some(url) = &self.config.schema_registry_url {
            cmd.env("FLASHDEAL_SCHEMA_REGISTRY_URL", url);
        }
        cmd
    }

    /// `GET <path>` (an order's Location) as `token`'s owner: the JSON body,
    /// `None` on any failure (for polling).
    pub async fn get_json(&self, path: &str, token: &str) -> Option<Value> {
        self.http
            .get(self.url(path))
            .bearer_auth(token)
            .send()
            .await
            .ok()?
            .json()
            .await
            .ok()
    }
}

/// Drops the test database named in `url` (connected to `postgres`, since a
/// database cannot drop itself); best effort, for teardown.
pub async fn drop_database(url: &str) {
    let Ok(admin) = database::pool("postgres://postgres@127.0.0.1:5432/postgres", 1).await else {
        return;
    };
    let name = url.rsplit('/').next().unwrap_or_default().replace('"', "");
    let _ = sqlx::raw_sql(sqlx::AssertSqlSafe(format!(
        "DROP DATABASE IF EXISTS \"{name}\" WITH (FORCE)"
    )))
    .execute(&admin)
    .await;
}
