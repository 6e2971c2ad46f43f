//! What is wrong with a model's parameters or a search request, naming the field at fault.

/// A parameter or search request that cannot be used.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ParamError {
    /// One parameter of a model, out of range or inconsistent with another.
    #[error("invalid parameter {name}: {message}")]
    Invalid { name: &'static str, message: String },
    /// A search request: its method, space, metric, trials, … .
    #[error("invalid search: {0}")]
    Search(String),
}

impl ParamError {
    pub(crate) fn param(name: &'static str, message: impl Into<String>) -> Self {
        Self::Invalid {
            name,
            message: message.into(),
        }
    }
}

impl From<synth_search::SearchError> for ParamError {
    fn from(e: synth_search::SearchError) -> Self {
        match e {
            synth_search::SearchError::Invalid(m) => Self::Search(m),
        }
    }
}

/// Results of this crate.
pub type Result<T, E = ParamError> = std::result::Result<T, E>;
