//! The models a request may name, as a port: the crate that defines the models' parameters
//! implements it, so this crate (and the light HTTP functions) check and describe model
//! configurations without linking the engine.

use serde_json::{Map, Value};

use super::Problem;

/// One model's parameters, checked, with every default filled in.
#[derive(Debug, Clone, PartialEq)]
pub struct CheckedModel {
    /// `ctgan`, `tvae`, …
    pub model_type: String,
    pub parameters: Map<String, Value>,
    pub epochs: u64,
    /// Rows per training step, when the model trains in batches.
    pub batch_size: Option<u64>,
}

/// What the platform knows of its models.
pub trait ModelCatalog: Send + Sync {
    /// Every model with each parameter's default, bounds and description, as served by
    /// `GET /generation-v2/config`.
    fn describe(&self) -> Value;

    /// Check a model's parameters: an unknown model or parameter, a wrong type, a value out
    /// of bounds or inconsistent with another (e.g. `batch_size` not a multiple of `pac`)
    /// is a problem naming its field.
    fn check(
        &self,
        model_type: &str,
        parameters: &Map<String, Value>,
    ) -> Result<CheckedModel, Vec<Problem>>;

    /// Check a hyperparameter search for a model (method, trials, metric, space, …);
    /// returns it normalised (defaults filled in).
    fn check_optimization(&self, model_type: &str, config: &Value) -> Result<Value, Vec<Problem>>;
}
