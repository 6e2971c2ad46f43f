//! Statistics against both families: a scripted sequence of uploads and requests, then the
//! exact figures a user and an administrator read; who may read what; and that no
//! statistics route reads more of the store as the records grow.

use std::time::Duration;

use serde_json::{Value, json};
use synth_tests::http::{PENGUINS, TestServer, quick_settings, serve};
use synth_tests::pluck;
use synth_tests::recording::{Call, Recording};

synth_tests::both_families!(
    the_figures_follow_a_scripted_day,
    no_statistics_route_reads_more_as_records_grow,
);

async fn read(s: &TestServer, token: &str, path: &str) -> Value {
    s.get(path, Some(token)).await.expect(200).data().clone()
}

/// Bytes of a finished request's files, and its quality score.
async fn result_of(s: &TestServer, token: &str, id: &str) -> (i64, f64) {
    let r = read(s, token, &format!("/generation/status/{id}")).await;
    assert_eq!(r["status"], "completed", "{r}");
    let files = r["result"]["files"].as_array().unwrap();
    let bytes = files
        .iter()
        .map(|f| f["size_bytes"].as_i64().unwrap())
        .sum();
    (bytes, r["result"]["quality_score"].as_f64().unwrap())
}

/// Every state with its count: `nonzero`, zeros elsewhere.
fn states(all: &[&str], nonzero: &[(&str, i64)]) -> Value {
    let mut m = serde_json::Map::new();
    for s in all {
        let n = nonzero.iter().find(|(k, _)| k == s).map_or(0, |(_, n)| *n);
        m.insert((*s).to_owned(), json!(n));
    }
    Value::Object(m)
}

const DATASET_STATES: [&str; 4] = ["invalid", "pending_upload", "ready", "validating"];
const REQUEST_STATES: [&str; 10] = [
    "approved",
    "awaiting_approval",
    "cancelled",
    "completed",
    "failed",
    "pending",
    "queued",
    "rejected",
    "running",
    "stopped",
];

fn round4(x: f64) -> f64 {
    (x * 10_000.0).round() / 10_000.0
}

/// Ada uploads the penguins (ready) and a ragged CSV (invalid, then deleted), asks for a
/// generation that completes and one she cancels; Bob uploads a JSON table and the
/// penguins and asks for one generation. Each figure is then exactly what happened.
async fn the_figures_follow_a_scripted_day(f: synth_tests::Family) {
    let s = serve(f, quick_settings()).await;
    let (_, root) = s.admin("root@example.com").await;
    let penguins = std::fs::read(PENGUINS).unwrap().len() as i64;
    let (ada_id, ada, ada_penguins) = s.penguins("ada@example.com").await;
    let ragged = b"a,b,c\n1,2,3\n4,5\n6,7,8\n".to_vec();
    let r = s
        .upload(&ada, "ragged.csv", ragged.clone())
        .await
        .expect(201);
    let ragged_id = r.id();
    let d = s.ingested(&ada, &ada_id, &ragged_id, "ragged.csv").await;
    assert_eq!(d["status"], "invalid");
    let (bob_id, bob) = s.register("bob@example.com").await;
    let table: Vec<Value> = (0..60)
        .map(|i| {
            let colour = ["red", "green", "blue"][i % 3];
            json!({"x": i, "colour": colour})
        })
        .collect();
    let tiny = serde_json::to_vec(&table).unwrap();
    s.ready_dataset(&bob, &bob_id, "tiny.json", tiny.clone())
        .await;
    let csv = std::fs::read(PENGUINS).unwrap();
    let bob_penguins = s.ready_dataset(&bob, &bob_id, "penguins.csv", csv).await;

    let done = s.quick_generation(&ada, &ada_penguins, 100).await;
    let body =
        json!({"request": {"dataset_name": "penguins.csv"}, "params": {"model_type": "tvae"}});
    let r = s.post("/data/requests", Some(&ada), body).await.expect(201);
    let cancelled = r.id();
    s.delete(&format!("/generation/requests/{cancelled}"), Some(&ada))
        .await
        .expect(200);
    let bobs = s.quick_generation(&bob, &bob_penguins, 150).await;
    s.run_queued_jobs().await;
    s.delete(&format!("/upload/datasets/{ragged_id}"), Some(&ada))
        .await
        .expect(200);
    let (ada_result, quality) = result_of(&s, &ada, &done).await;
    let (bob_result, _) = result_of(&s, &bob, &bobs).await;

    // Ada's dashboard.
    let dash = read(&s, &ada, "/stats/dashboard").await;
    assert_eq!(dash["datasets"], states(&DATASET_STATES, &[("ready", 1)]));
    let requests = states(&REQUEST_STATES, &[("completed", 1), ("cancelled", 1)]);
    assert_eq!(dash["requests"], requests);
    assert_eq!(dash["rows_generated"], 100);
    let q = round4((quality * 1e6).round() / 1e6);
    assert_eq!(dash["quality"], json!({"scored": 1, "mean": q, "best": q}));
    assert!(dash["training_minutes"].as_f64().unwrap() > 0.0, "{dash}");
    assert_eq!(dash["storage_bytes"], penguins + ada_result);
    let recent = pluck(&dash["recent_requests"], "/id");
    assert_eq!(recent, [cancelled.as_str(), done.as_str()]);
    assert_eq!(dash["recent_requests"][1]["rows"], 100);
    assert_eq!(
        read(&s, &bob, "/stats/dashboard").await["rows_generated"],
        150
    );

    // Usage: the user's own, and everyone's for the administrator.
    let today = chrono::Utc::now().date_naive().to_string();
    let usage = read(&s, &ada, "/stats/usage").await;
    assert_eq!(usage["scope"], "user");
    let days = usage["days"].as_array().unwrap();
    assert_eq!(days.len(), 30);
    let mine = days.last().unwrap();
    assert_eq!(mine["date"], today);
    let ragged_len = ragged.len() as i64;
    assert_eq!(
        mine,
        &json!({"date": today, "uploads": {"csv": {"count": 2, "bytes": penguins + ragged_len}},
                "requests": 2, "rows_generated": 100, "active_users": 1})
    );
    assert!(
        days[..29]
            .iter()
            .all(|d| d["requests"] == 0 && d["active_users"] == 0)
    );
    let all = read(&s, &root, &format!("/stats/usage?from={today}&to={today}")).await;
    assert_eq!(all["scope"], "platform");
    assert_eq!(
        all["days"],
        json!([{"date": today,
                "uploads": {"csv": {"count": 3, "bytes": 2 * penguins + ragged_len},
                            "json": {"count": 1, "bytes": tiny.len()}},
                "requests": 3, "rows_generated": 250, "active_users": 3}])
    );
    s.get("/stats/usage?from=2026-01-02&to=2026-01-01", Some(&ada))
        .await
        .expect_error(400, "VALIDATION_ERROR");
    let r = s
        .get("/stats/usage?from=2020-01-01&to=2026-01-01", Some(&ada))
        .await;
    assert_eq!(r.status, 400, "over 366 days");

    // Administrators only.
    for path in ["/stats/system", "/stats/performance"] {
        s.get(path, Some(&ada)).await.expect_error(403, "FORBIDDEN");
        assert_eq!(s.get(path, None).await.status, 401);
    }

    let system = read(&s, &root, "/stats/system?days=7").await;
    assert_eq!(system["users"]["total"], 3);
    assert_eq!(system["users"]["new_today"], 3);
    assert_eq!(system["users"]["active_today"], 3);
    assert_eq!(system["users"]["days"].as_array().unwrap().len(), 7);
    assert_eq!(system["datasets"], states(&DATASET_STATES, &[("ready", 3)]));
    let requests = states(&REQUEST_STATES, &[("completed", 2), ("cancelled", 1)]);
    assert_eq!(system["requests"], requests);
    assert_eq!(
        system["ended"],
        json!({"cancelled": 1, "completed": 2, "failed": 0, "rejected": 0, "stopped": 0})
    );
    assert_eq!(system["failure_rate"], 0.0);
    assert_eq!(
        system["queue"],
        json!({"waiting": 0, "in_flight": 0, "oldest_queued_seconds": null})
    );
    let training = system["training"].as_array().unwrap();
    assert_eq!(training.len(), 1, "{system}");
    assert_eq!(
        (
            training[0]["model"].as_str(),
            training[0]["epochs"].as_i64()
        ),
        (Some("tvae"), Some(2))
    );
    assert!(training[0]["mean_seconds_per_epoch"].as_f64().unwrap() > 0.0);
    assert_eq!(system["rows_generated"], 250);
    let tiny_len = tiny.len() as i64;
    assert_eq!(
        system["storage_bytes"],
        2 * penguins + tiny_len + ada_result + bob_result
    );
    let r = s.get("/stats/system?days=0", Some(&root)).await;
    assert_eq!(r.status, 400);

    // Performance: every call above went through this server.
    let perf = read(&s, &root, "/stats/performance?window=1h").await;
    let route = |name: &str| -> Value {
        perf["routes"]
            .as_array()
            .unwrap()
            .iter()
            .find(|r| r["route"] == name)
            .cloned()
            .unwrap_or_else(|| panic!("{name} in {perf}"))
    };
    let dashboard = route("GET /stats/dashboard");
    assert_eq!(
        (dashboard["requests"].as_i64(), dashboard["errors"].as_i64()),
        (Some(2), Some(0))
    );
    let uploads = route("POST /upload/dataset");
    assert_eq!(uploads["requests"], 4);
    let system_route = route("GET /stats/system");
    assert_eq!(
        (
            system_route["requests"].as_i64(),
            system_route["client_errors"].as_i64()
        ),
        (Some(4), Some(3)),
        "ada's 403, the unauthenticated 401, the 400; root's 200: {system_route}"
    );
    let p = |k: &str| dashboard[k].as_f64().unwrap();
    assert!(0.0 < p("p50_ms") && p("p50_ms") <= p("p95_ms") && p("p95_ms") <= p("p99_ms"));
    let status_route = route("GET /generation/status/{id}");
    assert_eq!(status_route["requests"], 2);
    assert_eq!(
        perf["training"],
        json!([{"model": "tvae", "device": "cpu", "runs": 2, "row_epochs": 688,
                "seconds": perf["training"][0]["seconds"],
                "row_epochs_per_second": perf["training"][0]["row_epochs_per_second"]}])
    );
    assert!(perf["training"][0]["seconds"].as_f64().unwrap() > 0.0);
    assert_eq!(perf["window"], "1h");
    let r = s.get("/stats/performance?window=2d", Some(&root)).await;
    assert_eq!(r.status, 400);
    for w in ["24h", "7d"] {
        let p = read(&s, &root, &format!("/stats/performance?window={w}")).await;
        let dash = p["routes"]
            .as_array()
            .unwrap()
            .iter()
            .find(|r| r["route"] == "GET /stats/dashboard")
            .cloned()
            .unwrap();
        assert_eq!(
            dash["requests"], 2,
            "{w}: the hour's and the day's items agree"
        );
    }
}

/// The reads of one call (gets and queries), after a call that warms the caller's
/// once-a-day activity mark.
async fn reads_of(s: &TestServer, recording: &Recording, token: &str, path: &str) -> Vec<Call> {
    s.get(path, Some(token)).await.expect(200);
    let before = recording.calls().len();
    s.get(path, Some(token)).await.expect(200);
    recording.calls()[before..]
        .iter()
        .filter(|c| matches!(c, Call::Get(_) | Call::Query(_)))
        .cloned()
        .collect()
}

fn queries(calls: &[Call]) -> Vec<&synth_core::Query> {
    calls
        .iter()
        .filter_map(|c| match c {
            Call::Query(q) => Some(q),
            _ => None,
        })
        .collect()
}

/// The statistics routes read the same items by key and key range with one request or
/// with many: none reads a user's records, let alone everyone's.
async fn no_statistics_route_reads_more_as_records_grow(mut f: synth_tests::Family) {
    let recording = Recording::new(f.backends.records.clone());
    f.backends.records = recording.clone();
    let s = serve(f, quick_settings()).await;
    let (_, root) = s.admin("root@example.com").await;
    let (_, t, _) = s.penguins("ada@example.com").await;
    let routes = [
        (t.as_str(), "/stats/dashboard"),
        (t.as_str(), "/stats/usage"),
        (root.as_str(), "/stats/usage"),
        (root.as_str(), "/stats/system"),
    ];
    let mut before = Vec::new();
    for (token, path) in routes {
        before.push(reads_of(&s, &recording, token, path).await);
    }
    let body =
        json!({"request": {"dataset_name": "penguins.csv"}, "params": {"model_type": "tvae"}});
    for _ in 0..12 {
        s.post("/data/requests", Some(&t), body.clone())
            .await
            .expect(201);
    }
    tokio::time::sleep(Duration::from_millis(10)).await;
    for ((token, path), earlier) in routes.into_iter().zip(before) {
        let now = reads_of(&s, &recording, token, path).await;
        assert_eq!(now, earlier, "{path} reads the same with 1 and 13 requests");
        for q in queries(&now) {
            assert!(
                !matches!(q.sk, synth_core::SortKey::Any) || q.limit <= 10,
                "{path}: a query bounded by key range or size: {q:?}"
            );
        }
    }
    let dash = reads_of(&s, &recording, &t, "/stats/dashboard").await;
    let q = queries(&dash);
    assert_eq!(q.len(), 1, "{dash:?}");
    assert_eq!(q[0].limit, 10);
    let performance = reads_of(&s, &recording, &root, "/stats/performance?window=24h").await;
    for q in queries(&performance) {
        assert!(q.pk.starts_with("PERF#H#"), "{q:?}");
        assert!(matches!(q.sk, synth_core::SortKey::Between(..)), "{q:?}");
    }
}
