//! Acceptance of `flashdeal audit` (issue 4): zero differences after a
//! 1,000-order burst; the exact difference after one Redis key is
//! corrupted; clean again once the recommended fix is applied.

use crate::harness::{Options, TestEnv, eventually};
use flashdeal::audit::{self, kind};
use flashdeal_schemas::{events::now_millis, redis_keys::DealKeys};
use futures::{StreamExt, stream};
use std::{process::Command, time::Duration};

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn audit_is_clean_after_a_burst_and_names_a_corrupted_key() {
    let env = TestEnv::start(Options::default()).await;
    let deal = env.create_deal(100, 2).await;
    let users: Vec<String> = (0..300).map(|_| env.customer_token().1).collect();
    let accepted = stream::iter(0..1000)
        .map(|i| {
            let (env, token) = (&env, users[i % 300].clone());
            async move { env.order(&token, deal, 1 + (i % 2) as i64, None).await.0 }
        })
        .buffer_unordered(100)
        .filter(|s| std::future::ready(*s == 202))
        .count()
        .await;
    assert!(accepted >= 50, "only {accepted} orders accepted");

    let mut redis = env.redis.clone();
    let diffs = eventually(
        "the stores to agree after the burst",
        Duration::from_secs(60),
        || {
            let (pg, mut r) = (env.pg.clone(), redis.clone());
            async move {
                let d = audit::run(&pg, &mut r, Some(deal), now_millis())
                    .await
                    .expect("audit");
                d.is_empty().then_some(d)
            }
        },
    )
    .await;
    assert!(diffs.is_empty());
    assert_eq!(env.confirmed_units(deal).await, 100);

    // Corrupt one key: the remaining stock says 7 where 0 are left.
    let stock_key = DealKeys::new(deal).stock;
    redis::cmd("SET")
        .arg(&stock_key)
        .arg(7)
        .query_async::<()>(&mut redis)
        .await
        .expect("SET");
    let diffs = audit::run(&env.pg, &mut redis, Some(deal), now_millis())
        .await
        .expect("audit");
    assert_eq!(diffs.len(), 1, "{diffs:#?}");
    assert_eq!(diffs[0].kind, kind::CONSERVATION);
    assert_eq!(diffs[0].deal, deal);
    assert_eq!(
        diffs[0].fix,
        format!("at quiescence: redis-cli SET '{stock_key}' 0")
    );

    // The command prints it and exits non-zero.
    let out = Command::new(env!("CARGO_BIN_EXE_flashdeal"))
        .args(["audit", "--deal", &deal.to_string()])
        .env("DATABASE_URL", &env.config.database_url)
        .env("REDIS_URL", &env.config.redis_url)
        .output()
        .expect("run flashdeal audit");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        !out.status.success(),
        "audit exited 0 with a difference:\n{stdout}"
    );
    assert!(
        stdout.contains("stock_conservation") && stdout.contains("1 difference(s)"),
        "{stdout}"
    );

    // Applying the recommended fix makes it clean.
    redis::cmd("SET")
        .arg(&stock_key)
        .arg(0)
        .query_async::<()>(&mut redis)
        .await
        .expect("SET");
    assert!(
        audit::run(&env.pg, &mut redis, Some(deal), now_millis())
            .await
            .expect("audit")
            .is_empty()
    );
    env.finish().await;
}
