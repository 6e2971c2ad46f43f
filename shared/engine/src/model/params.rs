//! What every model's hyperparameters provide — the epochs and batch size the scaffold
//! needs, validation that names the parameter at fault, and the search space a
//! hyperparameter search explores — and the checks and point merging they share.

use std::fmt::Debug;

use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::{Map, Value};
use synth_search::{SearchSpace, Tunable};

use super::Model;
use crate::error::{EngineError, Result};

/// A model's hyperparameters, named as in the seed platform's JSON (`Default` is the
/// reference implementation's).
pub trait Hyperparameters:
    Clone + Debug + PartialEq + Default + Serialize + DeserializeOwned + Send + Sync + 'static
{
    type Model: Model<Params = Self>;

    /// The parameters a search may change, with their types.
    const TUNABLE: &'static [Tunable];

    fn epochs(&self) -> usize;

    /// Rows per batch (conditional sampling draws at least this many per try).
    fn batch_size(&self) -> usize;

    /// Checks every parameter, naming the first one that is wrong.
    fn validate(&self) -> Result<()>;

    /// The space searched when the user gives none.
    fn search_space() -> SearchSpace;

    /// Moves a search point onto values the model accepts (a no-op unless the model
    /// constrains its values jointly).
    fn normalise_point(&self, _point: &mut Map<String, Value>) {}

    /// These parameters with a search point's values, checked.
    fn with_point(&self, point: &Map<String, Value>) -> Result<Self> {
        apply_point(self, point.clone())
    }
}

/// `base` with a search point's values, normalised and checked.
pub fn apply_point<P: Hyperparameters>(base: &P, mut point: Map<String, Value>) -> Result<P> {
    base.normalise_point(&mut point);
    let params: P = merge_point(base, &point)?;
    params.validate()?;
    Ok(params)
}

/// `base` with a point's values in place of its own, by their JSON names; a value of the
/// wrong type is an error naming its parameter.
pub fn merge_point<T: Serialize + DeserializeOwned>(
    base: &T,
    point: &Map<String, Value>,
) -> Result<T> {
    let with = |entries: &mut dyn Iterator<Item = (&String, &Value)>| -> Result<T, String> {
        let mut json = serde_json::to_value(base).map_err(|e| e.to_string())?;
        let Some(obj) = json.as_object_mut() else {
            return Err("parameters are not a JSON object".into());
        };
        for (k, v) in entries {
            obj.insert(k.clone(), v.clone());
        }
        serde_json::from_value(json).map_err(|e| e.to_string())
    };
    with(&mut point.iter()).map_err(|all| {
        // Name the first parameter that is wrong on its own.
        let named = point.iter().find_map(|(k, v)| {
            with(&mut std::iter::once((k, v)))
                .err()
                .map(|e| format!("{k}: {e}"))
        });
        EngineError::InvalidSearch(named.unwrap_or(all))
    })
}

/// A count that must be at least 1.
pub(crate) fn at_least_one(name: &'static str, value: usize) -> Result<()> {
    if value == 0 {
        return Err(EngineError::param(name, "must be at least 1"));
    }
    Ok(())
}

/// Hidden layer widths, all positive; `required` when the network needs one layer or more.
pub(crate) fn layer_widths(name: &'static str, dims: &[usize], required: bool) -> Result<()> {
    if required && (dims.is_empty() || dims.contains(&0)) {
        return Err(EngineError::param(
            name,
            "must list one or more positive layer widths",
        ));
    }
    if dims.contains(&0) {
        return Err(EngineError::param(name, "layer widths must be positive"));
    }
    Ok(())
}

/// A positive finite number (a learning rate).
pub(crate) fn positive(name: &'static str, value: f64) -> Result<()> {
    if !(value.is_finite() && value > 0.0) {
        return Err(EngineError::param(
            name,
            format!("{value} is not a positive number"),
        ));
    }
    Ok(())
}

/// A non-negative finite number (a decay, a loss weight).
pub(crate) fn non_negative(name: &'static str, value: f64) -> Result<()> {
    if !(value.is_finite() && value >= 0.0) {
        return Err(EngineError::param(
            name,
            format!("{value} is not a non-negative number"),
        ));
    }
    Ok(())
}
