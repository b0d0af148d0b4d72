//! Auth changes reach every gateway through `auth.events` (ARCHITECTURE §1):
//! a block, a password change and a key rotation made on gateway A are
//! enforced by gateway B, which learns them only from the log, within 1 s.

use crate::harness::{Options, TestEnv};
use flashdeal::{cli::GatewayArgs, roles};
use flashdeal_schemas::DealId;
use serde_json::{Value, json};
use std::time::{Duration, Instant};
use tokio::{net::TcpListener, task::JoinHandle};
use tokio_util::sync::CancellationToken;

/// How soon a change must be enforced everywhere (issue 4, acceptance).
const WITHIN: Duration = Duration::from_secs(1);

/// A second gateway on the same stores and log: it sees A's changes only
/// through `auth.events`.
struct OtherGateway {
    base: String,
    stop: CancellationToken,
    task: JoinHandle<std::io::Result<()>>,
}

impl OtherGateway {
    async fn start(env: &TestEnv) -> Self {
        let args = GatewayArgs {
            http_addr: "127.0.0.1:0".parse().expect("addr"),
            reservation_ttl_secs: 600,
            idempotency_ttl_secs: 3600,
            token_ttl_secs: 3600,
            rate_limit: Default::default(),
        };
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let app = roles::build_gateway(&env.config, &args, listener)
            .await
            .expect("second gateway");
        let base = format!("http://{}", app.local_addr().expect("addr"));
        let stop = CancellationToken::new();
        let task = tokio::spawn(app.run_until_stopped(stop.clone()));
        Self { base, stop, task }
    }

    async fn finish(self) {
        self.stop.cancel();
        tokio::time::timeout(Duration::from_secs(20), self.task)
            .await
            .expect("second gateway stops")
            .expect("join")
            .expect("serve");
    }
}

async fn post(env: &TestEnv, url: String, token: Option<&str>, body: Value) -> (u16, Value) {
    let mut req = env.http.post(url).json(&body);
    if let Some(t) = token {
        req = req.bearer_auth(t);
    }
    let res = req.send().await.expect("request");
    let status = res.status().as_u16();
    if status >= 400 {
        assert_eq!(
            res.headers()
                .get("content-type")
                .and_then(|v| v.to_str().ok()),
            Some("application/problem+json"),
            "errors are problem+json"
        );
    }
    (status, res.json().await.unwrap_or(Value::Null))
}

/// `POST /orders` on the gateway at `base`; a fixed idempotency key makes
/// polling reserve one unit at most.
async fn order(env: &TestEnv, base: &str, token: &str, deal: DealId, key: &str) -> u16 {
    let res = env
        .http
        .post(format!("{base}/orders"))
        .bearer_auth(token)
        .header("Idempotency-Key", key)
        .json(&json!({ "deal_id": deal, "quantity": 1 }))
        .send()
        .await
        .expect("POST /orders");
    let status = res.status().as_u16();
    if status >= 400 {
        assert_eq!(
            res.headers()
                .get("content-type")
                .and_then(|v| v.to_str().ok()),
            Some("application/problem+json"),
            "errors are problem+json"
        );
    }
    status
}

/// Sends `POST /orders` back to back until it answers `want`, failing if
/// that takes longer than [`WITHIN`] from `since`.
async fn order_until(
    env: &TestEnv,
    base: &str,
    token: &str,
    deal: DealId,
    key: &str,
    want: u16,
    since: Instant,
) -> Duration {
    loop {
        let got = order(env, base, token, deal, key).await;
        if got == want {
            return since.elapsed();
        }
        assert!(
            since.elapsed() < WITHIN,
            "{base}: POST /orders still answers {got}, not {want}, {:?} after the change",
            since.elapsed()
        );
        tokio::task::yield_now().await;
    }
}

async fn signup_and_login(env: &TestEnv, email: &str, password: &str) -> (String, String) {
    let creds = json!({ "email": email, "password": password });
    let (status, body) = post(env, env.url("/auth/signup"), None, creds.clone()).await;
    assert_eq!(status, 201, "{body}");
    let user_id = body["user_id"].as_str().expect("user_id").to_owned();
    (user_id, login(env, email, password).await.expect("login"))
}

async fn login(env: &TestEnv, email: &str, password: &str) -> Result<String, u16> {
    let creds = json!({ "email": email, "password": password });
    match post(env, env.url("/auth/login"), None, creds).await {
        (200, body) => Ok(body["access_token"].as_str().expect("token").to_owned()),
        (status, _) => Err(status),
    }
}

fn email() -> String {
    format!("u{}@example.com", uuid::Uuid::now_v7().simple())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_blocked_user_cannot_order_on_any_gateway_within_a_second() {
    let env = TestEnv::start(Options::default()).await;
    let other = OtherGateway::start(&env).await;
    let deal = env.create_deal(1000, 100).await;
    let email = email();
    let (user, token) = signup_and_login(&env, &email, "correct horse").await;
    for (name, base) in [("a", &env.base), ("b", &other.base)] {
        assert_eq!(
            order(&env, base, &token, deal, &format!("before-{name}")).await,
            202
        );
    }

    let admin = env.admin_token();
    let (status, body) = post(
        &env,
        env.url(&format!("/admin/users/{user}/block")),
        Some(&admin),
        json!({}),
    )
    .await;
    let blocked_at = Instant::now();
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        (body["status"].as_str(), body["changed"].as_bool()),
        (Some("blocked"), Some(true))
    );
    // A, which made the change, refuses at once; B once the event arrives.
    let on_a = order_until(&env, &env.base, &token, deal, "blocked", 403, blocked_at).await;
    let on_b = order_until(&env, &other.base, &token, deal, "blocked", 403, blocked_at).await;
    println!("blocked: 403 on gateway A after {on_a:?}, on B after {on_b:?}");
    assert_eq!(
        login(&env, &email, "correct horse").await,
        Err(403),
        "a blocked user cannot log in"
    );

    // Blocking again changes nothing and records no event.
    let (status, body) = post(
        &env,
        env.url(&format!("/admin/users/{user}/block")),
        Some(&admin),
        json!({}),
    )
    .await;
    assert_eq!(
        (status, body["changed"].as_bool()),
        (200, Some(false)),
        "{body}"
    );
    let unknown = uuid::Uuid::now_v7();
    let (status, _) = post(
        &env,
        env.url(&format!("/admin/users/{unknown}/block")),
        Some(&admin),
        json!({}),
    )
    .await;
    assert_eq!(status, 404);
    let (customer, customer_token) = env.customer_token();
    let (status, _) = post(
        &env,
        env.url(&format!("/admin/users/{customer}/block")),
        Some(&customer_token),
        json!({}),
    )
    .await;
    assert_eq!(status, 403, "blocking needs the admin role");

    let (status, body) = post(
        &env,
        env.url(&format!("/admin/users/{user}/unblock")),
        Some(&admin),
        json!({}),
    )
    .await;
    let unblocked_at = Instant::now();
    assert_eq!(
        (status, body["status"].as_str()),
        (200, Some("active")),
        "{body}"
    );
    let on_a = order_until(
        &env,
        &env.base,
        &token,
        deal,
        "unblocked-a",
        202,
        unblocked_at,
    )
    .await;
    let on_b = order_until(
        &env,
        &other.base,
        &token,
        deal,
        "unblocked-b",
        202,
        unblocked_at,
    )
    .await;
    println!("unblocked: 202 on gateway A after {on_a:?}, on B after {on_b:?}");

    assert!(login(&env, &email, "correct horse").await.is_ok());
    let version: i64 =
        sqlx::query_scalar("SELECT version FROM auth.users WHERE user_id = $1::uuid")
            .bind(&user)
            .fetch_one(&env.pg)
            .await
            .expect("version");
    assert_eq!(
        version, 3,
        "signup, block, unblock; the no-op block is not a change"
    );

    other.finish().await;
    env.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_password_change_revokes_older_tokens_everywhere_within_a_second() {
    let env = TestEnv::start(Options::default()).await;
    let other = OtherGateway::start(&env).await;
    let deal = env.create_deal(1000, 100).await;
    let email = email();
    let (_, old_token) = signup_and_login(&env, &email, "old password").await;
    assert_eq!(
        order(&env, &other.base, &old_token, deal, "before").await,
        202
    );

    let change =
        |current: &str| json!({ "current_password": current, "new_password": "new password" });
    let (status, _) = post(
        &env,
        env.url("/auth/password"),
        Some(&old_token),
        change("not the password"),
    )
    .await;
    assert_eq!(status, 403, "a wrong current password changes nothing");

    let (status, body) = post(
        &env,
        env.url("/auth/password"),
        Some(&old_token),
        change("old password"),
    )
    .await;
    let changed_at = Instant::now();
    assert_eq!(status, 200, "{body}");
    let new_token = body["access_token"]
        .as_str()
        .expect("fresh token")
        .to_owned();

    let on_a = order_until(&env, &env.base, &old_token, deal, "old-a", 401, changed_at).await;
    let on_b = order_until(
        &env,
        &other.base,
        &old_token,
        deal,
        "old-b",
        401,
        changed_at,
    )
    .await;
    println!("password changed: old token 401 on gateway A after {on_a:?}, on B after {on_b:?}");
    for (name, base) in [("a", &env.base), ("b", &other.base)] {
        assert_eq!(
            order(&env, base, &new_token, deal, &format!("new-{name}")).await,
            202,
            "{name}: the fresh token works"
        );
    }
    let (status, _) = post(
        &env,
        env.url("/auth/password"),
        Some(&old_token),
        change("old password"),
    )
    .await;
    assert_eq!(
        status, 401,
        "the old token cannot change the password again"
    );

    assert_eq!(login(&env, &email, "old password").await, Err(401));
    let relogged = login(&env, &email, "new password")
        .await
        .expect("login with the new password");
    assert_eq!(
        order(&env, &other.base, &relogged, deal, "relogged").await,
        202
    );

    other.finish().await;
    env.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_rotated_key_signs_new_tokens_and_the_old_one_still_verifies() {
    let env = TestEnv::start(Options::default()).await;
    let other = OtherGateway::start(&env).await;
    let deal = env.create_deal(1000, 100).await;
    let email = email();
    let (_, before) = signup_and_login(&env, &email, "correct horse").await;
    let old_kid = jsonwebtoken::decode_header(&before).expect("header").kid;
    assert_eq!(
        old_kid.as_deref(),
        Some("k1"),
        "the bootstrap key signs first"
    );

    let (status, _) = post(
        &env,
        env.url("/admin/auth/signing-keys/rotate"),
        Some(&env.customer_token().1),
        json!({}),
    )
    .await;
    assert_eq!(status, 403, "rotation needs the admin role");
    let (status, body) = post(
        &env,
        env.url("/admin/auth/signing-keys/rotate"),
        Some(&env.admin_token()),
        json!({}),
    )
    .await;
    let rotated_at = Instant::now();
    assert_eq!(status, 201, "{body}");
    let new_kid = body["kid"].as_str().expect("kid").to_owned();
    assert_eq!(body["previous_kid"].as_str(), Some("k1"));
    assert_ne!(new_kid, "k1");

    let after = login(&env, &email, "correct horse").await.expect("login");
    let kid = jsonwebtoken::decode_header(&after).expect("header").kid;
    assert_eq!(
        kid.as_deref(),
        Some(new_kid.as_str()),
        "new tokens carry the new kid"
    );
    // B reloads the ring when SigningKeyRotated reaches it.
    let on_b = order_until(&env, &other.base, &after, deal, "after", 202, rotated_at).await;
    println!("rotated: a new-key token accepted by gateway B after {on_b:?}");
    for (name, base) in [("a", &env.base), ("b", &other.base)] {
        assert_eq!(
            order(&env, base, &before, deal, &format!("before-{name}")).await,
            202,
            "{name}: a retired key still verifies"
        );
        assert_eq!(
            order(&env, base, &after, deal, &format!("after-{name}")).await,
            202
        );
        let admin = env.admin_token();
        let (status, _) = post(
            &env,
            format!("{base}/admin/users/{}/unblock", uuid::Uuid::now_v7()),
            Some(&admin),
            json!({}),
        )
        .await;
        assert_eq!(
            status, 404,
            "{name}: the harness's admin token (retired key) still works"
        );
    }
    let keys: Vec<(String, bool)> =
        sqlx::query_as("SELECT kid, retired_at IS NULL FROM auth.signing_keys ORDER BY created_at")
            .fetch_all(&env.pg)
            .await
            .expect("keys");
    assert_eq!(keys, vec![("k1".to_owned(), false), (new_kid, true)]);

    other.finish().await;
    env.finish().await;
}
