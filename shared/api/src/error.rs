//! API errors: every failure leaves the HTTP edge as the envelope
//! `{"success": false, "error": {"code", "message", "details"}, "timestamp"}`.

use crate::envelope::{ErrorCode, Failure};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::Value;
use synth_core::{PortError, ServiceError};

/// A failure to report to the client.
#[derive(Debug, Clone, PartialEq)]
pub struct ApiError {
    pub code: ErrorCode,
    pub message: String,
    pub details: Value,
    /// Seconds the client should wait (sent as `Retry-After` on 429).
    pub retry_after: Option<u64>,
}

impl ApiError {
    pub fn new(code: ErrorCode, message: impl Into<String>) -> Self {
        Self {
            code,
            message: message.into(),
            details: Value::Null,
            retry_after: None,
        }
    }

    pub fn with_details(mut self, details: Value) -> Self {
        self.details = details;
        self
    }

    pub fn validation(message: impl Into<String>) -> Self {
        Self::new(ErrorCode::ValidationError, message)
    }

    /// The same error with each field it names (`details.field`, every one of
    /// `details.errors` and `details.warnings`, and the message's leading `field: `) as
    /// `rename` spells it: for a route whose body places a field otherwise than the service.
    pub fn renaming_fields(mut self, rename: impl Fn(&str) -> String) -> Self {
        if let Some(field) = self.details.get("field").and_then(Value::as_str) {
            let renamed = rename(field);
            if let Some(rest) = self.message.strip_prefix(&format!("{field}: ")) {
                self.message = format!("{renamed}: {rest}");
            }
            self.details["field"] = Value::String(renamed);
        }
        for list in ["errors", "warnings"] {
            let problems = self.details.get_mut(list).and_then(Value::as_array_mut);
            for p in problems.into_iter().flatten() {
                if let Some(field) = p.get("field").and_then(Value::as_str) {
                    p["field"] = Value::String(rename(field));
                }
            }
        }
        self
    }

    pub fn not_found(message: impl Into<String>) -> Self {
        Self::new(ErrorCode::NotFound, message)
    }

    pub fn conflict(message: impl Into<String>) -> Self {
        Self::new(ErrorCode::Conflict, message)
    }

    pub fn unauthorized(message: impl Into<String>) -> Self {
        Self::new(ErrorCode::Unauthorized, message)
    }

    pub fn forbidden(message: impl Into<String>) -> Self {
        Self::new(ErrorCode::Forbidden, message)
    }

    pub fn internal() -> Self {
        Self::new(ErrorCode::Internal, "internal error")
    }

    pub fn status(&self) -> StatusCode {
        StatusCode::from_u16(self.code.status()).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR)
    }
}

impl From<PortError> for ApiError {
    fn from(e: PortError) -> Self {
        match e {
            PortError::ConditionFailed | PortError::TransactionCanceled { .. } => {
                Self::conflict("the resource was changed concurrently or already exists")
            }
            PortError::NotFound(what) => Self::not_found(format!("not found: {what}")),
            PortError::InvalidCursor => Self::validation("invalid pagination cursor"),
            PortError::Invalid(m) => Self::validation(m),
            PortError::Unavailable(m) => {
                tracing::error!(error = %m, "backend unavailable");
                Self::new(
                    ErrorCode::ServiceUnavailable,
                    "a backing service is unavailable",
                )
            }
            PortError::Backend(m) => {
                // Details of backend failures stay in the logs, not in responses.
                tracing::error!(error = %m, "backend error");
                Self::internal()
            }
        }
    }
}

impl From<ServiceError> for ApiError {
    fn from(e: ServiceError) -> Self {
        match e {
            ServiceError::Validation(m, details) => Self::validation(m).with_details(details),
            ServiceError::Unauthorized(m) => Self::unauthorized(m),
            ServiceError::Forbidden(m) => Self::forbidden(m),
            ServiceError::NotFound(m) => Self::not_found(m),
            ServiceError::Conflict(m) => Self::conflict(m),
            ServiceError::RateLimited {
                message,
                retry_after_seconds,
            } => {
                let mut e = Self::new(ErrorCode::RateLimited, message).with_details(
                    serde_json::json!({ "retry_after_seconds": retry_after_seconds }),
                );
                e.retry_after = Some(retry_after_seconds);
                e
            }
            ServiceError::TooLarge(m) => Self::new(ErrorCode::PayloadTooLarge, m),
            ServiceError::Port(p) => p.into(),
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let mut res = envelope_response(
            self.status(),
            Failure::new(self.code, self.message, self.details),
        );
        if let Some(secs) = self.retry_after {
            res.headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from(secs));
        }
        if self.code == ErrorCode::Unauthorized {
            res.headers_mut()
                .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
        }
        res
    }
}

/// A JSON response with the given status.
pub(crate) fn envelope_response<T: serde::Serialize>(status: StatusCode, body: T) -> Response {
    let bytes = serde_json::to_vec(&body).expect("envelope serialises");
    let mut res = (status, bytes).into_response();
    res.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    res
}
