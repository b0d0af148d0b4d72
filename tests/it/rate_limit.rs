//! Per-user rate limiting: a user who spends their burst gets 429 with
//! `Retry-After` (and nothing reserved), while another user's orders go
//! through.

use crate::harness::{Options, TestEnv};
use flashdeal::cli::RateLimitArgs;
use serde_json::{Value, json};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_user_over_their_burst_gets_429_and_others_are_unaffected() {
    let env = TestEnv::start(Options {
        rate_limit: RateLimitArgs {
            // One token per 100 s: the bucket does not refill during the test.
            rate_limit_per_user_rps: 0.01,
            rate_limit_per_user_burst: 3,
            ..RateLimitArgs::DEFAULT
        },
        ..Options::default()
    })
    .await;
    let deal = env.create_deal(10, 5).await;
    let (_, alice) = env.customer_token();
    let (_, bob) = env.customer_token();

    for _ in 0..3 {
        let (status, body) = env.order(&alice, deal, 1, None).await;
        assert_eq!(status, 202, "{body}");
    }
    let res = env
        .http
        .post(env.url("/orders"))
        .bearer_auth(&alice)
        .json(&json!({ "deal_id": deal, "quantity": 1 }))
        .send()
        .await
        .expect("POST /orders");
    assert_eq!(res.status().as_u16(), 429);
    let retry_after: u64 = res
        .headers()
        .get("retry-after")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse().ok())
        .expect("Retry-After in whole seconds");
    assert!((1..=100).contains(&retry_after), "{retry_after}");
    assert_eq!(
        res.headers()["content-type"].to_str().unwrap(),
        "application/problem+json"
    );
    let body: Value = res.json().await.expect("problem body");
    assert_eq!(body["status"], 429);
    assert!(
        body["type"].as_str().unwrap().ends_with("/rate-limited"),
        "{body}"
    );
    // The limit is the user's, whatever the route.
    let status = env
        .http
        .get(env.url(&format!("/orders/{}", uuid::Uuid::now_v7())))
        .bearer_auth(&alice)
        .send()
        .await
        .expect("GET /orders/{id}")
        .status();
    assert_eq!(status.as_u16(), 429);

    // Another user from the same address is not affected.
    let (status, body) = env.order(&bob, deal, 1, None).await;
    assert_eq!(status, 202, "{body}");
    // The refused order reserved nothing: 3 units for alice, 1 for bob.
    assert_eq!(env.redis_stock(deal).await, 6);
    env.finish().await;
}
