//! Extractors whose rejections are envelopes with stable codes rather than axum's
//! plain-text bodies.

use axum::extract::rejection::{JsonRejection, PathRejection, QueryRejection};
use axum::extract::{FromRequest, FromRequestParts};
use axum::http::StatusCode;
use serde_json::json;
use synth_core::ErrorCode;

use crate::error::ApiError;

/// JSON body; bad JSON is 400, a missing JSON content type 415, too large 413.
#[derive(Debug, Clone, Copy, Default, FromRequest)]
#[from_request(via(axum::Json), rejection(ApiError))]
pub struct Json<T>(pub T);

/// Query string parameters; invalid ones are 400.
#[derive(Debug, Clone, Copy, Default, FromRequestParts)]
#[from_request(via(axum::extract::Query), rejection(ApiError))]
pub struct Query<T>(pub T);

/// Path parameters; invalid ones are 400.
#[derive(Debug, Clone, Copy, Default, FromRequestParts)]
#[from_request(via(axum::extract::Path), rejection(ApiError))]
pub struct Path<T>(pub T);

impl From<JsonRejection> for ApiError {
    fn from(r: JsonRejection) -> Self {
        let code = match r.status() {
            StatusCode::UNSUPPORTED_MEDIA_TYPE => ErrorCode::UnsupportedMediaType,
            StatusCode::PAYLOAD_TOO_LARGE => ErrorCode::PayloadTooLarge,
            _ => ErrorCode::ValidationError,
        };
        let message = match code {
            ErrorCode::UnsupportedMediaType => {
                "expected a request with Content-Type: application/json".into()
            }
            ErrorCode::PayloadTooLarge => "request body too large".into(),
            _ => "invalid JSON body".to_string(),
        };
        ApiError::new(code, message).with_details(json!({ "reason": r.body_text() }))
    }
}

impl From<QueryRejection> for ApiError {
    fn from(r: QueryRejection) -> Self {
        ApiError::validation("invalid query parameters")
            .with_details(json!({ "reason": r.body_text() }))
    }
}

impl From<PathRejection> for ApiError {
    fn from(r: PathRejection) -> Self {
        ApiError::validation("invalid path parameters")
            .with_details(json!({ "reason": r.body_text() }))
    }
}
