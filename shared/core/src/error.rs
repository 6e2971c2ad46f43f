//! The error every port returns. Adapters map their backend's failures onto it, so callers
//! can tell a lost race (a failed condition) from a bad request or an outage.

/// Failure of a port operation.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum PortError {
    /// A write's condition did not hold (optimistic-concurrency conflict, duplicate key...).
    #[error("condition failed")]
    ConditionFailed,
    /// A transaction was cancelled as a whole; `failed` lists the positions of the operations
    /// whose condition did not hold (empty when it failed for another reason, e.g. a conflict
    /// with a concurrent transaction).
    #[error("transaction cancelled (failed conditions at {failed:?})")]
    TransactionCanceled { failed: Vec<usize> },
    /// The addressed thing does not exist.
    #[error("not found: {0}")]
    NotFound(String),
    /// A pagination cursor that this store did not issue for this query.
    #[error("invalid pagination cursor")]
    InvalidCursor,
    /// The request cannot be carried out as stated (bad key, bad argument).
    #[error("invalid request: {0}")]
    Invalid(String),
    /// The backend could not be reached or refused to serve.
    #[error("backend unavailable: {0}")]
    Unavailable(String),
    /// Any other backend failure.
    #[error("backend error: {0}")]
    Backend(String),
}

impl PortError {
    /// Whether this failure means "your write lost a race or broke a uniqueness rule".
    pub fn is_conflict(&self) -> bool {
        matches!(
            self,
            Self::ConditionFailed | Self::TransactionCanceled { .. }
        )
    }
}

pub type PortResult<T> = Result<T, PortError>;
