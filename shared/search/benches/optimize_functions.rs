//! How well each search method minimises standard test functions on their usual domains:
//! Branin (x1 ∈ [-5, 10], x2 ∈ [0, 15], minimum 0.397887) and Hartmann-6 (the unit cube,
//! minimum −3.32237). For each method, the median over 10 seeds of the best value found in
//! 20 trials, through the same search code that tunes models (which maximises, so the
//! objective is the negated function).
//!
//! `cargo bench -p synth-search --bench optimize_functions`

use std::f64::consts::PI;
use std::time::Instant;

use serde_json::{Map, Value};
use synth_search::{
    Acquisition, Dimension, FnObjective, Method, SearchConfig, SearchSpace, TrialContext,
    TrialReport, search,
};

const TRIALS: usize = 20;
const SEEDS: u64 = 10;

fn branin(x: &[f64]) -> f64 {
    let (x1, x2) = (x[0], x[1]);
    let b = 5.1 / (4.0 * PI * PI);
    let c = 5.0 / PI;
    let t = 1.0 / (8.0 * PI);
    (x2 - b * x1 * x1 + c * x1 - 6.0).powi(2) + 10.0 * (1.0 - t) * x1.cos() + 10.0
}

fn hartmann6(x: &[f64]) -> f64 {
    const ALPHA: [f64; 4] = [1.0, 1.2, 3.0, 3.2];
    const A: [[f64; 6]; 4] = [
        [10.0, 3.0, 17.0, 3.5, 1.7, 8.0],
        [0.05, 10.0, 17.0, 0.1, 8.0, 14.0],
        [3.0, 3.5, 1.7, 10.0, 17.0, 8.0],
        [17.0, 8.0, 0.05, 10.0, 0.1, 14.0],
    ];
    const P: [[f64; 6]; 4] = [
        [1312.0, 1696.0, 5569.0, 124.0, 8283.0, 5886.0],
        [2329.0, 4135.0, 8307.0, 3736.0, 1004.0, 9991.0],
        [2348.0, 1451.0, 3522.0, 2883.0, 3047.0, 6650.0],
        [4047.0, 8828.0, 8732.0, 5743.0, 1091.0, 381.0],
    ];
    -(0..4)
        .map(|i| {
            let inner: f64 = (0..6)
                .map(|j| A[i][j] * (x[j] - P[i][j] * 1e-4).powi(2))
                .sum();
            ALPHA[i] * (-inner).exp()
        })
        .sum::<f64>()
}

fn coordinates(params: &Map<String, Value>, n: usize) -> Vec<f64> {
    (0..n)
        .map(|i| params[&format!("x{}", i + 1)].as_f64().expect("a float"))
        .collect()
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    let n = v.len();
    if n % 2 == 1 {
        v[n / 2]
    } else {
        (v[n / 2 - 1] + v[n / 2]) / 2.0
    }
}

/// The median (over seeds) of the best value found, and the seconds one search takes.
fn run(space: &SearchSpace, f: fn(&[f64]) -> f64, method: Method, acq: Acquisition) -> (f64, f64) {
    let dims = space.dims.len();
    let mut bests = Vec::new();
    let started = Instant::now();
    for seed in 0..SEEDS {
        let mut objective = FnObjective(|ctx: TrialContext| {
            TrialReport::completed(-f(&coordinates(&ctx.params, dims)), ())
        });
        let config = SearchConfig {
            method,
            n_trials: TRIALS,
            random_state: seed,
            acquisition: acq,
            ..SearchConfig::default()
        };
        let out = search(space, &config, &mut objective, |_, _| {}).expect("search runs");
        bests.push(-out.best.expect("a completed trial").score);
    }
    (
        median(bests),
        started.elapsed().as_secs_f64() / SEEDS as f64,
    )
}

/// The functions are the standard ones: their known minimisers give their known minima.
fn check_functions() {
    for x in [[-PI, 12.275], [PI, 2.275], [9.42478, 2.475]] {
        assert!((branin(&x) - 0.397887).abs() < 1e-5, "Branin at {x:?}");
    }
    let x = [0.20169, 0.150011, 0.476874, 0.275332, 0.311652, 0.6573];
    assert!((hartmann6(&x) + 3.32237).abs() < 1e-4, "Hartmann-6");
}

fn main() {
    check_functions();
    let branin_space = SearchSpace::new(vec![
        Dimension::float("x1", -5.0, 10.0),
        Dimension::float("x2", 0.0, 15.0),
    ]);
    let hartmann_space = SearchSpace::new(
        (1..=6)
            .map(|i| Dimension::float(&format!("x{i}"), 0.0, 1.0))
            .collect(),
    );
    println!(
        "median best value after {TRIALS} trials over {SEEDS} seeds (minimisation; lower is better)"
    );
    println!(
        "{:<12} {:>10} {:<22} {:>12} {:>14}",
        "function", "minimum", "method", "median best", "s per search"
    );
    let methods = [
        ("grid", Method::Grid, Acquisition::ExpectedImprovement),
        ("random", Method::Random, Acquisition::ExpectedImprovement),
        (
            "bayesian (EI)",
            Method::Bayesian,
            Acquisition::ExpectedImprovement,
        ),
        (
            "bayesian (PI)",
            Method::Bayesian,
            Acquisition::ProbabilityOfImprovement,
        ),
        (
            "bayesian (UCB)",
            Method::Bayesian,
            Acquisition::UpperConfidenceBound,
        ),
    ];
    for (name, space, f, minimum) in [
        (
            "Branin",
            &branin_space,
            branin as fn(&[f64]) -> f64,
            0.397887,
        ),
        ("Hartmann-6", &hartmann_space, hartmann6, -3.32237),
    ] {
        for (label, method, acq) in methods {
            let (best, seconds) = run(space, f, method, acq);
            println!("{name:<12} {minimum:>10.6} {label:<22} {best:>12.6} {seconds:>14.3}");
        }
    }
}
