//! The API contract: OpenAPI 3.1, generated from the handlers' `#[utoipa::path]`
//! attributes (the router registers each route from its attribute, see
//! [`crate::api`], so a route and its documentation cannot drift apart),
//! served at `/openapi.json`; `/docs` is Swagger UI on that document.
//!
//! Errors are RFC 9457 problem+json ([`Problem`]); each status a route can
//! answer is one of the reusable responses below, so the contract test
//! (`scripts/contract.sh`) can hold the gateway to them.
//!
//! `/docs` is one static page that loads Swagger UI's script and style from
//! a CDN, pinned by version and integrity hash: nothing is downloaded at
//! build time (the `utoipa-swagger-ui` crate downloads Swagger UI from
//! GitHub in its build script), the binary carries 2 KB instead of 1.5 MB,
//! and the browser showing the page needs to reach the CDN.

use axum::{
    Extension,
    http::{HeaderValue, header},
    response::{Html, IntoResponse, Response},
};
use serde::Serialize;
use std::sync::Arc;
use utoipa::{
    Modify, OpenApi, ToSchema,
    openapi::{
        ContentBuilder, Ref, RefOr, ResponseBuilder,
        header::HeaderBuilder,
        response::Response as OaResponse,
        security::{HttpAuthScheme, HttpBuilder, SecurityScheme},
    },
};

/// RFC 9457 problem details, the body of every error
/// (`Content-Type: application/problem+json`).
#[derive(Serialize, ToSchema)]
#[schema(example = json!({
    "type": "https://flashdeal.dev/problems/sold-out",
    "title": "Sold out",
    "status": 409,
    "detail": "the deal is sold out"
}))]
pub struct Problem {
    /// A URI naming the kind of problem; clients match on it
    /// (`https://flashdeal.dev/problems/<kind>`).
    #[serde(rename = "type")]
    pub kind: String,
    /// A short, human-readable summary of the kind.
    pub title: String,
    /// The HTTP status code.
    pub status: u16,
    /// What went wrong with this request.
    pub detail: String,
}

fn problem_response(description: &str, headers: &[(&str, &str)]) -> OaResponse {
    let content = ContentBuilder::new()
        .schema(Some(Ref::from_schema_name("Problem")))
        .build();
    let mut res = ResponseBuilder::new()
        .description(description)
        .content("application/problem+json", content);
    for (name, what) in headers {
        res = res.header(
            *name,
            HeaderBuilder::new()
                .schema(<String as utoipa::PartialSchema>::schema())
                .description(Some(*what))
                .build(),
        );
    }
    res.build()
}

macro_rules! problem_responses {
    ($($(#[$doc:meta])* $name:ident => $desc:literal $([$($h:literal: $hd:literal),*])?;)*) => {
        $(
            $(#[$doc])*
            pub struct $name;

            impl<'s> utoipa::ToResponse<'s> for $name {
                fn response() -> (&'s str, RefOr<OaResponse>) {
                    let headers: &[(&str, &str)] = &[$($(($h, $hd)),*)?];
                    (stringify!($name), problem_response($desc, headers).into())
                }
            }
        )*
    };
}

problem_responses! {
    /// 401 `unauthenticated`.
    Unauthenticated => "Missing, malformed, expired, forged or revoked token, or wrong credentials (`unauthenticated`)"
        ["WWW-Authenticate": "`Bearer`"];
    /// 403 `forbidden`.
    Forbidden => "The account is blocked, or the route needs the admin role (`forbidden`)";
    /// 404 `not-found`.
    NotFound => "No such resource (`not-found`); a malformed id is unknown too";
    /// 409 on a conflicting change.
    Conflict => "The change conflicts with the current state (`conflict`)";
    /// 409 on an order.
    OrderRefused => "Refused: `sold-out`, `per-user-limit` or `deal-not-active`";
    /// 413.
    PayloadTooLarge => "The body is over 16 KiB (`payload-too-large`)";
    /// 415.
    UnsupportedMediaType => "The body is not `application/json` (`malformed-request`)";
    /// 422.
    Invalid => "The body is not JSON (`malformed-request`), or a field, parameter or header is wrong, out of range or unknown (`validation`)";
    /// 429.
    RateLimited => "Too many requests from this IP or user (`rate-limited`)"
        ["Retry-After": "Seconds until a request is allowed again"];
    /// 503.
    Unavailable => "PostgreSQL, Redis or the log did not answer; retry (`unavailable`)"
        ["Retry-After": "Seconds to wait before retrying"];
}

/// Declares the bearer scheme every protected route names.
struct BearerAuth;

impl Modify for BearerAuth {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .bearer_format("JWT")
                    .description(Some("An access token from `POST /auth/login` (HS256 JWT)."))
                    .build(),
            ),
        );
    }
}

/// What the document says besides its paths (those come from the router).
#[derive(OpenApi)]
#[openapi(
    info(
        title = "FlashDeal",
        description = "Flash-sale order API: accounts, catalog, order ingress and status. \
            Errors are `application/problem+json`; see docs/api.md.",
        license(name = "Apache-2.0", identifier = "Apache-2.0")
    ),
    modifiers(&BearerAuth),
    components(
        schemas(Problem),
        responses(
            Unauthenticated, Forbidden, NotFound, Conflict, OrderRefused, PayloadTooLarge,
            UnsupportedMediaType, Invalid, RateLimited, Unavailable
        )
    ),
    tags(
        (name = "auth", description = "Accounts and access tokens"),
        (name = "admin", description = "Admin actions on accounts and keys"),
        (name = "catalog", description = "Products and deals"),
        (name = "orders", description = "Order ingress and status"),
        (name = "operations", description = "Health, readiness, metrics, this document")
    )
)]
pub struct ApiDoc;

/// The rendered document, shared by every request.
#[derive(Clone)]
pub struct SpecJson(pub Arc<str>);

/// `GET /openapi.json`.
#[utoipa::path(
    get,
    path = "/openapi.json",
    tag = "operations",
    responses(
        (status = 200, description = "This document (OpenAPI 3.1)", content_type = "application/json", body = Object),
        (status = 429, response = RateLimited)
    )
)]
pub async fn openapi_json(Extension(spec): Extension<SpecJson>) -> Response {
    let mut res = spec.0.to_string().into_response();
    res.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    res
}

/// `GET /docs`: Swagger UI on `/openapi.json`.
#[utoipa::path(
    get,
    path = "/docs",
    tag = "operations",
    responses(
        (status = 200, description = "Swagger UI (HTML)", content_type = "text/html", body = String),
        (status = 429, response = RateLimited)
    )
)]
pub async fn docs() -> Html<&'static str> {
    Html(include_str!("docs.html"))
}
