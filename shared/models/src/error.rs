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
    /// One field of a search request (`search_space.epochs`, `n_trials`, `timeout`, …).
    #[error("invalid {field}: {message}")]
    SearchField { field: String, message: String },
}

impl ParamError {
    pub(crate) fn param(name: &'static str, message: impl Into<String>) -> Self {
        Self::Invalid {
            name,
            message: message.into(),
        }
    }

    pub(crate) fn search_field(field: impl Into<String>, message: impl Into<String>) -> Self {
        Self::SearchField {
            field: field.into(),
            message: message.into(),
        }
    }

    /// This error as one of the search request's `field`, unless it names a field already.
    pub(crate) fn in_field(self, field: &str) -> Self {
        match self {
            Self::Search(message) => Self::search_field(field, message),
            named => named,
        }
    }
}

impl From<synth_search::SearchError> for ParamError {
    fn from(e: synth_search::SearchError) -> Self {
        match e {
            synth_search::SearchError::Invalid(m) => Self::Search(m),
            synth_search::SearchError::Setting { name, message } => {
                Self::search_field(name, message)
            }
        }
    }
}

/// Results of this crate.
pub type Result<T, E = ParamError> = std::result::Result<T, E>;
