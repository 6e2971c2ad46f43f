//! What the platform adds to a training run, measured on the real server: for each sample
//! table, the time from `POST /generation/start` to `completed` in `synth serve` against
//! the same work from the command line in the same run (`synth generate` with the same
//! model, epochs and rows, saving the model, then `synth evaluate` for the report, since
//! the platform scores every result); and the status route's latency (p50, p99) under 20
//! concurrent pollers.
//!
//! `cargo bench -p synth-cli --bench serve_generation` (SYNTH_BENCH_EPOCHS, default 20;
//! SYNTH_BENCH_TABLES, default `seattle_weather,diamonds`). It prints figures and checks
//! nothing: targets are read from its output, not asserted.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Instant;

use serde_json::json;

const SYNTH: &str = env!("CARGO_BIN_EXE_synth");

#[path = "../tests/common/server.rs"]
mod server;

mod common;

use common::api::User;
use common::{env_or, latencies, percentile, ready_dataset, until_completed};

fn rows_of(csv: &Path) -> usize {
    std::fs::read_to_string(csv).unwrap().lines().count() - 1
}

/// Seconds from `POST /generation/start` to `completed`, and the request's id.
async fn serve_run(user: &User, dataset: &str, epochs: usize, rows: usize) -> (f64, String) {
    let body = json!({"dataset_id": dataset, "sample_size": rows, "output_format": "csv",
                      "model_config": {"model_type": "ctgan", "epochs": epochs}});
    let t = Instant::now();
    let (_, r) = user.post("/generation/start", &body).await;
    let id = r["data"]["id"]
        .as_str()
        .unwrap_or_else(|| panic!("started: {r}"))
        .to_owned();
    until_completed(user, &id).await;
    (t.elapsed().as_secs_f64(), id)
}

/// The same work from the command line: `synth generate` (fit, sample, write the table and
/// the model), then `synth evaluate` (the report, JSON and HTML). Seconds of each.
fn cli_run(csv: &Path, dir: &Path, epochs: usize, rows: usize) -> (f64, f64) {
    let out = dir.join("out.csv");
    let t = Instant::now();
    let generated = Command::new(SYNTH)
        .args([
            "generate",
            "--model",
            "ctgan",
            "--epochs",
            &epochs.to_string(),
        ])
        .args(["--rows", &rows.to_string(), "--save-model"])
        .arg(dir.join("model"))
        .arg("-o")
        .arg(&out)
        .arg(csv)
        .stderr(Stdio::null())
        .status()
        .unwrap();
    assert!(generated.success(), "synth generate failed");
    let generate_s = t.elapsed().as_secs_f64();
    let t = Instant::now();
    let evaluated = Command::new(SYNTH)
        .arg("evaluate")
        .args([csv, &out])
        .arg("--html")
        .arg(dir.join("report.html"))
        .arg("--json")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .unwrap();
    assert!(evaluated.success(), "synth evaluate failed");
    (generate_s, t.elapsed().as_secs_f64())
}

#[tokio::main(flavor = "multi_thread")]
async fn main() {
    let epochs: usize = env_or("SYNTH_BENCH_EPOCHS", 20);
    let tables =
        std::env::var("SYNTH_BENCH_TABLES").unwrap_or_else(|_| "seattle_weather,diamonds".into());
    let data = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../shared/data");
    let http = reqwest::Client::new();
    println!(
        "table            rows  epochs  serve start→completed  generate + evaluate (CLI)  ratio   status p50 / p99 (20 pollers)"
    );
    for name in tables.split(',') {
        let csv = data.join(format!("{name}.csv"));
        let rows = rows_of(&csv).min(100_000);
        let tmp = tempfile::tempdir().unwrap();
        let server = server::start(&tmp.path().join("data"), &[]);
        let (user, dataset) = ready_dataset(&http, &server.url, &csv).await;
        let (serve_s, id) = serve_run(&user, &dataset, epochs, rows).await;
        let (generate_s, evaluate_s) = cli_run(&csv, tmp.path(), epochs, rows);
        let cli_s = generate_s + evaluate_s;
        let status = format!("/generation/status/{id}");
        let lat = latencies(&user, &status, 20, 5).await;
        println!(
            "{name:<15} {rows:>6}  {epochs:>6}  {serve_s:>19.1} s  {cli_s:>9.1} s ({generate_s:.1} + {evaluate_s:.1})  {:>5.2}×  {:.1} ms / {:.1} ms ({} polls)",
            serve_s / cli_s,
            percentile(&lat, 0.5),
            percentile(&lat, 0.99),
            lat.len()
        );
    }
}
