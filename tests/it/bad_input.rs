//! Acceptance: bad input is a clear 4xx problem+json and writes nothing
//! anywhere (no row, no reservation, no message on the log).

use crate::harness::{Options, TestEnv};
use flashdeal_schemas::{DealId, topics};
use jsonwebtoken::{Algorithm, EncodingKey, Header, encode};
use serde_json::{Value, json};

/// A raw request to `POST /orders`.
struct Case {
    name: &'static str,
    token: Option<String>,
    content_type: &'static str,
    body: String,
    key: Option<&'static str>,
    status: u16,
    problem: &'static str,
}

fn b64(s: &str) -> String {
    // base64url without padding for a forged JWT header/payload.
    const T: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    let mut out = String::new();
    for chunk in s.as_bytes().chunks(3) {
        let n = chunk
            .iter()
            .enumerate()
            .fold(0u32, |acc, (i, &x)| acc | (u32::from(x) << (16 - 8 * i)));
        for i in 0..=chunk.len() {
            out.push(T[((n >> (18 - 6 * i)) & 63) as usize] as char);
        }
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn bad_orders_are_refused_with_problem_json_and_leave_no_trace() {
    let env = TestEnv::start(Options::default()).await;
    let deal = env.create_deal(50, 5).await;
    let (user, token) = env.customer_token();
    let secret = std::fs::read_to_string(env.data_dir.join("jwt-secret")).unwrap();
    let now = jsonwebtoken::get_current_timestamp();
    let claims = |exp: u64| {
        json!({ "sub": user, "role": "customer", "iss": "flashdeal", "aud": "flashdeal-api",
                "iat": now - 7200, "exp": exp, "jti": uuid::Uuid::now_v7() })
    };
    let mut header = Header::new(Algorithm::HS256);
    header.kid = Some("k1".to_owned());
    let expired = encode(
        &header,
        &claims(now - 3600),
        &EncodingKey::from_secret(secret.trim().as_bytes()),
    )
    .unwrap();
    let forged = encode(
        &header,
        &claims(now + 3600),
        &EncodingKey::from_secret(&[42; 32]),
    )
    .unwrap();
    let alg_none = format!(
        "{}.{}.",
        b64(r#"{"alg":"none","typ":"JWT","kid":"k1"}"#),
        b64(&claims(now + 3600).to_string())
    );
    let wrong_aud = {
        let mut c = claims(now + 3600);
        c["aud"] = json!("someone-else");
        encode(
            &header,
            &c,
            &EncodingKey::from_secret(secret.trim().as_bytes()),
        )
        .unwrap()
    };
    let good = |qty: &str| format!(r#"{{"deal_id":"{deal}","quantity":{qty}}}"#);
    let t = || Some(token.clone());
    let json_ct = "application/json";
    let cases = vec![
        Case {
            name: "malformed JSON",
            token: t(),
            content_type: json_ct,
            body: r#"{"deal_id": "#.to_owned(),
            key: None,
            status: 422,
            problem: "malformed-request",
        },
        Case {
            name: "quantity 0",
            token: t(),
            content_type: json_ct,
            body: good("0"),
            key: None,
            status: 422,
            problem: "validation",
        },
        Case {
            name: "quantity negative",
            token: t(),
            content_type: json_ct,
            body: good("-3"),
            key: None,
            status: 422,
            problem: "validation",
        },
        Case {
            name: "quantity huge",
            token: t(),
            content_type: json_ct,
            body: good("99999999999999999999"),
            key: None,
            status: 422,
            problem: "validation",
        },
        Case {
            name: "quantity over the per-order maximum",
            token: t(),
            content_type: json_ct,
            body: good("1001"),
            key: None,
            status: 422,
            problem: "validation",
        },
        Case {
            name: "quantity fractional",
            token: t(),
            content_type: json_ct,
            body: good("1.5"),
            key: None,
            status: 422,
            problem: "validation",
        },
        Case {
            name: "deal id not a uuid",
            token: t(),
            content_type: json_ct,
            body: r#"{"deal_id":"abc","quantity":1}"#.to_owned(),
            key: None,
            status: 422,
            problem: "validation",
        },
        Case {
            name: "missing quantity",
            token: t(),
            content_type: json_ct,
            body: format!(r#"{{"deal_id":"{deal}"}}"#),
            key: None,
            status: 422,
            problem: "validation",
        },
        Case {
            name: "unknown field",
            token: t(),
            content_type: json_ct,
            body: format!(r#"{{"deal_id":"{deal}","quantity":1,"price":0}}"#),
            key: None,
            status: 422,
            problem: "validation",
        },
        Case {
            name: "unknown deal",
            token: t(),
            content_type: json_ct,
            body: format!(r#"{{"deal_id":"{}","quantity":1}}"#, DealId::new_v7()),
            key: None,
            status: 404,
            problem: "not-found",
        },
        Case {
            name: "not JSON content type",
            token: t(),
            content_type: "text/plain",
            body: good("1"),
            key: None,
            status: 415,
            problem: "malformed-request",
        },
        Case {
            name: "oversized body",
            token: t(),
            content_type: json_ct,
            body: format!(
                r#"{{"deal_id":"{deal}","quantity":1,"pad":"{}"}}"#,
                "x".repeat(64 * 1024)
            ),
            key: None,
            status: 413,
            problem: "payload-too-large",
        },
        Case {
            name: "bad idempotency key",
            token: t(),
            content_type: json_ct,
            body: good("1"),
            key: Some("has spaces"),
            status: 422,
            problem: "validation",
        },
        Case {
            name: "no token",
            token: None,
            content_type: json_ct,
            body: good("1"),
            key: None,
            status: 401,
            problem: "unauthenticated",
        },
        Case {
            name: "expired token",
            token: Some(expired),
            content_type: json_ct,
            body: good("1"),
            key: None,
            status: 401,
            problem: "unauthenticated",
        },
        Case {
            name: "forged token",
            token: Some(forged),
            content_type: json_ct,
            body: good("1"),
            key: None,
            status: 401,
            problem: "unauthenticated",
        },
        Case {
            name: "alg none token",
            token: Some(alg_none),
            content_type: json_ct,
            body: good("1"),
            key: None,
            status: 401,
            problem: "unauthenticated",
        },
        Case {
            name: "wrong audience",
            token: Some(wrong_aud),
            content_type: json_ct,
            body: good("1"),
            key: None,
            status: 401,
            problem: "unauthenticated",
        },
        Case {
            name: "garbage token",
            token: Some("not.a.jwt".to_owned()),
            content_type: json_ct,
            body: good("1"),
            key: None,
            status: 401,
            problem: "unauthenticated",
        },
    ];

    for case in &cases {
        let mut req = env
            .http
            .post(env.url("/orders"))
            .header("content-type", case.content_type)
            .body(case.body.clone());
        if let Some(t) = &case.token {
            req = req.bearer_auth(t);
        }
        if let Some(k) = case.key {
            req = req.header("Idempotency-Key", k);
        }
        let res = req.send().await.unwrap();
        assert_eq!(res.status().as_u16(), case.status, "{}", case.name);
        assert_eq!(
            res.headers()["content-type"].to_str().unwrap(),
            "application/problem+json",
            "{}",
            case.name
        );
        let body: Value = res.json().await.unwrap();
        assert!(
            body["type"].as_str().unwrap().ends_with(case.problem),
            "{}: {body}",
            case.name
        );
        assert_eq!(body["status"], case.status, "{}", case.name);
        assert!(
            !body["detail"].as_str().unwrap().is_empty(),
            "{}",
            case.name
        );
    }

    // Nothing written anywhere.
    assert_eq!(env.redis_stock(deal).await, 50, "stock changed");
    assert_eq!(env.redis_pending(deal).await, 0, "a reservation was made");
    let rows: i64 = sqlx::query_scalar("SELECT count(*) FROM orders.orders")
        .fetch_one(&env.pg)
        .await
        .unwrap();
    assert_eq!(rows, 0, "an order row was written");
    assert_eq!(
        env.topic_size(topics::ORDERS_INTENTS),
        0,
        "an intent reached the log"
    );

    // The auth and admin endpoints validate the same way.
    let signup = |body: Value| env.http.post(env.url("/auth/signup")).json(&body).send();
    assert_eq!(
        signup(json!({"email": "not-an-email", "password": "long enough"}))
            .await
            .unwrap()
            .status(),
        422
    );
    assert_eq!(
        signup(json!({"email": "a@b.co", "password": "short"}))
            .await
            .unwrap()
            .status(),
        422
    );
    let bad_deal = env
        .http
        .post(env.url("/admin/deals"))
        .bearer_auth(env.admin_token())
        .json(
            &json!({"product_name": "x", "price_cents": 100, "stock": 5, "per_user_limit": 1,
                      "ends_at": (chrono::Utc::now() - chrono::Duration::hours(1)).to_rfc3339()}),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(bad_deal.status(), 422);
    let users: i64 = sqlx::query_scalar("SELECT count(*) FROM auth.users")
        .fetch_one(&env.pg)
        .await
        .unwrap();
    let deals: i64 = sqlx::query_scalar("SELECT count(*) FROM catalog.deals")
        .fetch_one(&env.pg)
        .await
        .unwrap();
    assert_eq!(
        (users, deals),
        (0, 1),
        "a refused request wrote to the auth or catalog store"
    );
    env.finish().await;
}
