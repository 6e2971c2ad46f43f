//! The search loop, generic over what is being optimised: it proposes points of a
//! [`SearchSpace`] by grid, random or Bayesian search, asks an [`Objective`] to score each
//! (higher is better), records every trial and keeps the best — so the same code tunes a
//! model and minimises a test function in the benchmarks.
//!
//! A trial that fails (an error, a panic, a non-finite score) is recorded and the search
//! goes on. A stop flag and a timeout are checked before each trial and handed to the
//! objective to check inside it; stopping returns what was found so far.

use std::collections::BTreeMap;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use super::gp::{Acquisition, GaussianProcess};
use super::space::{Point, SearchSpace};
use crate::error::{EngineError, Result};

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
    type Err = EngineError;

    fn from_str(s: &str) -> Result<Self> {
        serde_json::from_value(Value::String(s.to_lowercase())).map_err(|_| {
            EngineError::InvalidSearch(format!(
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

/// Candidates scored by the acquisition function per proposal, beyond those near the best.
const RANDOM_CANDIDATES: usize = 2000;
/// Observations around which candidates are also drawn, and candidates refined locally.
const LOCAL_STARTS: usize = 5;

/// Runs the search; `on_trial` sees each trial as it ends, with the best score so far.
pub fn search<O: Objective>(
    space: &SearchSpace,
    config: &SearchConfig,
    objective: &mut O,
    mut on_trial: impl FnMut(&Trial, Option<f64>),
) -> Result<SearchOutcome<O::Model>> {
    if space.is_empty() {
        return Err(EngineError::InvalidSearch(
            "the search space has no dimension".into(),
        ));
    }
    if config.n_trials == 0 {
        return Err(EngineError::InvalidSearch(
            "n_trials must be at least 1".into(),
        ));
    }
    if config.grid_resolution == Some(0) {
        return Err(EngineError::InvalidSearch(
            "the grid resolution must be at least 1".into(),
        ));
    }
    let stop = StopSignal::new(
        config.cancel.clone().unwrap_or_default(),
        config.timeout.map(|t| Instant::now() + t),
    );
    let mut rng = ChaCha8Rng::seed_from_u64(config.random_state);
    let mut proposer = Proposer::new(space, config, &mut rng);
    let mut trials: Vec<Trial> = Vec::new();
    let mut tried: Vec<Point> = Vec::new();
    let mut observed: Vec<(Vec<f64>, Option<f64>)> = Vec::new();
    let mut best: Option<Best<O::Model>> = None;
    let mut best_intermediate: BTreeMap<usize, f64> = BTreeMap::new();
    let mut stopped = None;
    for number in 1..=config.n_trials {
        if stop.cancelled() {
            stopped = Some(StopReason::Cancelled);
            break;
        }
        if stop.timed_out() {
            stopped = Some(StopReason::Timeout);
            break;
        }
        let Some(proposed) = proposer.next(space, &tried, &observed, &mut rng) else {
            stopped = Some(StopReason::Exhausted);
            break;
        };
        let mut params = objective.normalise(space.to_map(&proposed));
        let mut point = space.from_map(&params);
        // A proposal the objective moves onto a point already tried (a batch size rounded
        // to one tried before) would repeat a trial: draw untried points instead, a few times.
        if !matches!(proposer, Proposer::Grid(_)) {
            for _ in 0..20 {
                if !tried.contains(&point) {
                    break;
                }
                let Some(other) = untried_random(space, &tried, &mut rng) else {
                    break;
                };
                params = objective.normalise(space.to_map(&other));
                point = space.from_map(&params);
            }
        }
        let context = TrialContext {
            number,
            params: params.clone(),
            stop: stop.clone(),
            prune: config
                .pruning
                .clone()
                .map(|rule| PruneGate::new(rule, best_intermediate.clone())),
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
        let seconds = started.elapsed().as_secs_f64();
        for &(step, value) in &report.intermediate {
            if value.is_finite() {
                let e = best_intermediate.entry(step).or_insert(value);
                *e = e.max(value);
            }
        }
        let (status, score, reason) = match report.outcome {
            TrialOutcome::Completed { score, model } if score.is_finite() => {
                if best.as_ref().is_none_or(|b| score > b.score) {
                    best = Some(Best {
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
        let trial = Trial {
            number,
            params,
            score,
            status,
            reason,
            fit_seconds: report.fit_seconds.unwrap_or(seconds),
            intermediate_scores: report.intermediate,
        };
        on_trial(&trial, best.as_ref().map(|b| b.score));
        trials.push(trial);
        observed.push((space.to_unit(&point), score));
        tried.push(point);
    }
    Ok(SearchOutcome {
        trials,
        best,
        stopped,
    })
}

/// Chooses the points to try.
enum Proposer {
    Grid(std::vec::IntoIter<Point>),
    Random,
    Bayesian {
        acquisition: Acquisition,
        initial_points: usize,
    },
}

impl Proposer {
    fn new(space: &SearchSpace, config: &SearchConfig, rng: &mut ChaCha8Rng) -> Self {
        match config.method {
            Method::Grid => {
                let resolution = config
                    .grid_resolution
                    .unwrap_or_else(|| space.resolution_for(config.n_trials));
                let mut grid = space.grid(resolution);
                // A grid larger than the budget is visited in a seeded order, so the trials
                // spread over it rather than sweep its last dimension only.
                if grid.len() > config.n_trials {
                    grid.shuffle(rng);
                }
                Proposer::Grid(grid.into_iter())
            }
            Method::Random => Proposer::Random,
            Method::Bayesian => Proposer::Bayesian {
                acquisition: config.acquisition,
                initial_points: config.initial_points.max(1),
            },
        }
    }

    /// The next point, or `None` when there is nothing left to try.
    fn next(
        &mut self,
        space: &SearchSpace,
        tried: &[Point],
        observed: &[(Vec<f64>, Option<f64>)],
        rng: &mut ChaCha8Rng,
    ) -> Option<Point> {
        match self {
            Proposer::Grid(points) => points.next(),
            Proposer::Random => untried_random(space, tried, rng),
            Proposer::Bayesian {
                acquisition,
                initial_points,
            } => {
                let scored = observed.iter().filter(|(_, s)| s.is_some()).count();
                if tried.len() < *initial_points || scored < 2 {
                    return untried_random(space, tried, rng);
                }
                bayesian(space, *acquisition, tried, observed, rng)
                    .or_else(|| untried_random(space, tried, rng))
            }
        }
    }
}

/// A uniform draw not tried yet; `None` once a finite space is used up.
fn untried_random(space: &SearchSpace, tried: &[Point], rng: &mut ChaCha8Rng) -> Option<Point> {
    if space.cardinality().is_some_and(|n| tried.len() >= n) {
        return None;
    }
    let mut point = space.sample(rng);
    for _ in 0..1000 {
        if !tried.contains(&point) {
            return Some(point);
        }
        point = space.sample(rng);
    }
    // A nearly used-up finite space: the first untried point of its full enumeration.
    match space.cardinality() {
        Some(n) if n <= 100_000 => {
            let max = space
                .dims
                .iter()
                .map(|d| d.domain.cardinality().unwrap_or(1))
                .max()
                .unwrap_or(1);
            space.grid(max).into_iter().find(|p| !tried.contains(p))
        }
        _ => Some(point),
    }
}

/// The untried point that maximises the acquisition function of a GP fitted to the trials
/// so far. Failed and pruned trials count as the worst completed score, so the surrogate
/// steers away from them.
fn bayesian(
    space: &SearchSpace,
    acquisition: Acquisition,
    tried: &[Point],
    observed: &[(Vec<f64>, Option<f64>)],
    rng: &mut ChaCha8Rng,
) -> Option<Point> {
    let worst = observed
        .iter()
        .filter_map(|(_, s)| *s)
        .fold(f64::INFINITY, f64::min);
    let x: Vec<Vec<f64>> = observed.iter().map(|(u, _)| u.clone()).collect();
    let y: Vec<f64> = observed.iter().map(|(_, s)| s.unwrap_or(worst)).collect();
    let gp = GaussianProcess::fit(x, &y)?;
    let best = gp.normalise(y.iter().copied().fold(f64::NEG_INFINITY, f64::max));
    let d = space.dims.len();
    let acq = |u: &[f64]| {
        let (m, s) = gp.predict_normalised(u);
        acquisition.value(m, s, best)
    };
    // Candidates: uniform draws, and draws near the best observations.
    let mut candidates: Vec<Vec<f64>> = (0..RANDOM_CANDIDATES + 100 * d)
        .map(|_| space.snap(&(0..d).map(|_| rng.random::<f64>()).collect::<Vec<_>>()))
        .collect();
    let mut order: Vec<usize> = (0..observed.len()).collect();
    order.sort_by(|&a, &b| y[b].total_cmp(&y[a]));
    for &i in order.iter().take(LOCAL_STARTS) {
        for width in [0.02, 0.1] {
            for _ in 0..50 {
                let u: Vec<f64> = observed[i]
                    .0
                    .iter()
                    .map(|c| (c + width * (2.0 * rng.random::<f64>() - 1.0)).clamp(0.0, 1.0))
                    .collect();
                candidates.push(space.snap(&u));
            }
        }
    }
    let mut scored: Vec<(f64, Vec<f64>)> = candidates.into_iter().map(|u| (acq(&u), u)).collect();
    scored.sort_by(|a, b| b.0.total_cmp(&a.0));
    scored.truncate(50);
    // Local refinement of the leaders: a coordinate pattern search.
    for (value, u) in scored.iter_mut().take(LOCAL_STARTS) {
        let mut step = 0.05;
        while step > 1e-3 {
            let mut improved = false;
            for j in 0..d {
                for dir in [1.0, -1.0] {
                    let mut v = u.clone();
                    v[j] = (v[j] + dir * step).clamp(0.0, 1.0);
                    let v = space.snap(&v);
                    let a = acq(&v);
                    if a > *value {
                        (*value, *u) = (a, v);
                        improved = true;
                    }
                }
            }
            if !improved {
                step /= 2.0;
            }
        }
    }
    scored.sort_by(|a, b| b.0.total_cmp(&a.0));
    scored
        .into_iter()
        .map(|(_, u)| space.from_unit(&u))
        .find(|p| !tried.contains(p))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::optimize::space::Dimension;
    use serde_json::json;

    fn quadratic_space() -> SearchSpace {
        SearchSpace::new(vec![
            Dimension::float("x", -2.0, 2.0),
            Dimension::float("y", -2.0, 2.0),
        ])
    }

    fn quadratic(ctx: &TrialContext) -> f64 {
        let x = ctx.params["x"].as_f64().unwrap();
        let y = ctx.params["y"].as_f64().unwrap();
        -((x - 0.5).powi(2) + (y + 0.3).powi(2))
    }

    fn config(method: Method, n_trials: usize) -> SearchConfig {
        SearchConfig {
            method,
            n_trials,
            random_state: 7,
            ..SearchConfig::default()
        }
    }

    #[test]
    fn each_method_improves_on_its_first_trial_and_follows_the_seed() {
        for method in [Method::Grid, Method::Random, Method::Bayesian] {
            let run = || {
                let mut objective =
                    FnObjective(|ctx: TrialContext| TrialReport::completed(quadratic(&ctx), ()));
                search(
                    &quadratic_space(),
                    &config(method, 16),
                    &mut objective,
                    |_, _| {},
                )
                .unwrap()
            };
            let out = run();
            assert_eq!(out.trials.len(), 16, "{method:?}");
            let best = out.best.as_ref().unwrap();
            let max = out
                .trials
                .iter()
                .filter_map(|t| t.score)
                .fold(f64::NEG_INFINITY, f64::max);
            assert_eq!(best.score, max);
            assert_eq!(out.trials[best.number - 1].params, best.params);
            assert!(best.score > -0.5, "{method:?}: {}", best.score);
            let key = |o: &SearchOutcome<()>| {
                o.trials
                    .iter()
                    .map(|t| (t.params.clone(), t.score))
                    .collect::<Vec<_>>()
            };
            assert_eq!(key(&run()), key(&out), "{method:?} is not reproducible");
        }
    }

    #[test]
    fn bayesian_search_converges_on_a_smooth_function() {
        let mut objective =
            FnObjective(|ctx: TrialContext| TrialReport::completed(quadratic(&ctx), ()));
        let out = search(
            &quadratic_space(),
            &config(Method::Bayesian, 20),
            &mut objective,
            |_, _| {},
        )
        .unwrap();
        let best = out.best.unwrap().score;
        assert!(best > -0.01, "{best}");
    }

    #[test]
    fn the_grid_search_tries_each_grid_point_once_then_stops() {
        let space = SearchSpace::new(vec![
            Dimension::int("a", 1, 2),
            Dimension::choice("b", vec![json!("x"), json!("y"), json!("z")]),
        ]);
        let mut seen = Vec::new();
        let mut objective = FnObjective(|ctx: TrialContext| {
            seen.push(ctx.params.clone());
            TrialReport::completed(ctx.number as f64, ())
        });
        let out = search(&space, &config(Method::Grid, 50), &mut objective, |_, _| {}).unwrap();
        assert_eq!(out.trials.len(), 6);
        assert_eq!(out.stopped, Some(StopReason::Exhausted));
        let mut keys: Vec<String> = seen
            .iter()
            .map(|p| Value::Object(p.clone()).to_string())
            .collect();
        keys.sort();
        assert_eq!(
            keys,
            [
                r#"{"a":1,"b":"x"}"#,
                r#"{"a":1,"b":"y"}"#,
                r#"{"a":1,"b":"z"}"#,
                r#"{"a":2,"b":"x"}"#,
                r#"{"a":2,"b":"y"}"#,
                r#"{"a":2,"b":"z"}"#
            ]
        );
        // Random and Bayesian searches of a finite space never repeat a point either.
        for method in [Method::Random, Method::Bayesian] {
            let mut objective = FnObjective(|ctx: TrialContext| {
                TrialReport::completed(ctx.params["a"].as_f64().unwrap(), ())
            });
            let out = search(&space, &config(method, 50), &mut objective, |_, _| {}).unwrap();
            assert_eq!(out.trials.len(), 6, "{method:?}");
            let mut keys: Vec<String> = out
                .trials
                .iter()
                .map(|t| Value::Object(t.params.clone()).to_string())
                .collect();
            keys.sort();
            keys.dedup();
            assert_eq!(keys.len(), 6, "{method:?}");
        }
    }

    #[test]
    fn a_search_survives_failing_trials() {
        for method in [Method::Grid, Method::Random, Method::Bayesian] {
            let mut objective = FnObjective(|ctx: TrialContext| match ctx.number {
                2 => TrialReport::failed("the loss is NaN"),
                3 => panic!("out of memory"),
                4 => TrialReport::completed(f64::NAN, ()),
                _ => TrialReport::completed(quadratic(&ctx), ()),
            });
            let mut lines = Vec::new();
            let out = search(
                &quadratic_space(),
                &config(method, 9),
                &mut objective,
                |t, best| lines.push((t.number, t.status, best)),
            )
            .unwrap();
            assert_eq!(out.trials.len(), 9);
            assert_eq!(lines.len(), 9);
            let status: Vec<TrialStatus> = out.trials.iter().map(|t| t.status).collect();
            assert_eq!(status[1], TrialStatus::Failed);
            assert_eq!(out.trials[1].reason.as_deref(), Some("the loss is NaN"));
            assert_eq!(status[2], TrialStatus::Failed);
            assert!(
                out.trials[2]
                    .reason
                    .as_deref()
                    .unwrap()
                    .contains("out of memory")
            );
            assert_eq!(status[3], TrialStatus::Failed);
            assert!(out.trials[1].score.is_none());
            assert_eq!(
                status
                    .iter()
                    .filter(|s| **s == TrialStatus::Completed)
                    .count(),
                6
            );
            assert!(out.best.is_some());
        }
    }

    #[test]
    fn cancelling_stops_the_search_and_keeps_the_best_so_far() {
        let cancel = Arc::new(AtomicBool::new(false));
        let flag = cancel.clone();
        let mut objective = FnObjective(move |ctx: TrialContext| {
            if ctx.number == 3 {
                // Cancelled from inside a trial: the trial sees it and stops.
                flag.store(true, Ordering::Relaxed);
                assert!(ctx.stop.is_set());
                return TrialReport::cancelled();
            }
            TrialReport::completed(-(ctx.number as f64), ctx.number)
        });
        let out = search(
            &quadratic_space(),
            &SearchConfig {
                cancel: Some(cancel),
                ..config(Method::Random, 10)
            },
            &mut objective,
            |_, _| {},
        )
        .unwrap();
        assert_eq!(out.trials.len(), 3);
        assert_eq!(out.trials[2].status, TrialStatus::Cancelled);
        assert_eq!(out.stopped, Some(StopReason::Cancelled));
        let best = out.best.unwrap();
        assert_eq!((best.number, best.score, best.model), (1, -1.0, 1));
    }

    #[test]
    fn a_timeout_stops_launching_trials() {
        let mut objective = FnObjective(|ctx: TrialContext| {
            std::thread::sleep(Duration::from_millis(30));
            TrialReport::completed(quadratic(&ctx), ())
        });
        let out = search(
            &quadratic_space(),
            &SearchConfig {
                timeout: Some(Duration::from_millis(50)),
                ..config(Method::Random, 100)
            },
            &mut objective,
            |_, _| {},
        )
        .unwrap();
        assert!((1..=3).contains(&out.trials.len()), "{}", out.trials.len());
        assert_eq!(out.stopped, Some(StopReason::Timeout));
    }

    #[test]
    fn pruning_stops_trials_far_below_the_best_at_the_same_step() {
        let gate = PruneGate::new(
            Pruning {
                every: 5,
                margin: 0.1,
                min_step: 5,
            },
            BTreeMap::from([(5, 0.8), (10, 0.9)]),
        );
        assert!(gate.due(5) && gate.due(10) && !gate.due(7) && !gate.due(0));
        assert!(gate.should_prune(5, 0.6));
        assert!(!gate.should_prune(5, 0.75));
        assert!(!gate.should_prune(15, 0.0), "no reference at step 15");
        // The search keeps, per step, the best intermediate score of earlier trials.
        let mut gates = Vec::new();
        let mut objective = FnObjective(|ctx: TrialContext| {
            let gate = ctx.prune.clone().unwrap();
            gates.push(gate.best_at(5));
            let value = [0.5, 0.9, 0.3][ctx.number - 1];
            let mut report = if gate.should_prune(5, value) {
                TrialReport::pruned("far below")
            } else {
                TrialReport::completed(value, ())
            };
            report.intermediate = vec![(5, value)];
            report
        });
        let out = search(
            &quadratic_space(),
            &SearchConfig {
                pruning: Some(gate.rule.clone()),
                ..config(Method::Random, 3)
            },
            &mut objective,
            |_, _| {},
        )
        .unwrap();
        assert_eq!(gates, [None, Some(0.5), Some(0.9)]);
        let status: Vec<_> = out.trials.iter().map(|t| t.status).collect();
        assert_eq!(
            status,
            [
                TrialStatus::Completed,
                TrialStatus::Completed,
                TrialStatus::Pruned
            ]
        );
    }

    #[test]
    fn normalised_points_are_what_is_recorded() {
        struct Rounding;
        impl Objective for Rounding {
            type Model = ();
            fn normalise(&self, mut params: Map<String, Value>) -> Map<String, Value> {
                let b = params["batch_size"].as_i64().unwrap();
                params.insert("batch_size".into(), json!((b / 10).max(1) * 10));
                params
            }
            fn evaluate(&mut self, ctx: TrialContext) -> TrialReport<()> {
                assert_eq!(ctx.params["batch_size"].as_i64().unwrap() % 10, 0);
                TrialReport::completed(0.0, ())
            }
        }
        let space = SearchSpace::new(vec![Dimension::int("batch_size", 10, 1000)]);
        let out = search(&space, &config(Method::Random, 5), &mut Rounding, |_, _| {}).unwrap();
        assert!(
            out.trials
                .iter()
                .all(|t| t.params["batch_size"].as_i64().unwrap() % 10 == 0)
        );
        // Rounded points are not tried twice, though many proposals round onto one.
        let space = SearchSpace::new(vec![Dimension::int("batch_size", 10, 59)]);
        for method in [Method::Random, Method::Bayesian] {
            let out = search(&space, &config(method, 5), &mut Rounding, |_, _| {}).unwrap();
            let mut sizes: Vec<i64> = out
                .trials
                .iter()
                .map(|t| t.params["batch_size"].as_i64().unwrap())
                .collect();
            sizes.sort_unstable();
            assert_eq!(sizes, [10, 20, 30, 40, 50], "{method:?}");
        }
    }
}
