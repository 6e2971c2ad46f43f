//! `synth optimize` as a user runs it: a real table in, a progress line per trial, the
//! results as JSON, the best model saved for `synth generate`, and clear errors.

mod common;

use common::{PENGUINS, PENGUINS_META, Scratch, assert_fails_saying, synth, synth_json, text};
use serde_json::{Value, json};

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
fn small_config(tmp: &Scratch, extra: Value) -> String {
    let mut config = json!({"params": {"batch_size": 100, "discriminator_dim": [16],
                                       "embedding_dim": 8}});
    for (k, v) in extra.as_object().unwrap() {
        config[k] = v.clone();
    }
    tmp.write("config.json", config.to_string())
}

#[test]
fn optimize_writes_its_trials_and_a_model_generate_can_load() {
    let tmp = Scratch::new();
    let space =
        json!({"epochs": [1, 2], "generator_dim": [[16], [32]], "learning_rate": [1e-4, 1e-2]});
    let space = tmp.write("space.json", space.to_string());
    let config = small_config(&tmp, json!({}));
    let (best_path, model) = (tmp.path("best.json"), tmp.path("model"));
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
            &best_path,
            "--save-model",
            &model,
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
    let out = tmp.path("synthetic.csv");
    let figures: Value = synth_json(&[
        "generate",
        "--load-model",
        &model,
        "--rows",
        "40",
        "--json",
        "-o",
        &out,
    ]);
    assert_eq!(figures["epochs"], best_trial["params"]["epochs"]);
    let csv = std::fs::read_to_string(&out).unwrap();
    assert_eq!(csv.lines().count(), 41);
    assert!(csv.starts_with("species,island,"));
}

#[test]
fn a_seed_format_config_runs_a_grid_search_of_tvae() {
    let request = json!({"model": "tvae", "method": "grid", "n_trials": 4,
                         "search_space": {"epochs": [1, 2], "loss_factor": [1.0, 3.0]},
                         "optimization_metric": "column_shapes", "random_state": 1,
                         "params": {"batch_size": 100, "compress_dims": [16],
                                    "decompress_dims": [16], "embedding_dim": 8}});
    let tmp = Scratch::new();
    let config = tmp.write("request.json", request.to_string());
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
    let tmp = Scratch::new();
    // `synth optimize` with `args` exits 2, saying `expect`.
    let exits_2_saying = |args: &[&str], expect: &str| {
        let o = synth(args);
        assert_eq!(o.status.code(), Some(2), "{args:?}: {}", text(&o.stderr));
        assert_fails_saying(&o, expect);
    };
    let fails = |args: &[&str], expect: &str| {
        exits_2_saying(
            &[&["optimize", PENGUINS, "--trials", "1"], args].concat(),
            expect,
        )
    };
    for (name, space, expect) in [
        ("unknown.json", json!({"epochz": [1, 2]}), "epochz"),
        ("inverted.json", json!({"epochs": [9, 2]}), "inverted"),
        (
            "tvae.json",
            json!({"compress_dims": [[8]]}),
            "compress_dims",
        ),
    ] {
        fails(
            &["--search-space", &tmp.write(name, space.to_string())],
            expect,
        );
    }
    for (flag, value, expect) in [
        ("--metric", "accuracy", "accuracy"),
        ("--metric", "ml_efficacy", "target"),
        ("--method", "annealing", "annealing"),
        ("--model", "gpt", "gpt"),
        ("--acquisition", "EV", "EV"),
        ("--target", "wingspan", "wingspan"),
    ] {
        fails(&[flag, value], expect);
    }
    let not_json = tmp.write("space.txt", "epochs: 1");
    fails(&["--search-space", &not_json], "space.txt");
    let empty = tmp.write("empty.csv", "a,b\n");
    exits_2_saying(&["optimize", &empty], "no data rows");
}

#[test]
fn an_argn_search_completes_trials_that_stop_early() {
    // 2,000 epochs at most with a patience of 2: each trial ends on its held-out loss.
    let config = json!({"params": {"epochs": 2000, "patience": 2, "hidden_dims": [16]}});
    let tmp = Scratch::new();
    let config = tmp.write("config.json", config.to_string());
    let printed: Value = synth_json(&random_search(&config, "argn", &["--seed", "1", "--json"]));
    let trials = printed["trials"].as_array().unwrap();
    assert_eq!(trials.len(), 2);
    assert!(
        trials.iter().all(|t| t["status"] == "completed"),
        "{printed}"
    );
    assert!(printed["best_score"].as_f64().is_some_and(|s| s > 0.0));
}
