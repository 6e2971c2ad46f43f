//! How a search runs, as opposed to what it searches: the method that proposes points,
//! the trial budget and seed, the timeout, the acquisition function, the grid resolution,
//! and the pruning rule.

use std::sync::Arc;
use std::sync::atomic::AtomicBool;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::error::{Result, SearchError};
use crate::gp::Acquisition;

/// How the next point is chosen.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Method {
    /// Every point of a grid (in a seeded order when the grid outnumbers the trials).
    Grid,
    /// Uniform draws.
    Random,
    /// A Gaussian-process surrogate and an acquisition function, after a few random points.
    #[default]
    Bayesian,
}

impl std::str::FromStr for Method {
    type Err = SearchError;

    fn from_str(s: &str) -> Result<Self> {
        serde_json::from_value(Value::String(s.to_lowercase())).map_err(|_| {
            SearchError::Invalid(format!(
                "unknown method {s:?}; use grid, random or bayesian"
            ))
        })
    }
}

/// Early stopping of unpromising trials: every `every` steps (epochs) a trial reports an
/// intermediate score, and from step `min_step` on it is stopped when that score is more
/// than `margin` below the best any earlier trial reported at the same step.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Pruning {
    pub every: usize,
    pub margin: f64,
    pub min_step: usize,
}

impl Default for Pruning {
    fn default() -> Self {
        Self {
            every: 10,
            margin: 0.1,
            min_step: 10,
        }
    }
}

/// How to search, as opposed to what.
#[derive(Debug, Clone)]
pub struct SearchConfig {
    pub method: Method,
    pub n_trials: usize,
    pub random_state: u64,
    /// No trial starts after this, and running ones are asked to stop.
    pub timeout: Option<Duration>,
    pub acquisition: Acquisition,
    /// Values per numeric dimension of the grid; by default the finest grid that fits in
    /// `n_trials`.
    pub grid_resolution: Option<usize>,
    /// Random points a Bayesian search starts from before it trusts its surrogate.
    pub initial_points: usize,
    pub pruning: Option<Pruning>,
    /// Set from anywhere to stop the search; it then returns the best so far.
    pub cancel: Option<Arc<AtomicBool>>,
}

impl Default for SearchConfig {
    fn default() -> Self {
        Self {
            method: Method::Bayesian,
            n_trials: 10,
            random_state: 0,
            timeout: None,
            acquisition: Acquisition::ExpectedImprovement,
            grid_resolution: None,
            initial_points: 5,
            pruning: None,
            cancel: None,
        }
    }
}
