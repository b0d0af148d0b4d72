//! Acceptance of the outboxes and relays (issue 4): a deal reaches Redis
//! only through the log; a relay killed between produce and delete yields
//! duplicates that every consumer ignores and nothing lost; two relays at
//! once never publish one aggregate's events out of order.

use crate::harness::{Options, TestEnv, eventually};
use flashdeal_producers::outbox::Outbox;
use flashdeal_schemas::{CatalogEvent, DealId, redis_keys::DealKeys, topics};
use rdkafka::Message;
use serde_json::json;
use std::{collections::HashMap, process::Child, time::Duration};

fn no_relay() -> Options {
    Options {
        in_process_relay: false,
        ..Options::default()
    }
}

async fn deal_body(env: &TestEnv, stock: i32) -> DealId {
    env.create_deal_unprojected(json!({
        "product_name": "Relay test kettle",
        "price_cents": 2500,
        "stock": stock,
        "per_user_limit": 5,
        "ends_at": (chrono::Utc::now() + chrono::Duration::hours(1)).to_rfc3339(),
    }))
    .await
}

async fn meta_exists(env: &TestEnv, deal: DealId) -> bool {
    let mut r = env.redis.clone();
    redis::cmd("EXISTS")
        .arg(DealKeys::new(deal).meta)
        .query_async::<i64>(&mut r)
        .await
        .expect("EXISTS")
        == 1
}

async fn wait_stock(env: &TestEnv, deal: DealId, want: i64) {
    eventually(
        &format!("Redis remaining stock to be {want}"),
        Duration::from_secs(30),
        || async { (env.redis_stock(deal).await == want).then_some(()) },
    )
    .await;
}

/// The `orders.deals` read model's (stock, version) of `deal`.
async fn read_model(env: &TestEnv, deal: DealId) -> Option<(i32, i64)> {
    sqlx::query_as("SELECT stock, version FROM orders.deals WHERE deal_id = $1")
        .bind(deal.0)
        .fetch_optional(&env.pg)
        .await
        .expect("read model")
}

/// The versions of `deal`'s events on catalog.events, in log order.
async fn logged_versions(env: &TestEnv, deal: DealId) -> Vec<i64> {
    env.read_topic(topics::CATALOG_EVENTS)
        .await
        .iter()
        .filter_map(|m| match CatalogEvent::decode(m.payload()?) {
            Ok(CatalogEvent::Deal(d)) if d.deal_id == deal => Some(d.version),
            _ => None,
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_deal_created_and_adjusted_reaches_redis_only_through_the_log() {
    let env = TestEnv::start(no_relay()).await;
    let deal = deal_body(&env, 10).await;
    // Committed in the catalog with its events, but not in Redis: nothing
    // but the relay + projector writes the hot path.
    assert!(env.outbox_rows("catalog").await >= 1);
    assert!(
        !meta_exists(&env, deal).await,
        "the catalog wrote Redis directly"
    );

    let relay = env.relay(Outbox::Catalog).await;
    let mut conn = env.pg.acquire().await.expect("conn");
    assert!(relay.step(&mut conn).await.expect("relay step") >= 1);
    assert_eq!(
        env.outbox_rows("catalog").await,
        0,
        "acknowledged rows are deleted"
    );
    env.wait_projected(deal).await;
    wait_stock(&env, deal, 10).await;

    assert_eq!(env.adjust_stock(deal, 5).await, 200);
    assert_eq!(env.outbox_rows("catalog").await, 1);
    assert_eq!(
        env.redis_stock(deal).await,
        10,
        "adjusted before the log said so"
    );
    assert_eq!(relay.step(&mut conn).await.expect("relay step"), 1);
    wait_stock(&env, deal, 15).await;
    eventually(
        "the read model to follow",
        Duration::from_secs(30),
        || async { (read_model(&env, deal).await == Some((15, 2))).then_some(()) },
    )
    .await;
    drop(conn);
    env.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_relay_killed_between_produce_and_delete_duplicates_and_loses_nothing() {
    let env = TestEnv::start(no_relay()).await;
    let deal = deal_body(&env, 10).await;
    for _ in 0..3 {
        assert_eq!(env.adjust_stock(deal, 1).await, 200);
    }
    let relay = env.relay(Outbox::Catalog).await;
    let mut conn = env.pg.acquire().await.expect("conn");
    let rows = env.outbox_rows("catalog").await;
    // The broker acknowledged every row, then the relay "died": nothing was
    // deleted, so the next relay publishes them all again.
    assert_eq!(
        relay
            .publish_without_delete(&mut conn)
            .await
            .expect("publish") as i64,
        rows
    );
    assert_eq!(env.outbox_rows("catalog").await, rows);
    while relay.step(&mut conn).await.expect("step") > 0 {}
    assert_eq!(env.outbox_rows("catalog").await, 0);

    let versions = logged_versions(&env, deal).await;
    assert_eq!(
        versions,
        vec![1, 2, 3, 4, 1, 2, 3, 4],
        "each deal event twice, in order"
    );
    // Every consumer applied each version once: stock 10 + 3, not 26.
    wait_stock(&env, deal, 13).await;
    eventually(
        "the read model to settle",
        Duration::from_secs(30),
        || async { (read_model(&env, deal).await == Some((13, 4))).then_some(()) },
    )
    .await;
    // The projector has consumed the duplicates too (committed past them).
    let last = env.read_topic(topics::CATALOG_EVENTS).await;
    let (p, o) = last
        .iter()
        .filter(|m| m.key() == Some(deal.to_string().as_bytes()))
        .map(|m| (m.partition(), m.offset()))
        .max_by_key(|(_, o)| *o)
        .expect("deal events");
    env.wait_committed(
        flashdeal_consumers::catalog_projector::GROUP,
        topics::CATALOG_EVENTS,
        p,
        o,
    )
    .await;
    assert_eq!(env.redis_stock(deal).await, 13, "a duplicate was applied");
    drop(conn);
    env.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_relays_at_once_keep_each_aggregates_events_in_order() {
    let env = TestEnv::start(no_relay()).await;
    let deals = [deal_body(&env, 100).await, deal_body(&env, 100).await];
    // Two relays stepping concurrently on their own connections, without
    // the advisory lock that normally keeps one of them standing by: only
    // the row locks order them.
    let (a, b) = (
        env.relay(Outbox::Catalog).await,
        env.relay(Outbox::Catalog).await,
    );
    let stop = tokio_util::sync::CancellationToken::new();
    let run = |relay: flashdeal_producers::relay::Relay| {
        let (pool, stop) = (env.pg.clone(), stop.clone());
        tokio::spawn(async move {
            let mut conn = pool.acquire().await.expect("conn");
            let mut relayed = 0;
            while !stop.is_cancelled() {
                relayed += relay.step(&mut conn).await.expect("step");
                tokio::task::yield_now().await;
            }
            relayed
        })
    };
    let (ta, tb) = (run(a), run(b));
    let adjustments = 40;
    for i in 0..adjustments {
        assert_eq!(env.adjust_stock(deals[i % 2], 1).await, 200);
    }
    eventually("the outbox to drain", Duration::from_secs(30), || async {
        (env.outbox_rows("catalog").await == 0).then_some(())
    })
    .await;
    stop.cancel();
    let relayed = ta.await.expect("relay a") + tb.await.expect("relay b");
    eprintln!("relayed {relayed} rows");
    for deal in deals {
        let versions = logged_versions(&env, deal).await;
        let want: Vec<i64> = (1..=(1 + adjustments as i64 / 2)).collect();
        assert_eq!(versions, want, "deal {deal}: out of order or duplicated");
        wait_stock(&env, deal, 120).await;
    }
    env.finish().await;
}

fn spawn_relay(env: &TestEnv) -> Child {
    env.role_command("relay")
        .spawn()
        .expect("spawn flashdeal relay")
}

/// The same property with a real process and a real SIGKILL: stock
/// adjustments stream in while two relay processes run; the active one is
/// killed repeatedly and restarted. Every adjustment reaches Redis exactly
/// once.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn sigkilled_relays_lose_nothing_and_double_apply_nothing() {
    let env = TestEnv::start(no_relay()).await;
    let deal = deal_body(&env, 50).await;
    let mut relays = vec![spawn_relay(&env), spawn_relay(&env)];
    env.wait_projected(deal).await;
    let mut adjusted = 0;
    for round in 0..6 {
        for _ in 0..10 {
            assert_eq!(env.adjust_stock(deal, 1).await, 200);
            adjusted += 1;
        }
        // Kill one relay process (whichever is first: active or standby)
        // and start a replacement.
        let mut victim = relays.remove(round % relays.len());
        victim.kill().expect("SIGKILL relay");
        let _ = victim.wait();
        relays.push(spawn_relay(&env));
    }
    wait_stock(&env, deal, 50 + adjusted).await;
    eventually("the outbox to drain", Duration::from_secs(30), || async {
        (env.outbox_rows("catalog").await == 0).then_some(())
    })
    .await;
    let versions = logged_versions(&env, deal).await;
    let mut seen: HashMap<i64, usize> = HashMap::new();
    for v in &versions {
        *seen.entry(*v).or_default() += 1;
    }
    assert_eq!(
        seen.len() as i64,
        1 + adjusted,
        "a version never reached the log"
    );
    let mut first = Vec::new();
    for v in &versions {
        if !first.contains(v) {
            first.push(*v);
        }
    }
    assert!(
        first.windows(2).all(|w| w[0] < w[1]),
        "first publications out of order: {versions:?}"
    );
    eprintln!(
        "{} deal events on the log for {} versions ({} duplicates)",
        versions.len(),
        seen.len(),
        versions.len() - seen.len()
    );
    for mut r in relays {
        let _ = r.kill();
        let _ = r.wait();
    }
    assert_eq!(env.redis_stock(deal).await, 50 + adjusted);
    env.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn each_service_role_reaches_only_its_own_schema() {
    use flashdeal::config::Service;
    let env = TestEnv::start(Options::default()).await;
    let orders = env.service_pool(Service::Orders).await;
    let err = sqlx::query("SELECT * FROM auth.users")
        .fetch_all(&orders)
        .await
        .expect_err("the orders role read auth.users");
    assert!(err.to_string().contains("permission denied"), "{err}");
    assert!(
        sqlx::query("SELECT * FROM catalog.deals")
            .fetch_all(&orders)
            .await
            .is_err()
    );
    sqlx::query("SELECT * FROM orders.orders")
        .fetch_all(&orders)
        .await
        .expect("the orders role reads its own schema");
    let catalog = env.service_pool(Service::Catalog).await;
    assert!(
        sqlx::query("SELECT * FROM orders.orders")
            .fetch_all(&catalog)
            .await
            .is_err()
    );
    assert!(
        sqlx::query("SELECT * FROM auth.users")
            .fetch_all(&catalog)
            .await
            .is_err()
    );
    let auth = env.service_pool(Service::Auth).await;
    assert!(
        sqlx::query("SELECT * FROM catalog.deals")
            .fetch_all(&auth)
            .await
            .is_err()
    );
    orders.close().await;
    catalog.close().await;
    auth.close().await;
    env.finish().await;
}
