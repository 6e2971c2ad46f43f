//! The engine's error type: one enum, so callers (CLI, trainer, API) can map each case to a
//! clear message or status without string matching.

use thiserror::Error;

/// Everything that can go wrong while fitting, sampling, saving or loading a model.
#[derive(Debug, Error)]
pub enum EngineError {
    /// The table and its metadata do not describe the same data.
    #[error("invalid data: {0}")]
    InvalidData(String),
    /// A hyperparameter is out of range; the message names it.
    #[error("invalid parameter {name}: {message}")]
    InvalidParameter { name: &'static str, message: String },
    /// A `column = value` condition that cannot be honoured.
    #[error("invalid condition: {0}")]
    InvalidCondition(String),
    /// A saved model directory that is missing pieces or is not one of ours.
    #[error("invalid saved model: {0}")]
    InvalidModel(String),
    /// A hyperparameter search that cannot run as asked (search space, metric, method).
    #[error("invalid search: {0}")]
    InvalidSearch(String),
    /// Something this model does not do (e.g. completing rows with a model that cannot
    /// condition on arbitrary columns); the message says what to use instead.
    #[error("unsupported: {0}")]
    Unsupported(String),
    /// A constraint that cannot apply, or that the real table breaks.
    #[error("{0}")]
    Constraint(synth_constraints::ConstraintError),
    /// The stop flag was raised before training began (while the columns were still being
    /// learnt): there is no model to keep.
    #[error("stopped before training began")]
    Stopped,
    #[error("tensor error: {0}")]
    Tensor(#[from] candle_core::Error),
    #[error("i/o error: {0}")]
    Io(#[from] std::io::Error),
    #[error("json error: {0}")]
    Json(#[from] serde_json::Error),
}

/// Parameters or a search request refused by `synth-models` keep their variant and message.
impl From<synth_models::ParamError> for EngineError {
    fn from(e: synth_models::ParamError) -> Self {
        match e {
            synth_models::ParamError::Invalid { name, message } => {
                Self::InvalidParameter { name, message }
            }
            synth_models::ParamError::Search(m) => Self::InvalidSearch(m),
            synth_models::ParamError::SearchField { field, message } => {
                Self::InvalidSearch(format!("{field}: {message}"))
            }
        }
    }
}

/// A search that cannot run as asked is an invalid search here too, with the same message.
impl From<synth_search::SearchError> for EngineError {
    fn from(e: synth_search::SearchError) -> Self {
        match e {
            synth_search::SearchError::Invalid(m) => Self::InvalidSearch(m),
            synth_search::SearchError::Setting { name, message } => {
                Self::InvalidSearch(format!("{name}: {message}"))
            }
        }
    }
}

/// The engine's result type.
pub type Result<T, E = EngineError> = std::result::Result<T, E>;

impl EngineError {
    pub(crate) fn param(name: &'static str, message: impl Into<String>) -> Self {
        Self::InvalidParameter {
            name,
            message: message.into(),
        }
    }
}
