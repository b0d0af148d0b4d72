//! Acceptance (issue 5): two order-writer processes split the partitions of
//! orders.intents; SIGTERM on one drains its batch, commits, leaves the
//! group, and its partitions move to the other with no order lost or
//! written twice.

use crate::harness::{Options, PARTITIONS, TestEnv, eventually};
use futures::{StreamExt, stream};
use std::{
    collections::{BTreeSet, HashSet},
    io::{BufRead, BufReader},
    process::{Child, Command, Stdio},
    sync::{Arc, Mutex},
    time::Duration,
};

/// A `flashdeal order-writer` process and the partitions it last reported.
struct Writer {
    child: Child,
    assigned: Arc<Mutex<Option<BTreeSet<i32>>>>,
}

fn spawn_writer(env: &TestEnv) -> Writer {
    let mut child = env
        .role_command("order-writer")
        .env("FLASHDEAL_WRITER_BATCH_SIZE", "20")
        .env("RUST_LOG", "warn,flashdeal_consumers=info")
        .env("LOG_FORMAT", "json")
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn flashdeal order-writer");
    let assigned = Arc::new(Mutex::new(None));
    let (sink, stderr) = (Arc::clone(&assigned), child.stderr.take().expect("stderr"));
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            let Ok(v) = serde_json::from_str::<serde_json::Value>(&line) else {
                continue;
            };
            let f = &v["fields"];
            if f["message"] == "partitions assigned" && f["topic"] == "orders.intents" {
                let parts = f["partitions"]
                    .as_str()
                    .unwrap_or_default()
                    .split(',')
                    .filter_map(|p| p.parse().ok())
                    .collect();
                *sink.lock().expect("lock") = Some(parts);
            }
        }
    });
    Writer { child, assigned }
}

impl Writer {
    fn partitions(&self) -> BTreeSet<i32> {
        self.assigned
            .lock()
            .expect("lock")
            .clone()
            .unwrap_or_default()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_writers_split_the_partitions_and_sigterm_hands_them_over() {
    let env = TestEnv::start(Options {
        in_process_writer: false,
        ..Options::default()
    })
    .await;
    let deal = env.create_deal(100_000, 1_000).await;
    let (mut a, b) = (spawn_writer(&env), spawn_writer(&env));
    let all: BTreeSet<i32> = (0..PARTITIONS).collect();
    let split = eventually(
        "both writers to own a share of the partitions",
        Duration::from_secs(60),
        || {
            let (pa, pb, all) = (a.partitions(), b.partitions(), all.clone());
            async move {
                let union: BTreeSet<i32> = pa.union(&pb).copied().collect();
                (!pa.is_empty() && !pb.is_empty() && pa.is_disjoint(&pb) && union == all)
                    .then_some((pa, pb))
            }
        },
    )
    .await;
    eprintln!("split: writer A {:?}, writer B {:?}", split.0, split.1);

    let tokens: Vec<String> = (0..40).map(|_| env.customer_token().1).collect();
    let order = |i: usize| {
        let (env, token) = (&env, tokens[i % tokens.len()].clone());
        async move {
            let (status, body) = env.order(&token, deal, 1, None).await;
            assert_eq!(status, 202, "{body}");
            body["order_id"].as_str().expect("order id").to_owned()
        }
    };
    let mut accepted: HashSet<String> = stream::iter(0..300)
        .map(order)
        .buffer_unordered(20)
        .collect()
        .await;

    // SIGTERM writer A while more orders arrive.
    let status = Command::new("kill")
        .args(["-TERM", &a.child.id().to_string()])
        .status()
        .expect("kill -TERM");
    assert!(status.success());
    let more: HashSet<String> = stream::iter(300..600)
        .map(order)
        .buffer_unordered(20)
        .collect()
        .await;
    accepted.extend(more);
    let exit = tokio::task::spawn_blocking(move || a.child.wait())
        .await
        .expect("join")
        .expect("wait");
    assert!(
        exit.success(),
        "writer A did not stop cleanly on SIGTERM: {exit:?}"
    );

    eventually(
        "writer B to own every partition",
        Duration::from_secs(60),
        || {
            let pb = b.partitions();
            let all = all.clone();
            async move { (pb == all).then_some(()) }
        },
    )
    .await;
    eventually(
        "every accepted order to be confirmed",
        Duration::from_secs(60),
        || async { (env.confirmed_units(deal).await == accepted.len() as i64).then_some(()) },
    )
    .await;
    let rows: Vec<uuid::Uuid> =
        sqlx::query_scalar("SELECT order_id FROM orders.orders WHERE deal_id = $1")
            .bind(deal.0)
            .fetch_all(&env.pg)
            .await
            .expect("rows");
    let rows: HashSet<String> = rows.iter().map(uuid::Uuid::to_string).collect();
    assert_eq!(rows, accepted, "rows differ from the 202s");
    let mut b = b;
    let _ = b.child.kill();
    let _ = b.child.wait();
    env.finish().await;
}
