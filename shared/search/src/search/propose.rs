//! Proposing the next point: every point of a grid, uniform draws, or the maximiser of an
//! acquisition function over a Gaussian process fitted to the trials so far — never a
//! point already tried.

use rand::Rng;
use rand::seq::SliceRandom;
use rand_chacha::ChaCha8Rng;

use super::config::{Method, SearchConfig};
use crate::gp::{Acquisition, GaussianProcess};
use crate::space::{Point, SearchSpace};

/// Candidates scored by the acquisition function per proposal, beyond those near the best.
const RANDOM_CANDIDATES: usize = 2000;
/// Observations around which candidates are also drawn, and candidates refined locally.
const LOCAL_STARTS: usize = 5;

/// Chooses the points to try.
pub(super) enum Proposer {
    Grid(std::vec::IntoIter<Point>),
    Random,
    Bayesian {
        acquisition: Acquisition,
        initial_points: usize,
    },
}

impl Proposer {
    pub(super) fn new(space: &SearchSpace, config: &SearchConfig, rng: &mut ChaCha8Rng) -> Self {
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
    pub(super) fn next(
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
pub(super) fn untried_random(
    space: &SearchSpace,
    tried: &[Point],
    rng: &mut ChaCha8Rng,
) -> Option<Point> {
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
