//! The one error type. Every failure leaves as RFC 9457
//! `application/problem+json` with the same `type` URIs and status codes as
//! FlashDeal, so the k6 script classifies both servers' answers the same way.
//! A 5xx never carries internal details; those go to stderr.

use axum::{
    http::{HeaderValue, StatusCode, header},
    response::{IntoResponse, Response},
};
use serde::Serialize;
use std::fmt;

/// The `type` URIs clients match on (shared with FlashDeal).
pub mod kind {
    pub const VALIDATION: &str = "https://flashdeal.dev/problems/validation";
    pub const MALFORMED: &str = "https://flashdeal.dev/problems/malformed-request";
    pub const PAYLOAD_TOO_LARGE: &str = "https://flashdeal.dev/problems/payload-too-large";
    pub const UNAUTHENTICATED: &str = "https://flashdeal.dev/problems/unauthenticated";
    pub const FORBIDDEN: &str = "https://flashdeal.dev/problems/forbidden";
    pub const NOT_FOUND: &str = "https://flashdeal.dev/problems/not-found";
    pub const SOLD_OUT: &str = "https://flashdeal.dev/problems/sold-out";
    pub const LIMIT_REACHED: &str = "https://flashdeal.dev/problems/per-user-limit";
    pub const DEAL_NOT_ACTIVE: &str = "https://flashdeal.dev/problems/deal-not-active";
    pub const CONFLICT: &str = "https://flashdeal.dev/problems/conflict";
    pub const UNAVAILABLE: &str = "https://flashdeal.dev/problems/unavailable";
    pub const INTERNAL: &str = "https://flashdeal.dev/problems/internal";
}

/// Everything a handler can fail with.
#[derive(Debug, PartialEq, Eq)]
pub enum ApiError {
    /// A well-formed body or header with a wrong or out-of-range value.
    Validation(String),
    /// A body that is not JSON.
    Malformed(String),
    UnsupportedMediaType,
    PayloadTooLarge(usize),
    Unauthenticated(&'static str),
    Forbidden(&'static str),
    /// What was not found: `deal`, `order`, `route`.
    NotFound(&'static str),
    SoldOut,
    LimitReached {
        limit: i32,
    },
    DealNotActive,
    Conflict(&'static str),
    /// PostgreSQL did not answer (pool exhausted or connection lost).
    Unavailable,
    /// Logged, never shown to the client.
    Internal(String),
}

impl fmt::Display for ApiError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Validation(m) | Self::Malformed(m) => f.write_str(m),
            Self::UnsupportedMediaType => f.write_str("expected `Content-Type: application/json`"),
            Self::PayloadTooLarge(max) => write!(f, "request body is larger than {max} bytes"),
            Self::Unauthenticated(m) | Self::Forbidden(m) | Self::Conflict(m) => f.write_str(m),
            Self::NotFound(what) => write!(f, "{what} not found"),
            Self::SoldOut => f.write_str("the deal is sold out"),
            Self::LimitReached { limit } => write!(
                f,
                "this order would exceed the deal's per-user limit of {limit}"
            ),
            Self::DealNotActive => f.write_str("the deal is not active"),
            Self::Unavailable => f.write_str("the database is unavailable, retry later"),
            Self::Internal(_) => f.write_str("the server could not complete the request"),
        }
    }
}

impl From<sqlx::Error> for ApiError {
    fn from(e: sqlx::Error) -> Self {
        match e {
            sqlx::Error::PoolTimedOut | sqlx::Error::Io(_) | sqlx::Error::PoolClosed => {
                eprintln!("PostgreSQL unavailable: {e}");
                Self::Unavailable
            }
            other => Self::Internal(format!("PostgreSQL: {other}")),
        }
    }
}

impl ApiError {
    fn parts(&self) -> (StatusCode, &'static str, &'static str) {
        use StatusCode as S;
        match self {
            Self::Validation(_) => (S::UNPROCESSABLE_ENTITY, kind::VALIDATION, "Invalid request"),
            Self::Malformed(_) => (
                S::UNPROCESSABLE_ENTITY,
                kind::MALFORMED,
                "Malformed request",
            ),
            Self::UnsupportedMediaType => (
                S::UNSUPPORTED_MEDIA_TYPE,
                kind::MALFORMED,
                "Unsupported media type",
            ),
            Self::PayloadTooLarge(_) => (
                S::PAYLOAD_TOO_LARGE,
                kind::PAYLOAD_TOO_LARGE,
                "Payload too large",
            ),
            Self::Unauthenticated(_) => (S::UNAUTHORIZED, kind::UNAUTHENTICATED, "Unauthenticated"),
            Self::Forbidden(_) => (S::FORBIDDEN, kind::FORBIDDEN, "Forbidden"),
            Self::NotFound(_) => (S::NOT_FOUND, kind::NOT_FOUND, "Not found"),
            Self::SoldOut => (S::CONFLICT, kind::SOLD_OUT, "Sold out"),
            Self::LimitReached { .. } => {
                (S::CONFLICT, kind::LIMIT_REACHED, "Per-user limit reached")
            }
            Self::DealNotActive => (S::CONFLICT, kind::DEAL_NOT_ACTIVE, "Deal not active"),
            Self::Conflict(_) => (S::CONFLICT, kind::CONFLICT, "Conflict"),
            Self::Unavailable => (
                S::SERVICE_UNAVAILABLE,
                kind::UNAVAILABLE,
                "Service unavailable",
            ),
            Self::Internal(_) => (S::INTERNAL_SERVER_ERROR, kind::INTERNAL, "Internal error"),
        }
    }
}

#[derive(Serialize)]
struct Problem<'a> {
    #[serde(rename = "type")]
    kind: &'a str,
    title: &'a str,
    status: u16,
    detail: String,
}

/// A problem+json response; also used for 405.
pub fn problem(status: StatusCode, kind: &str, title: &str, detail: String) -> Response {
    let body = Problem {
        kind,
        title,
        status: status.as_u16(),
        detail,
    };
    let mut res = (status, axum::Json(body)).into_response();
    res.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/problem+json"),
    );
    res
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        if let Self::Internal(internal) = &self {
            eprintln!("internal error: {internal}");
        }
        let (status, kind, title) = self.parts();
        let mut res = problem(status, kind, title, self.to_string());
        match self {
            Self::Unauthenticated(_) => {
                res.headers_mut()
                    .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
            }
            Self::Unavailable => {
                res.headers_mut()
                    .insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
            }
            _ => {}
        }
        res
    }
}
