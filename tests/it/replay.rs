//! Replay and dead letters for operators: a one-off replay of
//! orders.intents from earliest into the order-writer's sink changes no row
//! (I5); a live group cannot be rewound, an inactive one can, and a dry run
//! changes nothing; `dlq list/show/requeue` on a poison message.

use crate::harness::{Options, TestEnv, eventually, writer_args};
use flashdeal::{
    dlq,
    replay::{self, ReplayArgs, Report},
    roles,
};
use flashdeal_consumers::{order_writer, replay::StartAt};
use flashdeal_schemas::{DealId, topics};
use rdkafka::{Message, producer::FutureRecord};
use std::time::Duration;
use tokio_util::sync::CancellationToken;

/// A checksum of every row of orders.orders.
async fn checksum(env: &TestEnv) -> String {
    sqlx::query_scalar::<_, Option<String>>(
        "SELECT md5(string_agg(t::text, ',' ORDER BY order_id)) FROM orders.orders t",
    )
    .fetch_one(&env.pg)
    .await
    .expect("checksum")
    .expect("orders.orders is not empty")
}

/// `n` customers order one unit each; waits until all are confirmed.
async fn burst(env: &TestEnv, deal: DealId, n: usize) {
    let mut pending = Vec::new();
    for _ in 0..n {
        let (_, token) = env.customer_token();
        pending.push(async move {
            let (status, body) = env.order(&token, deal, 1, None).await;
            assert_eq!(status, 202, "{body}");
        });
    }
    futures::future::join_all(pending).await;
    eventually(
        "every order to be confirmed",
        Duration::from_secs(30),
        || async {
            let n_confirmed: i64 = sqlx::query_scalar(
                "SELECT count(*) FROM orders.orders WHERE deal_id = $1 AND status = 'confirmed'",
            )
            .bind(deal.0)
            .fetch_one(&env.pg)
            .await
            .ok()?;
            (n_confirmed == n as i64).then_some(())
        },
    )
    .await;
}

fn args(topic: &str, group: &str, from: StartAt) -> ReplayArgs {
    ReplayArgs {
        topic: Some(topic.to_owned()),
        group: Some(group.to_owned()),
        from_offset: Some(from),
        ..ReplayArgs::default()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_one_off_replay_of_the_intents_into_the_live_writer_changes_no_row() {
    let env = TestEnv::start(Options::default()).await;
    let deal = env.create_deal(100, 2).await;
    burst(&env, deal, 40).await;
    let before = checksum(&env).await;
    let size = env.topic_size(topics::ORDERS_INTENTS);
    assert_eq!(size, 40);

    let a = ReplayArgs {
        one_off: true,
        ..args(
            topics::ORDERS_INTENTS,
            order_writer::GROUP,
            StartAt::Earliest,
        )
    };
    let report = replay::run(&env.config, &a, false).await.expect("replay");
    let Report::OneOff { plan, summary } = report else {
        panic!("not a one-off: {report:?}")
    };
    println!("{plan}\n{}", replay::summary_line(&summary));
    assert_eq!(plan.to_read(), size as u64);
    assert_eq!(summary.tally.read(), size as u64, "read = topic size");
    assert_eq!(
        summary.tally.duplicates, size as u64,
        "every intent is a duplicate"
    );
    assert_eq!(summary.tally.applied, 0);
    assert_eq!(checksum(&env).await, before, "orders.orders unchanged");
    env.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_live_group_is_not_rewound_an_inactive_one_is_and_a_dry_run_changes_nothing() {
    let env = TestEnv::start(Options {
        in_process_writer: false,
        ..Options::default()
    })
    .await;
    let stop = CancellationToken::new();
    let start_writer = |stop: CancellationToken| {
        let c = env.config.clone();
        tokio::spawn(async move { roles::run_order_writer(&c, &writer_args(), stop).await })
    };
    let writer = start_writer(stop.clone());
    let deal = env.create_deal(100, 2).await;
    burst(&env, deal, 12).await;
    let before = checksum(&env).await;
    let earliest = args(
        topics::ORDERS_INTENTS,
        order_writer::GROUP,
        StartAt::Earliest,
    );

    // Live: refused, with the reason.
    let err = replay::run(&env.config, &earliest, false)
        .await
        .expect_err("a live group must not be rewound");
    let msg = format!("{err:#}");
    println!("refused: {msg}");
    assert!(msg.contains("active member"), "{msg}");
    assert!(msg.contains("--one-off"), "{msg}");

    // Stopped: its consumers leave the group.
    stop.cancel();
    tokio::time::timeout(Duration::from_secs(30), writer)
        .await
        .expect("writer stops")
        .expect("writer task")
        .expect("writer");
    let size = env.topic_size(topics::ORDERS_INTENTS) as u64;

    // A dry run prints the plan and commits nothing.
    let dry = ReplayArgs {
        dry_run: true,
        ..earliest.clone()
    };
    let Report::DryRun(plan) = replay::run(&env.config, &dry, false)
        .await
        .expect("dry run")
    else {
        panic!("not a dry run")
    };
    println!("{plan}");
    assert_eq!(plan.to_read(), size);
    let committed: Vec<_> = plan.partitions.iter().map(|p| p.committed).collect();
    let Report::DryRun(again) = replay::run(&env.config, &dry, false)
        .await
        .expect("dry run")
    else {
        panic!("not a dry run")
    };
    assert_eq!(
        again
            .partitions
            .iter()
            .map(|p| p.committed)
            .collect::<Vec<_>>(),
        committed,
        "a dry run changed the committed offsets"
    );
    assert!(
        plan.partitions
            .iter()
            .all(|p| p.committed.unwrap_or(0) == p.high),
        "the writer had committed everything: {plan}"
    );

    // Inactive: rewound (retried while the broker still counts the
    // leaving members), and the offsets read back.
    let rewound = eventually("the rewind to be accepted", Duration::from_secs(30), || {
        let (c, a) = (env.config.clone(), earliest.clone());
        async move { replay::run(&c, &a, false).await.ok() }
    })
    .await;
    let Report::Rewound(plan) = rewound else {
        panic!("not a rewind: {rewound:?}")
    };
    println!("{plan}");
    let Report::DryRun(after) = replay::run(&env.config, &dry, false)
        .await
        .expect("dry run")
    else {
        panic!("not a dry run")
    };
    for p in &after.partitions {
        assert_eq!(p.committed, Some(p.low), "partition {}", p.partition);
    }

    // An explicit P:O moves only that partition.
    let busy = after
        .partitions
        .iter()
        .find(|p| p.high >= 2)
        .expect("a partition with two intents")
        .partition;
    let one = args(
        topics::ORDERS_INTENTS,
        order_writer::GROUP,
        StartAt::Offsets(vec![(busy, 1)]),
    );
    replay::run(&env.config, &one, false)
        .await
        .expect("rewind one partition");
    let Report::DryRun(after_one) = replay::run(&env.config, &dry, false)
        .await
        .expect("dry run")
    else {
        panic!("not a dry run")
    };
    for p in &after_one.partitions {
        let want = if p.partition == busy { 1 } else { p.low };
        assert_eq!(p.committed, Some(want), "partition {}", p.partition);
    }

    // Restarted, the writer re-reads from there; no row changes.
    let stop = CancellationToken::new();
    let writer = start_writer(stop.clone());
    for p in &after_one.partitions {
        if p.high > 0 {
            env.wait_committed(
                order_writer::GROUP,
                topics::ORDERS_INTENTS,
                p.partition,
                p.high - 1,
            )
            .await;
        }
    }
    assert_eq!(checksum(&env).await, before, "orders.orders unchanged");
    stop.cancel();
    let _ = tokio::time::timeout(Duration::from_secs(30), writer).await;
    env.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn dlq_list_show_and_requeue_a_poison_intent() {
    let env = TestEnv::start(Options::default()).await;
    let publisher = roles::publisher(&env.config.kafka(), "test").expect("publisher");
    let key = uuid::Uuid::now_v7().into_bytes();
    let garbage = b"{\"not\":\"avro\"}";
    let poison = publisher
        .producer()
        .send(
            FutureRecord::to(topics::ORDERS_INTENTS)
                .key(&key[..])
                .payload(&garbage[..]),
            Duration::from_secs(5),
        )
        .await
        .expect("produce poison");

    let dlq_size = |n: usize| {
        let c = env.config.clone();
        move || {
            let c = c.clone();
            async move {
                let listed = dlq::list(&c, Some(topics::ORDERS_INTENTS)).await.ok()?;
                let (_, letters) = listed.into_iter().next()?;
                (letters.len() == n).then_some(letters)
            }
        }
    };
    let letters = eventually(
        "the poison in orders.intents.dlq",
        Duration::from_secs(30),
        dlq_size(1),
    )
    .await;
    let l = &letters[0];
    println!(
        "listed: {}/{} from {:?}/{:?}/{:?} error {:?}",
        l.message.partition(),
        l.message.offset(),
        l.original_topic,
        l.original_partition,
        l.original_offset,
        l.error
    );
    assert_eq!(l.original_topic.as_deref(), Some(topics::ORDERS_INTENTS));
    assert_eq!(l.original_partition, Some(poison.partition));
    assert_eq!(l.original_offset, Some(poison.offset));
    assert!(
        l.error
            .as_deref()
            .is_some_and(|e| e.contains("single-object header")),
        "{:?}",
        l.error
    );
    let every = dlq::list(&env.config, None).await.expect("list all");
    assert_eq!(every.len(), 4, "one entry per DLQ topic");

    let shown = dlq::show(
        &env.config,
        "orders.intents.dlq",
        l.message.partition(),
        l.message.offset(),
    )
    .await
    .expect("show");
    assert_eq!(shown.message.payload(), Some(&garbage[..]));
    assert_eq!(shown.message.key(), Some(&key[..]));
    assert_eq!(shown.decoded(), None, "garbage does not decode");
    assert!(shown.headers().iter().any(|(k, _)| k == "dlq.error"));

    let requeued = dlq::requeue(
        &env.config,
        "orders.intents.dlq",
        Some((l.message.partition(), l.message.offset())),
    )
    .await
    .expect("requeue");
    println!("requeued: {requeued:?}");
    assert_eq!(requeued.len(), 1);
    assert_eq!(requeued[0].topic, topics::ORDERS_INTENTS);
    assert_eq!(
        requeued[0].partition, poison.partition,
        "same key, same partition"
    );

    // Still garbage: dead-lettered again, now from the requeued offset.
    let letters = eventually(
        "the requeued poison dead-lettered again",
        Duration::from_secs(30),
        dlq_size(2),
    )
    .await;
    assert!(
        letters
            .iter()
            .any(|l| l.original_offset == Some(requeued[0].offset)),
        "{letters:?}"
    );
    env.finish().await;
}
