//! Redis loss (issue 5): Redis restarts empty, the gateway answers 503 for
//! the deal instead of taking orders it cannot check, `recover-redis`
//! rebuilds the deal from PostgreSQL and the unconsumed tail of
//! `orders.intents`, and the deal reopens with stock conserved and the
//! per-user limit intact.
//!
//! Each test runs its own `redis-server` (no persistence) on a free port:
//! the shared Redis must never be restarted or flushed under the tests
//! running beside these.

use crate::harness::{Options, TestEnv, eventually, writer_args};
use flashdeal::audit::{self, kind};
use flashdeal_consumers::recover::{Outcome, RecoverOptions, recover};
use flashdeal_schemas::{DealId, OrderId, events::now_millis, redis_keys::DealKeys};
use serde_json::Value;
use std::{
    process::{Child, Command, Stdio},
    time::{Duration, Instant},
};
use tokio_util::sync::CancellationToken;

/// A private, diskless `redis-server` child process.
struct PrivateRedis {
    port: u16,
    child: Child,
}

impl PrivateRedis {
    fn start() -> Self {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("free port")
            .port();
        Self::on(port)
    }

    fn on(port: u16) -> Self {
        let child = Command::new("redis-server")
            .args(["--port", &port.to_string(), "--bind", "127.0.0.1"])
            .args(["--save", "", "--appendonly", "no"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("redis-server on PATH");
        let this = Self { port, child };
        let client = redis::Client::open(this.url()).expect("url");
        let deadline = Instant::now() + Duration::from_secs(10);
        while client
            .get_connection()
            .and_then(|mut c| redis::cmd("PING").query::<String>(&mut c))
            .is_err()
        {
            assert!(Instant::now() < deadline, "redis-server did not start");
            std::thread::sleep(Duration::from_millis(20));
        }
        this
    }

    fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }

    /// SIGKILL, then a new, empty server on the same port.
    fn crash_and_restart(&mut self) {
        self.child.kill().expect("SIGKILL redis-server");
        self.child.wait().expect("reap redis-server");
        let port = self.port;
        *self = Self::on(port);
    }
}

impl Drop for PrivateRedis {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Waits until the test's own Redis connection has reconnected (its first
/// command after the restart fails with a broken pipe).
async fn reconnected(env: &TestEnv) {
    eventually("Redis to answer again", Duration::from_secs(10), || async {
        let mut r = env.redis.clone();
        redis::cmd("PING").query_async::<String>(&mut r).await.ok()
    })
    .await;
}

/// Polls `POST /orders` until the gateway, with Redis back but empty,
/// answers the "deal not in Redis" 503 as problem+json.
async fn wait_for_lost_deal_503(env: &TestEnv, token: &str, deal: DealId) {
    eventually(
        "the gateway to answer 503 for the lost deal",
        Duration::from_secs(30),
        || async {
            let res = env
                .http
                .post(env.url("/orders"))
                .bearer_auth(token)
                .json(&serde_json::json!({ "deal_id": deal, "quantity": 1 }))
                .send()
                .await
                .ok()?;
            let status = res.status().as_u16();
            let ct = res
                .headers()
                .get("content-type")
                .and_then(|v| v.to_str().ok())
                .map(str::to_owned);
            let body: Value = res.json().await.ok()?;
            assert_ne!(status, 202, "an order was taken for a lost deal: {body}");
            let lost = status == 503
                && ct.as_deref() == Some("application/problem+json")
                && body["detail"]
                    .as_str()
                    .is_some_and(|d| d.contains("temporarily unavailable"));
            lost.then_some(())
        },
    )
    .await;
}

/// The audit's differences for `deal`, without the order-status projections
/// (`order:{id}`) lost with Redis: `flashdeal replay --rebuild-projections`
/// rebuilds those (not recover-redis); GET /orders/{id} meanwhile falls
/// back to PostgreSQL.
async fn differences_but_lost_order_status(env: &TestEnv, deal: DealId) -> Vec<audit::Difference> {
    let mut r = env.redis.clone();
    audit::run(&env.pg, &mut r, Some(deal), now_millis())
        .await
        .expect("audit")
        .into_iter()
        .filter(|d| d.kind != kind::ORDER_STATUS)
        .collect()
}

async fn held(env: &TestEnv, deal: DealId) -> i64 {
    let mut r = env.redis.clone();
    let counts: std::collections::HashMap<String, i64> = redis::cmd("HGETALL")
        .arg(DealKeys::new(deal).users)
        .query_async(&mut r)
        .await
        .expect("HGETALL users");
    counts.values().copied().max().unwrap_or(0)
}

async fn accepted(env: &TestEnv, token: &str, deal: DealId, key: &str) -> OrderId {
    let (status, body) = env.order(token, deal, 1, Some(key)).await;
    assert_eq!(status, 202, "{body}");
    body["order_id"]
        .as_str()
        .expect("order_id")
        .parse()
        .expect("uuid")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_deal_lost_with_redis_answers_503_until_recovered_then_sells_out_exactly() {
    let mut private = PrivateRedis::start();
    let env = TestEnv::start(Options {
        redis_url: Some(private.url()),
        ..Options::default()
    })
    .await;
    let deal = env.create_deal(50, 2).await;

    // 40 orders: 19 users at their limit of 2, and two with one each
    // (`retry` will retry its idempotency key after the loss).
    let users: Vec<(_, String)> = (0..19).map(|_| env.customer_token()).collect();
    for (i, (_, t)) in users.iter().enumerate() {
        accepted(&env, t, deal, &format!("u{i}-a")).await;
        accepted(&env, t, deal, &format!("u{i}-b")).await;
    }
    let (_, retry) = env.customer_token();
    let (_, single) = env.customer_token();
    let first = accepted(&env, &retry, deal, "retry-1").await;
    accepted(&env, &single, deal, "single-1").await;
    eventually("40 confirmed units", Duration::from_secs(30), || async {
        (env.confirmed_units(deal).await == 40).then_some(())
    })
    .await;

    private.crash_and_restart();
    reconnected(&env).await;
    wait_for_lost_deal_503(&env, &single, deal).await;
    let lost = differences_but_lost_order_status(&env, deal).await;
    assert!(
        lost.iter().any(|d| d.kind == kind::MISSING_IN_REDIS),
        "{lost:?}"
    );
    // A catalog change while the deal is lost: the catalog projector must
    // not apply its delta to nothing (it waits for the rebuild, which reads
    // the catalog after the change and so already includes it).
    let adjusted = env.adjust_stock(deal, 5).await;
    assert!(
        (200..300).contains(&adjusted),
        "stock adjustment: {adjusted}"
    );

    let run = |extra: &[&str]| {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_flashdeal"));
        cmd.arg("recover-redis")
            .args(["--deal", &deal.to_string()])
            .args(extra)
            .env("DATABASE_URL", &env.config.database_url)
            .env("REDIS_URL", private.url())
            .env("KAFKA_BROKERS", env.config.kafka().brokers)
            .env("RUST_LOG", "warn");
        cmd
    };
    let dry = tokio::task::spawn_blocking({
        let mut c = run(&["--dry-run"]);
        move || c.output()
    })
    .await
    .expect("join")
    .expect("run recover-redis --dry-run");
    let dry_out = String::from_utf8_lossy(&dry.stdout).into_owned();
    println!("{dry_out}");
    assert!(
        dry.status.success(),
        "{}",
        String::from_utf8_lossy(&dry.stderr)
    );
    assert!(dry_out.contains("would rebuild"), "{dry_out}");
    wait_for_lost_deal_503(&env, &single, deal).await;

    let out = tokio::task::spawn_blocking({
        let mut c = run(&[]);
        move || c.output()
    })
    .await
    .expect("join")
    .expect("run recover-redis");
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    println!("{stdout}");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let row = stdout
        .lines()
        .find(|l| l.starts_with(&deal.to_string()))
        .expect("a row for the deal");
    let cols: Vec<&str> = row.split_whitespace().collect();
    // DEAL OUTCOME STOCK CONFIRMED PENDING (n orders) REMAINING
    assert_eq!(cols[1], "rebuilt", "{row}");
    assert_eq!(
        (cols[2], cols[3], cols[4], cols[7]),
        ("55", "40", "0", "15"),
        "{row}"
    );
    assert_eq!(env.redis_stock(deal).await, 15);
    assert_eq!(held(&env, deal).await, 2);

    // A second run finds the deal present and leaves it alone.
    let again = tokio::task::spawn_blocking({
        let mut c = run(&[]);
        move || c.output()
    })
    .await
    .expect("join")
    .expect("run recover-redis again");
    let again_out = String::from_utf8_lossy(&again.stdout).into_owned();
    assert!(again.status.success());
    assert!(again_out.contains("present, skipped"), "{again_out}");

    // The per-user counts came back: a user at the limit stays at it.
    let (status, body) = env.order(&users[0].1, deal, 1, Some("u0-c")).await;
    assert_eq!(status, 409, "{body}");

    // The idempotency keys came back with the deal: a client retrying with
    // its key after the loss gets its first order, not a second one.
    let second = accepted(&env, &retry, deal, "retry-1").await;
    assert_eq!(
        second, first,
        "a retry after the loss created a second order"
    );
    assert_eq!(env.redis_stock(deal).await, 15, "the retry reserved stock");

    // The deal sells out exactly: 15 more units, then 409.
    for i in 0..15 {
        let (_, t) = env.customer_token();
        accepted(&env, &t, deal, &format!("late-{i}")).await;
    }
    let (_, t) = env.customer_token();
    let (status, body) = env.order(&t, deal, 1, None).await;
    assert_eq!(status, 409, "{body}");

    eventually("the stores to agree", Duration::from_secs(30), || async {
        let diffs = differences_but_lost_order_status(&env, deal).await;
        (diffs.is_empty()
            && env.confirmed_units(deal).await == 55
            && env.redis_pending(deal).await == 0)
            .then_some(())
    })
    .await;
    assert_eq!(
        env.redis_stock(deal).await + env.confirmed_units(deal).await,
        55
    );
    assert!(held(&env, deal).await <= 2, "a user exceeds the limit");
    env.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn reservations_still_in_the_log_are_rebuilt_pending_and_then_confirmed() {
    let mut private = PrivateRedis::start();
    let env = TestEnv::start(Options {
        redis_url: Some(private.url()),
        in_process_writer: false,
        ..Options::default()
    })
    .await;
    let deal = env.create_deal(50, 2).await;
    let mut orders = Vec::new();
    let mut tokens = Vec::new();
    for i in 0..15 {
        let (_, t) = env.customer_token();
        orders.push(accepted(&env, &t, deal, &format!("p{i}-a")).await);
        orders.push(accepted(&env, &t, deal, &format!("p{i}-b")).await);
        tokens.push(t);
    }

    // No order-writer ran: all 30 intents are in the unconsumed tail.
    private.crash_and_restart();
    reconnected(&env).await;
    wait_for_lost_deal_503(&env, &tokens[0], deal).await;

    let kafka = env.config.kafka();
    let mut opts = RecoverOptions {
        deal: Some(deal),
        dry_run: true,
        force: false,
        tail_wait: kafka.delivery_timeout,
        idempotency_ttl: Duration::from_secs(3600),
    };
    let mut r = env.redis.clone();
    let dry = recover(&env.pg, &env.pg, &mut r, &kafka, &opts)
        .await
        .expect("dry run");
    assert_eq!(dry.deals[0].outcome, Outcome::WouldRebuild);
    assert_eq!(env.redis_stock(deal).await, -1, "a dry run wrote the stock");

    opts.dry_run = false;
    let report = recover(&env.pg, &env.pg, &mut r, &kafka, &opts)
        .await
        .expect("recover");
    println!("{}", flashdeal::recover::render(&report, false));
    let d = &report.deals[0];
    assert_eq!(d.outcome, Outcome::Rebuilt);
    assert_eq!(
        (
            d.stock,
            d.confirmed,
            d.pending_orders,
            d.pending_units,
            d.remaining
        ),
        (50, 0, 30, 30, 20)
    );
    assert!(report.tail_read >= 30, "{report:?}");
    assert_eq!(env.redis_pending(deal).await, 30);
    assert_eq!(env.redis_stock(deal).await, 20);
    let (status, body) = env.order(&tokens[3], deal, 1, Some("p3-c")).await;
    assert_eq!(
        status, 409,
        "pending reservations count toward the limit: {body}"
    );

    // Now the order-writer catches up: every 202 ends confirmed.
    let stop = CancellationToken::new();
    let writer = tokio::spawn({
        let (c, s) = (env.config.clone(), stop.clone());
        async move { flashdeal::roles::run_order_writer(&c, &writer_args(), s).await }
    });
    let ids: Vec<uuid::Uuid> = orders.iter().map(|o| o.0).collect();
    eventually(
        "every accepted order to be confirmed",
        Duration::from_secs(60),
        || async {
            let n: i64 = sqlx::query_scalar(
                "SELECT count(*) FROM orders.orders WHERE order_id = ANY($1) AND status = 'confirmed'",
            )
            .bind(&ids)
            .fetch_one(&env.pg)
            .await
            .ok()?;
            (n == 30).then_some(())
        },
    )
    .await;
    eventually("the stores to agree", Duration::from_secs(30), || async {
        let mut r = env.redis.clone();
        let diffs = audit::run(&env.pg, &mut r, Some(deal), now_millis())
            .await
            .ok()?;
        (diffs.is_empty() && env.redis_pending(deal).await == 0).then_some(())
    })
    .await;
    assert_eq!(env.confirmed_units(deal).await, 30);
    assert_eq!(env.redis_stock(deal).await, 20);
    assert_eq!(held(&env, deal).await, 2);
    stop.cancel();
    tokio::time::timeout(Duration::from_secs(20), writer)
        .await
        .expect("the order-writer stops")
        .expect("join")
        .expect("order-writer");
    env.finish().await;
}
