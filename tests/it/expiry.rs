//! Reservation expiry through the log (ARCHITECTURE §5): a reservation that
//! never reached the log expires, its stock returns exactly once, and for
//! one order the first of intent and expiry decides.

use crate::harness::{Options, TestEnv, eventually};
use flashdeal_consumers::order_writer::GROUP;
use flashdeal_gateway::orders::reserve::{Reservation, ReserveRequest, reserve};
use flashdeal_producers::publisher::Outgoing;
use flashdeal_schemas::{
    IdempotencyKey, OrderExpired, OrderId, OrderPlaced, Quantity, events::now_millis,
    redis_keys::DealKeys, topics,
};
use serde_json::Value;
use std::time::Duration;
use uuid::Uuid;

async fn row_status(env: &TestEnv, order: OrderId) -> Option<String> {
    sqlx::query_scalar("SELECT status FROM orders.orders WHERE order_id = $1")
        .bind(order.0)
        .fetch_optional(&env.pg)
        .await
        .expect("status")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn an_unlogged_reservation_expires_and_the_first_of_intent_and_expiry_wins() {
    let env = TestEnv::start(Options {
        reconcile_interval_ms: Some(100),
        ..Options::default()
    })
    .await;
    let deal = env.create_deal(10, 3).await;
    let (user, token) = env.customer_token();
    let publisher = flashdeal::roles::publisher(&env.config.kafka(), "test").expect("publisher");

    // A gateway that died between reserving and producing: the real
    // reserve.lua, with an expiry already past.
    let key = IdempotencyKey::try_from("crashed-1".to_owned()).unwrap();
    let order = OrderId::new_v7();
    let now = now_millis();
    let mut redis = env.redis.clone();
    let reserved = reserve(
        &mut redis,
        &ReserveRequest {
            deal,
            user,
            quantity: Quantity::try_from(2).unwrap(),
            order,
            now_ms: now,
            expires_at_ms: now - 1,
            idempotency_key: Some(&key),
            idempotency_ttl_secs: 60,
        },
    )
    .await
    .unwrap();
    assert!(
        matches!(reserved, Reservation::Reserved { .. }),
        "{reserved:?}"
    );
    assert_eq!(env.redis_stock(deal).await, 8);

    // The reconciler expires it; the writer records it; the projector returns the stock.
    eventually(
        "the order to be recorded as expired",
        Duration::from_secs(30),
        || async { (row_status(&env, order).await.as_deref() == Some("expired")).then_some(()) },
    )
    .await;
    eventually("the stock to return", Duration::from_secs(30), || async {
        (env.redis_stock(deal).await == 10 && env.redis_pending(deal).await == 0).then_some(())
    })
    .await;
    let held: Option<i64> = redis::cmd("HGET")
        .arg(DealKeys::new(deal).users)
        .arg(user.to_string())
        .query_async(&mut redis)
        .await
        .unwrap();
    assert_eq!(held, None, "the user's units were not released");
    let v: Value = env
        .http
        .get(env.url(&format!("/orders/{order}")))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(v["status"], "expired");

    // The intent arriving late (after its expiry) changes nothing.
    let late = OrderPlaced {
        event_id: Uuid::now_v7(),
        order_id: order,
        user_id: user,
        deal_id: deal,
        quantity: 2,
        unit_price_cents: 1999,
        idempotency_key: Some(key.as_str().to_owned()),
        reserved_at: now,
        expires_at: now - 1,
    };
    let k = order.0.into_bytes();
    let (partition, offset) = publisher
        .publish(Outgoing {
            topic: topics::ORDERS_INTENTS,
            key: &k,
            event_id: late.event_id,
            event: &late,
        })
        .await
        .unwrap();
    env.wait_committed(GROUP, topics::ORDERS_INTENTS, partition, offset)
        .await;
    assert_eq!(row_status(&env, order).await.as_deref(), Some("expired"));

    // An order confirmed first is not expired by a later expiry.
    let (status, body) = env.order(&token, deal, 1, None).await;
    assert_eq!(status, 202, "{body}");
    let confirmed: OrderId = body["order_id"].as_str().unwrap().parse().unwrap();
    eventually(
        "the order to be confirmed",
        Duration::from_secs(30),
        || async {
            (row_status(&env, confirmed).await.as_deref() == Some("confirmed")).then_some(())
        },
    )
    .await;
    let expiry = OrderExpired {
        event_id: Uuid::now_v7(),
        order_id: confirmed,
        user_id: user,
        deal_id: deal,
        quantity: 1,
        unit_price_cents: 1999,
        reserved_at: now,
        expires_at: now,
        occurred_at: now_millis(),
    };
    let k = confirmed.0.into_bytes();
    let (partition, offset) = publisher
        .publish(Outgoing {
            topic: topics::ORDERS_INTENTS,
            key: &k,
            event_id: expiry.event_id,
            event: &expiry,
        })
        .await
        .unwrap();
    env.wait_committed(GROUP, topics::ORDERS_INTENTS, partition, offset)
        .await;
    assert_eq!(
        row_status(&env, confirmed).await.as_deref(),
        Some("confirmed")
    );
    eventually("nothing pending", Duration::from_secs(30), || async {
        (env.redis_pending(deal).await == 0).then_some(())
    })
    .await;
    // I4: 10 = 9 remaining + 1 confirmed; the expired order's 2 came back once.
    assert_eq!(
        env.redis_stock(deal).await + env.confirmed_units(deal).await,
        10
    );
    assert_eq!(env.redis_stock(deal).await, 9);
    env.finish().await;
}
