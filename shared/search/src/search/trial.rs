//! One trial as the search and its objective see it: what the objective is given (the
//! point, the stop signal, the pruning gate), what it reports back, and the record kept.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Instant;

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use super::config::Pruning;

/// Whether a search has been asked to stop: a shared flag, a deadline, or both.
#[derive(Debug, Clone, Default)]
pub struct StopSignal {
    flag: Arc<AtomicBool>,
    deadline: Option<Instant>,
}

impl StopSignal {
    pub fn new(flag: Arc<AtomicBool>, deadline: Option<Instant>) -> Self {
        Self { flag, deadline }
    }

    /// The flag, for code that only polls a flag (the fit's inner loop).
    pub fn flag(&self) -> Arc<AtomicBool> {
        self.flag.clone()
    }

    pub fn cancelled(&self) -> bool {
        self.flag.load(Ordering::Relaxed)
    }

    pub fn timed_out(&self) -> bool {
        self.deadline.is_some_and(|d| Instant::now() >= d)
    }

    pub fn is_set(&self) -> bool {
        self.cancelled() || self.timed_out()
    }
}

/// The pruning rule as one trial sees it: the best intermediate score of earlier trials at
/// each step.
#[derive(Debug, Clone)]
pub struct PruneGate {
    pub rule: Pruning,
    best: BTreeMap<usize, f64>,
}

impl PruneGate {
    pub fn new(rule: Pruning, best: BTreeMap<usize, f64>) -> Self {
        Self { rule, best }
    }

    /// Whether step `step` is one to report a score at.
    pub fn due(&self, step: usize) -> bool {
        self.rule.every > 0 && step > 0 && step.is_multiple_of(self.rule.every)
    }

    /// The best score reported at `step` by an earlier trial.
    pub fn best_at(&self, step: usize) -> Option<f64> {
        self.best.get(&step).copied()
    }

    /// Whether a trial scoring `value` at `step` should stop.
    pub fn should_prune(&self, step: usize, value: f64) -> bool {
        step >= self.rule.min_step
            && self
                .best_at(step)
                .is_some_and(|best| value.is_nan() || value < best - self.rule.margin)
    }
}

/// What an objective is given for one trial.
#[derive(Debug, Clone)]
pub struct TrialContext {
    /// 1-based.
    pub number: usize,
    pub params: Map<String, Value>,
    pub stop: StopSignal,
    /// Present when pruning is on.
    pub prune: Option<PruneGate>,
}

/// How a trial ended.
#[derive(Debug)]
pub enum TrialOutcome<M> {
    Completed {
        score: f64,
        model: M,
    },
    Failed(String),
    Pruned(String),
    /// Stopped by the stop flag or the timeout before it finished.
    Cancelled,
}

/// An objective's account of one trial.
#[derive(Debug)]
pub struct TrialReport<M> {
    pub outcome: TrialOutcome<M>,
    /// Seconds spent fitting; the trial's wall time when not given.
    pub fit_seconds: Option<f64>,
    /// (step, score) reported along the way, for pruning later trials.
    pub intermediate: Vec<(usize, f64)>,
}

impl<M> TrialReport<M> {
    pub fn completed(score: f64, model: M) -> Self {
        Self::of(TrialOutcome::Completed { score, model })
    }

    pub fn failed(reason: impl Into<String>) -> Self {
        Self::of(TrialOutcome::Failed(reason.into()))
    }

    pub fn pruned(reason: impl Into<String>) -> Self {
        Self::of(TrialOutcome::Pruned(reason.into()))
    }

    pub fn cancelled() -> Self {
        Self::of(TrialOutcome::Cancelled)
    }

    fn of(outcome: TrialOutcome<M>) -> Self {
        Self {
            outcome,
            fit_seconds: None,
            intermediate: Vec::new(),
        }
    }
}

/// What a search optimises: a score (higher is better) for each proposed point.
pub trait Objective {
    /// What a completed trial produces besides its score (a fitted model).
    type Model;

    /// Moves a proposed point onto what will really be tried (e.g. a batch size rounded to
    /// what the model accepts), so the records and the surrogate see the truth.
    fn normalise(&self, params: Map<String, Value>) -> Map<String, Value> {
        params
    }

    fn evaluate(&mut self, trial: TrialContext) -> TrialReport<Self::Model>;
}

/// An objective from a closure.
pub struct FnObjective<F>(pub F);

impl<F, M> Objective for FnObjective<F>
where
    F: FnMut(TrialContext) -> TrialReport<M>,
{
    type Model = M;

    fn evaluate(&mut self, trial: TrialContext) -> TrialReport<M> {
        (self.0)(trial)
    }
}

/// How a trial ended, as recorded.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum TrialStatus {
    Completed,
    Failed,
    Pruned,
    Cancelled,
}

/// The record of one trial.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Trial {
    /// 1-based.
    pub number: usize,
    pub params: Map<String, Value>,
    /// Set when completed.
    pub score: Option<f64>,
    pub status: TrialStatus,
    /// Why it failed or was pruned.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    pub fit_seconds: f64,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub intermediate_scores: Vec<(usize, f64)>,
}
