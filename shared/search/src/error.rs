//! The search crate's error: a search that cannot run as asked. Trials that fail are not
//! errors — they are recorded and the search goes on.

use thiserror::Error;

/// A search that cannot run as asked (its space, its settings, a method's name).
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum SearchError {
    /// The message says what is wrong, naming the parameter or setting.
    #[error("invalid search: {0}")]
    Invalid(String),
    /// One setting of the search (`n_trials`, `grid_resolution`) is out of range.
    #[error("invalid {name}: {message}")]
    Setting { name: &'static str, message: String },
}

/// The search crate's result type.
pub type Result<T, E = SearchError> = std::result::Result<T, E>;
