//! The error of the platform's services (accounts, datasets, ...), independent of HTTP;
//! the API maps each variant to a status and an envelope code.

use serde_json::Value;

use crate::error::PortError;
use crate::{Key, RecordStore};

#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ServiceError {
    #[error("{0}")]
    Validation(String, Value),
    #[error("{0}")]
    Unauthorized(String),
    #[error("{0}")]
    Forbidden(String),
    #[error("{0}")]
    NotFound(String),
    #[error("{0}")]
    Conflict(String),
    /// A size limit was exceeded; the message names the limit.
    #[error("{0}")]
    TooLarge(String),
    #[error("{message}")]
    RateLimited {
        message: String,
        retry_after_seconds: u64,
    },
    #[error(transparent)]
    Port(#[from] PortError),
}

impl ServiceError {
    pub fn validation(message: impl Into<String>) -> Self {
        Self::Validation(message.into(), Value::Null)
    }

    pub fn field(field: &str, message: impl Into<String>) -> Self {
        let message = message.into();
        Self::Validation(
            message.clone(),
            serde_json::json!({ "field": field, "reason": message }),
        )
    }
}

pub type ServiceResult<T> = Result<T, ServiceError>;

/// Largest page of a listing, and the size when none is asked for.
pub const MAX_PAGE: usize = 100;
pub const DEFAULT_PAGE: usize = 20;

/// The page size a listing was asked for: 1..=[`MAX_PAGE`], [`DEFAULT_PAGE`] by default.
pub fn page_size(limit: Option<usize>) -> ServiceResult<usize> {
    match limit {
        None => Ok(DEFAULT_PAGE),
        Some(n @ 1..=MAX_PAGE) => Ok(n),
        Some(_) => Err(ServiceError::field(
            "limit",
            format!("must be 1..={MAX_PAGE}"),
        )),
    }
}

/// The longest id the platform makes (a UUID's 36 characters, with room to spare).
pub const MAX_ID_LEN: usize = 64;

/// The item at `key_of(id)` read as a `T`, or `not_found` when there is none. An `id` no
/// id can be (empty, or longer than [`MAX_ID_LEN`]) is not found without a read.
pub(crate) async fn read_by_id<T: serde::de::DeserializeOwned>(
    records: &dyn RecordStore,
    id: &str,
    key_of: impl FnOnce(&str) -> Key,
    not_found: impl Fn() -> ServiceError,
) -> ServiceResult<T> {
    check_id(id, &not_found)?;
    let item = records.get(&key_of(id)).await?.ok_or_else(not_found)?;
    Ok(item.to_value()?)
}

/// `not_found` for an `id` no id can be (empty, or longer than [`MAX_ID_LEN`]).
pub(crate) fn check_id(id: &str, not_found: impl Fn() -> ServiceError) -> ServiceResult<()> {
    if id.is_empty() || id.len() > MAX_ID_LEN {
        return Err(not_found());
    }
    Ok(())
}

/// Who made a request and which request it was, for audit entries and logs.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct RequestContext {
    pub request_id: String,
}
