//! Acceptance (issue 7): the consumer-group lag on `/metrics` is non-zero
//! while intents wait for the order-writer and drains to zero once it has
//! applied them. The writer runs as its own process and serves `/metrics`
//! on FLASHDEAL_METRICS_ADDR, as it does in compose and Kubernetes.

use crate::harness::{Options, TestEnv, eventually};
use futures::{StreamExt, stream};
use std::time::Duration;

/// `flashdeal_consumer_group_lag` of the order-writer group in a scrape.
fn writer_lag(metrics: &str) -> Option<f64> {
    metrics
        .lines()
        .find(|l| {
            l.starts_with("flashdeal_consumer_group_lag{")
                && l.contains("group=\"order-writer\"")
                && l.contains("topic=\"orders.intents\"")
        })
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|v| v.parse().ok())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn consumer_lag_is_exported_and_drains_to_zero() {
    let env = TestEnv::start(Options {
        in_process_writer: false,
        ..Options::default()
    })
    .await;
    let deal = env.create_deal(10_000, 1_000).await;
    let tokens: Vec<String> = (0..20).map(|_| env.customer_token().1).collect();
    let accepted = stream::iter(0..200)
        .map(|i| {
            let (env, token) = (&env, tokens[i % 20].clone());
            async move { env.order(&token, deal, 1, None).await.0 }
        })
        .buffer_unordered(20)
        .filter(|s| std::future::ready(*s == 202))
        .count()
        .await;
    assert_eq!(accepted, 200);

    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("port")
        .port();
    let mut writer = env
        .role_command("order-writer")
        .env("FLASHDEAL_METRICS_ADDR", format!("127.0.0.1:{port}"))
        .env("FLASHDEAL_WRITER_BATCH_SIZE", "5")
        .spawn()
        .expect("spawn order-writer");
    let url = format!("http://127.0.0.1:{port}/metrics");
    let scrape = || async {
        let body = env.http.get(&url).send().await.ok()?.text().await.ok()?;
        writer_lag(&body)
    };
    let first = eventually("a lag measurement", Duration::from_secs(30), || async {
        scrape().await
    })
    .await;
    eventually(
        "the lag to drain to zero",
        Duration::from_secs(60),
        || async { (scrape().await == Some(0.0)).then_some(()) },
    )
    .await;
    eprintln!("order-writer lag: first scrape {first}, then 0");
    assert!(
        first > 0.0,
        "the first scrape saw no lag behind 200 intents"
    );
    eventually("every order confirmed", Duration::from_secs(30), || async {
        (env.confirmed_units(deal).await == 200).then_some(())
    })
    .await;
    let _ = writer.kill();
    let _ = writer.wait();
    env.finish().await;
}

#[test]
fn the_lag_line_is_read_from_a_scrape() {
    let scrape = "# TYPE flashdeal_consumer_group_lag gauge\n\
        flashdeal_consumer_group_lag{group=\"projector\",topic=\"orders.status\"} 3\n\
        flashdeal_consumer_group_lag{group=\"order-writer\",topic=\"orders.intents\"} 42\n";
    assert_eq!(writer_lag(scrape), Some(42.0));
    assert_eq!(writer_lag("nothing"), None);
}
