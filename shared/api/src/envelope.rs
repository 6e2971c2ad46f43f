//! The response envelope every API answer is wrapped in.
//!
//! Success: `{"success": true, "data", "message", "timestamp"}`;
//! failure: `{"success": false, "error": {"code", "message", "details"}, "timestamp"}`.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use utoipa::ToSchema;

/// The stable error codes clients can branch on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum ErrorCode {
    ValidationError,
    Unauthorized,
    Forbidden,
    NotFound,
    MethodNotAllowed,
    Conflict,
    PayloadTooLarge,
    UnsupportedMediaType,
    RateLimited,
    ServiceUnavailable,
    Internal,
}

impl ErrorCode {
    /// The HTTP status that carries this code.
    pub fn status(self) -> u16 {
        match self {
            ErrorCode::ValidationError => 400,
            ErrorCode::Unauthorized => 401,
            ErrorCode::Forbidden => 403,
            ErrorCode::NotFound => 404,
            ErrorCode::MethodNotAllowed => 405,
            ErrorCode::Conflict => 409,
            ErrorCode::PayloadTooLarge => 413,
            ErrorCode::UnsupportedMediaType => 415,
            ErrorCode::RateLimited => 429,
            ErrorCode::ServiceUnavailable => 503,
            ErrorCode::Internal => 500,
        }
    }

    /// The code for a bare HTTP error status (used when a layer answers by itself).
    pub fn from_status(status: u16) -> Self {
        match status {
            401 => ErrorCode::Unauthorized,
            403 => ErrorCode::Forbidden,
            404 => ErrorCode::NotFound,
            405 => ErrorCode::MethodNotAllowed,
            409 => ErrorCode::Conflict,
            413 => ErrorCode::PayloadTooLarge,
            415 => ErrorCode::UnsupportedMediaType,
            429 => ErrorCode::RateLimited,
            503 => ErrorCode::ServiceUnavailable,
            400..=499 => ErrorCode::ValidationError,
            _ => ErrorCode::Internal,
        }
    }
}

/// The error part of a failure envelope.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct ErrorBody {
    pub code: ErrorCode,
    pub message: String,
    /// Structured context (e.g. which field was invalid); `null` when there is none.
    #[schema(value_type = Option<Object>)]
    pub details: Value,
}

/// A failed answer.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct Failure {
    /// Always `false`.
    pub success: bool,
    pub error: ErrorBody,
    pub timestamp: DateTime<Utc>,
}

impl Failure {
    pub fn new(code: ErrorCode, message: impl Into<String>, details: Value) -> Self {
        Self {
            success: false,
            error: ErrorBody {
                code,
                message: message.into(),
                details,
            },
            timestamp: Utc::now(),
        }
    }
}

/// A successful answer carrying `data`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct Success<T> {
    /// Always `true`.
    pub success: bool,
    pub data: T,
    pub message: Option<String>,
    pub timestamp: DateTime<Utc>,
}

impl<T> Success<T> {
    pub fn new(data: T) -> Self {
        Self {
            success: true,
            data,
            message: None,
            timestamp: Utc::now(),
        }
    }

    pub fn with_message(data: T, message: impl Into<String>) -> Self {
        Self {
            message: Some(message.into()),
            ..Self::new(data)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn failure_serialises_to_the_documented_shape() {
        let f = Failure::new(ErrorCode::NotFound, "no such dataset", Value::Null);
        let v = serde_json::to_value(&f).unwrap();
        assert_eq!(v["success"], false);
        assert_eq!(v["error"]["code"], "NOT_FOUND");
        assert_eq!(v["error"]["message"], "no such dataset");
        assert!(v["timestamp"].is_string());
        assert_eq!(ErrorCode::from_status(413), ErrorCode::PayloadTooLarge);
        assert_eq!(ErrorCode::PayloadTooLarge.status(), 413);
    }
}
