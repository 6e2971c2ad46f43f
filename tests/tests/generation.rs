//! Generation requests over HTTP against both families: a user asks for a synthetic table
//! of a ready dataset, the request is queued, dispatched and trained, and the user downloads
//! the table and its report. The tests play the runtime's part for the queue and the jobs
//! ([`TestServer::run_queued_jobs`]): on AWS, `dispatch` is driven with the real SQS
//! messages and the trainer runs on the job submitted to Batch, as its container would.

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::Duration;

use serde_json::{Value, json};
use synth_core::Settings;
use synth_core::generation::lifecycle::{Claim, TrainerRun};
use synth_data::FileFormat;
use synth_table::{ColumnData, Table};
use synth_tests::http::{Reply, TestServer, read_table, serve};
use synth_tests::recording::Recording;
use synth_tests::{next_message, pluck, says};
use synth_trainer::Outcome;

synth_tests::both_families!(
    ctgan_parquet_with_a_condition_end_to_end,
    tvae_writes_csv_json_and_xlsx,
    personal_data_is_generated_never_copied,
    dates_in_a_format_of_the_users_are_learned_as_dates,
    argn_meets_its_conditions_exactly_and_reports_what_it_protects,
    the_seed_flow_creates_then_starts,
    bad_requests_are_refused_and_store_nothing,
    other_users_requests_are_not_found,
    cancel_approval_and_rejection,
    an_approved_request_waits_for_a_free_slot,
    a_duplicate_delivery_trains_once,
    the_concurrency_limit_holds,
    an_interrupted_run_is_retried_then_given_up,
    a_run_handed_back_is_taken_over_at_once,
    a_running_request_stops_when_cancelled,
    a_gpu_that_does_not_open_fails_the_request_saying_so,
);

const COLUMNS: [&str; 7] = [
    "species",
    "island",
    "bill_length_mm",
    "bill_depth_mm",
    "flipper_length_mm",
    "body_mass_g",
    "sex",
];

/// Quick training: a few epochs are enough to check the flow.
fn settings() -> Settings {
    let mut s = Settings::for_tests();
    s.min_epochs = 1;
    s.trainer_lease_seconds = 1;
    s
}

/// Ada's server on `settings`, her penguins ready: the server, her token and the dataset.
async fn ada(f: synth_tests::Family, settings: Settings) -> (TestServer, String, String) {
    let s = serve(f, settings).await;
    let (_, t, dataset) = s.penguins("ada@example.com").await;
    (s, t, dataset)
}

fn tvae(dataset: &str, format: &str) -> Value {
    json!({"dataset_id": dataset, "sample_size": 100, "output_format": format,
           "model_config": {"model_type": "tvae", "epochs": 2, "batch_size": 100}})
}

async fn status(s: &TestServer, token: &str, id: &str) -> Value {
    let r = s
        .get(&format!("/generation/status/{id}"), Some(token))
        .await
        .expect(200);
    r.data().clone()
}

/// A request's status and how many runs took it are `want`.
async fn assert_state(s: &TestServer, token: &str, id: &str, want: (&str, u64)) {
    let r = status(s, token, id).await;
    let got = (r["status"].as_str(), r["attempts"].as_u64());
    assert_eq!(got, (Some(want.0), Some(want.1)), "{r}");
}

fn names(t: &Table) -> Vec<&str> {
    t.columns.iter().map(|c| c.name.as_str()).collect()
}

async fn ctgan_parquet_with_a_condition_end_to_end(mut f: synth_tests::Family) {
    let recording = Recording::new(f.backends.records.clone());
    f.backends.records = recording.clone();
    let (s, t, dataset) = ada(f, settings()).await;
    let body = json!({
        "dataset_id": dataset, "sample_size": 120, "output_format": "parquet",
        "include_metadata": true, "conditions": {"species": "Gentoo"}, "seed": 7,
        "model_config": {"model_type": "ctgan", "epochs": 3, "batch_size": 100, "pac": 10},
    });
    let v = s.post("/generation-v2/validate", Some(&t), json!({
        "dataset_id": dataset, "model_type": "ctgan", "parameters": {"epochs": 3, "batch_size": 500},
        "conditions": {"species": "Gentoo"},
    })).await.expect(200);
    assert_eq!(v.data()["valid"], true, "{}", v.body);
    assert_eq!(
        pluck(&v.data()["warnings"], "/field"),
        ["batch_size"],
        "344 rows < batch_size 500: {}",
        v.body
    );
    // The default batch size is larger than the table too, but the caller did not ask for it.
    let v = s
        .post(
            "/generation-v2/validate",
            Some(&t),
            json!({
                "dataset_id": dataset, "model_type": "ctgan", "parameters": {"epochs": 3},
            }),
        )
        .await
        .expect(200);
    assert_eq!(v.data()["warnings"], json!([]), "{}", v.body);

    let r = s.started_generation(&t, body).await;
    assert_eq!(r.data()["status"], "queued");
    let id = r.id();
    s.get(&format!("/generation/download/{id}"), Some(&t))
        .await
        .expect_error(409, "CONFLICT");

    // Follow it while it trains: queued → running (with its phase) → completed.
    let seen = Arc::new(std::sync::Mutex::new(BTreeSet::new()));
    let poller = {
        let (url, http, t, id, seen) = (
            s.url.clone(),
            s.http.clone(),
            t.clone(),
            id.clone(),
            seen.clone(),
        );
        tokio::spawn(async move {
            loop {
                let r = Reply::of(
                    http.get(format!("{url}/generation/status/{id}"))
                        .bearer_auth(&t),
                )
                .await;
                let st = r.data()["status"].as_str().unwrap_or_default().to_owned();
                if let Some(p) = r.data()["progress"]["phase"].as_str() {
                    seen.lock().unwrap().insert(format!("{st}:{p}"));
                }
                seen.lock().unwrap().insert(st.clone());
                if st == "completed" || st == "failed" {
                    return;
                }
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        })
    };
    assert_eq!(s.run_queued_jobs().await, [Outcome::Completed]);
    tokio::time::timeout(Duration::from_secs(30), poller)
        .await
        .unwrap()
        .unwrap();
    let seen = seen.lock().unwrap().clone();
    assert!(seen.contains("completed"), "{seen:?}");
    // What the client may miss between two polls, the store saw: every phase, in order,
    // with the whole request's percent never going back.
    let written = recording.written("id", &id);
    let mut phases: Vec<&str> = Vec::new();
    let mut percent = 0.0;
    for item in &written {
        let Some(p) = item.0.get("progress").filter(|p| !p.is_null()) else {
            continue;
        };
        assert_eq!(item.0["status"], "running", "{p}");
        let now = p["percent"].as_f64().expect("a percent");
        assert!(now >= percent, "progress went back: {percent} -> {p}");
        percent = now;
        let phase = p["phase"].as_str().expect("a phase");
        if phases.last() != Some(&phase) {
            phases.push(phase);
        }
        if phase == "training" {
            assert_eq!(p["steps"], 3, "epochs: {p}");
            assert!(p["generator_loss"].is_number(), "{p}");
        }
    }
    assert_eq!(
        phases,
        ["preparing", "training", "sampling", "evaluating", "writing"]
    );
    let last = written.last().expect("updates were written");
    assert_eq!(last.0["status"], "completed", "{:?}", last.0);

    let done = status(&s, &t, &id).await;
    assert_eq!(done["status"], "completed", "{done}");
    assert_eq!(done["result"]["rows"], 120);
    let quality = done["result"]["quality_score"]
        .as_f64()
        .expect("a quality score");
    assert!((0.0..=1.0).contains(&quality), "{quality}");

    let links = s
        .get(&format!("/generation/download/{id}"), Some(&t))
        .await
        .expect(200);
    let table = read_table(&s.fetch(&links.data()["data"]).await, FileFormat::Parquet);
    assert_eq!(table.n_rows(), 120);
    assert_eq!(names(&table)[..COLUMNS.len()], COLUMNS);
    let Some(ColumnData::Str(species)) = table.column("species").map(|c| &c.data) else {
        panic!("species is text")
    };
    assert!(
        species.iter().all(|v| v.as_deref() == Some("Gentoo")),
        "{species:?}"
    );
    assert!(matches!(
        table.column("body_mass_g").map(|c| &c.data),
        Some(ColumnData::Float(_) | ColumnData::Int(_))
    ));
    let report: Value =
        serde_json::from_slice(&s.fetch(&links.data()["report_json"]).await).unwrap();
    assert_eq!(report["quality"]["score"].as_f64(), Some(quality));
    let html = s.fetch(&links.data()["report_html"]).await;
    assert!(String::from_utf8_lossy(&html).contains("<html"));
    let metadata: Value =
        serde_json::from_slice(&s.fetch(&links.data()["metadata"]).await).unwrap();
    assert_eq!(metadata["columns"]["species"]["sdtype"], "categorical");

    // Finished requests are deleted with their objects.
    s.delete(&format!("/generation/requests/{id}"), Some(&t))
        .await
        .expect(200);
    assert_eq!(
        s.get(&format!("/generation/status/{id}"), Some(&t))
            .await
            .status,
        404
    );
    let left = synth_tests::object_keys(s.family.backends.objects.as_ref(), "users/").await;
    assert!(!left.iter().any(|k| k.contains(&id)), "{left:?}");
}

/// 100 rows of `dataset` from `model` after 2 epochs, as CSV: started, run and downloaded.
async fn quick_csv(s: &TestServer, t: &str, dataset: &str, model: &str) -> Table {
    let body = json!({"dataset_id": dataset, "sample_size": 100, "output_format": "csv",
                      "model_config": {"model_type": model, "epochs": 2}});
    let id = s.started_generation(t, body).await.id();
    assert_eq!(s.run_queued_jobs().await, [Outcome::Completed], "{model}");
    let links = s.get(&format!("/generation/download/{id}"), Some(t)).await;
    read_table(
        &s.fetch(&links.expect(200).data()["data"]).await,
        FileFormat::Csv,
    )
}

async fn personal_data_is_generated_never_copied(f: synth_tests::Family) {
    let s = serve(f, settings()).await;
    let (owner, t) = s.register("ada@example.com").await;
    let mut csv = String::from("email,amount,city\n");
    let real: Vec<String> = (0..150).map(|i| format!("person{i}@corp.test")).collect();
    for (i, email) in real.iter().enumerate() {
        let city = ["Leeds", "York", "Bath"][i % 3];
        csv += &format!("{email},{},{city}\n", 10 + i % 37);
    }
    let dataset = s
        .ready_dataset(&t, &owner, "people.csv", csv.into_bytes())
        .await;
    for model in ["argn", "tvae"] {
        let table = quick_csv(&s, &t, &dataset, model).await;
        let ColumnData::Str(emails) = &table.column("email").unwrap().data else {
            panic!("{model}: emails are text")
        };
        assert_eq!(
            emails.iter().flatten().count(),
            100,
            "{model}: no nulls, as in the real"
        );
        for e in emails.iter().flatten() {
            assert!(!real.contains(e), "{model} copied {e}");
            let (local, domain) = e.split_once('@').unwrap();
            assert!(domain.starts_with("example."), "{model}: {e}");
            assert!(local.len() >= 7 && local[..6].chars().all(|c| c.is_ascii_lowercase()));
        }
    }
    // A condition cannot hold a personal column.
    let body = json!({"dataset_id": dataset, "conditions": {"email": "person1@corp.test"}});
    let r = s.start_generation(&t, body).await;
    let r = r.expect_error(400, "VALIDATION_ERROR");
    assert_eq!(r.body["error"]["details"]["field"], "conditions.email");
}

/// Dates in a format inference does not know (`2023.01.02 14h05`) are text until the user
/// names their format; a format their first rows do not read in, or none, is refused.
async fn dates_in_a_format_of_the_users_are_learned_as_dates(f: synth_tests::Family) {
    let s = serve(f, settings()).await;
    let (owner, t) = s.register("ada@example.com").await;
    let mut csv = String::from("visit,amount\n");
    for i in 0..120 {
        csv += &format!(
            "2023.{:02}.{:02} {:02}h{:02},{}\n",
            1 + i % 12,
            1 + i % 28,
            i % 24,
            i % 60,
            10 + i % 37
        );
    }
    let dataset = s
        .ready_dataset(&t, &owner, "visits.csv", csv.into_bytes())
        .await;
    let metadata = format!("/upload/datasets/{dataset}/metadata");
    let put = |column: Value| s.put(&metadata, Some(&t), json!({"columns": {"visit": column}}));
    let r = put(json!({"sdtype": "datetime"})).await;
    let r = r.expect_error(400, "VALIDATION_ERROR");
    assert!(
        says(&r.body["error"]["message"], "give the datetime_format"),
        "{}",
        r.body
    );
    let r = put(json!({"sdtype": "datetime", "datetime_format": "%d/%m/%Y %H:%M"})).await;
    let r = r.expect_error(400, "VALIDATION_ERROR");
    assert!(
        says(&r.body["error"]["message"], "not all dates in"),
        "{}",
        r.body
    );
    let format = "%Y.%m.%d %Hh%M";
    let r = put(json!({"sdtype": "datetime", "datetime_format": format})).await;
    let r = r.expect(200);
    let visit = &r.data()["metadata"]["columns"]["visit"];
    assert_eq!(
        (visit["sdtype"].as_str(), visit["datetime_format"].as_str()),
        (Some("datetime"), Some(format))
    );

    let table = quick_csv(&s, &t, &dataset, "argn").await;
    let ColumnData::Str(visits) = &table.column("visit").unwrap().data else {
        panic!("written as text in its format")
    };
    for v in visits.iter().flatten() {
        assert!(
            chrono::NaiveDateTime::parse_from_str(v, format)
                .is_ok_and(|d| d.format("%Y").to_string() == "2023"),
            "{v}"
        );
    }
}

async fn tvae_writes_csv_json_and_xlsx(f: synth_tests::Family) {
    let (s, t, dataset) = ada(f, settings()).await;
    let formats = [
        ("csv", FileFormat::Csv),
        ("json", FileFormat::Json),
        ("xlsx", FileFormat::Xlsx),
    ];
    let mut ids = Vec::new();
    for (name, _) in formats {
        let r = s.started_generation(&t, tvae(&dataset, name)).await;
        ids.push(r.id());
    }
    assert_eq!(
        s.run_queued_jobs().await,
        [Outcome::Completed, Outcome::Completed, Outcome::Completed]
    );
    for (id, (name, format)) in ids.iter().zip(formats) {
        let links = s.get(&format!("/generation/download/{id}"), Some(&t)).await;
        assert_eq!(links.status, 200, "{name}: {}", links.body);
        assert!(
            links.data()["report_json"].is_null(),
            "no metadata asked for"
        );
        let table = read_table(&s.fetch(&links.data()["data"]).await, format);
        assert_eq!(table.n_rows(), 100, "{name}");
        assert_eq!(names(&table)[..COLUMNS.len()], COLUMNS, "{name}");
    }
    // Newest first, filtered by status.
    let list = s
        .get("/generation/requests?status=completed", Some(&t))
        .await;
    let newest_first: Vec<&str> = ids.iter().rev().map(String::as_str).collect();
    assert_eq!(pluck(&list.data()["items"], "/id"), newest_first);
    let none = s.get("/generation/requests?status=running", Some(&t)).await;
    assert_eq!(none.data()["items"], json!([]));
    // A filtered page is full though the newest request is another status.
    let body =
        json!({"request": {"dataset_name": "penguins.csv"}, "params": {"model_type": "tvae"}});
    s.post("/data/requests", Some(&t), body).await.expect(201);
    let page = s
        .get("/generation/requests?status=completed&limit=2", Some(&t))
        .await;
    assert_eq!(pluck(&page.data()["items"], "/id"), newest_first[..2]);
    let cursor = page.data()["next_cursor"].as_str().unwrap();
    let rest = s
        .get(
            &format!("/generation/requests?status=completed&limit=2&cursor={cursor}"),
            Some(&t),
        )
        .await;
    assert_eq!(pluck(&rest.data()["items"], "/id"), newest_first[2..]);
}

async fn argn_meets_its_conditions_exactly_and_reports_what_it_protects(f: synth_tests::Family) {
    let (s, t, dataset) = ada(f, settings()).await;
    let config = s.get("/generation-v2/config", Some(&t)).await.expect(200);
    assert_eq!(config.data()["default_model"], "argn", "{}", config.body);
    assert!(
        config.data()["models"]
            .as_array()
            .unwrap()
            .iter()
            .any(|m| m["model_type"] == "argn"),
        "{}",
        config.body
    );
    let body = json!({
        "dataset_id": dataset, "sample_size": 150, "output_format": "csv",
        "include_metadata": true, "seed": 4,
        "conditions": {"species": "Chinstrap", "island": "Dream", "body_mass_g": {">=": 3500}},
        // No `model_type`: argn is the default.
        "model_config": {"epochs": 5, "batch_size": 100},
    });
    let started = s.started_generation(&t, body).await;
    assert_eq!(started.data()["model_type"], "argn", "{}", started.body);
    let id = started.id();
    assert_eq!(s.run_queued_jobs().await, [Outcome::Completed]);
    let links = s.get(&format!("/generation/download/{id}"), Some(&t)).await;
    assert_eq!(links.status, 200, "{}", links.body);
    let table = read_table(&s.fetch(&links.data()["data"]).await, FileFormat::Csv);
    assert_eq!(table.n_rows(), 150);
    let text = |name: &str| match &table.column(name).unwrap().data {
        ColumnData::Str(v) => v.clone(),
        other => panic!("{name}: {other:?}"),
    };
    assert!(
        text("species")
            .iter()
            .all(|v| v.as_deref() == Some("Chinstrap"))
    );
    assert!(text("island").iter().all(|v| v.as_deref() == Some("Dream")));
    let ColumnData::Int(mass) = &table.column("body_mass_g").unwrap().data else {
        panic!("integer masses")
    };
    assert!(
        mass.iter().all(|m| m.is_some_and(|m| m >= 3500)),
        "{mass:?}"
    );
    // Penguins' most extreme measurements are never written, and the report says so.
    let report: Value =
        serde_json::from_slice(&s.fetch(&links.data()["report_json"]).await).unwrap();
    let protected = report["protected"].as_array().expect("protected columns");
    assert!(
        protected.iter().any(|p| p["column"] == "body_mass_g"),
        "{protected:?}"
    );
    let html = String::from_utf8(s.fetch(&links.data()["report_html"]).await).unwrap();
    assert!(html.contains("Protected values"));

    // No `model_config` at all: the default model with its defaults.
    let bare = s
        .started_generation(&t, json!({"dataset_id": dataset, "sample_size": 100}))
        .await;
    assert_eq!(bare.data()["model_type"], "argn", "{}", bare.body);
    let id = bare.id();
    s.delete(&format!("/generation/requests/{id}"), Some(&t))
        .await
        .expect(200);
}

async fn the_seed_flow_creates_then_starts(f: synth_tests::Family) {
    let s = serve(f, settings()).await;
    let (_, t, _) = s.penguins("ada@example.com").await;
    let r = s
        .post(
            "/data/requests",
            Some(&t),
            json!({"request": {"dataset_name": "penguins.csv"},
                   "params": {"model_type": "tvae", "epochs": 2, "sample_size": 100,
                              "optimization_enabled": false}}),
        )
        .await
        .expect(201);
    assert_eq!(r.data()["status"], "pending");
    let id = r.id();
    assert!(
        s.run_queued_jobs().await.is_empty(),
        "a pending request is not queued"
    );
    s.post(
        "/data/requests",
        Some(&t),
        json!({"request": {"dataset_name": "nope.csv"}, "params": {"model_type": "tvae"}}),
    )
    .await
    .expect(404);
    // Neither an id nor a name: the answer says which it takes.
    let neither = s
        .post(
            "/data/requests",
            Some(&t),
            json!({"request": {"datasetid": "x"}, "params": {"model_type": "tvae"}}),
        )
        .await
        .expect_error(400, "VALIDATION_ERROR");
    assert_eq!(neither.body["error"]["details"]["field"], "request");
    let reason = &neither.body["error"]["details"]["reason"];
    assert!(says(reason, "dataset_name"), "{}", neither.body);
    // Without a model, the request is for the default one.
    let default = s
        .post(
            "/data/requests",
            Some(&t),
            json!({"request": {"dataset_name": "penguins.csv"}, "params": {"sample_size": 100}}),
        )
        .await
        .expect(201);
    assert_eq!(default.data()["model_type"], "argn", "{}", default.body);

    // A misspelt override is refused, not started without the search it asked for.
    let typo = s
        .post(
            &format!("/data/generate/{id}"),
            Some(&t),
            json!({"optimisation_enabled": true}),
        )
        .await
        .expect_error(400, "VALIDATION_ERROR");
    assert_eq!(
        typo.body["error"]["details"]["field"],
        "optimisation_enabled"
    );

    // No body, though sent with a JSON content type as many clients do: no override.
    let empty = s
        .http
        .post(format!("{}/data/generate/{id}", s.url))
        .bearer_auth(&t)
        .header("content-type", "application/json")
        .body("");
    let go = Reply::of(empty).await.expect(200);
    assert_eq!(go.data()["status"], "queued");
    let again = s
        .post_empty(&format!("/data/generate/{id}"), Some(&t))
        .await;
    assert_eq!(again.status, 409, "started once: {}", again.body);
    assert_eq!(s.run_queued_jobs().await, [Outcome::Completed]);
    assert_eq!(status(&s, &t, &id).await["status"], "completed");
}

async fn bad_requests_are_refused_and_store_nothing(f: synth_tests::Family) {
    let s = serve(f, settings()).await;
    let (owner, t, dataset) = s.penguins("ada@example.com").await;
    let with = |patch: Value| {
        let mut body = json!({"dataset_id": dataset, "sample_size": 100,
                              "model_config": {"model_type": "ctgan", "epochs": 2}});
        for (k, v) in patch.as_object().unwrap() {
            if k == "model_config" {
                for (mk, mv) in v.as_object().unwrap() {
                    body["model_config"][mk] = mv.clone();
                }
            } else {
                body[k] = v.clone();
            }
        }
        body
    };
    let cases = [
        (json!({"sample_size": 5}), "sample_size"),
        (json!({"sample_size": 10_000_000}), "sample_size"),
        (json!({"model_config": {"model_type": "gan"}}), "model_type"),
        (json!({"model_config": {"epochz": 3}}), "model_config"),
        (
            json!({"model_config": {"epochs": "many"}}),
            "model_config.epochs",
        ),
        (
            json!({"model_config": {"batch_size": 505}}),
            "model_config.batch_size",
        ),
        (
            json!({"model_config": {"epochs": 100_000}}),
            "model_config.epochs",
        ),
        // A network no machine holds is refused, not left to fail the trainer for memory.
        (
            json!({"model_config": {"embedding_dim": 1_000_000_000}}),
            "model_config.embedding_dim",
        ),
        (
            json!({"model_config": {"discriminator_dim": [100_000, 100_000]}}),
            "model_config.discriminator_dim",
        ),
        (
            json!({"model_config": {"batch_size": 1_000_000_000}}),
            "model_config.batch_size",
        ),
        (json!({"output_format": "docx"}), "output_format"),
        // A misspelt or misplaced field is refused by name, never ignored.
        (json!({"sample_sise": 500}), "sample_sise"),
        // A value of the wrong type is named too, though serde reads these fields flattened.
        (json!({"sample_size": -5}), "sample_size"),
        (json!({"seed": "lucky"}), "seed"),
        (json!({"epochs": 5}), "epochs"),
        (json!({"model_type": "tvae"}), "model_type"),
        (
            json!({"conditions": {"colour": "red"}}),
            "conditions.colour",
        ),
        (
            json!({"conditions": {"species": "Emperor"}}),
            "conditions.species",
        ),
        (
            json!({"conditions": {"species": {">=": 3}}}),
            "conditions.species",
        ),
        (
            json!({"conditions": {"body_mass_g": {"~": 3000}}}),
            "conditions.body_mass_g",
        ),
        (
            json!({"conditions": {"body_mass_g": {">": 5000, "<": 4000}}}),
            "conditions.body_mass_g",
        ),
        // A condition no generated row could meet is refused before training, not after.
        (
            json!({"conditions": {"body_mass_g": {"<": "fifty"}}}),
            "conditions.body_mass_g",
        ),
        (
            json!({"conditions": {"body_mass_g": {">=": 100_000}}}),
            "conditions.body_mass_g",
        ),
        (
            json!({"conditions": {"body_mass_g": {"<": 1}}}),
            "conditions.body_mass_g",
        ),
        (
            json!({"conditions": {"body_mass_g": "heavy"}}),
            "conditions.body_mass_g",
        ),
        (
            json!({"conditions": {"body_mass_g": {}}}),
            "conditions.body_mass_g",
        ),
        // Whole grams: no penguin weighs 3750.5.
        (
            json!({"conditions": {"body_mass_g": 3750.5}}),
            "conditions.body_mass_g",
        ),
        (
            json!({"optimization_config": {"enabled": true, "n_trials": 0}}),
            "optimization_config.n_trials",
        ),
        (
            json!({"optimization_config": {"enabled": true,
                "search_space": {"epochs": [1, 100000]}}}),
            "optimization_config.search_space.epochs",
        ),
        (
            json!({"model_config": {"constraints": [{"constraint_class": "Positive",
                "constraint_parameters": {"column_name": "colour"}}]}}),
            "model_config.constraints",
        ),
        (
            json!({"model_config": {"constraints": [{"constraint_class": "Positive",
                "constraint_parameters": {"column_name": "species"}}]}}),
            "model_config.constraints",
        ),
        (
            json!({"model_config": {"constraints": [{"constraint_class": "Sorted",
                "constraint_parameters": {}}]}}),
            "model_config.constraints",
        ),
        (
            json!({"model_config": {"constraints": "bill_length_mm < body_mass_g"}}),
            "model_config.constraints",
        ),
        (
            json!({"model_config": {"on_violation": "ignore"}}),
            "model_config.on_violation",
        ),
    ];
    for (patch, field) in cases {
        let r = s.start_generation(&t, with(patch.clone())).await;
        assert_eq!(
            (r.status, r.code()),
            (400, "VALIDATION_ERROR"),
            "{patch}: {}",
            r.body
        );
        assert_eq!(
            r.body["error"]["details"]["field"], field,
            "{patch}: {}",
            r.body
        );
    }
    s.start_generation(&t, json!({"dataset_id": dataset, "model_config": "ctgan"}))
        .await
        .expect(400);
    // /generation/start's shape sent to the v2 routes is refused, not trained as the
    // default model.
    let v1_shape = json!({"dataset_id": dataset, "model_config": {"model_type": "ctgan"}});
    for route in ["/generation-v2/start", "/generation-v2/validate"] {
        let r = s.post(route, Some(&t), v1_shape.clone()).await;
        let r = r.expect_error(400, "VALIDATION_ERROR");
        let field = &r.body["error"]["details"]["field"];
        assert_eq!(field, "model_config", "{route}: {}", r.body);
    }
    // So is a field the v2 routes do not have: a model parameter beside `parameters` is
    // told where it goes, every unknown field is listed.
    let v2 = json!({"dataset_id": dataset, "model_type": "ctgan", "epochs": 3, "rows": 10});
    let r = s
        .post("/generation-v2/validate", Some(&t), v2.clone())
        .await;
    let v = r.expect(200).data().clone();
    assert_eq!(v["valid"], false, "{v}");
    assert_eq!(pluck(&v["errors"], "/field"), ["epochs", "rows"], "{v}");
    assert!(says(&v["errors"][0]["message"], "`parameters`"), "{v}");
    let r = s.post("/generation-v2/start", Some(&t), v2).await;
    assert_eq!(
        r.expect_error(400, "VALIDATION_ERROR").body["error"]["details"]["field"],
        "epochs"
    );
    s.start_generation(&t, with(json!({"dataset_id": "no-such-dataset"})))
        .await
        .expect_error(404, "NOT_FOUND");

    let r = s
        .upload(&t, "broken.csv", b"\xff\xfe\x00garbage\x00".to_vec())
        .await;
    let broken = r.id();
    let d = s.ingested(&t, &owner, &broken, "broken.csv").await;
    assert_eq!(d["status"], "invalid", "{d}");
    let not_ready = s
        .start_generation(&t, with(json!({"dataset_id": broken})))
        .await
        .expect(400);
    assert_eq!(not_ready.body["error"]["details"]["field"], "dataset_id");
    // Five rows: too few to learn from rather than copy.
    let five = "x,colour\n1,red\n2,blue\n3,red\n4,green\n5,blue\n";
    let five = s.ready_dataset(&t, &owner, "five.csv", five.into()).await;
    let r = s
        .start_generation(&t, with(json!({"dataset_id": five})))
        .await;
    let r = r.expect_error(400, "VALIDATION_ERROR");
    assert_eq!(
        r.body["error"]["details"]["field"], "dataset_id",
        "{}",
        r.body
    );
    assert!(
        says(&r.body["error"]["message"], "at least 10"),
        "{}",
        r.body
    );
    // Only keys and free text: nothing to learn or score, refused before anything runs.
    let mut keys = String::from("id,note\n");
    for i in 0..30 {
        keys.push_str(&format!("{i},this is note number {i} written by someone\n"));
    }
    let keys_only = s.upload(&t, "keys.csv", keys.into_bytes()).await.id();
    let d = s.ingested(&t, &owner, &keys_only, "keys.csv").await;
    assert_eq!(d["status"], "ready", "{d}");
    let nothing = s
        .start_generation(&t, with(json!({"dataset_id": keys_only})))
        .await
        .expect_error(400, "VALIDATION_ERROR");
    assert_eq!(nothing.body["error"]["details"]["field"], "dataset_id");
    assert!(
        says(
            &nothing.body["error"]["message"],
            "no numerical, categorical"
        ),
        "{}",
        nothing.body
    );

    // A bad query value is named too.
    for (query, field) in [("status=bogus", "status"), ("limit=ten", "limit")] {
        let r = s
            .get(&format!("/generation/requests?{query}"), Some(&t))
            .await;
        let r = r.expect_error(400, "VALIDATION_ERROR");
        assert_eq!(r.body["error"]["details"]["field"], field, "{}", r.body);
    }

    // Nothing was stored, queued or written.
    let list = s.get("/generation/requests", Some(&t)).await;
    assert_eq!(list.data()["items"], json!([]), "{}", list.body);
    assert!(s.run_queued_jobs().await.is_empty());
    let objects = synth_tests::object_keys(
        s.family.backends.objects.as_ref(),
        &format!("users/{owner}/generations/"),
    )
    .await;
    assert!(objects.is_empty(), "{objects:?}");
}

async fn other_users_requests_are_not_found(f: synth_tests::Family) {
    let (s, a, dataset) = ada(f, settings()).await;
    let (_, b) = s.register("bob@example.com").await;
    let r = s.start_generation(&a, tvae(&dataset, "csv")).await;
    let id = r.id();
    assert_eq!(
        s.start_generation(&b, tvae(&dataset, "csv")).await.status,
        404,
        "B cannot use A's dataset"
    );
    for path in [
        format!("/generation/status/{id}"),
        format!("/generation/download/{id}"),
    ] {
        let r = s.get(&path, Some(&b)).await;
        assert_eq!(
            (r.status, r.code()),
            (404, "NOT_FOUND"),
            "{path}: {}",
            r.body
        );
    }
    s.delete(&format!("/generation/requests/{id}"), Some(&b))
        .await
        .expect(404);
    s.post_empty(&format!("/data/generate/{id}"), Some(&b))
        .await
        .expect(404);
    let listed = s.get("/generation/requests", Some(&b)).await;
    assert_eq!(listed.data()["items"], json!([]));
    // A's request is untouched by all that.
    assert_eq!(s.run_queued_jobs().await, [Outcome::Completed]);
    assert_eq!(status(&s, &a, &id).await["status"], "completed");
    let u = s.get("/admin/requests", Some(&a)).await;
    assert_eq!(u.status, 403, "users are not administrators: {}", u.body);
}

/// `TRAINER_DEVICE=cuda` (as the Batch job sets it) on a trainer that cannot open a GPU —
/// this build has no CUDA — fails each request with the reason, trains nothing and stores
/// no result, rather than training on the CPU.
async fn a_gpu_that_does_not_open_fails_the_request_saying_so(f: synth_tests::Family) {
    let mut settings = settings();
    settings.trainer_device = synth_core::DevicePreference::Cuda(0);
    let (s, t, dataset) = ada(f, settings).await;
    let trainer = synth_trainer::Trainer::new(s.family.backends.clone(), s.state.settings.clone());
    let why = trainer
        .device()
        .expect_err("a build without CUDA opens no GPU");
    assert!(why.contains("TRAINER_DEVICE is cuda:0"), "{why}");

    let id = s.started_generation(&t, tvae(&dataset, "csv")).await.id();
    let outcomes = s.run_queued_jobs().await;
    assert!(
        matches!(&outcomes[..], [Outcome::Failed(reason)] if reason.contains(why)),
        "{outcomes:?}"
    );
    let failed = status(&s, &t, &id).await;
    assert_eq!(failed["status"], "failed", "{failed}");
    assert!(
        says(&failed["error"], "TRAINER_DEVICE is cuda:0"),
        "{failed}"
    );
    assert!(says(&failed["error"], "not retried"), "{failed}");
    s.get(&format!("/generation/download/{id}"), Some(&t))
        .await
        .expect_error(409, "CONFLICT");
}

async fn cancel_approval_and_rejection(f: synth_tests::Family) {
    let mut settings = settings();
    settings.require_approval = true;
    let (s, t, dataset) = ada(f, settings).await;
    let (_, root) = s.admin("root@example.com").await;

    let waiting = s.start_generation(&t, tvae(&dataset, "csv")).await;
    assert_eq!(
        waiting.data()["status"],
        "awaiting_approval",
        "{}",
        waiting.body
    );
    let id = waiting.id();
    let to_reject = s.start_generation(&t, tvae(&dataset, "csv")).await;
    let rejected_id = to_reject.id();
    assert!(
        s.run_queued_jobs().await.is_empty(),
        "nothing queued before approval"
    );

    let listed = s
        .get("/admin/requests?status=awaiting_approval", Some(&root))
        .await;
    assert_eq!(
        listed.data()["items"].as_array().unwrap().len(),
        2,
        "{}",
        listed.body
    );
    let approve = format!("/admin/approve/{id}");
    assert_eq!(s.post_empty(&approve, Some(&t)).await.status, 403);
    let ok = s.post_empty(&approve, Some(&root)).await;
    assert_eq!(
        (ok.status, &ok.data()["status"]),
        (200, &json!("queued")),
        "{}",
        ok.body
    );
    s.post_empty(&approve, Some(&root)).await.expect(409);
    // A rejection needs a reason.
    let reject = format!("/admin/reject/{rejected_id}");
    for (reason, code) in [("", 400), ("too large for now", 200)] {
        s.post(&reject, Some(&root), json!({"reason": reason}))
            .await
            .expect(code);
    }
    let r = status(&s, &t, &rejected_id).await;
    assert_eq!(r["status"], "rejected");
    assert!(r.to_string().contains("too large for now"), "{r}");
    let logs = s.get("/admin/logs", Some(&root)).await;
    let actions = pluck(&logs.data()["items"], "/action");
    assert!(actions.iter().any(|a| a.contains("approve")), "{actions:?}");
    assert!(actions.iter().any(|a| a.contains("reject")), "{actions:?}");

    // Cancel while queued: the trainer then finds nothing to do.
    s.delete(&format!("/generation/requests/{id}"), Some(&t))
        .await
        .expect(200);
    assert_eq!(status(&s, &t, &id).await["status"], "cancelled");
    let outcomes = s.run_queued_jobs().await;
    assert!(
        matches!(outcomes.as_slice(), [Outcome::Skipped(_)]),
        "{outcomes:?}"
    );
    let finished = s
        .delete(&format!("/generation/requests/{rejected_id}"), Some(&t))
        .await;
    assert_eq!(
        finished.status, 200,
        "a finished request is deleted: {}",
        finished.body
    );

    // Cancelled while it waits for approval: gone from the administrators' list, and its
    // owner told as for any submitted request.
    let withdrawn = s.start_generation(&t, tvae(&dataset, "csv")).await.id();
    s.delete(&format!("/generation/requests/{withdrawn}"), Some(&t))
        .await
        .expect(200);
    assert_eq!(status(&s, &t, &withdrawn).await["status"], "cancelled");
    let listed = s
        .get("/admin/requests?status=awaiting_approval", Some(&root))
        .await;
    assert_eq!(listed.data()["items"], json!([]), "{}", listed.body);
    synth_tests::eventually(Duration::from_secs(30), || async {
        let page = s.get("/notifications?limit=100", Some(&t)).await;
        let items = page.data()["items"].as_array().unwrap().clone();
        items.into_iter().find(|n| {
            n["kind"] == "generation.cancelled" && n["object"]["id"] == withdrawn.as_str()
        })
    })
    .await
    .expect("a cancellation notification");
}

async fn an_approved_request_waits_for_a_free_slot(f: synth_tests::Family) {
    let mut settings = settings();
    settings.require_approval = true;
    settings.max_concurrent_generations = 1;
    let (s, t, dataset) = ada(f, settings).await;
    let (_, root) = s.admin("root@example.com").await;
    let mut ids = Vec::new();
    for _ in 0..3 {
        ids.push(s.start_generation(&t, tvae(&dataset, "csv")).await.id());
    }
    let mut approved = Vec::new();
    for id in &ids {
        let r = s
            .post_empty(&format!("/admin/approve/{id}"), Some(&root))
            .await;
        approved.push(r.expect(200).data()["status"].clone());
    }
    // One slot: the first is queued, the others wait approved, and their owner is told so.
    assert_eq!(
        approved,
        [json!("queued"), json!("approved"), json!("approved")]
    );
    let waiting = synth_tests::eventually(Duration::from_secs(30), || async {
        let page = s.get("/notifications?limit=100", Some(&t)).await;
        let items = page.data()["items"].as_array().unwrap().clone();
        let approvals: Vec<Value> = items
            .into_iter()
            .filter(|n| n["kind"] == "request.approved")
            .collect();
        (approvals.len() == 3).then_some(approvals)
    })
    .await
    .expect("three approval notifications");
    let later = waiting
        .iter()
        .filter(|n| says(&n["body"], "once one of your running requests finishes"))
        .count();
    assert_eq!(later, 2, "{waiting:?}");

    // Cancelling the queued one frees its slot for the oldest approved one.
    s.delete(&format!("/generation/requests/{}", ids[0]), Some(&t))
        .await
        .expect(200);
    assert_eq!(status(&s, &t, &ids[1]).await["status"], "queued");
    assert_eq!(status(&s, &t, &ids[2]).await["status"], "approved");
    // Each finished run starts the next: all run in turn, none past the limit.
    let outcomes = s.run_queued_jobs().await;
    let completed = outcomes.iter().filter(|o| **o == Outcome::Completed);
    assert_eq!(completed.count(), 2, "{outcomes:?}");
    let skipped = Outcome::Skipped("the request is cancelled".into());
    assert!(outcomes.contains(&skipped), "{outcomes:?}");
    for id in &ids[1..] {
        assert_eq!(status(&s, &t, id).await["status"], "completed");
    }
}

async fn a_duplicate_delivery_trains_once(f: synth_tests::Family) {
    // A lease longer than a heartbeat: the second run waits for the live first one.
    let mut settings = settings();
    settings.trainer_lease_seconds = 60;
    let (s, t, dataset) = ada(f, settings).await;
    let id = s.start_generation(&t, tvae(&dataset, "csv")).await.id();
    let b = &s.family.backends;
    let wait = Duration::from_secs(5);
    let m = next_message(b.queue.as_ref(), Duration::from_secs(60), wait).await;
    let dispatch = || synth_core::dispatch::dispatch(b.records.as_ref(), b.jobs.as_ref(), &m.body);
    let first = dispatch().await.unwrap();
    let second = dispatch().await.unwrap();
    assert!(matches!(
        first,
        synth_core::dispatch::Dispatched::Submitted { .. }
    ));
    assert!(
        matches!(second, synth_core::dispatch::Dispatched::Duplicate { .. }),
        "{second:?}"
    );
    b.queue.ack(&m.receipt).await.unwrap();
    // The job started twice (a Batch retry, a second container) trains once.
    let job: synth_core::dispatch::JobRequest = serde_json::from_str(&m.body).unwrap();
    let args = synth_trainer::JobArgs::of(&job.job).unwrap();
    let trainer = synth_trainer::Trainer::new(b.clone(), s.state.settings.clone());
    let (one, two) = tokio::join!(trainer.run(&args), trainer.run(&args));
    let mut outcomes = [one.unwrap(), two.unwrap()];
    outcomes.sort_by_key(|o| matches!(o, Outcome::Completed));
    assert!(
        matches!(outcomes, [Outcome::Skipped(_), Outcome::Completed]),
        "{outcomes:?}"
    );
    assert!(matches!(
        trainer.run(&args).await.unwrap(),
        Outcome::Skipped(_)
    ));
    assert_state(&s, &t, &id, ("completed", 1)).await;
}

async fn the_concurrency_limit_holds(f: synth_tests::Family) {
    let mut settings = settings();
    settings.max_concurrent_generations = 1;
    let (s, t, dataset) = ada(f, settings).await;
    assert_eq!(
        s.start_generation(&t, tvae(&dataset, "csv")).await.status,
        201
    );
    let over = s
        .start_generation(&t, tvae(&dataset, "csv"))
        .await
        .expect(429);
    let message = &over.body["error"]["message"];
    assert!(says(message, "MAX_CONCURRENT_GENERATIONS"), "{}", over.body);
    // The refused start stored nothing.
    let listed = s.get("/generation/requests", Some(&t)).await.expect(200);
    assert_eq!(
        listed.data()["items"].as_array().unwrap().len(),
        1,
        "{}",
        listed.body
    );
    assert_eq!(s.run_queued_jobs().await, [Outcome::Completed]);
    assert_eq!(
        s.start_generation(&t, tvae(&dataset, "csv")).await.status,
        201,
        "free again once it finished"
    );
}

/// A run that dies mid-way (its container killed) leaves the request running with a
/// heartbeat that stops; the next run takes it over once the lease expires. After the
/// retry limit, the request fails with its reason, its owner is told, and so are the
/// administrators.
async fn an_interrupted_run_is_retried_then_given_up(f: synth_tests::Family) {
    let s = serve(f, settings()).await;
    let (_, root) = s.admin("root@example.com").await;
    let (owner, t, dataset) = s.penguins("ada@example.com").await;
    let b = s.family.backends.clone();
    let lease = Duration::from_secs(1);
    let crash = |id: String| {
        let (b, owner) = (b.clone(), owner.clone());
        async move {
            match TrainerRun::claim(b.records.clone(), b.topic.clone(), lease, &owner, &id)
                .await
                .unwrap()
            {
                Claim::Run(run) => drop(run), // dies without a word
                Claim::Skip(why) => panic!("the run could not claim: {why}"),
            }
        }
    };
    let retried = s.start_generation(&t, tvae(&dataset, "csv")).await.id();
    crash(retried.clone()).await;
    assert_eq!(status(&s, &t, &retried).await["status"], "running");
    assert_eq!(s.run_queued_jobs().await, [Outcome::Completed]);
    assert_state(&s, &t, &retried, ("completed", 2)).await;

    let given_up = s.start_generation(&t, tvae(&dataset, "csv")).await.id();
    crash(given_up.clone()).await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    crash(given_up.clone()).await;
    let outcomes = s.run_queued_jobs().await;
    assert!(
        matches!(outcomes.as_slice(), [Outcome::Skipped(_)]),
        "{outcomes:?}"
    );
    let failed = status(&s, &t, &given_up).await;
    assert_eq!(failed["status"], "failed", "{failed}");
    assert!(says(&failed["error"], "stopped 2 times"), "{failed}");
    let told = |token: String, kind: &'static str| {
        let (s, id) = (&s, given_up.clone());
        async move {
            synth_tests::eventually(Duration::from_secs(30), || async {
                let page = s.get("/notifications?limit=100", Some(&token)).await;
                let items = page.data()["items"].as_array().unwrap().clone();
                items
                    .into_iter()
                    .find(|n| n["kind"] == kind && n["object"]["id"] == id.as_str())
            })
            .await
            .unwrap_or_else(|| panic!("no {kind} notification"))
        }
    };
    let alert = told(root, "admin.request_failing").await;
    assert_eq!(
        alert["body"],
        format!("Request {given_up} failed after 3 trainer runs.")
    );
    let owners = told(t.clone(), "generation.failed").await;
    assert!(says(&owners["body"], "stopped 2 times"), "{owners}");
    let users = s.get("/notifications?limit=100", Some(&t)).await;
    assert!(
        !users.body.to_string().contains("admin."),
        "alerts are for admins"
    );
}

/// A run handed back at shutdown leaves the request running, for the next run to take over
/// at once however long the lease, and does not count among its attempts; a trainer shut
/// down takes nothing new on.
async fn a_run_handed_back_is_taken_over_at_once(f: synth_tests::Family) {
    let mut settings = settings();
    settings.trainer_lease_seconds = 3600;
    let s = serve(f, settings).await;
    let (owner, t, dataset) = s.penguins("ada@example.com").await;
    let b = s.family.backends.clone();
    let id = s.start_generation(&t, tvae(&dataset, "csv")).await.id();
    let lease = Duration::from_secs(3600);
    let claim = || TrainerRun::claim(b.records.clone(), b.topic.clone(), lease, &owner, &id);
    let Claim::Run(run) = claim().await.unwrap() else {
        panic!("the first run claims")
    };
    run.hand_back().await.unwrap();
    assert_state(&s, &t, &id, ("running", 0)).await;
    let shut = synth_trainer::Trainer::new(b.clone(), s.state.settings.clone());
    shut.shut_down(Duration::ZERO).await;
    let args = synth_trainer::JobArgs {
        owner: owner.clone(),
        request: id.clone(),
    };
    assert_eq!(shut.run(&args).await.unwrap(), Outcome::HandedBack);
    // Taken over at once (a live run's lease would make this claim wait an hour).
    assert_eq!(s.run_queued_jobs().await, [Outcome::Completed]);
    assert_state(&s, &t, &id, ("completed", 1)).await;
}

/// Cancelling a running request stops its trainer at the next epoch: the run ends
/// cancelled, the request says so, and nothing it would have produced is stored.
async fn a_running_request_stops_when_cancelled(f: synth_tests::Family) {
    let mut settings = settings();
    settings.max_epochs = 100_000;
    let (s, t, dataset) = ada(f, settings).await;
    let long = json!({"dataset_id": dataset, "sample_size": 100, "output_format": "csv",
           "model_config": {"model_type": "ctgan", "epochs": 50_000, "batch_size": 100, "pac": 10}});
    let id = s.start_generation(&t, long).await.id();
    let path = format!("/generation/requests/{id}");
    let (outcomes, cancel) = tokio::join!(s.run_queued_jobs(), async {
        let training = synth_tests::eventually(Duration::from_secs(120), || async {
            let st = status(&s, &t, &id).await;
            (st["progress"]["phase"] == "training").then_some(st)
        })
        .await;
        let training = training.expect("the request reaches its training phase");
        assert_eq!(training["status"], "running", "{training}");
        s.delete(&path, Some(&t)).await
    });
    assert_eq!(cancel.status, 200, "{}", cancel.body);
    assert_eq!(cancel.data()["cancel_requested"], true, "{}", cancel.body);
    assert_eq!(outcomes, [Outcome::Cancelled]);
    let done = status(&s, &t, &id).await;
    assert_eq!(done["status"], "cancelled", "{done}");
    let epoch = done["progress"]["step"].as_u64().unwrap_or(0);
    assert!(epoch < 50_000, "stopped early, at epoch {epoch}: {done}");
    let left = synth_tests::object_keys(s.family.backends.objects.as_ref(), "users/").await;
    assert!(!left.iter().any(|k| k.contains(&id)), "{left:?}");
    let again = s.delete(&path, Some(&t)).await;
    assert_eq!(
        again.status, 200,
        "a cancelled request is deleted: {}",
        again.body
    );
}
