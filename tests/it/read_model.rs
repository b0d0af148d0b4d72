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
