//! A hyperparameter search as a client asks for it — the seed platform's JSON:
//! `{"model": "ctgan", "method": "bayesian", "n_trials": 20, "search_space": {…},
//! "optimization_metric": "quality_score", "acquisition_function": "EI", "random_state": 42,
//! "timeout": 3600}` — and what it maximises. Checking one needs no table and no engine, so
//! a request is refused before anything is queued; the engine runs it.

use std::fmt;
use std::sync::Arc;
use std::sync::atomic::AtomicBool;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};
use synth_search::{Acquisition, Method, Pruning, SearchConfig, SearchSpace};

use crate::ModelParams;
use crate::error::{ParamError, Result};

/// What a model search maximises, measured on the holdout.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
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

/// A search as the seed platform's JSON asks for it; every field has a default.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct OptimizeRequest {
    /// `ctgan` or `tvae`.
    pub model: String,
    pub method: Method,
    pub n_trials: usize,
    /// Overrides the model's default space: `{"epochs": [50, 200], …}`.
    pub search_space: Option<Value>,
    pub optimization_metric: Metric,
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
}

impl Default for OptimizeRequest {
    fn default() -> Self {
        Self {
            model: "ctgan".into(),
            method: Method::Bayesian,
            n_trials: 10,
            search_space: None,
            optimization_metric: Metric::QualityScore,
            acquisition_function: Acquisition::ExpectedImprovement,
            random_state: None,
            timeout: None,
            target: None,
            holdout_fraction: 0.2,
            grid_resolution: None,
            initial_points: 5,
            pruning: None,
            params: Map::new(),
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
    pub fn space(&self, base: &ModelParams) -> Result<SearchSpace> {
        match &self.search_space {
            Some(json) => base.parse_search_space(json),
            None => Ok(base.search_space()),
        }
    }

    /// Everything about the request that can be checked without the table: the model and
    /// its fixed parameters, the space, the search settings, the metric's target and the
    /// holdout share. Returns the model's fixed parameters.
    pub fn check(&self) -> Result<ModelParams> {
        let base = self.base_params()?;
        let space = self.space(&base)?;
        synth_search::check(&space, &self.config(None)?)?;
        if self.optimization_metric == Metric::MlEfficacy && self.target.is_none() {
            return Err(ParamError::Search(
                "the ml_efficacy metric needs a target column".into(),
            ));
        }
        let f = self.holdout_fraction;
        if !(f > 0.0 && f < 1.0) {
            return Err(ParamError::Search(format!(
                "the holdout fraction must be in (0, 1), got {f}"
            )));
        }
        Ok(base)
    }

    /// How to search.
    pub fn config(&self, cancel: Option<Arc<AtomicBool>>) -> Result<SearchConfig> {
        let timeout = match self.timeout {
            None => None,
            Some(t) if t.is_finite() && t > 0.0 => Some(Duration::from_secs_f64(t)),
            Some(t) => {
                return Err(ParamError::Search(format!(
                    "the timeout must be a positive number of seconds, got {t}"
                )));
            }
        };
        if let Some(p) = &self.pruning
            && (p.every == 0 || !p.margin.is_finite())
        {
            return Err(ParamError::Search(
                "pruning needs every ≥ 1 and a finite margin".into(),
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

#[cfg(test)]
mod tests {
    use super::*;

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
        assert_eq!(r.optimization_metric, Metric::ColumnShapes);
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
        let err = |r: OptimizeRequest| ok(r).unwrap_err();
        assert!(
            err(OptimizeRequest {
                n_trials: 0,
                ..base()
            })
            .contains("n_trials")
        );
        assert!(
            err(OptimizeRequest {
                model: "gan".into(),
                ..base()
            })
            .contains("gan")
        );
        assert!(
            err(OptimizeRequest {
                search_space: Some(json!({"epochz": [1, 2]})),
                ..base()
            })
            .contains("epochz")
        );
        assert!(
            err(OptimizeRequest {
                optimization_metric: Metric::MlEfficacy,
                ..base()
            })
            .contains("target")
        );
        assert!(
            err(OptimizeRequest {
                timeout: Some(-1.0),
                ..base()
            })
            .contains("timeout")
        );
        assert!(
            err(OptimizeRequest {
                holdout_fraction: 1.0,
                ..base()
            })
            .contains("holdout")
        );
        assert!(
            err(OptimizeRequest {
                params: json!({"pac": 0}).as_object().unwrap().clone(),
                ..base()
            })
            .contains("pac")
        );
        assert_eq!("ML_EFFICACY".parse::<Metric>().unwrap(), Metric::MlEfficacy);
        assert!("best".parse::<Metric>().is_err());
    }
}
