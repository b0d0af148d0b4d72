//! A `Json` extractor whose rejections are problem+json: malformed JSON and
//! a well-formed body with wrong or out-of-range fields are 422 (each with its
//! own problem type), a body over the limit is 413, a wrong content type 415.

use crate::error::ApiError;
use axum::{
    extract::{FromRequest, Request, rejection::JsonRejection},
    http::StatusCode,
};
use serde::de::DeserializeOwned;

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
