//! One user journey over HTTP: signup, login, list deals, order, poll the
//! status, and the edges a client meets on the way.

use crate::harness::{Options, TestEnv, eventually};
use serde_json::{Value, json};
use std::time::Duration;

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn signup_login_order_and_poll_until_confirmed() {
    let env = TestEnv::start(Options::default()).await;
    let deal = env.create_deal(10, 2).await;
    let creds = json!({ "email": "Ada@Example.com", "password": "correct horse battery" });

    let res = env
        .http
        .post(env.url("/auth/signup"))
        .json(&creds)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 201);
    let again = env
        .http
        .post(env.url("/auth/signup"))
        .json(&creds)
        .send()
        .await
        .unwrap();
    assert_eq!(again.status(), 409, "second signup with the same email");

    let wrong = json!({ "email": "ada@example.com", "password": "wrong password" });
    let res = env
        .http
        .post(env.url("/auth/login"))
        .json(&wrong)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 401);
    let res = env
        .http
        .post(env.url("/auth/login"))
        .json(&creds)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    let token = res.json::<Value>().await.unwrap()["access_token"]
        .as_str()
        .unwrap()
        .to_owned();

    let deals: Value = env
        .http
        .get(env.url("/deals"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let listed = deals
        .as_array()
        .unwrap()
        .iter()
        .find(|d| d["deal_id"] == deal.to_string())
        .expect("deal listed");
    assert_eq!(listed["status"], "active");
    assert_eq!(listed["remaining"], 10);

    // A customer cannot create deals.
    let res = env
        .http
        .post(env.url("/admin/deals"))
        .bearer_auth(&token)
        .json(&json!({}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 403);

    let res = env
        .http
        .post(env.url("/orders"))
        .bearer_auth(&token)
        .header("Idempotency-Key", "journey-1")
        .json(&json!({ "deal_id": deal, "quantity": 2 }))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 202);
    let location = res.headers()["location"].to_str().unwrap().to_owned();
    let order_id = res.json::<Value>().await.unwrap()["order_id"]
        .as_str()
        .unwrap()
        .to_owned();
    assert_eq!(location, format!("/orders/{order_id}"));

    let confirmed = eventually(
        "the order to be confirmed",
        Duration::from_secs(30),
        || async {
            let v = env.get_json(&location, &token).await?;
            (v["status"] == "confirmed").then_some(v)
        },
    )
    .await;
    assert_eq!(confirmed["quantity"], 2);

    // The retry with the same key answers the same order; the limit holds.
    let (status, body) = env.order(&token, deal, 2, Some("journey-1")).await;
    assert_eq!(
        (status, body["order_id"].as_str()),
        (202, Some(order_id.as_str()))
    );
    let (status, body) = env.order(&token, deal, 1, None).await;
    assert_eq!(status, 409);
    assert!(body["type"].as_str().unwrap().ends_with("/per-user-limit"));

    // Someone else cannot see it; the deal shows what is left.
    let (_, other) = env.customer_token();
    let res = env
        .http
        .get(env.url(&location))
        .bearer_auth(&other)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 404);
    let d: Value = env
        .http
        .get(env.url(&format!("/deals/{deal}")))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(d["remaining"], 8);

    // Once Redis has forgotten the status, PostgreSQL answers.
    let mut r = env.redis.clone();
    let _: () = redis::cmd("DEL")
        .arg(format!("order:{order_id}"))
        .query_async(&mut r)
        .await
        .unwrap();
    let v: Value = env
        .http
        .get(env.url(&location))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(
        (v["status"].as_str(), v["unit_price_cents"].as_i64()),
        (Some("confirmed"), Some(1999))
    );
    env.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_deal_outside_its_window_refuses_orders_with_its_own_type() {
    let env = TestEnv::start(Options::default()).await;
    let later = env
        .create_deal_with(json!({
            "product_name": "Tomorrow's deal",
            "price_cents": 500,
            "stock": 5,
            "per_user_limit": 1,
            "starts_at": (chrono::Utc::now() + chrono::Duration::hours(1)).to_rfc3339(),
            "ends_at": (chrono::Utc::now() + chrono::Duration::hours(2)).to_rfc3339(),
        }))
        .await;
    let (_, token) = env.customer_token();
    let (status, body) = env.order(&token, later, 1, None).await;
    assert_eq!(status, 409);
    assert!(
        body["type"].as_str().unwrap().ends_with("/deal-not-active"),
        "{body}"
    );
    assert_eq!(env.redis_stock(later).await, 5);
    env.finish().await;
}
