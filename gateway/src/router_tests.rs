//! The router against its OpenAPI document, and the rate limiter in front
//! of it. No service is reached: the state's clients connect lazily and the
//! requests used here are answered before any handler needs one.

use crate::{
    AppState, Databases, GatewaySettings, api,
    auth::{JwtKeys, Role},
    rate_limit::{Rate, RateLimitSettings},
    router,
};
use axum::{
    Router,
    body::Body,
    extract::{ConnectInfo, MatchedPath, Request},
    http::{Method, StatusCode},
    middleware::{self, Next},
};
use flashdeal_producers::EventPublisher;
use flashdeal_schemas::UserId;
use std::{net::SocketAddr, sync::Arc, time::Duration};
use tower::ServiceExt;

fn offline_state(settings: GatewaySettings) -> AppState {
    let pool = sqlx::postgres::PgPoolOptions::new()
        .acquire_timeout(Duration::from_millis(100))
        .connect_lazy("postgres://nobody@127.0.0.1:1/none")
        .expect("lazy pool");
    let redis = redis::aio::ConnectionManager::new_lazy_with_config(
        redis::Client::open("redis://127.0.0.1:1").expect("redis url"),
        redis::aio::ConnectionManagerConfig::new(),
    )
    .expect("lazy redis");
    let producer = rdkafka::ClientConfig::new()
        .set("bootstrap.servers", "127.0.0.1:1")
        .create()
        .expect("producer");
    let jwt = JwtKeys::hs256("k1", &[7; 32], "iss", "aud", Duration::from_secs(60)).expect("keys");
    AppState {
        db: Databases {
            auth: pool.clone(),
            catalog: pool.clone(),
            orders: pool,
        },
        redis,
        publisher: EventPublisher::new(producer),
        jwt: Arc::new(jwt),
        settings: Arc::new(settings),
        metrics: None,
    }
}

const METHODS: [Method; 5] = [
    Method::GET,
    Method::POST,
    Method::PUT,
    Method::PATCH,
    Method::DELETE,
];

async fn send(app: &Router, req: Request) -> axum::response::Response {
    app.clone().oneshot(req).await.expect("infallible")
}

fn concrete(path: &str) -> String {
    path.replace("{id}", &uuid::Uuid::now_v7().to_string())
}

#[tokio::test]
async fn every_route_is_in_the_document_and_every_operation_is_routed() {
    let (routes, spec) = api().split_for_parts();
    // Runs every handler as routed (they fail fast without services) and
    // tells which route template matched. A method a path does not have is
    // answered 405 by the router itself, an unknown path 404 with no match.
    let probe = routes
        .route_layer(middleware::from_fn(|req: Request, next: Next| async move {
            let matched = req
                .extensions()
                .get::<MatchedPath>()
                .map(|m| m.as_str().to_owned());
            let mut res = next.run(req).await;
            if let Some(m) = matched.and_then(|m| m.parse().ok()) {
                res.headers_mut().insert("x-matched", m);
            }
            res
        }))
        .with_state(offline_state(GatewaySettings::default()));
    let mut operations = 0;
    for (path, item) in &spec.paths.paths {
        for method in METHODS {
            let documented = match method {
                Method::GET => item.get.is_some(),
                Method::POST => item.post.is_some(),
                Method::PUT => item.put.is_some(),
                Method::PATCH => item.patch.is_some(),
                _ => item.delete.is_some(),
            };
            let req = Request::builder()
                .method(method.clone())
                .uri(concrete(path))
                .body(Body::empty())
                .expect("request");
            let res = send(&probe, req).await;
            assert_eq!(
                res.headers()
                    .get("x-matched")
                    .map(|m| m.to_str().expect("ascii")),
                Some(path.as_str()),
                "{method} {path}"
            );
            let routed = res.status() != StatusCode::METHOD_NOT_ALLOWED;
            assert_eq!(routed, documented, "{method} {path}: {}", res.status());
            operations += usize::from(routed);
        }
    }
    assert_eq!(
        operations, 25,
        "a route was added or removed: update docs/api.md"
    );
}

#[test]
fn every_operation_documents_its_errors() {
    let spec = api().into_openapi();
    assert_eq!(
        serde_json::to_value(&spec).expect("json")["openapi"],
        "3.1.0"
    );
    let probes = ["/healthz", "/readyz", "/metrics"];
    for (path, item) in &spec.paths.paths {
        let ops = [&item.get, &item.post, &item.put, &item.patch, &item.delete];
        for op in ops.into_iter().flatten() {
            let statuses: Vec<&str> = op.responses.responses.keys().map(String::as_str).collect();
            assert!(
                statuses.iter().any(|s| s.starts_with('2')),
                "{path}: no success response"
            );
            if !probes.contains(&path.as_str()) {
                assert!(statuses.contains(&"429"), "{path}: 429 undocumented");
            }
            if op.security.is_some() {
                assert!(statuses.contains(&"401"), "{path}: 401 undocumented");
                assert!(statuses.contains(&"403"), "{path}: 403 undocumented");
            }
            if op.request_body.is_some() {
                for s in ["413", "415", "422"] {
                    assert!(statuses.contains(&s), "{path}: {s} undocumented");
                }
            }
        }
    }
}

fn limited(per_ip: Option<Rate>, per_user: Option<Rate>) -> (Router, AppState) {
    let state = offline_state(GatewaySettings {
        rate_limit: RateLimitSettings {
            per_ip,
            per_user,
            exempt_loopback: false,
            ..RateLimitSettings::default()
        },
        ..GatewaySettings::default()
    });
    (router(state.clone()), state)
}

/// A request from `peer` that the handlers answer without a service:
/// malformed ids are 404s.
fn get(uri: &str, peer: &str, token: Option<&str>) -> Request {
    let mut req = Request::builder().uri(uri);
    if let Some(t) = token {
        req = req.header("authorization", format!("Bearer {t}"));
    }
    let mut req = req.body(Body::empty()).expect("request");
    req.extensions_mut()
        .insert(ConnectInfo::<SocketAddr>(peer.parse().expect("peer")));
    req
}

#[tokio::test]
async fn an_ip_over_its_burst_gets_429_with_retry_after() {
    let (app, _) = limited(Rate::new(0.5, 2), None);
    let a = "192.0.2.1:4000";
    for _ in 0..2 {
        let res = send(&app, get("/deals/x", a, None)).await;
        assert_eq!(res.status(), StatusCode::NOT_FOUND);
    }
    let res = send(&app, get("/deals/x", a, None)).await;
    assert_eq!(res.status(), StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(res.headers()["retry-after"], "2");
    assert_eq!(res.headers()["content-type"], "application/problem+json");
    // Probes are never limited; another address has its own bucket.
    let res = send(&app, get("/healthz", a, None)).await;
    assert_eq!(res.status(), StatusCode::OK);
    let res = send(&app, get("/deals/x", "192.0.2.2:4000", None)).await;
    assert_eq!(res.status(), StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn a_user_over_their_burst_gets_429_and_others_are_served() {
    let (app, state) = limited(None, Rate::new(1.0, 2));
    let peer = "192.0.2.1:4000";
    let alice = state
        .jwt
        .issue(UserId::new_v7(), Role::Customer)
        .expect("token");
    let bob = state
        .jwt
        .issue(UserId::new_v7(), Role::Customer)
        .expect("token");
    for _ in 0..2 {
        let res = send(&app, get("/orders/x", peer, Some(&alice))).await;
        assert_eq!(res.status(), StatusCode::NOT_FOUND);
    }
    let res = send(&app, get("/orders/x", peer, Some(&alice))).await;
    assert_eq!(res.status(), StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(res.headers()["retry-after"], "1");
    let res = send(&app, get("/orders/x", peer, Some(&bob))).await;
    assert_eq!(res.status(), StatusCode::NOT_FOUND);
    // A token that does not verify is not a user: the handler says 401.
    let res = send(&app, get("/orders/x", peer, Some("forged"))).await;
    assert_eq!(res.status(), StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn the_document_and_the_docs_page_are_served() {
    let (app, _) = limited(None, None);
    let res = send(&app, get("/openapi.json", "192.0.2.1:1", None)).await;
    assert_eq!(res.status(), StatusCode::OK);
    assert_eq!(res.headers()["content-type"], "application/json");
    let body = axum::body::to_bytes(res.into_body(), 1 << 20)
        .await
        .expect("body");
    let doc: serde_json::Value = serde_json::from_slice(&body).expect("json");
    assert!(doc["paths"]["/orders"]["post"].is_object());
    assert!(doc["components"]["securitySchemes"]["bearer"].is_object());
    let res = send(&app, get("/docs", "192.0.2.1:1", None)).await;
    assert_eq!(res.status(), StatusCode::OK);
    assert!(
        res.headers()["content-type"]
            .to_str()
            .expect("ascii")
            .starts_with("text/html")
    );
}
