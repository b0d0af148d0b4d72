//! A message the order-writer can never decode goes to `orders.intents.dlq`
//! with the reason and its origin in headers, and the partition keeps
//! flowing: the next intent behind it on the same partition is written.

use crate::harness::{Options, TestEnv, eventually};
use flashdeal_producers::publisher::Outgoing;
use flashdeal_schemas::{
    DealId, OrderId, OrderPlaced, UserId,
    events::now_millis,
    topics::{self, headers},
};
use rdkafka::{
    Message,
    consumer::{BaseConsumer, Consumer},
    message::Headers,
    producer::FutureRecord,
};
use std::time::Duration;
use uuid::Uuid;

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_poison_intent_is_dead_lettered_and_the_partition_keeps_flowing() {
    let env = TestEnv::start(Options::default()).await;
    let publisher = flashdeal::roles::publisher(&env.config.kafka(), "test").expect("publisher");
    let order = OrderId::new_v7();
    let key = order.0.into_bytes();

    // Garbage first, then a valid intent with the same key: same partition, behind it.
    let poison = publisher
        .producer()
        .send(
            FutureRecord::to(topics::ORDERS_INTENTS)
                .key(&key[..])
                .payload(&b"{\"not\":\"avro\"}"[..]),
            Duration::from_secs(5),
        )
        .await
        .expect("produce poison");
    let now = now_millis();
    let intent = OrderPlaced {
        event_id: Uuid::now_v7(),
        order_id: order,
        user_id: UserId::new_v7(),
        deal_id: DealId::new_v7(),
        quantity: 1,
        unit_price_cents: 500,
        idempotency_key: None,
        reserved_at: now,
        expires_at: now + 600_000,
    };
    let (partition, _) = publisher
        .publish(Outgoing {
            topic: topics::ORDERS_INTENTS,
            key: &key,
            event_id: intent.event_id,
            event: &intent,
        })
        .await
        .expect("produce intent");
    assert_eq!(partition, poison.partition, "same key, same partition");

    eventually(
        "the intent behind the poison to be written",
        Duration::from_secs(30),
        || async {
            let n: i64 =
                sqlx::query_scalar("SELECT count(*) FROM orders.orders WHERE order_id = $1")
                    .bind(order.0)
                    .fetch_one(&env.pg)
                    .await
                    .ok()?;
            (n == 1).then_some(())
        },
    )
    .await;

    // The DLQ holds the original bytes, key and where they came from.
    let dlq = topics::dlq(topics::ORDERS_INTENTS);
    let consumer: BaseConsumer = env
        .config
        .kafka()
        .consumer_config("test-dlq-reader", "test")
        .create()
        .expect("consumer");
    consumer.subscribe(&[dlq.as_str()]).expect("subscribe");
    let msg = eventually("the dead letter", Duration::from_secs(30), || {
        let m = consumer
            .poll(Duration::from_millis(200))
            .and_then(Result::ok)
            .map(|m| m.detach());
        async move { m }
    })
    .await;
    assert_eq!(msg.key(), Some(&key[..]));
    assert_eq!(msg.payload(), Some(&b"{\"not\":\"avro\"}"[..]));
    let header = |name: &str| {
        msg.headers().and_then(|h| {
            h.iter()
                .find(|x| x.key == name)
                .and_then(|x| x.value.map(|v| String::from_utf8_lossy(v).into_owned()))
        })
    };
    assert_eq!(
        header(headers::DLQ_TOPIC).as_deref(),
        Some(topics::ORDERS_INTENTS)
    );
    assert_eq!(
        header(headers::DLQ_PARTITION),
        Some(poison.partition.to_string())
    );
    assert_eq!(header(headers::DLQ_OFFSET), Some(poison.offset.to_string()));
    assert!(header(headers::DLQ_ERROR).is_some_and(|e| e.contains("single-object header")));
    let _ = tokio::time::timeout(
        Duration::from_secs(10),
        tokio::task::spawn_blocking(move || drop(consumer)),
    )
    .await;
    env.finish().await;
}
