//! The search loop on test functions and scripted objectives: each method, failures,
//! cancellation, timeout, pruning and normalised points.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use super::*;
use crate::space::Dimension;
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
