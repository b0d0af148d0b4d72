//! The catalog admin API against the running system: a deal's lifecycle
//! and stock changes reach the order path through the log, a refused
//! change writes nothing, products go through create/read/update/delete,
//! and deals are searched by name and status.

use crate::harness::{Options, TestEnv, eventually};
use flashdeal_gateway::error::kind;
use flashdeal_schemas::{CatalogEvent, DealId, topics};
use rdkafka::Message;
use reqwest::Method;
use serde_json::{Value, json};
use std::{collections::BTreeSet, time::Duration};

const WAIT: Duration = Duration::from_secs(30);

/// Sends an admin request; returns (status, body).
async fn admin(env: &TestEnv, method: Method, path: &str, body: Option<Value>) -> (u16, Value) {
    let mut req = env
        .http
        .request(method, env.url(path))
        .bearer_auth(env.admin_token());
    if let Some(b) = body {
        req = req.json(&b);
    }
    let res = req.send().await.expect("admin request");
    let status = res.status().as_u16();
    (status, res.json().await.unwrap_or(Value::Null))
}

async fn post(env: &TestEnv, path: &str, body: Value) -> (u16, Value) {
    admin(env, Method::POST, path, Some(body)).await
}

async fn get(env: &TestEnv, path: &str) -> (u16, Value) {
    let res = env.http.get(env.url(path)).send().await.expect("GET");
    let status = res.status().as_u16();
    (status, res.json().await.unwrap_or(Value::Null))
}

fn in_an_hour() -> String {
    (chrono::Utc::now() + chrono::Duration::hours(1)).to_rfc3339()
}

/// Orders one unit as a new customer until the answer is `want` (and, for
/// a 409, of problem type `problem`): the change reaches Redis via the log.
async fn order_until(env: &TestEnv, deal: DealId, want: u16, problem: Option<&str>) {
    eventually(&format!("POST /orders to answer {want}"), WAIT, || async {
        let (_, token) = env.customer_token();
        let (status, body) = env.order(&token, deal, 1, None).await;
        let kind_ok = problem.is_none_or(|p| body["type"] == p);
        (status == want && kind_ok).then_some(())
    })
    .await;
}

async fn wait_stock(env: &TestEnv, deal: DealId, want: i64) {
    eventually(&format!("Redis remaining to be {want}"), WAIT, || async {
        (env.redis_stock(deal).await == want).then_some(())
    })
    .await;
}

/// (stock, sold_count, version) in the catalog.
async fn stored(env: &TestEnv, deal: DealId) -> (i32, i32, i64) {
    sqlx::query_as("SELECT stock, sold_count, version FROM catalog.deals WHERE deal_id = $1")
        .bind(deal.0)
        .fetch_one(&env.pg)
        .await
        .expect("deal row")
}

async fn outbox_drained(env: &TestEnv) {
    eventually("the catalog outbox to drain", WAIT, || async {
        (env.outbox_rows("catalog").await == 0).then_some(())
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_paused_deal_refuses_orders_until_resumed_and_an_ended_one_for_good() {
    let env = TestEnv::start(Options::default()).await;
    let deal = env.create_deal(1000, 10).await;
    let path = |action: &str| format!("/admin/deals/{deal}/{action}");
    order_until(&env, deal, 202, None).await;

    let (status, body) = post(&env, &path("pause"), json!({})).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["status"], "paused");
    assert_eq!(post(&env, &path("pause"), json!({})).await.0, 409);
    assert_eq!(post(&env, &path("end"), json!({})).await.0, 200);
    assert_eq!(
        post(&env, &path("resume"), json!({})).await.0,
        409,
        "resume of an ended deal"
    );
    // An ended deal stays ended; pause and resume a second one.
    let deal2 = env.create_deal(1000, 10).await;
    let path2 = |action: &str| format!("/admin/deals/{deal2}/{action}");
    assert_eq!(post(&env, &path2("resume"), json!({})).await.0, 409);
    assert_eq!(post(&env, &path2("pause"), json!({})).await.0, 200);
    order_until(&env, deal2, 409, Some(kind::DEAL_NOT_ACTIVE)).await;
    let (status, body) = post(&env, &path2("resume"), json!({})).await;
    assert_eq!((status, body["status"].as_str()), (200, Some("active")));
    order_until(&env, deal2, 202, None).await;

    order_until(&env, deal, 409, Some(kind::DEAL_NOT_ACTIVE)).await;
    let (_, body) = get(&env, &format!("/deals/{deal}")).await;
    assert_eq!(body["status"], "ended");
    for action in ["pause", "resume", "end"] {
        assert_eq!(
            post(&env, &path(action), json!({})).await.0,
            409,
            "{action}"
        );
    }

    let (_, customer) = env.customer_token();
    let res = env
        .http
        .post(env.url(&path2("pause")))
        .bearer_auth(customer)
        .send()
        .await
        .expect("pause");
    assert_eq!(res.status(), 403);
    let unknown = DealId::new_v7();
    let (status, body) = post(&env, &format!("/admin/deals/{unknown}/pause"), json!({})).await;
    assert_eq!(
        (status, body["type"].as_str()),
        (404, Some(kind::NOT_FOUND))
    );
    env.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn stock_adjustments_reach_redis_and_never_take_sold_units() {
    let env = TestEnv::start(Options::default()).await;
    let deal = env.create_deal(10, 5).await;
    let stock = format!("/admin/deals/{deal}/stock");

    let (status, body) = post(&env, &stock, json!({ "delta": 5 })).await;
    assert_eq!((status, body["stock"].as_i64()), (200, Some(15)), "{body}");
    wait_stock(&env, deal, 15).await;

    let (_, token) = env.customer_token();
    assert_eq!(env.order(&token, deal, 3, None).await.0, 202);
    eventually("the order to be counted as sold", WAIT, || async {
        let (_, d) = get(&env, &format!("/deals/{deal}")).await;
        (d["sold_count"] == 3).then_some(())
    })
    .await;
    assert_eq!(env.redis_stock(deal).await, 12);

    // Refused changes write nothing: not the deal, not the outbox, not the log.
    outbox_drained(&env).await;
    let before = (
        stored(&env, deal).await,
        env.topic_size(topics::CATALOG_EVENTS),
    );
    for (delta, want) in [(-13, 409), (-16, 409), (0, 422), (10_000_000, 409)] {
        let (status, body) = post(&env, &stock, json!({ "delta": delta })).await;
        assert_eq!(status, want, "delta {delta}: {body}");
        let problem = if want == 409 {
            kind::CONFLICT
        } else {
            kind::VALIDATION
        };
        assert_eq!(body["type"], problem);
    }
    assert_eq!(post(&env, &stock, json!({ "delta": "x" })).await.0, 422);
    assert_eq!(env.outbox_rows("catalog").await, 0);
    let after = (
        stored(&env, deal).await,
        env.topic_size(topics::CATALOG_EVENTS),
    );
    assert_eq!(before, after, "a refused adjustment wrote something");
    assert_eq!(before.0, (15, 3, 2));

    // Everything not sold can go.
    let (status, body) = post(&env, &stock, json!({ "delta": -12 })).await;
    assert_eq!((status, body["stock"].as_i64()), (200, Some(3)), "{body}");
    wait_stock(&env, deal, 0).await;
    assert_eq!(post(&env, &stock, json!({ "delta": -1 })).await.0, 409);
    assert_eq!(stored(&env, deal).await, (3, 3, 3));
    env.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_cut_cannot_take_reserved_units_even_before_redis_has_seen_the_last_one() {
    // No order-writer: the reservation stays pending (reserved, not sold).
    let env = TestEnv::start(Options {
        in_process_writer: false,
        ..Options::default()
    })
    .await;
    let deal = env.create_deal(10, 5).await;
    let stock = format!("/admin/deals/{deal}/stock");
    let (_, token) = env.customer_token();
    assert_eq!(env.order(&token, deal, 4, None).await.0, 202);
    assert_eq!(env.redis_pending(deal).await, 1);

    let version = stored(&env, deal).await.2;
    assert_eq!(post(&env, &stock, json!({ "delta": -7 })).await.0, 409);
    assert_eq!(stored(&env, deal).await, (10, 0, version));
    assert_eq!(post(&env, &stock, json!({ "delta": -6 })).await.0, 200);
    // Right away, projected or not: the 6 free units are gone.
    assert_eq!(post(&env, &stock, json!({ "delta": -1 })).await.0, 409);
    wait_stock(&env, deal, 0).await;
    assert_eq!(post(&env, &stock, json!({ "delta": -1 })).await.0, 409);
    assert_eq!(post(&env, &stock, json!({ "delta": 2 })).await.0, 200);
    wait_stock(&env, deal, 2).await;
    assert_eq!(stored(&env, deal).await, (6, 0, version + 2));
    env.finish().await;
}

/// The (change, version) of every event about `id` on catalog.events.
async fn logged(env: &TestEnv, id: &str) -> Vec<(String, i64)> {
    env.read_topic(topics::CATALOG_EVENTS)
        .await
        .iter()
        .filter(|m| m.key() == Some(id.as_bytes()))
        .filter_map(|m| match CatalogEvent::decode(m.payload()?).ok()? {
            CatalogEvent::Product(p) => Some((p.change, p.version)),
            CatalogEvent::Deal(d) => Some((d.change, d.version)),
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_product_round_trip_and_its_delete_waits_for_its_deal_to_end() {
    let env = TestEnv::start(Options::default()).await;
    let (status, product) = post(
        &env,
        "/admin/products",
        json!({ "name": "  Espresso machine ", "description": "15 bar" }),
    )
    .await;
    assert_eq!(status, 201, "{product}");
    assert_eq!(
        (product["name"].as_str(), product["version"].as_i64()),
        (Some("Espresso machine"), Some(1))
    );
    let id = product["product_id"]
        .as_str()
        .expect("product_id")
        .to_owned();
    let one = format!("/products/{id}");
    let admin_one = format!("/admin/products/{id}");
    for bad in [
        json!({ "name": " " }),
        json!({ "name": "x", "price": 1 }),
        json!({}),
    ] {
        assert_eq!(post(&env, "/admin/products", bad).await.0, 422);
    }

    let (status, read) = get(&env, &one).await;
    assert_eq!((status, &read), (200, &product));
    assert_eq!(get(&env, "/products/not-a-uuid").await.0, 404);
    let (status, list) = admin(&env, Method::GET, "/admin/products?limit=10", None).await;
    assert_eq!(status, 200);
    assert!(
        list.as_array()
            .expect("list")
            .iter()
            .any(|p| p["product_id"] == id.as_str())
    );
    assert_eq!(
        admin(&env, Method::GET, "/admin/products?limit=0", None)
            .await
            .0,
        422
    );

    let patch = |body| admin(&env, Method::PATCH, &admin_one, Some(body));
    assert_eq!(patch(json!({})).await.0, 422);
    let (status, renamed) = patch(json!({ "name": "Espresso machine II" })).await;
    assert_eq!(status, 200, "{renamed}");
    assert_eq!(renamed["version"], 2);
    assert_eq!(renamed["description"], "15 bar");
    assert_eq!(get(&env, &one).await.1["name"], "Espresso machine II");

    let deal_body = |extra: Value| {
        let mut b = json!({ "price_cents": 4900, "stock": 5, "per_user_limit": 1, "ends_at": in_an_hour() });
        b.as_object_mut()
            .expect("object")
            .extend(extra.as_object().expect("object").clone());
        b
    };
    let (status, body) = post(
        &env,
        "/admin/deals",
        deal_body(json!({ "product_id": id, "product_name": "x" })),
    )
    .await;
    assert_eq!(status, 422, "{body}");
    let missing = uuid::Uuid::now_v7();
    assert_eq!(
        post(
            &env,
            "/admin/deals",
            deal_body(json!({ "product_id": missing }))
        )
        .await
        .0,
        422
    );
    let deal = env
        .create_deal_with(deal_body(json!({ "product_id": id })))
        .await;
    let (_, view) = get(&env, &format!("/deals/{deal}")).await;
    assert_eq!(
        (view["product_id"].as_str(), view["product_name"].as_str()),
        (Some(id.as_str()), Some("Espresso machine II"))
    );

    let (status, body) = admin(&env, Method::DELETE, &admin_one, None).await;
    assert_eq!(
        (status, body["type"].as_str()),
        (409, Some(kind::CONFLICT)),
        "delete with an open deal"
    );
    assert_eq!(get(&env, &one).await.0, 200);
    assert_eq!(
        post(&env, &format!("/admin/deals/{deal}/end"), json!({}))
            .await
            .0,
        200
    );
    assert_eq!(admin(&env, Method::DELETE, &admin_one, None).await.0, 204);
    assert_eq!(get(&env, &one).await.0, 404);
    assert_eq!(patch(json!({ "name": "Ghost" })).await.0, 404);
    assert_eq!(admin(&env, Method::DELETE, &admin_one, None).await.0, 404);
    assert_eq!(
        post(&env, "/admin/deals", deal_body(json!({ "product_id": id })))
            .await
            .0,
        422
    );
    let (_, list) = admin(&env, Method::GET, "/admin/products", None).await;
    assert!(
        !list
            .as_array()
            .expect("list")
            .iter()
            .any(|p| p["product_id"] == id.as_str())
    );
    let (_, customer) = env.customer_token();
    let res = env
        .http
        .delete(env.url(&admin_one))
        .bearer_auth(customer)
        .send()
        .await
        .expect("delete");
    assert_eq!(res.status(), 403);

    // Each accepted write emitted exactly one event, in order, per aggregate.
    outbox_drained(&env).await;
    let own = |c: &str, v| (c.to_owned(), v);
    assert_eq!(
        logged(&env, &id).await,
        vec![
            own("ProductUpserted", 1),
            own("ProductUpserted", 2),
            own("ProductDeleted", 3)
        ]
    );
    assert_eq!(
        logged(&env, &deal.to_string()).await,
        vec![own("DealScheduled", 1), own("DealEnded", 2)]
    );
    env.finish().await;
}

/// The deal ids `GET /deals?{query}` lists.
async fn listed(env: &TestEnv, query: &str) -> BTreeSet<String> {
    let (status, body) = get(env, &format!("/deals?{query}")).await;
    assert_eq!(status, 200, "{query}: {body}");
    body.as_array()
        .expect("array")
        .iter()
        .map(|d| d["deal_id"].as_str().expect("deal_id").to_owned())
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn deals_are_searched_by_product_name_and_status() {
    let env = TestEnv::start(Options::default()).await;
    let now = chrono::Utc::now();
    let deal = |name: &str, starts: chrono::DateTime<chrono::Utc>| {
        env.create_deal_with(json!({
            "product_name": name, "price_cents": 1000, "stock": 5, "per_user_limit": 1,
            "starts_at": starts.to_rfc3339(), "ends_at": (starts + chrono::Duration::hours(1)).to_rfc3339(),
        }))
    };
    let active = deal("Alpha blender", now).await;
    let upcoming = deal("ALPHA kettle", now + chrono::Duration::hours(1)).await;
    let paused = deal("Gamma toaster", now).await;
    let ended = deal("Delta alpha lamp", now).await;
    assert_eq!(
        post(&env, &format!("/admin/deals/{paused}/pause"), json!({}))
            .await
            .0,
        200
    );
    assert_eq!(
        post(&env, &format!("/admin/deals/{ended}/end"), json!({}))
            .await
            .0,
        200
    );
    let ids = |ds: &[DealId]| ds.iter().map(|d| d.to_string()).collect::<BTreeSet<_>>();

    assert_eq!(listed(&env, "").await, ids(&[active, upcoming, paused]));
    assert_eq!(listed(&env, "q=alpha").await, ids(&[active, upcoming]));
    assert_eq!(
        listed(&env, "q=%20Alpha%20&status=ended").await,
        ids(&[ended])
    );
    assert_eq!(listed(&env, "status=active").await, ids(&[active]));
    assert_eq!(listed(&env, "status=upcoming").await, ids(&[upcoming]));
    assert_eq!(listed(&env, "status=paused").await, ids(&[paused]));
    assert_eq!(
        listed(&env, "q=KETTLE&status=upcoming").await,
        ids(&[upcoming])
    );
    assert_eq!(listed(&env, "q=kettle&status=active").await, ids(&[]));
    assert_eq!(
        listed(&env, "q=%25").await,
        ids(&[]),
        "`%` is not a wildcard"
    );
    assert_eq!(listed(&env, "limit=1").await.len(), 1);
    let (_, body) = get(&env, "/deals?status=paused").await;
    assert_eq!(
        (body[0]["status"].as_str(), body[0]["sold_count"].as_i64()),
        (Some("paused"), Some(0))
    );

    let long = "a".repeat(201);
    for bad in [
        "status=scheduled",
        "status=",
        "limit=0",
        "limit=abc",
        &format!("q={long}"),
    ] {
        let (status, body) = get(&env, &format!("/deals?{bad}")).await;
        assert_eq!(
            (status, body["type"].as_str()),
            (422, Some(kind::VALIDATION)),
            "{bad}"
        );
    }
    env.finish().await;
}
