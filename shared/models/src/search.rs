//! A hyperparameter search as a client asks for it — the seed platform's JSON:
//! `{"model": "ctgan", "method": "bayesian", "n_trials": 20, "search_space": {…},
//! "optimization_metric": "quality_score", "acquisition_function": "EI", "random_state": 42,
//! "timeout": 3600}` — and what it maximises. Checking one needs no table and no engine, so
//! a request is refused before anything is queued; the engine runs it.

use std::collections::BTreeMap;
use std::fmt;
use std::sync::Arc;
use std::sync::atomic::AtomicBool;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};
use synth_search::{Acquisition, Domain, Method, Pruning, SearchConfig, SearchSpace};

use crate::ModelParams;
use crate::error::{ParamError, Result};

/// What a model search maximises, measured on the holdout.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default, Serialize, Deserialize,
)]
#[serde(rename_all = "snake_case")]
pub enum Metric {
    /// The quality report's overall score: the mean of the two below.
    #[default]
    QualityScore,
    ColumnShapes,
    ColumnPairTrends,
    /// Macro F1 (classification) or R² (regression) on the holdout of a random forest
    /// trained on the synthetic rows to predict the target.
    MlEfficacy,
}

impl Metric {
    pub fn as_str(self) -> &'static str {
        match self {
            Metric::QualityScore => "quality_score",
            Metric::ColumnShapes => "column_shapes",
            Metric::ColumnPairTrends => "column_pair_trends",
            Metric::MlEfficacy => "ml_efficacy",
        }
    }
}

impl fmt::Display for Metric {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl std::str::FromStr for Metric {
    type Err = ParamError;

    fn from_str(s: &str) -> Result<Self> {
        serde_json::from_value(Value::String(s.to_lowercase())).map_err(|_| {
            ParamError::Search(format!(
                "unknown metric {s:?}; use quality_score, column_shapes, column_pair_trends \
                 or ml_efficacy"
            ))
        })
    }
}

/// What a trial is scored by: one metric, or a weighted mix of them that a trial must also
/// pass a privacy floor for. JSON: `"quality_score"`, or
/// `{"weights": {"quality_score": 0.7, "ml_efficacy": 0.3}, "privacy_floor": 0.8}`.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(untagged)]
pub enum Score {
    Metric(Metric),
    Mix(MetricMix),
}

/// A weighted mean of metrics, and the privacy a trial's sample must keep.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MetricMix {
    /// Metric → its weight (positive); the score is the weighted mean.
    pub weights: BTreeMap<Metric, f64>,
    /// The least privacy score (0..1) a trial's sample may have; a trial below it fails
    /// with the reason. Privacy is `min(1, 2 × (1 − DCR share))`: 1 while the sample is no
    /// nearer the training rows than the held-out ones, 0 when every synthetic row is.
    #[serde(default)]
    pub privacy_floor: Option<f64>,
}

impl Default for Score {
    fn default() -> Self {
        Self::Metric(Metric::QualityScore)
    }
}

impl Score {
    /// The metrics it is made of.
    pub fn metrics(&self) -> Vec<Metric> {
        match self {
            Self::Metric(m) => vec![*m],
            Self::Mix(mix) => mix.weights.keys().copied().collect(),
        }
    }

    /// Whether it needs the `target` column (ML efficacy).
    pub fn needs_target(&self) -> bool {
        self.metrics().contains(&Metric::MlEfficacy)
    }

    /// The weighted mean of `value`'s metrics (`None` when one cannot be computed).
    pub fn combine(&self, mut value: impl FnMut(Metric) -> Option<f64>) -> Option<f64> {
        match self {
            Self::Metric(m) => value(*m),
            Self::Mix(mix) => {
                let mut total = 0.0;
                let mut weight = 0.0;
                for (&m, &w) in &mix.weights {
                    total += w * value(m)?;
                    weight += w;
                }
                Some(total / weight)
            }
        }
    }

    /// The privacy floor, if any.
    pub fn privacy_floor(&self) -> Option<f64> {
        match self {
            Self::Metric(_) => None,
            Self::Mix(mix) => mix.privacy_floor,
        }
    }

    fn check(&self) -> Result<()> {
        let Self::Mix(mix) = self else {
            return Ok(());
        };
        let bad = |m: String| Err(ParamError::Search(m));
        if mix.weights.is_empty() {
            return bad("a weighted metric needs at least one weight".into());
        }
        if let Some((m, w)) = mix
            .weights
            .iter()
            .find(|(_, w)| !(w.is_finite() && **w > 0.0))
        {
            return bad(format!(
                "the weight of {m} must be a positive number, got {w}"
            ));
        }
        match mix.privacy_floor {
            Some(f) if !(0.0..=1.0).contains(&f) => {
                bad(format!("the privacy floor must be in [0, 1], got {f}"))
            }
            _ => Ok(()),
        }
    }
}

impl fmt::Display for Score {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Metric(m) => m.fmt(f),
            Self::Mix(mix) => {
                let parts: Vec<String> = mix
                    .weights
                    .iter()
                    .map(|(m, w)| format!("{w}×{m}"))
                    .collect();
                write!(f, "weighted ({})", parts.join(" + "))
            }
        }
    }
}

/// A name is parsed as a metric (so an unknown one is named in the error), an object as a
/// mix.
impl<'de> Deserialize<'de> for Score {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
        use serde::de::Error;
        match Value::deserialize(d)? {
            Value::String(s) => s.parse().map(Self::Metric).map_err(D::Error::custom),
            v @ Value::Object(_) => serde_json::from_value(v)
                .map(Self::Mix)
                .map_err(D::Error::custom),
            other => Err(D::Error::custom(format!(
                "a metric is a name or {{\"weights\": {{…}}, \"privacy_floor\": …}}, got {other}"
            ))),
        }
    }
}

impl From<Metric> for Score {
    fn from(m: Metric) -> Self {
        Self::Metric(m)
    }
}

/// A search as the seed platform's JSON asks for it; every field has a default.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct OptimizeRequest {
    /// `argn`, `ctgan` or `tvae`.
    pub model: String,
    pub method: Method,
    pub n_trials: usize,
    /// Overrides the model's default space: `{"epochs": [50, 200], …}`.
    pub search_space: Option<Value>,
    pub optimization_metric: Score,
    pub acquisition_function: Acquisition,
    pub random_state: Option<u64>,
    /// Seconds after which no trial starts and the running one is stopped.
    pub timeout: Option<f64>,
    /// The column `ml_efficacy` predicts.
    pub target: Option<String>,
    /// Share of the real rows held out for scoring, never fitted on.
    pub holdout_fraction: f64,
    /// Values per numeric dimension of a grid search.
    pub grid_resolution: Option<usize>,
    /// Random trials before a Bayesian search uses its surrogate.
    pub initial_points: usize,
    pub pruning: Option<Pruning>,
    /// Values of the parameters that are not searched (e.g. `{"pac": 5}`).
    pub params: Map<String, Value>,
    /// The fewest and most epochs a trial may train (a platform's limits): a given space
    /// must keep its epochs within them, and the default space is narrowed into them.
    pub epoch_bounds: Option<[usize; 2]>,
}

impl Default for OptimizeRequest {
    fn default() -> Self {
        Self {
            model: "ctgan".into(),
            method: Method::Bayesian,
            n_trials: 10,
            search_space: None,
            optimization_metric: Score::default(),
            acquisition_function: Acquisition::ExpectedImprovement,
            random_state: None,
            timeout: None,
            target: None,
            holdout_fraction: 0.2,
            grid_resolution: None,
            initial_points: 5,
            pruning: None,
            params: Map::new(),
            epoch_bounds: None,
        }
    }
}

impl OptimizeRequest {
    /// The model with its fixed parameters, before any trial's values.
    pub fn base_params(&self) -> Result<ModelParams> {
        let mut json = Value::Object(self.params.clone());
        json["model"] = json!(self.model.to_lowercase());
        let params: ModelParams = serde_json::from_value(json)
            .map_err(|e| ParamError::Search(format!("model {:?} with params: {e}", self.model)))?;
        params.validate()?;
        Ok(params)
    }

    /// The space to search: the user's, checked, or the model's default.
    /// Errors name the request's field (`search_space`, `search_space.{name}`).
    pub fn space(&self, base: &ModelParams) -> Result<SearchSpace> {
        let Some(json) = &self.search_space else {
            let mut space = base.search_space();
            if let Some(bounds) = self.epoch_bounds {
                narrow_epochs(&mut space, bounds);
            }
            return Ok(space);
        };
        let space = base.parse_search_space(json)?;
        let epochs = space.dims.iter().find(|d| d.name == "epochs");
        if let (Some(d), Some([low, high])) = (epochs, self.epoch_bounds) {
            let values: Vec<Value> = match &d.domain {
                Domain::Int { low, high } => vec![(*low).into(), (*high).into()],
                Domain::Choice { values } => values.clone(),
                Domain::Float { .. } => Vec::new(),
            };
            let within = |v: &Value| {
                v.as_u64()
                    .is_some_and(|e| (low..=high).contains(&(e as usize)))
            };
            if let Some(v) = values.iter().find(|v| !within(v)) {
                return Err(ParamError::search_field(
                    "search_space.epochs",
                    format!("{v} epochs is outside what this platform trains, {low} to {high}"),
                ));
            }
        }
        Ok(space)
    }

    /// Everything about the request that can be checked without the table: the model and
    /// its fixed parameters, the space, the search settings, the metric's target and the
    /// holdout share. Returns the model's fixed parameters.
    pub fn check(&self) -> Result<ModelParams> {
        if let Some([low, high]) = self.epoch_bounds
            && !(1 <= low && low <= high)
        {
            return Err(ParamError::search_field(
                "epoch_bounds",
                format!("must be [fewest, most] with 1 ≤ fewest ≤ most, got [{low}, {high}]"),
            ));
        }
        let base = self.base_params()?;
        let space = self.space(&base).map_err(|e| e.in_field("search_space"))?;
        synth_search::check(&space, &self.config(None)?)?;
        let metric = "optimization_metric";
        self.optimization_metric
            .check()
            .map_err(|e| e.in_field(metric))?;
        if self.optimization_metric.needs_target() && self.target.is_none() {
            return Err(ParamError::search_field(
                metric,
                "the ml_efficacy metric needs a target column",
            ));
        }
        let f = self.holdout_fraction;
        if !(f > 0.0 && f < 1.0) {
            return Err(ParamError::search_field(
                "holdout_fraction",
                format!("must be in (0, 1), got {f}"),
            ));
        }
        Ok(base)
    }

    /// The model parameters the search sets, by their own names (CTGAN's searched
    /// `learning_rate` sets `generator_lr` and `discriminator_lr`).
    pub fn searched_parameters(&self) -> Result<Vec<String>> {
        let base = self.base_params()?;
        let space = self.space(&base)?;
        let point = space
            .dims
            .iter()
            .map(|d| (d.name.clone(), d.domain.from_unit(0.5)))
            .collect();
        Ok(base.point_fields(&point).keys().cloned().collect())
    }

    /// How to search.
    pub fn config(&self, cancel: Option<Arc<AtomicBool>>) -> Result<SearchConfig> {
        let timeout = match self.timeout {
            None => None,
            Some(t) if t.is_finite() && t > 0.0 => Some(Duration::from_secs_f64(t)),
            Some(t) => {
                return Err(ParamError::search_field(
                    "timeout",
                    format!("must be a positive number of seconds, got {t}"),
                ));
            }
        };
        if let Some(p) = &self.pruning
            && (p.every == 0 || !p.margin.is_finite())
        {
            return Err(ParamError::search_field(
                "pruning",
                "needs every ≥ 1 and a finite margin",
            ));
        }
        Ok(SearchConfig {
            method: self.method,
            n_trials: self.n_trials,
            random_state: self.random_state.unwrap_or(0),
            timeout,
            acquisition: self.acquisition_function,
            grid_resolution: self.grid_resolution,
            initial_points: self.initial_points,
            pruning: self.pruning.clone(),
            cancel,
        })
    }
}

/// The default space's epochs range moved within `[low, high]` (a platform's limits), so a
/// search on a platform that trains fewer epochs than the default space still runs.
fn narrow_epochs(space: &mut SearchSpace, [low, high]: [usize; 2]) {
    let (low, high) = (low as i64, high as i64);
    if low > high {
        return; // refused by `check`
    }
    for d in space.dims.iter_mut().filter(|d| d.name == "epochs") {
        if let Domain::Int { low: l, high: h } = &mut d.domain {
            *l = (*l).clamp(low, high);
            *h = (*h).clamp(*l, high);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_weighted_mix_parses_checks_and_combines() {
        let r: OptimizeRequest = serde_json::from_str(
            r#"{"optimization_metric": {"weights": {"column_shapes": 3, "ml_efficacy": 1},
                "privacy_floor": 0.8}, "target": "species"}"#,
        )
        .unwrap();
        let Score::Mix(mix) = &r.optimization_metric else {
            panic!("a mix: {:?}", r.optimization_metric)
        };
        assert_eq!(mix.privacy_floor, Some(0.8));
        r.check().unwrap();
        let value = |m: Metric| match m {
            Metric::ColumnShapes => Some(0.8),
            Metric::MlEfficacy => Some(0.4),
            _ => None,
        };
        let mixed = r.optimization_metric.combine(value).unwrap();
        assert!((mixed - 0.7).abs() < 1e-12, "{mixed}");
        let untargeted = OptimizeRequest {
            target: None,
            ..r.clone()
        };
        assert!(
            untargeted
                .check()
                .unwrap_err()
                .to_string()
                .contains("target")
        );
        for bad in [
            r#"{"weights": {}}"#,
            r#"{"weights": {"quality_score": -1}}"#,
            r#"{"weights": {"quality_score": 1}, "privacy_floor": 2}"#,
        ] {
            let r = OptimizeRequest {
                optimization_metric: serde_json::from_str(bad).unwrap(),
                ..OptimizeRequest::default()
            };
            assert!(r.check().is_err(), "{bad}");
        }
        let unknown = r#"{"optimization_metric": {"weights": {"beauty": 1}}}"#;
        assert!(serde_json::from_str::<OptimizeRequest>(unknown).is_err());
    }

    #[test]
    fn the_seed_platforms_json_parses_with_its_names() {
        let r: OptimizeRequest = serde_json::from_str(
            r#"{"model": "tvae", "method": "grid", "n_trials": 4, "optimization_metric":
                "column_shapes", "acquisition_function": "UCB", "random_state": 42,
                "timeout": 3600, "search_space": {"epochs": [50, 200]}}"#,
        )
        .unwrap();
        assert_eq!(
            (r.method, r.n_trials, r.random_state),
            (Method::Grid, 4, Some(42))
        );
        assert_eq!(r.optimization_metric, Score::Metric(Metric::ColumnShapes));
        assert_eq!(r.acquisition_function, Acquisition::UpperConfidenceBound);
        assert!(serde_json::from_str::<OptimizeRequest>(r#"{"n_trial": 4}"#).is_err());
    }

    #[test]
    fn a_request_is_checked_whole_before_any_table_is_seen() {
        let ok = |r: OptimizeRequest| r.check().map(|_| ()).map_err(|e| e.to_string());
        let base = || OptimizeRequest {
            n_trials: 2,
            ..OptimizeRequest::default()
        };
        ok(base()).unwrap();
        // Each change alone is refused, with a message naming what is wrong.
        type Change = fn(&mut OptimizeRequest);
        let refused: [(Change, &str); 7] = [
            (|r| r.n_trials = 0, "n_trials"),
            (|r| r.model = "gan".into(), "gan"),
            (
                |r| r.search_space = Some(json!({"epochz": [1, 2]})),
                "epochz",
            ),
            (
                |r| r.optimization_metric = Metric::MlEfficacy.into(),
                "target",
            ),
            (|r| r.timeout = Some(-1.0), "timeout"),
            (|r| r.holdout_fraction = 1.0, "holdout"),
            (
                |r| r.params = json!({"pac": 0}).as_object().unwrap().clone(),
                "pac",
            ),
        ];
        for (change, named) in refused {
            let mut r = base();
            change(&mut r);
            let err = ok(r).unwrap_err();
            assert!(err.contains(named), "{named}: {err}");
        }
        assert_eq!("ML_EFFICACY".parse::<Metric>().unwrap(), Metric::MlEfficacy);
        assert!("best".parse::<Metric>().is_err());
    }
}
