//! Acceptance: the order-writer process is SIGKILLed while it works through
//! a stream of intents and then restarted: every accepted order ends up as
//! exactly one confirmed row (no loss, no duplicates).

use crate::harness::{Options, TestEnv, eventually};
use futures::{StreamExt, stream};
use std::{collections::HashSet, process::Child, time::Duration};

fn spawn_writer(env: &TestEnv) -> Child {
    env.role_command("order-writer")
        // Small batches: many commits, so the kill lands between some.
        .env("FLASHDEAL_WRITER_BATCH_SIZE", "20")
        .spawn()
        .expect("spawn flashdeal order-writer")
}

async fn rows(env: &TestEnv) -> Vec<String> {
    sqlx::query_scalar::<_, uuid::Uuid>("SELECT order_id FROM orders.orders")
        .fetch_all(&env.pg)
        .await
        .expect("rows")
        .into_iter()
        .map(|u| u.to_string())
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn killing_the_order_writer_mid_stream_loses_and_duplicates_nothing() {
    let env = TestEnv::start(Options {
        in_process_writer: false,
        ..Options::default()
    })
    .await;
    let deal = env.create_deal(100_000, 1_000).await;
    let users: Vec<_> = (0..50).map(|_| env.customer_token().1).collect();
    let mut writer = spawn_writer(&env);

    // A steady stream of orders while the writer runs and is killed.
    let orders = {
        let env = &env;
        let users = &users;
        stream::iter(0..3000)
            .map(move |i| async move { env.order(&users[i % users.len()], deal, 1, None).await })
            .buffer_unordered(32)
            .collect::<Vec<_>>()
    };
    let killer = async {
        eventually(
            "the writer to write some rows",
            Duration::from_secs(60),
            || async {
                let n: i64 = sqlx::query_scalar("SELECT count(*) FROM orders.orders")
                    .fetch_one(&env.pg)
                    .await
                    .ok()?;
                (n >= 200).then_some(())
            },
        )
        .await;
        writer.kill().expect("SIGKILL the writer");
        writer.wait().expect("reap the writer");
        rows(&env).await.len()
    };
    let (results, at_kill) = tokio::join!(orders, killer);
    let accepted: HashSet<String> = results
        .iter()
        .map(|(status, body)| {
            assert_eq!(*status, 202, "{body}");
            body["order_id"].as_str().expect("order_id").to_owned()
        })
        .collect();
    assert_eq!(accepted.len(), 3000);
    assert!(
        at_kill < accepted.len(),
        "the writer finished before it was killed"
    );

    let mut writer = spawn_writer(&env);
    let written = eventually(
        "the restarted writer to catch up",
        Duration::from_secs(120),
        || async {
            let r = rows(&env).await;
            (r.len() >= accepted.len()).then_some(r)
        },
    )
    .await;
    writer.kill().expect("stop the writer");
    let _ = writer.wait();

    let distinct: HashSet<String> = written.iter().cloned().collect();
    assert_eq!(distinct.len(), written.len(), "duplicate rows");
    assert_eq!(distinct, accepted, "rows differ from accepted orders");
    eprintln!("killed at {at_kill} rows of {}", accepted.len());

    // The projector saw a verdict for every order: nothing left pending.
    eventually(
        "pending reservations to drain",
        Duration::from_secs(60),
        || async { (env.redis_pending(deal).await == 0).then_some(()) },
    )
    .await;
    assert_eq!(
        env.redis_stock(deal).await + env.confirmed_units(deal).await,
        100_000
    );
    env.finish().await;
}
