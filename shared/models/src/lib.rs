//! The models the platform offers, as their parameters: each model's name, defaults, bounds,
//! descriptions, validation and search space ([`Params`]), the choice of one of them
//! ([`ModelParams`]), and a hyperparameter search request ([`OptimizeRequest`]).
//!
//! It links neither candle nor polars, so the API checks and describes a generation request
//! without the engine; the engine implements the models these parameters name. Adding a
//! model is its parameters here (a [`Params`] type and a variant of [`ModelParams`]) and
//! its networks in the engine.

pub mod argn;
pub mod ctgan;
pub mod error;
pub mod params;
pub mod search;
pub mod tvae;

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};
use synth_search::{Dimension, Domain, SearchSpace, Tunable};

pub use argn::ArgnParams;
pub use ctgan::CtganParams;
pub use error::{ParamError, Result};
pub use params::{Bound, Field, Params};
pub use search::{Metric, MetricMix, OptimizeRequest, Score};

/// A model choice with its hyperparameters, in the seed platform's JSON:
/// `{"model": "ctgan", "epochs": 300, …}`; the tag is the model's [`Params::NAME`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "model", rename_all = "lowercase")]
pub enum ModelParams {
    Ctgan(CtganParams),
    Tvae(tvae::TvaeParams),
    Argn(ArgnParams),
}

/// The name of every model, in the order clients see them.
pub const MODELS: &[&str] = &[CtganParams::NAME, tvae::TvaeParams::NAME, ArgnParams::NAME];

/// Fewest rows a model is trained on: below it every row is rare, and a model (like any
/// summary of so few rows) can only hand the rows back.
pub const MIN_TRAINING_ROWS: usize = 10;

/// The model trained when a caller names none (`synth generate`, generation requests):
/// argn, which beats CTGAN and TVAE in quality and time on every table measured, with
/// privacy scores within the yardstick of a held-out half.
pub const DEFAULT_MODEL: &str = ArgnParams::NAME;

/// Every model's parameters (type, default, bounds, description, tunable), as
/// `GET /generation-v2/config` serves them.
pub fn describe() -> Value {
    json!({
        "default_model": DEFAULT_MODEL,
        "models": [
            params::describe::<CtganParams>(),
            params::describe::<tvae::TvaeParams>(),
            params::describe::<ArgnParams>(),
        ]
    })
}

/// Whether `name` is a parameter of one of the models (so a request that sends it where the
/// parameters do not go can say where they do).
pub fn is_parameter(name: &str) -> bool {
    [
        CtganParams::FIELDS,
        tvae::TvaeParams::FIELDS,
        ArgnParams::FIELDS,
    ]
    .iter()
    .any(|fields| fields.iter().any(|f| f.name == name))
}

impl ModelParams {
    /// The model named `model` with `parameters` (the others take their defaults); an
    /// unknown model or parameter, or a value of the wrong type, is an error naming it.
    pub fn parse(model: &str, parameters: &Map<String, Value>) -> Result<Self> {
        let model = model.to_lowercase();
        if !MODELS.contains(&model.as_str()) {
            return Err(ParamError::param(
                "model_type",
                format!("unknown model {model:?}; use one of {}", MODELS.join(", ")),
            ));
        }
        let parse = |entries: &mut dyn Iterator<Item = (&String, &Value)>| {
            let mut json: Map<String, Value> =
                entries.map(|(k, v)| (k.clone(), v.clone())).collect();
            json.insert("model".into(), json!(model));
            serde_json::from_value::<Self>(Value::Object(json))
        };
        parse(&mut parameters.iter()).map_err(|all| {
            // Name the first parameter that is wrong on its own.
            let named = parameters.iter().find_map(|(k, v)| {
                parse(&mut std::iter::once((k, v)))
                    .err()
                    .map(|e| (field_name(k), e.to_string()))
            });
            let (name, message) = named.unwrap_or(("parameters", all.to_string()));
            ParamError::Invalid { name, message }
        })
    }

    /// The chosen model's parameters, through what every model's parameters provide.
    fn params(&self) -> &dyn AnyParams {
        match self {
            ModelParams::Ctgan(p) => p,
            ModelParams::Tvae(p) => p,
            ModelParams::Argn(p) => p,
        }
    }

    /// The epochs the model will train for.
    pub fn epochs(&self) -> usize {
        self.params().epochs()
    }

    /// Rows per training step.
    pub fn batch_size(&self) -> usize {
        self.params().batch_size()
    }

    /// The model's name, as in the JSON's `"model"` field and in saved models.
    pub fn model_name(&self) -> &'static str {
        self.params().model_name()
    }

    /// Checks the hyperparameters, naming the first one that is wrong.
    pub fn validate(&self) -> Result<()> {
        self.params().validate()
    }

    /// The parameters a search may change, with their types.
    pub fn tunable(&self) -> &'static [Tunable] {
        self.params().tunable()
    }

    /// The model's default search space.
    pub fn search_space(&self) -> SearchSpace {
        self.params().search_space()
    }

    /// A user's search space in the seed platform's JSON, checked against this model: known
    /// names and types; each choice as a trial would be; a range's ends against the
    /// parameter's bounds and the size of a training step, the other parameters as they
    /// are. An error names the dimension's field, `search_space.{name}`.
    pub fn parse_search_space(&self, json: &Value) -> Result<SearchSpace> {
        let mut dims = Vec::new();
        // One name at a time, so that an error names its dimension; in name order, as
        // `SearchSpace::parse` keeps them.
        let mut names: Vec<(&String, &Value)> = json.as_object().into_iter().flatten().collect();
        names.sort_by(|a, b| a.0.cmp(b.0));
        for (name, spec) in names {
            let one = Value::Object(Map::from_iter([(name.clone(), spec.clone())]));
            let field = format!("search_space.{name}");
            let space = SearchSpace::parse(&one, self.model_name(), self.tunable())
                .map_err(|e| ParamError::from(e).in_field(&field))?;
            for d in space.dims {
                self.check_dimension(&d)
                    .map_err(|m| ParamError::search_field(&field, m))?;
                dims.push(d);
            }
        }
        // What no single name shows: not an object, or no name at all.
        SearchSpace::parse(json, self.model_name(), self.tunable())?;
        Ok(SearchSpace::new(dims))
    }

    /// Each choice of a dimension is a value these parameters accept; both ends of a range
    /// keep within the parameter's bounds (a value inside may still not fit the others, and
    /// fails its trial).
    fn check_dimension(&self, d: &Dimension) -> Result<(), String> {
        let (values, range) = match &d.domain {
            Domain::Choice { values } => (values.clone(), false),
            Domain::Int { low, high } => (vec![(*low).into(), (*high).into()], true),
            Domain::Float { low, high, .. } => (vec![(*low).into(), (*high).into()], true),
        };
        for v in values {
            let point = Map::from_iter([(d.name.clone(), v.clone())]);
            let checked = if range {
                self.params().check_point_bounds(&point)
            } else {
                self.with_point(&point).map(drop)
            };
            checked.map_err(|e| match e {
                ParamError::Invalid { message, .. } => format!("{v} is not valid: {message}"),
                other => format!("{v} is not valid: {other}"),
            })?;
        }
        Ok(())
    }

    /// Moves a search point onto values the model accepts (CTGAN: a batch size that is a
    /// multiple of pac).
    pub fn normalise_point(&self, point: &mut Map<String, Value>) {
        self.params().normalise_point(point);
    }

    /// A search point's values under the model's own parameter names.
    pub fn point_fields(&self, point: &Map<String, Value>) -> Map<String, Value> {
        self.params().point_fields(point)
    }

    /// These parameters with a search point's values, checked.
    pub fn with_point(&self, point: &Map<String, Value>) -> Result<Self> {
        self.params().with_point(point)
    }
}

/// A parameter's name as the `'static` an error carries: a model's own field name when it
/// is one, else the generic "parameters" (an unknown name is in the message).
fn field_name(name: &str) -> &'static str {
    [
        CtganParams::FIELDS,
        tvae::TvaeParams::FIELDS,
        ArgnParams::FIELDS,
    ]
    .iter()
    .flat_map(|f| f.iter())
    .find(|f| f.name == name)
    .map_or("parameters", |f| f.name)
}

impl From<CtganParams> for ModelParams {
    fn from(p: CtganParams) -> Self {
        ModelParams::Ctgan(p)
    }
}

impl From<tvae::TvaeParams> for ModelParams {
    fn from(p: tvae::TvaeParams) -> Self {
        ModelParams::Tvae(p)
    }
}

impl From<ArgnParams> for ModelParams {
    fn from(p: ArgnParams) -> Self {
        ModelParams::Argn(p)
    }
}

/// What [`ModelParams`] asks of each model's parameters: [`Params`], object-safe.
trait AnyParams {
    fn model_name(&self) -> &'static str;
    fn epochs(&self) -> usize;
    fn batch_size(&self) -> usize;
    fn validate(&self) -> Result<()>;
    fn tunable(&self) -> &'static [Tunable];
    fn search_space(&self) -> SearchSpace;
    fn normalise_point(&self, point: &mut Map<String, Value>);
    fn with_point(&self, point: &Map<String, Value>) -> Result<ModelParams>;
    fn check_point_bounds(&self, point: &Map<String, Value>) -> Result<()>;
    fn point_fields(&self, point: &Map<String, Value>) -> Map<String, Value>;
}

impl<P: Params + Into<ModelParams>> AnyParams for P {
    fn model_name(&self) -> &'static str {
        P::NAME
    }

    fn epochs(&self) -> usize {
        Params::epochs(self)
    }

    fn batch_size(&self) -> usize {
        Params::batch_size(self)
    }

    fn validate(&self) -> Result<()> {
        Params::validate(self)
    }

    fn tunable(&self) -> &'static [Tunable] {
        P::TUNABLE
    }

    fn search_space(&self) -> SearchSpace {
        P::search_space()
    }

    fn normalise_point(&self, point: &mut Map<String, Value>) {
        Params::normalise_point(self, point);
    }

    fn with_point(&self, point: &Map<String, Value>) -> Result<ModelParams> {
        Ok(Params::with_point(self, point)?.into())
    }

    fn check_point_bounds(&self, point: &Map<String, Value>) -> Result<()> {
        Params::check_point_bounds(self, point)
    }

    fn point_fields(&self, point: &Map<String, Value>) -> Map<String, Value> {
        Params::point_fields(self, point)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_model_is_parsed_from_its_name_and_some_parameters() {
        let p = ModelParams::parse("CTGAN", json!({"epochs": 3}).as_object().unwrap()).unwrap();
        assert_eq!(
            (p.model_name(), p.epochs(), p.batch_size()),
            ("ctgan", 3, 500)
        );
        let err = |m: &str, v: Value| ModelParams::parse(m, v.as_object().unwrap()).unwrap_err();
        assert!(matches!(
            err("gan", json!({})),
            ParamError::Invalid {
                name: "model_type",
                ..
            }
        ));
        assert!(matches!(
            err("tvae", json!({"pac": 2})),
            ParamError::Invalid { name: "pac", .. }
        ));
        assert!(matches!(
            err("tvae", json!({"epochz": 2})),
            ParamError::Invalid {
                name: "parameters",
                ..
            }
        ));
        assert!(matches!(
            err("ctgan", json!({"batch_size": 10, "epochs": "many"})),
            ParamError::Invalid { name: "epochs", .. }
        ));
    }

    #[test]
    fn every_models_defaults_validate_and_a_bad_value_is_named() {
        for model in MODELS {
            let p = ModelParams::parse(model, &Map::new()).unwrap();
            p.validate().unwrap();
        }
        let cases = [
            ("ctgan", "batch_size", json!(505)),
            ("ctgan", "generator_dim", json!([])),
            ("ctgan", "discriminator_dim", json!([256, 0])),
            ("ctgan", "epochs", json!(0)),
            ("ctgan", "generator_lr", json!(-1.0)),
            ("ctgan", "pac", json!(0)),
            ("tvae", "epochs", json!(0)),
            ("tvae", "batch_size", json!(0)),
            ("tvae", "embedding_dim", json!(0)),
            ("tvae", "compress_dims", json!([128, 0])),
            ("tvae", "decompress_dims", json!([0])),
            ("tvae", "learning_rate", json!(0.0)),
            ("tvae", "l2scale", json!(-1.0)),
            ("tvae", "loss_factor", json!(-1.0)),
            ("argn", "epochs", json!(0)),
            ("argn", "max_bins", json!(1)),
            ("argn", "rare_threshold", json!(0)),
            ("argn", "validation_share", json!(0.5)),
            ("argn", "temperature", json!(0.0)),
            ("argn", "hidden_dims", json!([0])),
            ("argn", "patience", json!(0)),
            ("argn", "weight_decay", json!(-1e-3)),
            // Sizes past what a machine holds are refused before anything runs.
            ("tvae", "embedding_dim", json!(1_000_000_000)),
            ("ctgan", "embedding_dim", json!(2049)),
            ("argn", "embedding_dim", json!(1_000_000)),
            ("argn", "hidden_dims", json!([100_000, 100_000])),
            (
                "ctgan",
                "generator_dim",
                json!([256, 256, 256, 256, 256, 256, 256]),
            ),
            ("ctgan", "batch_size", json!(1_000_000_000)),
            ("tvae", "batch_size", json!(u64::MAX)),
            ("argn", "batch_size", json!(1_000_000)),
        ];
        for (model, field, value) in cases {
            let one = Map::from_iter([(field.to_owned(), value.clone())]);
            match ModelParams::parse(model, &one).unwrap().validate() {
                Err(ParamError::Invalid { name, .. }) => assert_eq!(name, field, "{model}"),
                other => panic!("{model} {field} = {value}: {other:?}"),
            }
        }
    }

    #[test]
    fn the_description_comes_from_the_defaults_and_the_bounds() {
        let d = describe();
        let models = d["models"].as_array().unwrap();
        assert_eq!(models.len(), MODELS.len());
        assert_eq!(d["default_model"], "argn");
        assert!(MODELS.contains(&DEFAULT_MODEL));
        let ctgan = &models[0];
        assert_eq!(ctgan["model_type"], "ctgan");
        let field = |name: &str| {
            ctgan["parameters"]
                .as_array()
                .unwrap()
                .iter()
                .find(|p| p["name"] == name)
                .unwrap()
                .clone()
        };
        assert_eq!(field("pac")["default"], 10);
        assert_eq!(field("pac")["minimum"], 1);
        assert_eq!(field("generator_lr")["exclusive_minimum"], 0);
        assert_eq!(field("generator_dim")["default"], json!([256, 256]));
        assert_eq!(
            field("generator_dim")["items"]["maximum"],
            params::MAX_WIDTH
        );
        assert_eq!(field("generator_dim")["max_items"], params::MAX_LAYERS);
        assert_eq!(field("embedding_dim")["maximum"], params::MAX_WIDTH);
        assert_eq!(field("epochs")["tunable"], true);
        // Every field a model has is described, and nothing else.
        let described: Vec<&str> = ctgan["parameters"]
            .as_array()
            .unwrap()
            .iter()
            .map(|p| p["name"].as_str().unwrap())
            .collect();
        let defaults = serde_json::to_value(CtganParams::default()).unwrap();
        let mut names: Vec<&str> = defaults
            .as_object()
            .unwrap()
            .keys()
            .map(|k| k.as_str())
            .collect();
        let mut sorted = described.clone();
        sorted.sort_unstable();
        names.sort_unstable();
        assert_eq!(sorted, names);
    }

    #[test]
    fn a_search_space_keeps_its_ranges_within_bounds_and_its_choices_valid() {
        let ctgan =
            ModelParams::parse("ctgan", json!({"batch_size": 100}).as_object().unwrap()).unwrap();
        let field = |space: Value| match ctgan.parse_search_space(&space) {
            Ok(_) => None,
            Err(ParamError::SearchField { field, .. }) => Some(field),
            Err(other) => panic!("{space}: {other}"),
        };
        // Inside a range a pac may not divide the batch: that trial fails, the search goes on.
        assert_eq!(field(json!({"pac": [2, 10]})), None);
        assert_eq!(field(json!({"learning_rate": [1e-4, 1e-3]})), None);
        for space in [
            json!({"pac": [3]}),
            json!({"pac": [0, 10]}),
            json!({"embedding_dim": [8, 5000]}),
            json!({"batch_size": [100, 1_000_000_000]}),
            json!({"learning_rate": [0, 1e-3]}),
            json!({"generator_dim": [[128], [1, 2, 3, 4, 5, 6, 7]]}),
        ] {
            let name = space.as_object().unwrap().keys().next().unwrap().clone();
            assert_eq!(field(space), Some(format!("search_space.{name}")));
        }
        assert_eq!(
            field(json!({"pac": [2, 10], "epoch": [1, 2]})),
            Some("search_space.epoch".into())
        );
        // Bounds that hold no epoch are refused, not a panic when the space is narrowed.
        let request = OptimizeRequest {
            epoch_bounds: Some([100, 10]),
            ..OptimizeRequest::default()
        };
        assert!(matches!(
            request.check(),
            Err(ParamError::SearchField { field, .. }) if field == "epoch_bounds"
        ));
    }
}
