//! Constrained and conditional generation over HTTP against both families: constraints in
//! the model configuration are checked against the dataset, kept by every downloaded row,
//! and real rows that break one fail the request with their count, or are left out and
//! reported; conditions on numbers and dates hold in every row.

use serde_json::{Value, json};
use synth_data::{LoadOptions, Source};
use synth_table::{ColumnData, Metadata, Table};
use synth_tests::http::{TestServer, quick_settings, serve};
use synth_tests::says;
use synth_trainer::Outcome;

synth_tests::both_families!(
    every_downloaded_row_keeps_the_constraints,
    broken_real_rows_fail_the_request_or_are_left_out,
    a_search_takes_no_constraints,
    suggested_constraints_are_accepted_and_kept_by_generations,
    conditions_on_numbers_and_dates_hold_in_every_row,
);

/// Stays: check-out after check-in, a price in the night's band, a city in its country; in
/// the broken copy, rows 4 and 9 check out the day before they check in.
fn fixture(name: &str) -> String {
    let path = format!(
        "{}/../shared/constraints/tests/data/{name}",
        env!("CARGO_MANIFEST_DIR")
    );
    std::fs::read_to_string(path).unwrap()
}

/// A request's synthetic table, typed by its dataset's metadata, after checking that no row
/// breaks `rules` (with the constraints crate's own check: FixedCombinations against the
/// real stays).
async fn synthetic(s: &TestServer, t: &str, id: &str, ds: &str, rules: &Value) -> Table {
    let links = s
        .get(&format!("/generation/download/{id}"), Some(t))
        .await
        .expect(200);
    let bytes = s.fetch(&links.data()["data"]).await;
    let d = s
        .get(&format!("/upload/datasets/{ds}"), Some(t))
        .await
        .expect(200);
    let metadata: Metadata = serde_json::from_value(d.data()["metadata"].clone()).unwrap();
    let typed = |bytes: &[u8]| {
        let options = LoadOptions {
            metadata: Some(metadata.clone()),
            ..LoadOptions::default()
        };
        let source = Source::Bytes {
            bytes,
            filename: Some("stays.csv"),
        };
        synth_data::load(source, &options).unwrap().table
    };
    let (table, real) = (typed(&bytes), typed(fixture("stays.csv").as_bytes()));
    let rules = synth_constraints::from_values(rules.as_array().unwrap().clone()).unwrap();
    let broken = synth_constraints::violations(&rules, &metadata, &real, &table).unwrap();
    assert!(broken.is_empty(), "{broken:?}");
    table
}

fn rules() -> Value {
    serde_json::from_str(&fixture("stays.constraints.json")).unwrap()
}

fn request(dataset: &str, extra: Value) -> Value {
    let mut config = json!({"model_type": "ctgan", "epochs": 3, "batch_size": 100, "pac": 10,
                            "constraints": rules()});
    for (k, v) in extra.as_object().unwrap() {
        config[k] = v.clone();
    }
    json!({"dataset_id": dataset, "sample_size": 1500, "output_format": "csv", "seed": 3,
           "model_config": config})
}

async fn dataset(s: &TestServer, email: &str, broken: bool) -> (String, String) {
    let (owner, token) = s.register(email).await;
    let file = fixture(if broken {
        "stays_broken.csv"
    } else {
        "stays.csv"
    });
    let id = s
        .ready_dataset(&token, &owner, "stays.csv", file.into_bytes())
        .await;
    (token, id)
}

async fn every_downloaded_row_keeps_the_constraints(f: synth_tests::Family) {
    let s = serve(f, quick_settings()).await;
    let (t, ds) = dataset(&s, "ada@example.com", false).await;
    let r = s.started_generation(&t, request(&ds, json!({}))).await;
    assert_eq!(r.data()["constraints"], rules(), "{}", r.body);
    assert_eq!(r.data()["on_violation"], "fail");
    assert!(
        r.data()["parameters"].get("constraints").is_none(),
        "not a model parameter: {}",
        r.body
    );
    let id = r.id();
    assert_eq!(s.run_queued_jobs().await, [Outcome::Completed]);
    let table = synthetic(&s, &t, &id, &ds, &rules()).await;
    assert_eq!(table.n_rows(), 1500);
    let columns: Vec<&str> = table.columns.iter().map(|c| c.name.as_str()).collect();
    assert_eq!(
        columns,
        [
            "checkin", "checkout", "low", "price", "high", "country", "city"
        ]
    );
    let done = s
        .get(&format!("/generation/status/{id}"), Some(&t))
        .await
        .expect(200);
    assert!(
        done.data()["result"].get("left_out").is_none(),
        "{}",
        done.body
    );
}

async fn broken_real_rows_fail_the_request_or_are_left_out(f: synth_tests::Family) {
    let s = serve(f, quick_settings()).await;
    let (t, ds) = dataset(&s, "ada@example.com", true).await;
    let failing = s.started_generation(&t, request(&ds, json!({}))).await;
    let Outcome::Failed(reason) = &s.run_queued_jobs().await[0] else {
        panic!("the request fails")
    };
    assert!(
        reason.contains("Inequality(checkin < checkout) in 2 rows (e.g. row 5 after the header"),
        "{reason}"
    );
    let id = failing.id();
    let failed = s
        .get(&format!("/generation/status/{id}"), Some(&t))
        .await
        .expect(200);
    assert_eq!(failed.data()["status"], "failed");
    assert!(
        says(&failed.data()["error"], "row 5 after the header"),
        "{}",
        failed.body
    );

    let dropping = s
        .started_generation(&t, request(&ds, json!({"on_violation": "drop"})))
        .await;
    assert_eq!(s.run_queued_jobs().await, [Outcome::Completed]);
    let id = dropping.id();
    let done = s
        .get(&format!("/generation/status/{id}"), Some(&t))
        .await
        .expect(200);
    let left_out = &done.data()["result"]["left_out"];
    assert_eq!(left_out[0]["constraint"], "Inequality(checkin < checkout)");
    assert_eq!(left_out[0]["rows"], 2, "{}", done.body);
    assert_eq!(left_out[0]["examples"][1]["row"], 9);
}

async fn a_search_takes_no_constraints(f: synth_tests::Family) {
    let s = serve(f, quick_settings()).await;
    let (t, ds) = dataset(&s, "ada@example.com", false).await;
    let r = s
        .post(
            "/optimization/start",
            Some(&t),
            json!({"dataset_id": ds, "model_type": "ctgan", "n_trials": 2,
                   "parameters": {"epochs": 2, "constraints": rules()}}),
        )
        .await
        .expect_error(400, "VALIDATION_ERROR");
    assert_eq!(
        r.body["error"]["details"]["field"],
        "parameters.constraints"
    );
    let list = s.get("/optimization/requests", Some(&t)).await.expect(200);
    assert_eq!(list.data()["items"], json!([]));
}

async fn suggested_constraints_are_accepted_and_kept_by_generations(f: synth_tests::Family) {
    let s = serve(f, quick_settings()).await;
    let (t, ds) = dataset(&s, "ada@example.com", false).await;
    let path = format!("/upload/datasets/{ds}");
    let d = s.get(&path, Some(&t)).await.expect(200);
    let suggested = d.data()["suggested_constraints"].clone();
    let described: Vec<String> = suggested
        .as_array()
        .unwrap()
        .iter()
        .map(|c| {
            let p = &c["constraint_parameters"];
            format!(
                "{} {}",
                c["constraint_class"].as_str().unwrap(),
                p.get("low_column_name")
                    .or(p.get("column_names"))
                    .or(p.get("column_name"))
                    .unwrap()
            )
        })
        .collect();
    for planted in [
        r#"Inequality "checkin""#,
        r#"Inequality "low""#,
        r#"Inequality "price""#,
        r#"FixedCombinations ["country","city"]"#,
    ] {
        assert!(
            described.iter().any(|d| d == planted),
            "{planted}: {described:?}"
        );
    }
    assert_eq!(d.data()["constraints"], json!([]));

    // Accepted with one call; another user cannot; a bad one is refused and changes nothing.
    let constraints = format!("{path}/constraints");
    let (_, other) = s.register("bob@example.com").await;
    let accept = json!({"accept_suggested": true});
    let r = s.put(&constraints, Some(&other), accept.clone()).await;
    assert_eq!(r.status, 404, "{}", r.body);
    let bad = json!({"constraints": [{"constraint_class": "Positive",
                                      "constraint_parameters": {"column_name": "city"}}]});
    let r = s.put(&constraints, Some(&t), bad).await;
    let r = r.expect_error(400, "VALIDATION_ERROR");
    assert_eq!(r.body["error"]["details"]["field"], "constraints");
    let typo = s
        .put(&constraints, Some(&t), json!({"accept_sugested": true}))
        .await
        .expect_error(400, "VALIDATION_ERROR");
    assert!(
        says(&typo.body["error"]["details"]["reason"], "accept_suggested"),
        "{}",
        typo.body
    );
    let r = s.put(&constraints, Some(&t), accept).await.expect(200);
    assert_eq!(r.data()["constraints"], suggested);

    // A request that gives none keeps the dataset's; `[]` asks for none.
    let body = |config: Value| json!({"dataset_id": ds, "sample_size": 800, "output_format": "csv", "model_config": config});
    let base = json!({"model_type": "tvae", "epochs": 3, "batch_size": 100});
    let kept = s.started_generation(&t, body(base.clone())).await;
    assert_eq!(kept.data()["constraints"], suggested);
    let mut none = base.clone();
    none["constraints"] = json!([]);
    let unconstrained = s.started_generation(&t, body(none)).await;
    assert!(
        unconstrained.data().get("constraints").is_none(),
        "{}",
        unconstrained.body
    );
    assert_eq!(
        s.run_queued_jobs().await,
        [Outcome::Completed, Outcome::Completed]
    );
    let id = kept.id();
    let table = synthetic(&s, &t, &id, &ds, &suggested).await;
    assert_eq!(table.n_rows(), 800);
}

async fn conditions_on_numbers_and_dates_hold_in_every_row(f: synth_tests::Family) {
    let s = serve(f, quick_settings()).await;
    let (t, ds) = dataset(&s, "ada@example.com", false).await;
    let mut body = request(&ds, json!({}));
    body["sample_size"] = json!(300);
    // A combination 4 of the 300 real rows meet: a sample drawn in the real marginals
    // meets it about as often.
    body["conditions"] = json!({"price": {">=": 50}, "checkin": {">=": "2024-03-10", "<": "2024-03-16"},
                                "low": 50, "country": "FR"});
    s.started_generation(&t, body).await;
    let r = s.get("/generation/requests", Some(&t)).await.expect(200);
    let id = r.data()["items"][0]["id"].as_str().unwrap().to_owned();
    assert_eq!(s.run_queued_jobs().await, [Outcome::Completed]);
    let table = synthetic(&s, &t, &id, &ds, &rules()).await;
    assert_eq!(table.n_rows(), 300);
    let number = |c: &str| match &table.column(c).unwrap().data {
        ColumnData::Float(v) => v.clone(),
        ColumnData::Int(v) | ColumnData::Datetime(v) => {
            v.iter().map(|x| x.map(|x| x as f64)).collect()
        }
        other => panic!("{other:?}"),
    };
    let (price, low, checkin) = (number("price"), number("low"), number("checkin"));
    // 2024-03-10 and 2024-03-16, in microseconds.
    let day = |d: i64| ((19_783 + d - 1) * 86_400_000_000) as f64;
    for r in 0..300 {
        assert!(price[r].unwrap() >= 50.0 && low[r] == Some(50.0), "row {r}");
        assert!((day(10)..day(16)).contains(&checkin[r].unwrap()), "row {r}");
    }
    let ColumnData::Str(country) = &table.column("country").unwrap().data else {
        panic!("strings")
    };
    assert!(country.iter().all(|c| c.as_deref() == Some("FR")));
}
