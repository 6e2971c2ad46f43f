//! The search loop, generic over what is being optimised: it proposes points of a
//! [`SearchSpace`] by grid, random or Bayesian search, asks an [`Objective`] to score each
//! (higher is better), records every trial and keeps the best — so the same code tunes a
//! model and minimises a test function in the benchmarks.
//!
//! Each trial is three steps: [`Search::propose`] a point not tried yet, [`Search::run_trial`]
//! on the objective, [`Search::record`] what it reported. A trial that fails (an error, a
//! panic, a non-finite score) is recorded and the search goes on. A stop flag and a timeout
//! are checked before each trial and handed to the objective to check inside it; stopping
//! returns what was found so far.

mod config;
mod propose;
mod trial;

use std::collections::BTreeMap;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::time::Instant;

use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::error::{Result, SearchError};
use crate::space::{Point, SearchSpace};
pub use config::{Method, Pruning, SearchConfig};
use propose::{Proposer, untried_random};
pub use trial::{
    FnObjective, Objective, PruneGate, StopSignal, Trial, TrialContext, TrialOutcome, TrialReport,
    TrialStatus,
};

/// Why a search ended before its trials ran out.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum StopReason {
    Cancelled,
    Timeout,
    /// Every point of a finite space (or grid) was tried.
    Exhausted,
}

/// The best completed trial and what it produced.
#[derive(Debug)]
pub struct Best<M> {
    pub number: usize,
    pub params: Map<String, Value>,
    pub score: f64,
    pub model: M,
}

/// Everything a search found.
#[derive(Debug)]
pub struct SearchOutcome<M> {
    pub trials: Vec<Trial>,
    pub best: Option<Best<M>>,
    pub stopped: Option<StopReason>,
}

/// Proposals a search redraws, at most, when the objective moves one onto a point already
/// tried.
const REDRAWS: usize = 20;

/// Runs the search; `on_trial` sees each trial as it ends, with the best score so far.
pub fn search<O: Objective>(
    space: &SearchSpace,
    config: &SearchConfig,
    objective: &mut O,
    mut on_trial: impl FnMut(&Trial, Option<f64>),
) -> Result<SearchOutcome<O::Model>> {
    check(space, config)?;
    let mut run = Search::new(space, config);
    let mut stopped = None;
    for number in 1..=config.n_trials {
        if let Some(reason) = run.stop_reason() {
            stopped = Some(reason);
            break;
        }
        let Some((params, point)) = run.propose(objective) else {
            stopped = Some(StopReason::Exhausted);
            break;
        };
        let (report, seconds) = run.run_trial(objective, number, &params);
        run.record(number, params, point, report, seconds);
        let last = run.trials.last().expect("a trial was just recorded");
        on_trial(last, run.best.as_ref().map(|b| b.score));
    }
    Ok(SearchOutcome {
        trials: run.trials,
        best: run.best,
        stopped,
    })
}

/// A search that cannot run as asked: no dimension, no trial, a grid of no values.
pub fn check(space: &SearchSpace, config: &SearchConfig) -> Result<()> {
    let setting = |name, m: &str| {
        Err(SearchError::Setting {
            name,
            message: m.into(),
        })
    };
    if space.is_empty() {
        return Err(SearchError::Invalid(
            "the search space has no dimension".into(),
        ));
    }
    if config.n_trials == 0 {
        return setting("n_trials", "must be at least 1");
    }
    if config.grid_resolution == Some(0) {
        return setting("grid_resolution", "must be at least 1");
    }
    Ok(())
}

/// A search under way: what it has tried and observed, and the best so far.
struct Search<'a, M> {
    space: &'a SearchSpace,
    config: &'a SearchConfig,
    stop: StopSignal,
    rng: ChaCha8Rng,
    proposer: Proposer,
    trials: Vec<Trial>,
    tried: Vec<Point>,
    /// Unit coordinates of each tried point and its score (none unless completed).
    observed: Vec<(Vec<f64>, Option<f64>)>,
    best: Option<Best<M>>,
    /// The best intermediate score any trial reported at each step, for pruning.
    best_intermediate: BTreeMap<usize, f64>,
}

impl<'a, M> Search<'a, M> {
    fn new(space: &'a SearchSpace, config: &'a SearchConfig) -> Self {
        let stop = StopSignal::new(
            config.cancel.clone().unwrap_or_default(),
            config.timeout.map(|t| Instant::now() + t),
        );
        let mut rng = ChaCha8Rng::seed_from_u64(config.random_state);
        let proposer = Proposer::new(space, config, &mut rng);
        Self {
            space,
            config,
            stop,
            rng,
            proposer,
            trials: Vec::new(),
            tried: Vec::new(),
            observed: Vec::new(),
            best: None,
            best_intermediate: BTreeMap::new(),
        }
    }

    /// Why no further trial may start, if one may not.
    fn stop_reason(&self) -> Option<StopReason> {
        if self.stop.cancelled() {
            Some(StopReason::Cancelled)
        } else if self.stop.timed_out() {
            Some(StopReason::Timeout)
        } else {
            None
        }
    }

    /// The next point as the objective will try it (its parameters and its point), or
    /// `None` when there is nothing left to try.
    fn propose<O: Objective>(&mut self, objective: &O) -> Option<(Map<String, Value>, Point)> {
        let space = self.space;
        let proposed = self
            .proposer
            .next(space, &self.tried, &self.observed, &mut self.rng)?;
        let mut params = objective.normalise(space.to_map(&proposed));
        let mut point = space.from_map(&params);
        // A proposal the objective moves onto a point already tried (a batch size rounded
        // to one tried before) would repeat a trial: draw untried points instead, a few times.
        if !matches!(self.proposer, Proposer::Grid(_)) {
            for _ in 0..REDRAWS {
                if !self.tried.contains(&point) {
                    break;
                }
                let Some(other) = untried_random(space, &self.tried, &mut self.rng) else {
                    break;
                };
                params = objective.normalise(space.to_map(&other));
                point = space.from_map(&params);
            }
        }
        Some((params, point))
    }

    /// Runs trial `number` on `params`: the objective's report (a panic becomes a failure)
    /// and the trial's wall time in seconds.
    fn run_trial<O: Objective<Model = M>>(
        &self,
        objective: &mut O,
        number: usize,
        params: &Map<String, Value>,
    ) -> (TrialReport<M>, f64) {
        let context = TrialContext {
            number,
            params: params.clone(),
            stop: self.stop.clone(),
            prune: self
                .config
                .pruning
                .clone()
                .map(|rule| PruneGate::new(rule, self.best_intermediate.clone())),
        };
        let started = Instant::now();
        let report = catch_unwind(AssertUnwindSafe(|| objective.evaluate(context))).unwrap_or_else(
            |panic| {
                let message = panic
                    .downcast_ref::<&str>()
                    .map(|s| s.to_string())
                    .or_else(|| panic.downcast_ref::<String>().cloned())
                    .unwrap_or_else(|| "unknown panic".into());
                TrialReport::failed(format!("panicked: {message}"))
            },
        );
        (report, started.elapsed().as_secs_f64())
    }

    /// Records a trial's report: its intermediate scores for pruning later trials, the
    /// best so far, the trial itself, and its point and score for the proposer.
    fn record(
        &mut self,
        number: usize,
        params: Map<String, Value>,
        point: Point,
        report: TrialReport<M>,
        seconds: f64,
    ) {
        for &(step, value) in &report.intermediate {
            if value.is_finite() {
                let e = self.best_intermediate.entry(step).or_insert(value);
                *e = e.max(value);
            }
        }
        let (status, score, reason) = match report.outcome {
            TrialOutcome::Completed { score, model } if score.is_finite() => {
                if self.best.as_ref().is_none_or(|b| score > b.score) {
                    self.best = Some(Best {
                        number,
                        params: params.clone(),
                        score,
                        model,
                    });
                }
                (TrialStatus::Completed, Some(score), None)
            }
            TrialOutcome::Completed { score, .. } => (
                TrialStatus::Failed,
                None,
                Some(format!("the score is {score}")),
            ),
            TrialOutcome::Failed(r) => (TrialStatus::Failed, None, Some(r)),
            TrialOutcome::Pruned(r) => (TrialStatus::Pruned, None, Some(r)),
            TrialOutcome::Cancelled => (TrialStatus::Cancelled, None, None),
        };
        self.trials.push(Trial {
            number,
            params,
            score,
            status,
            reason,
            fit_seconds: report.fit_seconds.unwrap_or(seconds),
            intermediate_scores: report.intermediate,
        });
        self.observed.push((self.space.to_unit(&point), score));
        self.tried.push(point);
    }
}

#[cfg(test)]
mod tests;
