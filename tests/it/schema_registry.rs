//! The schema registry path: with `FLASHDEAL_SCHEMA_REGISTRY_URL` set every
//! role registers the event schemas at boot, publishes Confluent framing
//! (`00` + schema id + datum) — the gateway's intents and the relay's
//! outbox rows alike — and the consumers decode it, including a message
//! written with an older version of a schema that they look up by id.
//!
//! The registry here is a stand-in: a small axum app in this file serving
//! the two endpoints FlashDeal uses (`POST /subjects/{subject}/versions`,
//! `GET /schemas/ids/{id}`) with the Confluent API's semantics (one id per
//! distinct schema, shared across subjects). Redpanda's registry, which
//! docker compose runs, cannot run on this machine. It is no mock of
//! PostgreSQL, Redis or the broker: those are the real ones as in every
//! other test.

use crate::harness::{Options, TestEnv, eventually};
use axum::{
    Json, Router,
    extract::{Path, State},
    http::StatusCode,
    routing::{get, post},
};
use flashdeal_schemas::{
    OrderId, OrderPlaced, UserId, codec::AvroEvent, confluent, events::now_millis,
    store_events::DealChanged, topics,
};
use rdkafka::Message;
use serde_json::{Value, json};
use std::{
    collections::HashMap,
    sync::{Arc, Mutex},
    time::Duration,
};
use uuid::Uuid;

/// What the stand-in registry holds: schema texts (id = index + 1), the
/// ids registered under each subject, and the ids looked up.
#[derive(Default)]
struct Registry {
    schemas: Vec<String>,
    subjects: HashMap<String, Vec<u32>>,
    looked_up: Vec<u32>,
}

type Shared = Arc<Mutex<Registry>>;

async fn register(
    State(reg): State<Shared>,
    Path(subject): Path<String>,
    Json(body): Json<Value>,
) -> Result<Json<Value>, StatusCode> {
    let schema = body["schema"]
        .as_str()
        .ok_or(StatusCode::UNPROCESSABLE_ENTITY)?;
    // The real registry rejects what does not parse; so does this one.
    apache_avro::Schema::parse_str(schema).map_err(|_| StatusCode::UNPROCESSABLE_ENTITY)?;
    let mut reg = reg.lock().expect("registry state");
    let id = match reg.schemas.iter().position(|s| s == schema) {
        Some(i) => i as u32 + 1,
        None => {
            reg.schemas.push(schema.to_owned());
            reg.schemas.len() as u32
        }
    };
    let versions = reg.subjects.entry(subject).or_default();
    if !versions.contains(&id) {
        versions.push(id);
    }
    Ok(Json(json!({ "id": id })))
}

async fn schema_by_id(State(reg): State<Shared>, Path(id): Path<u32>) -> (StatusCode, Json<Value>) {
    let mut reg = reg.lock().expect("registry state");
    reg.looked_up.push(id);
    match reg.schemas.get((id as usize).wrapping_sub(1)) {
        Some(s) => (StatusCode::OK, Json(json!({ "schema": s }))),
        None => (
            StatusCode::NOT_FOUND,
            Json(json!({ "error_code": 40403, "message": "Schema not found" })),
        ),
    }
}

/// Serves the stand-in on its own thread and runtime, so a consumer that
/// blocks its thread on a lookup cannot starve the server; its base URL.
fn start_registry(reg: Shared) -> String {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    listener.set_nonblocking(true).expect("nonblocking");
    let url = format!("http://{}", listener.local_addr().expect("addr"));
    let app = Router::new()
        .route("/subjects/{subject}/versions", post(register))
        .route("/schemas/ids/{id}", get(schema_by_id))
        .with_state(reg);
    std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("registry runtime");
        rt.block_on(async move {
            let listener = tokio::net::TcpListener::from_std(listener).expect("listener");
            axum::serve(listener, app).await.expect("stand-in registry");
        });
    });
    url
}

/// `order_placed.avsc` as it was before `idempotency_key` existed: what an
/// older producer still running during a rolling deploy writes with.
fn older_order_placed() -> String {
    OrderPlaced::info().text.replace(
        r#"{"name": "idempotency_key", "type": ["null", "string"], "default": null},"#,
        "",
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn roles_publish_confluent_framing_and_consumers_read_every_registered_version() {
    let reg: Shared = Arc::default();
    let url = start_registry(Arc::clone(&reg));

    // An older producer registered its version of OrderPlaced first.
    let http = reqwest::Client::new();
    let older_id = http
        .post(format!(
            "{url}/subjects/{}/versions",
            OrderPlaced::subject()
        ))
        .json(&json!({ "schema": older_order_placed() }))
        .send()
        .await
        .unwrap()
        .json::<Value>()
        .await
        .unwrap()["id"]
        .as_u64()
        .unwrap() as u32;

    let env = TestEnv::start(Options {
        schema_registry_url: Some(url.clone()),
        ..Options::default()
    })
    .await;
    let id_of = |subject: String| {
        let reg = reg.lock().unwrap();
        *reg.subjects[&subject].last().unwrap()
    };
    let placed_id = id_of(OrderPlaced::subject());
    assert_ne!(placed_id, older_id, "the current schema is a new version");
    assert_eq!(
        reg.lock().unwrap().subjects[&OrderPlaced::subject()],
        vec![older_id, placed_id],
        "TopicRecordNameStrategy: orders.intents-io.flashdeal.orders.OrderPlaced"
    );

    // The deal travels catalog.outbox → relay → catalog.events and must be
    // decoded by the projector and the order-writer's read model; the order
    // travels gateway → orders.intents → order-writer → orders.status.
    let deal = env.create_deal(10, 2).await;
    let (_, token) = env.customer_token();
    let (status, body) = env.order(&token, deal, 2, Some("registry-1")).await;
    assert_eq!(status, 202, "{body}");
    let order_id = body["order_id"].as_str().unwrap().to_owned();
    eventually(
        "the order to be confirmed",
        Duration::from_secs(30),
        || async {
            let v = env.get_json(&format!("/orders/{order_id}"), &token).await?;
            (v["status"] == "confirmed").then_some(())
        },
    )
    .await;

    let order = OrderId(Uuid::parse_str(&order_id).unwrap());
    let intents = env.read_topic(topics::ORDERS_INTENTS).await;
    let intent = intents
        .iter()
        .find(|m| m.key() == Some(&order.0.into_bytes()[..]))
        .expect("the intent on orders.intents");
    let payload = intent.payload().unwrap();
    assert_eq!(payload[0], 0x00, "Confluent magic byte");
    assert_eq!(&payload[1..5], &placed_id.to_be_bytes(), "registered id");

    let deal_id = id_of(DealChanged::subject());
    let relayed = env.read_topic(topics::CATALOG_EVENTS).await;
    assert!(!relayed.is_empty());
    for m in &relayed {
        let (id, _) = confluent::split(m.payload().unwrap()).expect("Confluent framing");
        assert!(
            id == deal_id
                || id == id_of(flashdeal_schemas::store_events::ProductChanged::subject()),
            "catalog.events carries id {id}"
        );
    }

    // An intent written with the older schema (no idempotency_key) by id:
    // the order-writer looks the id up and resolves it against its own.
    let older = apache_avro::Schema::parse_str(&older_order_placed()).unwrap();
    let now = now_millis();
    let user = UserId::new_v7();
    let old_order = OrderId::new_v7();
    let datum = apache_avro::writer::datum::GenericDatumWriter::builder(&older)
        .build()
        .unwrap()
        .write_value_to_vec(apache_avro::types::Value::Record(vec![
            ("event_id".into(), Uuid::now_v7().into()),
            ("order_id".into(), old_order.0.into()),
            ("user_id".into(), user.0.into()),
            ("deal_id".into(), deal.0.into()),
            ("quantity".into(), 1i32.into()),
            ("unit_price_cents".into(), 1999i64.into()),
            (
                "reserved_at".into(),
                apache_avro::types::Value::TimestampMillis(now),
            ),
            (
                "expires_at".into(),
                apache_avro::types::Value::TimestampMillis(now + 600_000),
            ),
        ]))
        .unwrap();
    let raw = flashdeal::roles::publisher(&env.config.kafka(), "older-producer").unwrap();
    raw.enqueue_raw(
        topics::ORDERS_INTENTS,
        &old_order.0.into_bytes(),
        &confluent::frame(older_id, &datum),
        Uuid::now_v7(),
        OrderPlaced::NAME,
    )
    .unwrap()
    .await
    .expect("produce the older intent");
    eventually(
        "the older writer's intent to be written",
        Duration::from_secs(30),
        || async {
            sqlx::query_scalar::<_, String>(
                "SELECT status::text FROM orders.orders WHERE order_id = $1",
            )
            .bind(old_order.0)
            .fetch_optional(&env.pg)
            .await
            .unwrap()
        },
    )
    .await;
    assert!(
        reg.lock().unwrap().looked_up.contains(&older_id),
        "the unknown id was fetched with GET /schemas/ids/{older_id}"
    );
    assert_eq!(
        env.topic_size("orders.intents.dlq"),
        0,
        "nothing dead-lettered"
    );

    // A publisher from the same role wiring frames with the same ids.
    let publisher = flashdeal::roles::role_publisher(&env.config, "test")
        .await
        .unwrap();
    let again = OrderPlaced {
        event_id: Uuid::now_v7(),
        order_id: OrderId::new_v7(),
        user_id: user,
        deal_id: deal,
        quantity: 1,
        unit_price_cents: 1999,
        idempotency_key: None,
        reserved_at: now,
        expires_at: now + 600_000,
    };
    assert_eq!(
        publisher.encoding().encode(&again).unwrap()[1..5],
        placed_id.to_be_bytes()
    );
    // Producers go before the broker does.
    drop((raw, publisher));
    env.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_role_refuses_to_start_when_the_registry_is_unreachable() {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let mut config = flashdeal::config::Config::with_services(
        "postgres://postgres@127.0.0.1:5432/unused".to_owned(),
        "redis://127.0.0.1:6379".to_owned(),
        "127.0.0.1:1".to_owned(),
        std::env::temp_dir(),
        1,
    );
    config.schema_registry_url = Some(format!("http://127.0.0.1:{port}"));
    let err = flashdeal::roles::encoding(&config).await.unwrap_err();
    let text = format!("{err:#}");
    assert!(
        text.contains("FLASHDEAL_SCHEMA_REGISTRY_URL")
            && text.contains(&format!("127.0.0.1:{port}"))
            && text.contains("unreachable"),
        "{text}"
    );
}
