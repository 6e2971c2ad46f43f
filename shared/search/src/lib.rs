//! Synth's hyperparameter search, apart from any model: it proposes points of a search
//! space by grid, random or Bayesian search, asks an [`Objective`] to score each (higher is
//! better), records every trial, prunes unpromising ones, stops on a flag or a timeout, and
//! keeps the best. The engine's model objective (fit on a training split, score on a
//! holdout) is one objective; the `optimize_functions` benchmark minimises test functions
//! through the same code.
//!
//! - [`space`]: search spaces (integer, float, log-float, choice), user spaces in the seed
//!   platform's JSON, and the unit-cube and grid maps the methods need.
//! - [`gp`]: the Gaussian-process surrogate and the acquisition functions of Bayesian search.
//! - [`search`]: the search loop — propose, run a trial, record — with failure handling,
//!   pruning, cancellation and timeout.
//!
//! It links neither candle nor polars (`cargo tree -e normal -p synth-search`).

pub mod error;
pub mod gp;
pub mod search;
pub mod space;

pub use error::{Result, SearchError};
pub use gp::{Acquisition, GaussianProcess};
pub use search::{
    Best, FnObjective, Method, Objective, PruneGate, Pruning, SearchConfig, SearchOutcome,
    StopReason, StopSignal, Trial, TrialContext, TrialOutcome, TrialReport, TrialStatus, check,
    search,
};
pub use space::{Dimension, Domain, ParamKind, Point, SearchSpace, Tunable};
