//! `synth optimize` as a user runs it: a real table in, a progress line per trial, the
//! results as JSON, the best model saved for `synth generate`, and clear errors.

mod common;

use std::path::Path;

use common::{PENGUINS, PENGUINS_META, synth, synth_json, text};
use serde_json::{Value, json};

fn write_json(dir: &Path, name: &str, v: &Value) -> String {
    let path = dir.join(name);
    std::fs::write(&path, v.to_string()).unwrap();
    path.to_str().unwrap().to_owned()
}

/// `synth optimize` of penguins: two random trials of `model` with `config`, then `extra`.
fn random_search<'a>(config: &'a str, model: &'a str, extra: &[&'a str]) -> Vec<&'a str> {
    let mut args = vec![
        "optimize",
        PENGUINS,
        "--metadata",
        PENGUINS_META,
        "--config",
        config,
        "--model",
        model,
        "--method",
        "random",
        "--trials",
        "2",
    ];
    args.extend_from_slice(extra);
    args
}

/// Small networks and one or two epochs: the plumbing, in seconds.
fn small_config(dir: &Path, extra: Value) -> String {
    let mut config = json!({"params": {"batch_size": 100, "discriminator_dim": [16],
                                       "embedding_dim": 8}});
    for (k, v) in extra.as_object().unwrap() {
        config[k] = v.clone();
    }
    write_json(dir, "config.json", &config)
}

#[test]
fn optimize_writes_its_trials_and_a_model_generate_can_load() {
    let tmp = tempfile::tempdir().unwrap();
    let space = write_json(
        tmp.path(),
        "space.json",
        &json!({"epochs": [1, 2], "generator_dim": [[16], [32]], "learning_rate": [1e-4, 1e-2]}),
    );
    let config = small_config(tmp.path(), json!({}));
    let best_path = tmp.path().join("best.json");
    let model = tmp.path().join("model");
    let o = synth(&random_search(
        &config,
        "ctgan",
        &[
            "--search-space",
            &space,
            "--seed",
            "5",
            "--json",
            "-o",
            best_path.to_str().unwrap(),
            "--save-model",
            model.to_str().unwrap(),
        ],
    ));
    let stderr = text(&o.stderr);
    assert!(o.status.success(), "{stderr}");
    // One progress line per trial, with its parameters, score and the best so far.
    for n in 1..=2 {
        let line = stderr
            .lines()
            .find(|l| l.starts_with(&format!("trial {n}/2")))
            .unwrap_or_else(|| panic!("no line for trial {n}: {stderr}"));
        assert!(
            line.contains("completed") && line.contains("best 0."),
            "{line}"
        );
        assert!(
            line.contains("epochs=") && line.contains("learning_rate="),
            "{line}"
        );
    }
    let printed: Value = serde_json::from_str(text(&o.stdout).trim()).unwrap();
    let written: Value =
        serde_json::from_str(&std::fs::read_to_string(&best_path).unwrap()).unwrap();
    assert_eq!(printed, written);
    assert_eq!(printed["method"], "random");
    assert_eq!(printed["metric"], "quality_score");
    let best = printed["best_score"].as_f64().unwrap();
    assert!((0.0..=1.0).contains(&best), "{best}");
    let trials = printed["trials"].as_array().unwrap();
    assert_eq!(trials.len(), 2);
    for (i, t) in trials.iter().enumerate() {
        assert_eq!(t["number"], json!(i + 1));
        assert_eq!(t["status"], "completed");
        assert!(t["fit_seconds"].as_f64().unwrap() > 0.0);
        let p = t["params"].as_object().unwrap();
        assert!((1..=2).contains(&p["epochs"].as_i64().unwrap()), "{t}");
        let lr = p["learning_rate"].as_f64().unwrap();
        assert!((1e-4..=1e-2).contains(&lr), "{t}");
        assert!(p["generator_dim"] == json!([16]) || p["generator_dim"] == json!([32]));
    }
    let max = trials
        .iter()
        .map(|t| t["score"].as_f64().unwrap())
        .fold(f64::NEG_INFINITY, f64::max);
    assert_eq!(best, max);
    let best_trial = &trials[printed["best_trial"].as_u64().unwrap() as usize - 1];
    assert_eq!(printed["best_params"], best_trial["params"]);
    // The full parameters of the best model, fixed ones included.
    assert_eq!(printed["model_params"]["batch_size"], 100);
    assert_eq!(
        printed["model_params"]["epochs"],
        best_trial["params"]["epochs"]
    );

    // The saved best model samples without retraining.
    let out = tmp.path().join("synthetic.csv");
    let figures: Value = synth_json(&[
        "generate",
        "--load-model",
        model.to_str().unwrap(),
        "--rows",
        "40",
        "--json",
        "-o",
        out.to_str().unwrap(),
    ]);
    assert_eq!(figures["epochs"], best_trial["params"]["epochs"]);
    let csv = std::fs::read_to_string(&out).unwrap();
    assert_eq!(csv.lines().count(), 41);
    assert!(csv.starts_with("species,island,"));
}

#[test]
fn a_seed_format_config_runs_a_grid_search_of_tvae() {
    let tmp = tempfile::tempdir().unwrap();
    let config = write_json(
        tmp.path(),
        "request.json",
        &json!({"model": "tvae", "method": "grid", "n_trials": 4,
                "search_space": {"epochs": [1, 2], "loss_factor": [1.0, 3.0]},
                "optimization_metric": "column_shapes", "random_state": 1,
                "params": {"batch_size": 100, "compress_dims": [16], "decompress_dims": [16],
                           "embedding_dim": 8}}),
    );
    let out: Value = synth_json(&["optimize", PENGUINS, "--config", &config, "--json"]);
    assert_eq!(
        (out["method"].as_str(), out["metric"].as_str()),
        (Some("grid"), Some("column_shapes"))
    );
    assert_eq!(out["model"], "tvae");
    // A 2 × 2 grid: each corner once.
    let mut points: Vec<String> = out["trials"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| format!("{}/{}", t["params"]["epochs"], t["params"]["loss_factor"]))
        .collect();
    points.sort();
    assert_eq!(points, ["1/1.0", "1/3.0", "2/1.0", "2/3.0"]);
}

#[test]
fn bad_requests_are_clear_errors() {
    let tmp = tempfile::tempdir().unwrap();
    let fails = |args: &[&str], expect: &str| {
        let mut all = vec!["optimize", PENGUINS, "--trials", "1"];
        all.extend_from_slice(args);
        let o = synth(&all);
        assert_eq!(o.status.code(), Some(2), "{args:?}: {}", text(&o.stderr));
        let stderr = text(&o.stderr);
        assert!(
            stderr.contains(expect),
            "{args:?}: expected {expect:?} in {stderr}"
        );
    };
    let unknown = write_json(tmp.path(), "unknown.json", &json!({"epochz": [1, 2]}));
    fails(&["--search-space", &unknown], "epochz");
    let inverted = write_json(tmp.path(), "inverted.json", &json!({"epochs": [9, 2]}));
    fails(&["--search-space", &inverted], "inverted");
    let tvae_only = write_json(tmp.path(), "tvae.json", &json!({"compress_dims": [[8]]}));
    fails(&["--search-space", &tvae_only], "compress_dims");
    fails(&["--metric", "accuracy"], "accuracy");
    fails(&["--metric", "ml_efficacy"], "target");
    fails(&["--method", "annealing"], "annealing");
    fails(&["--model", "gpt"], "gpt");
    fails(&["--acquisition", "EV"], "EV");
    fails(&["--target", "wingspan"], "wingspan");
    let not_json = tmp.path().join("space.txt");
    std::fs::write(&not_json, "epochs: 1").unwrap();
    fails(&["--search-space", not_json.to_str().unwrap()], "space.txt");
    let empty = tmp.path().join("empty.csv");
    std::fs::write(&empty, "a,b\n").unwrap();
    let o = synth(&["optimize", empty.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(2));
    assert!(
        text(&o.stderr).contains("no data rows"),
        "{}",
        text(&o.stderr)
    );
}

#[test]
fn an_argn_search_completes_trials_that_stop_early() {
    let tmp = tempfile::tempdir().unwrap();
    // 2,000 epochs at most with a patience of 2: each trial ends on its held-out loss.
    let config = write_json(
        tmp.path(),
        "config.json",
        &json!({"params": {"epochs": 2000, "patience": 2, "hidden_dims": [16]}}),
    );
    let printed: Value = synth_json(&random_search(&config, "argn", &["--seed", "1", "--json"]));
    let trials = printed["trials"].as_array().unwrap();
    assert_eq!(trials.len(), 2);
    assert!(
        trials.iter().all(|t| t["status"] == "completed"),
        "{printed}"
    );
    assert!(printed["best_score"].as_f64().is_some_and(|s| s > 0.0));
}
