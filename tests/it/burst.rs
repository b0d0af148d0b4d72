//! Acceptance: a deal with stock 100 and per-user limit 2; 300 users send
//! 1,000 concurrent orders, some repeating an Idempotency-Key. Checks I1,
//! I2, I3, I4 and I6 at quiescence.

use crate::harness::{Options, TestEnv, eventually};
use futures::{StreamExt, stream};
use std::{
    collections::{HashMap, HashSet},
    time::Duration,
};

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_thousand_concurrent_orders_sell_exactly_the_stock() {
    let env = TestEnv::start(Options::default()).await;
    let deal = env.create_deal(100, 2).await;
    let users: Vec<_> = (0..300).map(|_| env.customer_token()).collect();

    // 1,000 requests in four rounds: request i belongs to user i % 300 and
    // asks for 1 or 2 units. Round 0 sends a key per request; round 1
    // repeats round 0's key (same user, same quantity: a client retry) for
    // even users; round 2 uses fresh keys; round 3 none.
    let requests: Vec<(usize, i64, Option<String>)> = (0..1000)
        .map(|i| {
            let user = i % 300;
            let qty = if i % 3 == 0 { 2 } else { 1 };
            let key = match i / 300 {
                0 => Some(format!("k-{user}-0")),
                1 if user % 2 == 0 => Some(format!("k-{user}-0")),
                2 => Some(format!("k-{user}-2")),
                _ => None,
            };
            (user, qty, key)
        })
        .collect();
    let repeats = requests
        .iter()
        .filter(|(u, _, k)| k.as_deref() == Some(&format!("k-{u}-0")))
        .count()
        - 300;
    assert_eq!(repeats, 150);

    let results: Vec<_> = stream::iter(requests.iter().cloned())
        .map(|(user, qty, key)| {
            let env = &env;
            let token = users[user].1.clone();
            async move {
                let (status, body) = env.order(&token, deal, qty, key.as_deref()).await;
                (user, qty, key, status, body)
            }
        })
        .buffer_unordered(200)
        .collect()
        .await;

    let mut accepted: HashMap<String, (usize, i64)> = HashMap::new();
    let mut by_key: HashMap<(usize, String), HashSet<String>> = HashMap::new();
    let mut statuses: HashMap<u16, usize> = HashMap::new();
    for (user, qty, key, status, body) in &results {
        *statuses.entry(*status).or_default() += 1;
        match status {
            202 => {
                let id = body["order_id"].as_str().expect("order_id").to_owned();
                assert_eq!(body["status"], "accepted");
                if let Some(k) = key {
                    by_key
                        .entry((*user, k.clone()))
                        .or_default()
                        .insert(id.clone());
                }
                accepted.entry(id).or_insert((*user, *qty));
            }
            409 => {
                let t = body["type"].as_str().unwrap_or_default();
                assert!(
                    t.ends_with("/sold-out") || t.ends_with("/per-user-limit"),
                    "{body}"
                );
            }
            other => panic!("unexpected status {other}: {body}"),
        }
    }
    eprintln!(
        "statuses: {statuses:?}, distinct accepted orders: {}",
        accepted.len()
    );

    // I3: a repeated key maps to exactly one order.
    for ((user, key), ids) in &by_key {
        assert_eq!(ids.len(), 1, "user {user} key {key} got orders {ids:?}");
    }
    // I1 at the gateway: accepted units are exactly the stock (demand > stock).
    let accepted_units: i64 = accepted.values().map(|(_, q)| q).sum();
    assert_eq!(accepted_units, 100, "accepted units");

    // I2: every 202 becomes a confirmed row.
    eventually(
        "every accepted order to be confirmed",
        Duration::from_secs(60),
        || async { (env.confirmed_units(deal).await == 100).then_some(()) },
    )
    .await;
    let rows: Vec<(uuid::Uuid, uuid::Uuid, i32, String)> = sqlx::query_as(
        "SELECT order_id, user_id, quantity, status FROM orders.orders WHERE deal_id = $1",
    )
    .bind(deal.0)
    .fetch_all(&env.pg)
    .await
    .expect("rows");
    let row_ids: HashSet<String> = rows.iter().map(|r| r.0.to_string()).collect();
    let accepted_ids: HashSet<String> = accepted.keys().cloned().collect();
    assert_eq!(row_ids, accepted_ids, "rows and 202s differ");
    assert!(rows.iter().all(|r| r.3 == "confirmed"));

    // I6: nobody holds more than the per-user limit.
    let mut per_user: HashMap<uuid::Uuid, i32> = HashMap::new();
    for r in &rows {
        *per_user.entry(r.1).or_default() += r.2;
    }
    assert!(
        per_user.values().all(|&u| u <= 2),
        "a user exceeded the limit: {per_user:?}"
    );

    // I4: stock = remaining + confirmed, nothing pending.
    assert_eq!(env.redis_stock(deal).await, 0);
    eventually(
        "pending reservations to drain",
        Duration::from_secs(30),
        || async { (env.redis_pending(deal).await == 0).then_some(()) },
    )
    .await;

    // The status endpoint agrees for a sample of orders.
    for (id, (user, _)) in accepted.iter().take(5) {
        let token = &users[*user].1;
        let status = eventually("projected status", Duration::from_secs(30), || async {
            let v = env.get_json(&format!("/orders/{id}"), token).await?;
            (v["status"] == "confirmed").then_some(v)
        })
        .await;
        assert_eq!(status["order_id"], id.as_str());
    }
    env.finish().await;
}
