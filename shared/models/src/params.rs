//! What every model's hyperparameters provide — the epochs and batch size the scaffold
//! needs, each parameter's bound and description (one table that both validates and
//! describes them), and the search space a hyperparameter search explores — and the checks
//! and point merging they share.

use std::fmt::Debug;

use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::{Map, Value, json};
use synth_search::{SearchSpace, Tunable};

use crate::error::{ParamError, Result};

/// A model's hyperparameters, named as in the seed platform's JSON (`Default` is the
/// reference implementation's).
pub trait Params:
    Clone + Debug + PartialEq + Default + Serialize + DeserializeOwned + Send + Sync + 'static
{
    /// The model's name, as in the JSON's `"model"` / `"model_type"` and in saved models.
    const NAME: &'static str;

    /// Every parameter, in the order they are checked, with its bound and description.
    const FIELDS: &'static [Field];

    /// The parameters a search may change, with their types.
    const TUNABLE: &'static [Tunable];

    fn epochs(&self) -> usize;

    /// Rows per batch (conditional sampling draws at least this many per try).
    fn batch_size(&self) -> usize;

    /// Checks of values against each other, after each is checked against its bound.
    fn check_together(&self) -> Result<()> {
        Ok(())
    }

    /// Checks every parameter, naming the first one that is wrong.
    fn validate(&self) -> Result<()> {
        check_fields(self, Self::FIELDS)?;
        self.check_together()
    }

    /// The space searched when the user gives none.
    fn search_space() -> SearchSpace;

    /// Moves a search point onto values the model accepts (a no-op unless the model
    /// constrains its values jointly).
    fn normalise_point(&self, _point: &mut Map<String, Value>) {}

    /// A search point's values under these parameters' own names (the point as it is,
    /// unless one searched name stands for several parameters).
    fn point_fields(&self, point: &Map<String, Value>) -> Map<String, Value> {
        point.clone()
    }

    /// These parameters with a search point's values, checked.
    fn with_point(&self, point: &Map<String, Value>) -> Result<Self> {
        apply_point(self, self.point_fields(point))
    }

    /// Whether a search point's values keep within each parameter's own bound and the
    /// size of a training step, leaving aside how values fit each other (a `pac` that does
    /// not divide `batch_size`): what a range's ends must do, while a value inside may
    /// still fail its trial.
    fn check_point_bounds(&self, point: &Map<String, Value>) -> Result<()> {
        let mut point = self.point_fields(point);
        self.normalise_point(&mut point);
        check_fields(&merge_point(self, &point)?, Self::FIELDS)
    }
}

/// The widest a layer or an embedding may be.
pub const MAX_WIDTH: usize = 2048;

/// The most hidden layers a network may have.
pub const MAX_LAYERS: usize = 6;

/// The most values one activation of a training step may hold: `batch_size` times the widest
/// embedding or the summed widths of a network's layers (CTGAN's residual layers concatenate
/// them), 2^24 or 64 MiB of f32. The defaults use under 5% of it; past it a model would take
/// gigabytes a step, so a request for one is refused before anything is stored rather than
/// failing a worker (or, on one machine, the server) for want of memory.
pub const MAX_STEP_VALUES: usize = 1 << 24;

/// What values one parameter takes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Bound {
    /// An integer ≥ 1.
    Count,
    /// The width of a layer or embedding: an integer from 1 to [`MAX_WIDTH`].
    Size,
    /// `null` (chosen from the data) or a [`Bound::Size`].
    OptionalSize,
    /// A finite number > 0 (a learning rate).
    Positive,
    /// A finite number ≥ 0 (a decay, a loss weight).
    NonNegative,
    /// Hidden layer widths, each a [`Bound::Size`], at most [`MAX_LAYERS`] of them; at least
    /// one layer when `required`.
    Widths { required: bool },
    /// `true` or `false`.
    Flag,
    /// `null` (chosen from the data) or an integer ≥ 1.
    OptionalCount,
    /// `null` (chosen from the data) or a finite number ≥ 0.
    OptionalNonNegative,
}

/// One parameter of a model: its JSON name, its bound, and what it does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Field {
    pub name: &'static str,
    pub bound: Bound,
    pub description: &'static str,
}

impl Field {
    pub const fn new(name: &'static str, bound: Bound, description: &'static str) -> Self {
        Self {
            name,
            bound,
            description,
        }
    }
}

/// Checks each field of `params` against its bound, in order, then the size of a training
/// step (`batch_size` times the widest layer or embedding).
fn check_fields<P: Serialize>(params: &P, fields: &[Field]) -> Result<()> {
    let json = serde_json::to_value(params).map_err(|e| ParamError::Search(e.to_string()))?;
    let count = |v: &Value| {
        v.as_u64()
            .map_or(0, |n| usize::try_from(n).unwrap_or(usize::MAX))
    };
    let mut widest = 1;
    for f in fields {
        let v = &json[f.name];
        match f.bound {
            Bound::Count => at_least_one(f.name, count(v))?,
            Bound::Size => widest = widest.max(size(f.name, count(v))?),
            Bound::OptionalSize => {
                if !v.is_null() {
                    widest = widest.max(size(f.name, count(v))?)
                }
            }
            Bound::Positive => positive(f.name, v.as_f64().unwrap_or(f64::NAN))?,
            Bound::NonNegative => non_negative(f.name, v.as_f64().unwrap_or(f64::NAN))?,
            Bound::Widths { required } => {
                let widths: Vec<usize> = v
                    .as_array()
                    .map(|a| a.iter().map(count).collect())
                    .unwrap_or_default();
                layer_widths(f.name, &widths, required)?;
                widest = widest.max(widths.iter().sum());
            }
            Bound::Flag => {}
            Bound::OptionalCount => {
                if !v.is_null() {
                    at_least_one(f.name, v.as_u64().unwrap_or(0) as usize)?
                }
            }
            Bound::OptionalNonNegative => {
                if !v.is_null() {
                    non_negative(f.name, v.as_f64().unwrap_or(f64::NAN))?
                }
            }
        }
    }
    let batch = count(&json["batch_size"]);
    if batch.saturating_mul(widest) > MAX_STEP_VALUES {
        return Err(ParamError::param(
            "batch_size",
            format!(
                "{batch} rows times the network's width ({widest}) is more than a training \
                 step may hold ({MAX_STEP_VALUES} values): use a smaller batch_size or fewer or \
                 narrower layers"
            ),
        ));
    }
    Ok(())
}

/// A model's parameters for a client: for each its type, default, bounds, description and
/// whether a search may change it, from [`Params::FIELDS`] and `Default`.
pub fn describe<P: Params>() -> Value {
    let defaults = serde_json::to_value(P::default()).unwrap_or(Value::Null);
    let parameters: Vec<Value> = P::FIELDS
        .iter()
        .map(|f| {
            let mut d = json!({
                "name": f.name,
                "default": defaults[f.name],
                "description": f.description,
                "tunable": P::TUNABLE.iter().any(|(n, _)| *n == f.name),
            });
            let bounds = match f.bound {
                Bound::Count => json!({"type": "integer", "minimum": 1}),
                Bound::Size => json!({"type": "integer", "minimum": 1, "maximum": MAX_WIDTH}),
                Bound::OptionalSize => {
                    json!({"type": ["integer", "null"], "minimum": 1, "maximum": MAX_WIDTH})
                }
                Bound::Positive => json!({"type": "number", "exclusive_minimum": 0}),
                Bound::NonNegative => json!({"type": "number", "minimum": 0}),
                Bound::Widths { required } => json!({
                    "type": "array",
                    "items": {"type": "integer", "minimum": 1, "maximum": MAX_WIDTH},
                    "min_items": u8::from(required), "max_items": MAX_LAYERS,
                }),
                Bound::Flag => json!({"type": "boolean"}),
                Bound::OptionalCount => json!({"type": ["integer", "null"], "minimum": 1}),
                Bound::OptionalNonNegative => json!({"type": ["number", "null"], "minimum": 0}),
            };
            if let (Some(d), Some(b)) = (d.as_object_mut(), bounds.as_object()) {
                d.extend(b.clone());
            }
            d
        })
        .collect();
    json!({ "model_type": P::NAME, "parameters": parameters })
}

/// `base` with a search point's values, normalised and checked.
pub fn apply_point<P: Params>(base: &P, mut point: Map<String, Value>) -> Result<P> {
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
        ParamError::Search(named.unwrap_or(all))
    })
}

/// A count that must be at least 1.
pub fn at_least_one(name: &'static str, value: usize) -> Result<()> {
    if value == 0 {
        return Err(ParamError::param(name, "must be at least 1"));
    }
    Ok(())
}

/// Hidden layer widths, all positive and at most [`MAX_WIDTH`], at most [`MAX_LAYERS`] of
/// them; `required` when the network needs one layer or more.
pub fn layer_widths(name: &'static str, dims: &[usize], required: bool) -> Result<()> {
    if required && (dims.is_empty() || dims.contains(&0)) {
        return Err(ParamError::param(
            name,
            "must list one or more positive layer widths",
        ));
    }
    if dims.contains(&0) {
        return Err(ParamError::param(name, "layer widths must be positive"));
    }
    if dims.len() > MAX_LAYERS {
        return Err(ParamError::param(
            name,
            format!("{} layers; at most {MAX_LAYERS}", dims.len()),
        ));
    }
    if let Some(w) = dims.iter().find(|w| **w > MAX_WIDTH) {
        return Err(ParamError::param(
            name,
            format!("a layer of width {w}; at most {MAX_WIDTH}"),
        ));
    }
    Ok(())
}

/// The width of a layer or an embedding: 1 to [`MAX_WIDTH`]; returns it.
fn size(name: &'static str, value: usize) -> Result<usize> {
    at_least_one(name, value)?;
    if value > MAX_WIDTH {
        return Err(ParamError::param(
            name,
            format!("{value} is wider than {MAX_WIDTH}"),
        ));
    }
    Ok(value)
}

/// A positive finite number (a learning rate).
pub fn positive(name: &'static str, value: f64) -> Result<()> {
    if !(value.is_finite() && value > 0.0) {
        return Err(ParamError::param(
            name,
            format!("{value} is not a positive number"),
        ));
    }
    Ok(())
}

/// A non-negative finite number (a decay, a loss weight).
pub fn non_negative(name: &'static str, value: f64) -> Result<()> {
    if !(value.is_finite() && value >= 0.0) {
        return Err(ParamError::param(
            name,
            format!("{value} is not a non-negative number"),
        ));
    }
    Ok(())
}
