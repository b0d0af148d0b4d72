//! The gateway's one error type. Every failure leaves as RFC 9457
//! `application/problem+json`; a 5xx never carries internal details (they go
//! to the log with the request's span instead).

use axum::{
    http::{HeaderValue, StatusCode, header},
    response::{IntoResponse, Response},
};
use serde::Serialize;

/// The `type` URIs clients can match on.
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
    pub const RATE_LIMITED: &str = "https://flashdeal.dev/problems/rate-limited";
    pub const UNAVAILABLE: &str = "https://flashdeal.dev/problems/unavailable";
    pub const INTERNAL: &str = "https://flashdeal.dev/problems/internal";
}

/// Everything a handler can fail with.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    #[error("{0}")]
    Validation(String),
    #[error("{0}")]
    Malformed(String),
    #[error("expected `Content-Type: application/json`")]
    UnsupportedMediaType,
    #[error("request body is larger than {0} bytes")]
    PayloadTooLarge(usize),
    #[error("{0}")]
    Unauthenticated(&'static str),
    #[error("{0}")]
    Forbidden(&'static str),
    #[error("{0} not found")]
    NotFound(&'static str),
    #[error("the deal is sold out")]
    SoldOut,
    #[error("this order would exceed the deal's per-user limit of {limit}")]
    LimitReached { limit: i64 },
    #[error("the deal is not active")]
    DealNotActive,
    #[error("{0}")]
    Conflict(&'static str),
    #[error("too many requests from this {scope}; retry in {retry_after_secs} s")]
    RateLimited {
        scope: &'static str,
        retry_after_secs: u64,
    },
    #[error("{0}")]
    Unavailable(&'static str),
    #[error("internal error")]
    Internal(String),
}

impl From<sqlx::Error> for ApiError {
    fn from(e: sqlx::Error) -> Self {
        match e {
            sqlx::Error::PoolTimedOut | sqlx::Error::Io(_) | sqlx::Error::PoolClosed => {
                tracing::error!(error = %e, "PostgreSQL unavailable");
                Self::Unavailable("the database is unavailable, retry later")
            }
            // Text PostgreSQL cannot store (a NUL character): the client's
            // input, wherever a handler's own checks missed it.
            sqlx::Error::Database(db)
                if matches!(db.code().as_deref(), Some("22021" | "22P05")) =>
            {
                Self::Validation("text fields must not contain NUL characters".to_owned())
            }
            other => Self::Internal(format!("PostgreSQL: {other}")),
        }
    }
}

/// An outbox append failing inside a write's transaction: a database outage
/// stays a 503 like any other; an event that does not encode is a bug, a 500.
impl From<flashdeal_producers::outbox::OutboxError> for ApiError {
    fn from(e: flashdeal_producers::outbox::OutboxError) -> Self {
        use flashdeal_producers::outbox::OutboxError;
        match e {
            OutboxError::Postgres(e) => e.into(),
            e @ OutboxError::Encode { .. } => Self::Internal(format!("outbox: {e}")),
        }
    }
}

impl From<redis::RedisError> for ApiError {
    fn from(e: redis::RedisError) -> Self {
        tracing::error!(error = %e, "Redis error");
        Self::Unavailable("the reservation store is unavailable, retry later")
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
            Self::RateLimited { .. } => (
                S::TOO_MANY_REQUESTS,
                kind::RATE_LIMITED,
                "Too many requests",
            ),
            Self::Unavailable(_) => (
                S::SERVICE_UNAVAILABLE,
                kind::UNAVAILABLE,
                "Service unavailable",
            ),
            Self::Internal(_) => (S::INTERNAL_SERVER_ERROR, kind::INTERNAL, "Internal error"),
        }
    }
}

/// Builds a problem+json response; also used by the body-limit fallback.
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
        let (status, kind, title) = self.parts();
        let detail = match &self {
            Self::Internal(internal) => {
                tracing::error!(error = %internal, "internal error");
                "the server could not complete the request".to_owned()
            }
            other => other.to_string(),
        };
        let mut res = problem(status, kind, title, detail);
        if matches!(self, Self::Unauthenticated(_)) {
            res.headers_mut()
                .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
        }
        if matches!(self, Self::Unavailable(_)) {
            res.headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
        }
        if let Self::RateLimited {
            retry_after_secs, ..
        } = self
        {
            res.headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from(retry_after_secs));
        }
        res
    }
}
