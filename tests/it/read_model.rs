//! The order-writer's read model of the catalog (`orders.deals`) and the
//! back-propagation of sales to `catalog.deals.sold_count`, both fed by the
//! log only (issue 4, items 4 and 5).

use crate::harness::{Options, TestEnv, eventually};
use flashdeal_schemas::redis_keys::DealKeys;
use std::time::Duration;

async fn order_status(env: &TestEnv, token: &str, id: &str) -> Option<String> {
    let v = env.get_json(&format!("/orders/{id}"), token).await?;
    v["status"].as_str().map(str::to_owned)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn an_intent_contradicting_the_deal_is_rejected_and_sales_reach_the_catalog() {
    let env = TestEnv::start(Options::default()).await;
    let deal = env.create_deal(10, 2).await;
    eventually(
        "the read model to know the deal",
        Duration::from_secs(30),
        || async {
            sqlx::query_scalar::<_, i64>("SELECT price_cents FROM orders.deals WHERE deal_id = $1")
                .bind(deal.0)
                .fetch_optional(&env.pg)
                .await
                .expect("read model")
                .filter(|p| *p == 1999)
        },
    )
    .await;

    // A corrupted hot path: Redis says the deal costs 1 cent. The gateway
    // reserves at that price; the order-writer knows better.
    let mut r = env.redis.clone();
    redis::cmd("HSET")
        .arg(DealKeys::new(deal).meta)
        .arg("price_cents")
        .arg(1)
        .query_async::<()>(&mut r)
        .await
        .expect("HSET");
    let (_, token) = env.customer_token();
    let (status, body) = env.order(&token, deal, 2, None).await;
    assert_eq!(status, 202, "{body}");
    let bad = body["order_id"].as_str().expect("order id").to_owned();
    eventually(
        "the contradicting order to be rejected",
        Duration::from_secs(30),
        || async {
            (order_status(&env, &token, &bad).await.as_deref() == Some("rejected")).then_some(())
        },
    )
    .await;
    eventually("its stock to return", Duration::from_secs(30), || async {
        (env.redis_stock(deal).await == 10).then_some(())
    })
    .await;
    assert_eq!(
        env.confirmed_units(deal).await,
        0,
        "a rejected intent was written"
    );

    // Restored, an order is confirmed and its units reach the catalog.
    redis::cmd("HSET")
        .arg(DealKeys::new(deal).meta)
        .arg("price_cents")
        .arg(1999)
        .query_async::<()>(&mut r)
        .await
        .expect("HSET");
    let (status, body) = env.order(&token, deal, 2, None).await;
    assert_eq!(status, 202, "{body}");
    eventually(
        "sold_count to follow the confirmation",
        Duration::from_secs(30),
        || async {
            let sold: i32 =
                sqlx::query_scalar("SELECT sold_count FROM catalog.deals WHERE deal_id = $1")
                    .bind(deal.0)
                    .fetch_one(&env.pg)
                    .await
                    .expect("sold_count");
            (sold == 2).then_some(())
        },
    )
    .await;
    assert_eq!(env.confirmed_units(deal).await, 2);
    env.finish().await;
}

/// A redelivered (or replayed) intent that the read model now contradicts
/// keeps the decision its order already has: no `OrderRejected` for a
/// confirmed order, no status flip.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_decided_order_is_not_rejected_when_its_intent_comes_again() {
    use flashdeal_producers::publisher::Outgoing;
    use flashdeal_schemas::{IntentEvent, OrderId, StatusEvent, topics};
    use rdkafka::Message;

    let env = TestEnv::start(Options::default()).await;
    let deal = env.create_deal(10, 2).await;
    let (_, token) = env.customer_token();
    let (status, body) = env.order(&token, deal, 1, None).await;
    assert_eq!(status, 202, "{body}");
    let id: OrderId = body["order_id"]
        .as_str()
        .and_then(|s| s.parse().ok())
        .expect("order id");
    eventually(
        "the order to be confirmed",
        Duration::from_secs(30),
        || async {
            (order_status(&env, &token, &id.to_string()).await.as_deref() == Some("confirmed"))
                .then_some(())
        },
    )
    .await;
    // The same intent again, but at a price the deal never had.
    let intents = env.read_topic(topics::ORDERS_INTENTS).await;
    let mut placed = intents
        .iter()
        .find_map(|m| match IntentEvent::decode(m.payload()?) {
            Ok(IntentEvent::Placed(p)) if p.order_id == id => Some(p),
            _ => None,
        })
        .expect("the intent on the log");
    placed.unit_price_cents = 1;
    let key = id.0.into_bytes();
    let publisher = flashdeal::roles::publisher(&env.config.kafka(), "test").expect("publisher");
    let (partition, offset) = publisher
        .publish(Outgoing {
            topic: topics::ORDERS_INTENTS,
            key: &key,
            event_id: placed.event_id,
            event: &placed,
        })
        .await
        .expect("produce");
    env.wait_committed(
        flashdeal_consumers::order_writer::GROUP,
        topics::ORDERS_INTENTS,
        partition,
        offset,
    )
    .await;
    let rejected = env
        .read_topic(topics::ORDERS_STATUS)
        .await
        .iter()
        .filter(|m| {
            matches!(m.payload().map(StatusEvent::decode),
                Some(Ok(StatusEvent::Rejected(r))) if r.order_id == id)
        })
        .count();
    assert_eq!(rejected, 0, "a confirmed order was rejected on redelivery");
    assert_eq!(
        order_status(&env, &token, &id.to_string()).await.as_deref(),
        Some("confirmed")
    );
    assert_eq!(env.confirmed_units(deal).await, 1);
    env.finish().await;
}
