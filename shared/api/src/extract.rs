//! Extractors whose rejections are envelopes with stable codes rather than axum's
//! plain-text bodies.

use axum::body::Bytes;
use axum::extract::rejection::{JsonRejection, PathRejection, QueryRejection};
use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::{StatusCode, header};
use serde::de::DeserializeOwned;
use serde_json::json;
use synth_core::ErrorCode;
use synth_core::json::{MAX_DOCUMENT_DEPTH, check_depth};

use crate::error::ApiError;

/// JSON body; bad JSON is 400, a missing JSON content type 415, too large 413, and nesting
/// deeper than [`MAX_DOCUMENT_DEPTH`] 400 before the body is parsed.
#[derive(Debug, Clone, Copy, Default)]
pub struct Json<T>(pub T);

impl<T: DeserializeOwned, S: Send + Sync> FromRequest<S> for Json<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, ApiError> {
        let is_json = req
            .headers()
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.split(';').next())
            .map(|mime| {
                let mime = mime.trim().to_ascii_lowercase();
                mime == "application/json"
                    || (mime.starts_with("application/") && mime.ends_with("+json"))
            })
            .unwrap_or(false);
        if !is_json {
            return Err(ApiError::new(
                ErrorCode::UnsupportedMediaType,
                "expected a request with Content-Type: application/json",
            ));
        }
        let bytes = Bytes::from_request(req, state).await.map_err(|r| {
            if r.status() == StatusCode::PAYLOAD_TOO_LARGE {
                ApiError::new(ErrorCode::PayloadTooLarge, "request body too large")
            } else {
                ApiError::validation("could not read the request body")
                    .with_details(json!({ "reason": r.body_text() }))
            }
        })?;
        if let Err(e) = check_depth(&bytes, MAX_DOCUMENT_DEPTH) {
            return Err(
                ApiError::validation("invalid JSON body").with_details(json!({
                    "reason": e.to_string(),
                    "max_depth": MAX_DOCUMENT_DEPTH,
                })),
            );
        }
        axum::Json::<T>::from_bytes(&bytes)
            .map(|axum::Json(v)| Json(v))
            .map_err(ApiError::from)
    }
}

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
