//! `GET /stats/dashboard` latency on the real server for a user with many requests: a
//! `synth serve` whose user has SYNTH_BENCH_REQUESTS (default 1,000) generation requests
//! on the penguins table, the newest ten of them completed, read by one client in turn and
//! then by 20 at once.
//!
//! `cargo bench -p synth-cli --bench stats_dashboard`. It prints figures and checks
//! nothing: the target (p99 under 50 ms) is read from its output, not asserted.

use std::path::PathBuf;
use std::time::Instant;

use serde_json::json;

#[path = "../tests/common/server.rs"]
mod server;

mod common;

use common::api::{User, reply};
use common::{env_or, latencies, percentile, ready_dataset, until_completed};

fn summary(ms: Vec<f64>) -> String {
    format!(
        "{} calls: p50 {:.2} ms, p95 {:.2} ms, p99 {:.2} ms, max {:.2} ms",
        ms.len(),
        percentile(&ms, 0.5),
        percentile(&ms, 0.95),
        percentile(&ms, 0.99),
        ms[ms.len() - 1]
    )
}

/// `n` pending requests, then ten that complete (one epoch each).
async fn requests(user: &User, n: usize) {
    let pending = json!({"request": {"dataset_name": "penguins.csv"},
                         "params": {"model_type": "tvae", "epochs": 1}});
    for _ in 0..n.saturating_sub(10) {
        let (_, r) = user.post("/data/requests", &pending).await;
        assert_eq!(r["success"], true, "{r}");
    }
    for _ in 0..10.min(n) {
        let (_, r) = user.post("/data/requests", &pending).await;
        let id = r["data"]["id"].as_str().unwrap().to_owned();
        reply(user.request(reqwest::Method::POST, &format!("/data/generate/{id}"))).await;
        until_completed(user, &id).await;
    }
}

#[tokio::main(flavor = "multi_thread")]
async fn main() {
    let n: usize = env_or("SYNTH_BENCH_REQUESTS", 1000);
    let tmp = tempfile::tempdir().unwrap();
    let server = server::start(&tmp.path().join("data"), &[]);
    let http = reqwest::Client::new();
    let csv = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../shared/data/penguins.csv");
    let (user, _) = ready_dataset(&http, &server.url, &csv).await;
    let t = Instant::now();
    requests(&user, n).await;
    println!(
        "{n} requests made ({} completed) in {:.1} s",
        10.min(n),
        t.elapsed().as_secs_f64()
    );
    let d = user.get("/stats/dashboard").await;
    println!(
        "dashboard: requests {} · recent {}",
        d["data"]["requests"],
        d["data"]["recent_requests"].as_array().unwrap().len()
    );
    let target = "/stats/dashboard";
    latencies(&user, target, 1, 2).await; // warm-up
    println!(
        "GET /stats/dashboard, 1 client, 10 s:   {}",
        summary(latencies(&user, target, 1, 10).await)
    );
    println!(
        "GET /stats/dashboard, 20 clients, 10 s: {}",
        summary(latencies(&user, target, 20, 10).await)
    );
}
