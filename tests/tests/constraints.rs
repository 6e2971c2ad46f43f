//! Constrained and conditional generation over HTTP against both families: constraints in
//! the model configuration are checked against the dataset, kept by every downloaded row,
//! and real rows that break one fail the request with their count, or are left out and
//! reported; conditions on numbers and dates hold in every row.

use serde_json::{Value, json};
use synth_core::Settings;
use synth_tests::http::{TestServer, serve};
use synth_trainer::Outcome;

synth_tests::both_families!(
    every_downloaded_row_keeps_the_constraints,
    broken_real_rows_fail_the_request_or_are_left_out,
    a_search_takes_no_constraints,
    suggested_constraints_are_accepted_and_kept_by_generations,
    conditions_on_numbers_and_dates_hold_in_every_row,
);

fn settings() -> Settings {
    let mut s = Settings::for_tests();
    s.min_epochs = 1;
    s
}

/// Stays: check-out after check-in, a price in the night's band, a city in its country.
/// Rows in `broken` check out the day before they check in.
fn stays(rows: usize, broken: &[usize]) -> Vec<u8> {
    let places = [("FR", "Paris"), ("FR", "Lyon"), ("DE", "Berlin")];
    let mut csv = String::from("checkin,checkout,low,price,high,country,city\n");
    for i in 0..rows {
        let day = 2 + i % 20;
        let out = if broken.contains(&i) {
            day - 1
        } else {
            day + 1 + i % 5
        };
        let (country, city) = places[i % 3];
        let low = 40 + i % 17;
        csv.push_str(&format!(
            "2024-03-{day:02},2024-03-{out:02},{low},{},{},{country},{city}\n",
            low + i % 9,
            low + 10 + i % 4
        ));
    }
    csv.into_bytes()
}

fn rules() -> Value {
    json!([
        {"constraint_class": "Inequality", "constraint_parameters":
            {"low_column_name": "checkin", "high_column_name": "checkout", "strict_boundaries": true}},
        {"constraint_class": "Range", "constraint_parameters":
            {"low_column_name": "low", "middle_column_name": "price", "high_column_name": "high",
             "strict_boundaries": false}},
        {"constraint_class": "FixedCombinations", "constraint_parameters":
            {"column_names": ["country", "city"]}},
    ])
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

async fn dataset(s: &TestServer, email: &str, broken: &[usize]) -> (String, String) {
    let (owner, token) = s.register(email).await;
    let id = s
        .ready_dataset(&token, &owner, "stays.csv", stays(300, broken))
        .await;
    (token, id)
}

async fn every_downloaded_row_keeps_the_constraints(f: synth_tests::Family) {
    let s = serve(f, settings()).await;
    let (t, ds) = dataset(&s, "ada@example.com", &[]).await;
    let r = s
        .post("/generation/start", Some(&t), request(&ds, json!({})))
        .await
        .expect(201);
    assert_eq!(r.data()["constraints"], rules(), "{}", r.body);
    assert_eq!(r.data()["on_violation"], "fail");
    assert!(
        r.data()["parameters"].get("constraints").is_none(),
        "not a model parameter: {}",
        r.body
    );
    let id = r.data()["id"].as_str().unwrap().to_owned();
    assert_eq!(s.run_queued_jobs().await, [Outcome::Completed]);
    let links = s
        .get(&format!("/generation/download/{id}"), Some(&t))
        .await
        .expect(200);
    let csv = String::from_utf8(s.fetch(&links.data()["data"]).await).unwrap();
    let mut lines = csv.lines();
    assert_eq!(
        lines.next(),
        Some("checkin,checkout,low,price,high,country,city")
    );
    let mut n = 0;
    for line in lines {
        let f: Vec<&str> = line.split(',').collect();
        assert!(f[0] < f[1], "{line}");
        let num = |i: usize| f[i].parse::<f64>().unwrap();
        assert!(num(2) <= num(3) && num(3) <= num(4), "{line}");
        assert!(
            matches!(
                (f[5], f[6]),
                ("FR", "Paris") | ("FR", "Lyon") | ("DE", "Berlin")
            ),
            "{line}"
        );
        n += 1;
    }
    assert_eq!(n, 1500);
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
    let s = serve(f, settings()).await;
    let (t, ds) = dataset(&s, "ada@example.com", &[4, 9]).await;
    let failing = s
        .post("/generation/start", Some(&t), request(&ds, json!({})))
        .await
        .expect(201);
    let Outcome::Failed(reason) = &s.run_queued_jobs().await[0] else {
        panic!("the request fails")
    };
    assert!(
        reason.contains("Inequality(checkin < checkout) in 2 rows (e.g. row 4"),
        "{reason}"
    );
    let id = failing.data()["id"].as_str().unwrap();
    let failed = s
        .get(&format!("/generation/status/{id}"), Some(&t))
        .await
        .expect(200);
    assert_eq!(failed.data()["status"], "failed");
    assert!(
        failed.data()["error"].as_str().unwrap().contains("row 4"),
        "{}",
        failed.body
    );

    let dropping = s
        .post(
            "/generation/start",
            Some(&t),
            request(&ds, json!({"on_violation": "drop"})),
        )
        .await
        .expect(201);
    assert_eq!(s.run_queued_jobs().await, [Outcome::Completed]);
    let id = dropping.data()["id"].as_str().unwrap();
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
    let s = serve(f, settings()).await;
    let (t, ds) = dataset(&s, "ada@example.com", &[]).await;
    let r = s
        .post(
            "/optimization/start",
            Some(&t),
            json!({"dataset_id": ds, "model_type": "ctgan", "n_trials": 2,
                   "parameters": {"epochs": 2, "constraints": rules()}}),
        )
        .await;
    assert_eq!(
        (r.status, r.code()),
        (400, "VALIDATION_ERROR"),
        "{}",
        r.body
    );
    assert_eq!(
        r.body["error"]["details"]["field"],
        "parameters.constraints"
    );
    let list = s.get("/optimization/requests", Some(&t)).await.expect(200);
    assert_eq!(list.data()["items"], json!([]));
}

async fn suggested_constraints_are_accepted_and_kept_by_generations(f: synth_tests::Family) {
    let s = serve(f, settings()).await;
    let (t, ds) = dataset(&s, "ada@example.com", &[]).await;
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
    let r = s
        .call(
            "PUT",
            &constraints,
            Some(&other),
            Some(json!({"accept_suggested": true})),
        )
        .await;
    assert_eq!(r.status, 404, "{}", r.body);
    let bad = json!({"constraints": [{"constraint_class": "Positive",
                                      "constraint_parameters": {"column_name": "city"}}]});
    let r = s.call("PUT", &constraints, Some(&t), Some(bad)).await;
    assert_eq!(
        (r.status, r.code()),
        (400, "VALIDATION_ERROR"),
        "{}",
        r.body
    );
    assert_eq!(r.body["error"]["details"]["field"], "constraints");
    let r = s
        .call(
            "PUT",
            &constraints,
            Some(&t),
            Some(json!({"accept_suggested": true})),
        )
        .await
        .expect(200);
    assert_eq!(r.data()["constraints"], suggested);

    // A request that gives none keeps the dataset's; `[]` asks for none.
    let body = |config: Value| json!({"dataset_id": ds, "sample_size": 800, "output_format": "csv", "model_config": config});
    let base = json!({"model_type": "tvae", "epochs": 3, "batch_size": 100});
    let kept = s
        .post("/generation/start", Some(&t), body(base.clone()))
        .await
        .expect(201);
    assert_eq!(kept.data()["constraints"], suggested);
    let mut none = base.clone();
    none["constraints"] = json!([]);
    let unconstrained = s
        .post("/generation/start", Some(&t), body(none))
        .await
        .expect(201);
    assert!(
        unconstrained.data().get("constraints").is_none(),
        "{}",
        unconstrained.body
    );
    assert_eq!(
        s.run_queued_jobs().await,
        [Outcome::Completed, Outcome::Completed]
    );
    let id = kept.data()["id"].as_str().unwrap();
    let links = s
        .get(&format!("/generation/download/{id}"), Some(&t))
        .await
        .expect(200);
    let csv = String::from_utf8(s.fetch(&links.data()["data"]).await).unwrap();
    for line in csv.lines().skip(1) {
        let f: Vec<&str> = line.split(',').collect();
        let num = |i: usize| f[i].parse::<f64>().unwrap();
        assert!(f[0] < f[1] && num(2) <= num(3) && num(3) < num(4), "{line}");
        assert!(
            matches!(
                (f[5], f[6]),
                ("FR", "Paris") | ("FR", "Lyon") | ("DE", "Berlin")
            ),
            "{line}"
        );
    }
}

async fn conditions_on_numbers_and_dates_hold_in_every_row(f: synth_tests::Family) {
    let s = serve(f, settings()).await;
    let (t, ds) = dataset(&s, "ada@example.com", &[]).await;
    let mut body = request(&ds, json!({}));
    body["sample_size"] = json!(300);
    body["conditions"] = json!({"price": {">=": 50}, "checkin": {">=": "2024-03-10", "<": "2024-03-16"},
                                "low": 45, "country": "FR"});
    s.post("/generation/start", Some(&t), body)
        .await
        .expect(201);
    let r = s.get("/generation/requests", Some(&t)).await.expect(200);
    let id = r.data()["items"][0]["id"].as_str().unwrap().to_owned();
    assert_eq!(s.run_queued_jobs().await, [Outcome::Completed]);
    let links = s
        .get(&format!("/generation/download/{id}"), Some(&t))
        .await
        .expect(200);
    let csv = String::from_utf8(s.fetch(&links.data()["data"]).await).unwrap();
    let mut n = 0;
    for line in csv.lines().skip(1) {
        let f: Vec<&str> = line.split(',').collect();
        let num = |i: usize| f[i].parse::<f64>().unwrap();
        assert!(("2024-03-10".."2024-03-16").contains(&f[0]), "{line}");
        assert!(num(3) >= 50.0 && num(2) == 45.0 && f[5] == "FR", "{line}");
        assert!(
            f[0] < f[1] && num(2) <= num(3) && num(3) <= num(4),
            "{line}"
        );
        n += 1;
    }
    assert_eq!(n, 300);
}
