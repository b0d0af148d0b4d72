//! A `Json` extractor whose rejections are problem+json: malformed JSON and
//! a well-formed body with wrong or out-of-range fields are 422 (each with its
//! own problem type), a body over the limit is 413, a wrong content type 415.
//! [`Rejections`] documents those once for every route that takes a body,
//! and [`created`] is the one shape of a `201 Created` with `Location`.

use crate::error::ApiError;
use axum::{
    extract::{FromRequest, Request, rejection::JsonRejection},
    http::{HeaderValue, StatusCode, header},
    response::{IntoResponse, Response},
};
use serde::{Serialize, de::DeserializeOwned};

/// The request body limit of every JSON route.
pub const MAX_BODY_BYTES: usize = 16 * 1024;

/// `axum::Json` with FlashDeal's error mapping.
pub struct Json<T>(pub T);

impl<T: DeserializeOwned, S: Send + Sync> FromRequest<S> for Json<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, ApiError> {
        match axum::Json::<T>::from_request(req, state).await {
            Ok(axum::Json(v)) => Ok(Self(v)),
            Err(JsonRejection::JsonDataError(e)) => Err(ApiError::Validation(e.body_text())),
            Err(JsonRejection::JsonSyntaxError(e)) => Err(ApiError::Malformed(e.body_text())),
            Err(JsonRejection::MissingJsonContentType(_)) => Err(ApiError::UnsupportedMediaType),
            Err(e) if e.status() == StatusCode::PAYLOAD_TOO_LARGE => {
                Err(ApiError::PayloadTooLarge(MAX_BODY_BYTES))
            }
            Err(e) => Err(ApiError::Malformed(e.body_text())),
        }
    }
}

/// What [`Json`] refuses a body with, for the `responses(...)` of every
/// route that takes one: 413, 415 and 422.
#[derive(utoipa::IntoResponses)]
pub enum Rejections {
    #[response(status = 413)]
    TooLarge(#[ref_response] crate::openapi::PayloadTooLarge),
    #[response(status = 415)]
    NotJson(#[ref_response] crate::openapi::UnsupportedMediaType),
    #[response(status = 422)]
    Invalid(#[ref_response] crate::openapi::Invalid),
}

/// `201 Created` with the new resource as the body and `Location: location`,
/// the path clients read it back from.
pub fn created<T: Serialize>(location: &str, body: T) -> Response {
    let mut res = (StatusCode::CREATED, axum::Json(body)).into_response();
    if let Ok(loc) = HeaderValue::from_str(location) {
        res.headers_mut().insert(header::LOCATION, loc);
    }
    res
}
