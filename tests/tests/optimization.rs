//! Hyperparameter searches over HTTP against both families: a user starts a search, reads
//! its trials while it runs, stops one mid-way (the best trial is kept and sampled), lets
//! another finish, and trains the best parameters with the generation config it hands back.
//! The tests play the runtime's part for the queue and the jobs, as the generation tests do.

use std::time::Duration;

use serde_json::{Value, json};
use synth_core::Settings;
use synth_core::generation::lifecycle::{Claim, TrainerRun};
use synth_core::generation::{SearchTrial, TrialState};
use synth_data::FileFormat;
use synth_tests::http::{TestServer, quick_request, read_table, serve};
use synth_tests::pluck;
use synth_trainer::Outcome;

synth_tests::both_families!(
    a_search_runs_its_trials_and_hands_back_the_best,
    a_stopped_search_keeps_its_best_trial,
    a_failing_trial_leaves_the_search_going,
    a_search_taken_over_shows_only_its_own_trials,
    bad_searches_are_refused_and_store_nothing,
    other_users_searches_are_not_found,
);

fn settings() -> Settings {
    let mut s = Settings::for_tests();
    s.min_epochs = 1;
    s.trainer_lease_seconds = 60;
    s.max_optimization_trials = 50;
    s
}

/// A search of CTGAN on the penguins: `n_trials` trials over `search_space`.
fn search(dataset: &str, n_trials: u64, search_space: Value) -> Value {
    json!({
        "dataset_id": dataset, "model_type": "ctgan", "optimization_method": "bayesian",
        "n_trials": n_trials, "search_space": search_space, "random_state": 7,
        "parameters": {"batch_size": 100, "pac": 10}, "sample_size": 100, "output_format": "csv",
    })
}

async fn started(s: &TestServer, token: &str, body: Value) -> String {
    let r = s
        .post("/optimization/start", Some(token), body)
        .await
        .expect(201);
    assert_eq!(r.data()["kind"], "optimization", "{}", r.body);
    r.id()
}

async fn trials(s: &TestServer, token: &str, id: &str) -> Value {
    let path = format!("/optimization/trials/{id}");
    s.get(&path, Some(token)).await.expect(200).data().clone()
}

/// The numbers of the trials recorded, in order.
fn trial_numbers(trials: &Value) -> Vec<u64> {
    let all = trials["trials"].as_array().unwrap();
    all.iter().map(|t| t["number"].as_u64().unwrap()).collect()
}

/// Scores of the trials that completed.
fn scores(trials: &Value) -> Vec<f64> {
    let all = trials["trials"].as_array().unwrap();
    all.iter()
        .filter(|t| t["status"] == "completed")
        .map(|t| t["score"].as_f64().expect("a completed trial has a score"))
        .collect()
}

async fn a_search_runs_its_trials_and_hands_back_the_best(f: synth_tests::Family) {
    let s = serve(f, settings()).await;
    let (_, t, dataset) = s.penguins("ada@example.com").await;
    let id = started(&s, &t, search(&dataset, 4, json!({"epochs": [2, 6]}))).await;

    // Read the trials while the search runs.
    let (outcomes, seen) = tokio::join!(s.run_queued_jobs(), async {
        let mut seen = Vec::new();
        loop {
            let now = trials(&s, &t, &id).await;
            let done = now["trials"].as_array().unwrap().len();
            if now["status"] == "running" {
                seen.push(done);
            }
            if now["status"] != "queued" && now["status"] != "running" {
                return seen;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    });
    assert_eq!(outcomes, [Outcome::Completed]);
    assert!(seen.iter().any(|&n| n < 4), "a read while it ran: {seen:?}");
    assert!(seen.windows(2).all(|w| w[0] <= w[1]), "{seen:?}");

    let all = trials(&s, &t, &id).await;
    assert_eq!(all["status"], "completed", "{all}");
    let numbers = trial_numbers(&all);
    assert_eq!(numbers, [1, 2, 3, 4]);
    for trial in all["trials"].as_array().unwrap() {
        let epochs = trial["params"]["epochs"].as_u64().expect("searched epochs");
        assert!((2..=6).contains(&epochs), "{trial}");
        assert!(trial["fit_seconds"].as_f64().unwrap() > 0.0, "{trial}");
    }
    let best = s
        .get(&format!("/optimization/best/{id}"), Some(&t))
        .await
        .expect(200);
    let best = best.data();
    let top = best["best"]["score"].as_f64().expect("a best score");
    assert!(scores(&all).iter().all(|&x| top >= x), "{best} vs {all}");
    assert_eq!(best["best"], all["best"]);

    // The best model's sample and its report.
    let table = read_table(&s.fetch(&best["result"]["data"]).await, FileFormat::Csv);
    assert_eq!(table.n_rows(), 100);
    let report: Value =
        serde_json::from_slice(&s.fetch(&best["result"]["report_json"]).await).unwrap();
    assert!(report["quality"]["score"].is_number(), "{report}");
    let status = s.get(&format!("/generation/status/{id}"), Some(&t)).await;
    let result = &status.data()["result"];
    assert_eq!(result["search"]["best_score"].as_f64(), Some(top));
    assert_eq!(result["search"]["trials"], 4);

    // The best parameters train as a generation, the config posted as it came.
    let config = best["generation_config"].clone();
    assert_eq!(config["model_config"]["model_type"], "ctgan", "{config}");
    assert_eq!(
        config["model_config"]["epochs"],
        best["best"]["params"]["epochs"]
    );
    let generation = s.started_generation(&t, config).await;
    assert_eq!(generation.data()["kind"], "generation");
    assert_eq!(s.run_queued_jobs().await, [Outcome::Completed]);

    // Same seed, same space: the same trials in the same order.
    let again = started(&s, &t, search(&dataset, 4, json!({"epochs": [2, 6]}))).await;
    assert_eq!(s.run_queued_jobs().await, [Outcome::Completed]);
    let replay = trials(&s, &t, &again).await;
    let runs = |v: &Value| -> Vec<(Value, Value)> {
        let all = v["trials"].as_array().unwrap();
        all.iter()
            .map(|t| (t["params"].clone(), t["score"].clone()))
            .collect()
    };
    assert_eq!(runs(&replay), runs(&all));

    // A generation with a search first shows its trials the same way.
    let mut body = quick_request(&dataset, 100);
    body["optimization_config"] = json!({"enabled": true, "method": "random", "n_trials": 2,
                                         "search_space": {"epochs": [1, 2]}});
    let searched = s.started_generation(&t, body).await;
    let searched = searched.id();
    assert_eq!(s.run_queued_jobs().await, [Outcome::Completed]);
    let its = trials(&s, &t, &searched).await;
    assert_eq!(its["trials"].as_array().unwrap().len(), 2, "{its}");
    assert!(its["best"]["score"].is_number(), "{its}");
    let listed = s.get("/optimization/requests", Some(&t)).await.expect(200);
    assert_eq!(
        pluck(&listed.data()["items"], "/id"),
        [again.as_str(), id.as_str()],
        "only the searches, newest first: {}",
        listed.body
    );
}

async fn a_stopped_search_keeps_its_best_trial(f: synth_tests::Family) {
    let s = serve(f, settings()).await;
    let (_, t, dataset) = s.penguins("ada@example.com").await;
    let id = started(&s, &t, search(&dataset, 50, json!({"epochs": [20, 40]}))).await;
    let stop = format!("/optimization/stop/{id}");
    let (outcomes, stopped) = tokio::join!(s.run_queued_jobs(), async {
        let one = synth_tests::eventually(Duration::from_secs(120), || async {
            let now = trials(&s, &t, &id).await;
            (!scores(&now).is_empty()).then_some(now)
        })
        .await;
        one.expect("a trial completes");
        s.call("PUT", &stop, Some(&t), None).await.expect(200)
    });
    assert_eq!(stopped.data()["stop_requested"], true, "{}", stopped.body);
    assert_eq!(outcomes, [Outcome::Stopped]);

    let all = trials(&s, &t, &id).await;
    assert_eq!(all["status"], "stopped", "{all}");
    let ran = all["trials"].as_array().unwrap().len();
    assert!(ran < 50, "stopped mid-way: {ran} trials");
    let best = s
        .get(&format!("/optimization/best/{id}"), Some(&t))
        .await
        .expect(200);
    let best = best.data();
    let top = best["best"]["score"].as_f64().unwrap();
    assert!(scores(&all).iter().all(|&x| top >= x), "{best}");
    let table = read_table(&s.fetch(&best["result"]["data"]).await, FileFormat::Csv);
    assert_eq!(table.n_rows(), 100);
    let status = s.get(&format!("/generation/status/{id}"), Some(&t)).await;
    let found = &status.data()["result"]["search"];
    assert_eq!(found["ended_early"], "stopped", "{found}");
    let again = s.call("PUT", &stop, Some(&t), None).await.expect(409);
    assert_eq!(again.code(), "CONFLICT");

    // A search stopped before it starts is simply cancelled.
    let queued = started(&s, &t, search(&dataset, 2, json!({"epochs": [1, 2]}))).await;
    let path = format!("/optimization/stop/{queued}");
    let r = s.call("PUT", &path, Some(&t), None).await.expect(200);
    assert_eq!(r.data()["status"], "cancelled", "{}", r.body);
    assert!(matches!(
        s.run_queued_jobs().await.as_slice(),
        [Outcome::Skipped(_)]
    ));
}

/// A trial whose parameters do not fit (a pac that does not divide the batch) fails with
/// its reason; the search goes on and completes with the other one, scored by a weighted
/// mix of metrics.
async fn a_failing_trial_leaves_the_search_going(f: synth_tests::Family) {
    let s = serve(f, settings()).await;
    let (_, t, dataset) = s.penguins("ada@example.com").await;
    let mut body = search(&dataset, 2, json!({"pac": [3, 10]}));
    body["optimization_method"] = json!("grid");
    // Scored by a weighted mix with a privacy floor every trial's sample keeps.
    body["optimization_metric"] = json!({"weights": {"column_shapes": 3, "column_pair_trends": 1},
                                         "privacy_floor": 0.0});
    body["parameters"] = json!({"batch_size": 100, "epochs": 2});
    let id = started(&s, &t, body).await;
    assert_eq!(s.run_queued_jobs().await, [Outcome::Completed]);
    let all = trials(&s, &t, &id).await;
    let states: Vec<(&Value, &str)> = all["trials"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| (&t["params"]["pac"], t["status"].as_str().unwrap()))
        .collect();
    assert_eq!(
        states,
        [(&json!(3), "failed"), (&json!(10), "completed")],
        "{all}"
    );
    let reason = all["trials"][0]["reason"].as_str().unwrap();
    assert!(reason.contains("pac"), "{reason}");
    assert_eq!(all["best"]["params"]["pac"], 10);
    let score = all["best"]["score"].as_f64().unwrap();
    assert!((0.0..=1.0).contains(&score), "{score}");

    // A search whose every trial fails ends failed, with each trial's reason.
    let mut hopeless = search(&dataset, 2, json!({"pac": [3, 7]}));
    hopeless["optimization_method"] = json!("grid");
    hopeless["parameters"] = json!({"batch_size": 100, "epochs": 2});
    let id = started(&s, &t, hopeless).await;
    let outcomes = s.run_queued_jobs().await;
    assert!(
        matches!(outcomes.as_slice(), [Outcome::Failed(_)]),
        "{outcomes:?}"
    );
    let failed = s.get(&format!("/generation/status/{id}"), Some(&t)).await;
    let error = failed.data()["error"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    assert!(
        error.contains("trial 1") && error.contains("trial 2"),
        "{error}"
    );
}

async fn a_search_taken_over_shows_only_its_own_trials(f: synth_tests::Family) {
    // A lease this short lets the next run take over a second after the first one dies.
    let short_lease = Settings {
        trainer_lease_seconds: 1,
        ..settings()
    };
    let s = serve(f, short_lease).await;
    let (owner, t, dataset) = s.penguins("ada@example.com").await;
    let id = started(&s, &t, search(&dataset, 2, json!({"epochs": [1, 2]}))).await;
    // A run takes it, records a trial, and dies without a word.
    let b = &s.family.backends;
    let lease = Duration::from_secs(1);
    let claim = TrainerRun::claim(b.records.clone(), b.topic.clone(), lease, &owner, &id).await;
    let Claim::Run(run) = claim.unwrap() else {
        panic!("the run could not claim")
    };
    let stale = SearchTrial {
        number: 9,
        params: json!({"epochs": 1}),
        status: TrialState::Completed,
        score: Some(0.5),
        reason: None,
        fit_seconds: 1.0,
        finished_at: chrono::Utc::now(),
    };
    run.record_trial(&stale).await.unwrap();
    drop(run);
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(s.run_queued_jobs().await, [Outcome::Completed]);
    let all = trials(&s, &t, &id).await;
    let numbers = trial_numbers(&all);
    assert_eq!(numbers, [1, 2], "{all}");
}

async fn bad_searches_are_refused_and_store_nothing(f: synth_tests::Family) {
    let s = serve(f, settings()).await;
    let (_, t, dataset) = s.penguins("ada@example.com").await;
    let base = search(&dataset, 4, json!({"epochs": [2, 6]}));
    let with = |k: &str, v: Value| {
        let mut b = base.clone();
        b[k] = v;
        b
    };
    let cases = [
        (with("search_space", json!({"epochz": [1, 2]})), "epochz"),
        (with("search_space", json!({"epochs": [9, 2]})), "epochs"),
        (with("n_trials", json!(0)), "n_trials"),
        (with("n_trials", json!(51)), "MAX_OPTIMIZATION_TRIALS"),
        (with("optimization_metric", json!("beauty")), "beauty"),
        (with("optimization_metric", json!("ml_efficacy")), "target"),
        (with("optimization_method", json!("genetic")), "genetic"),
        (
            with(
                "optimization_metric",
                json!({"weights": {"quality_score": -1}}),
            ),
            "weight",
        ),
        (
            with("optimization_metric", json!({"weights": {"beauty": 1}})),
            "beauty",
        ),
        (with("target", json!("wingspan")), "wingspan"),
        (with("model_type", json!("gan")), "gan"),
        (with("parameters", json!({"pac": 7})), "pac"),
        (with("dataset_id", json!("nope")), "dataset"),
    ];
    for (body, needle) in cases {
        let r = s.post("/optimization/start", Some(&t), body.clone()).await;
        assert!(
            r.status == 400 || (needle == "dataset" && r.status == 404),
            "{body}: {} {}",
            r.status,
            r.body
        );
        assert!(r.body.to_string().contains(needle), "{needle}: {}", r.body);
    }
    // The field at fault is named as this route's body names it; a space is held to the
    // platform's epochs and to the model sizes a generation may ask for.
    for (body, field) in [
        (
            with("optimization_method", json!("bayes")),
            "optimization_method",
        ),
        (with("n_trials", json!(0)), "n_trials"),
        (with("timeout_seconds", json!(-1)), "timeout_seconds"),
        (with("prune", json!({"every": 0})), "prune"),
        (
            with("optimization_metric", json!("ml_efficacy")),
            "optimization_metric",
        ),
        (
            with("search_space", json!({"epochs": [2, 20000]})),
            "search_space.epochs",
        ),
        (
            with("search_space", json!({"embedding_dim": [8, 1_000_000_000]})),
            "search_space.embedding_dim",
        ),
        (
            with("search_space", json!({"epochz": [1, 2]})),
            "search_space.epochz",
        ),
    ] {
        let r = s.post("/optimization/start", Some(&t), body.clone()).await;
        let r = r.expect_error(400, "VALIDATION_ERROR");
        assert_eq!(r.body["error"]["details"]["field"], field, "{body}");
    }
    let unknown = with("n_trial", json!(3));
    let r = s.post("/optimization/start", Some(&t), unknown).await;
    assert_eq!(r.status, 400, "unknown fields are refused: {}", r.body);
    let listed = s.get("/generation/requests", Some(&t)).await.expect(200);
    assert_eq!(listed.data()["items"], json!([]), "nothing stored");
    assert!(s.run_queued_jobs().await.is_empty(), "nothing queued");
}

async fn other_users_searches_are_not_found(f: synth_tests::Family) {
    let s = serve(f, settings()).await;
    let (_, a, dataset) = s.penguins("ada@example.com").await;
    let (_, b) = s.register("bob@example.com").await;
    let id = started(&s, &a, search(&dataset, 2, json!({"epochs": [1, 2]}))).await;
    for path in [
        format!("/optimization/trials/{id}"),
        format!("/optimization/best/{id}"),
        format!("/generation/status/{id}"),
    ] {
        let r = s.get(&path, Some(&b)).await.expect(404);
        assert_eq!(r.code(), "NOT_FOUND", "{path}");
    }
    let path = format!("/optimization/stop/{id}");
    s.call("PUT", &path, Some(&b), None).await.expect(404);
    let theirs = s.get("/optimization/requests", Some(&b)).await.expect(200);
    assert_eq!(theirs.data()["items"], json!([]));
    let anonymous = s.get(&format!("/optimization/trials/{id}"), None).await;
    assert_eq!(anonymous.status, 401);

    // A generation without a search has no trials, and is cancelled, not stopped.
    let plain = s.quick_generation(&a, &dataset, 100).await;
    let r = s
        .get(&format!("/optimization/trials/{plain}"), Some(&a))
        .await;
    r.expect(404);
    let path = format!("/optimization/stop/{plain}");
    s.call("PUT", &path, Some(&a), None).await.expect(409);
    s.run_queued_jobs().await;
}
