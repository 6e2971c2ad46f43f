//! What the benches share: a user's calls, settings from the environment, percentiles, and
//! a ready dataset on a running `synth serve`.

use std::path::Path;
use std::str::FromStr;
use std::time::{Duration, Instant};

#[path = "../../tests/common/api.rs"]
pub mod api;

use api::User;

/// The environment variable `name` as a number, or `default` when it is not set.
pub fn env_or<T: FromStr>(name: &str, default: T) -> T {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// The `p` quantile (0..=1) of sorted figures.
pub fn percentile(sorted: &[f64], p: f64) -> f64 {
    sorted[((sorted.len() as f64 - 1.0) * p).round() as usize]
}

/// Register, upload `csv`, wait until it is ready: the user and the dataset id.
pub async fn ready_dataset(http: &reqwest::Client, url: &str, csv: &Path) -> (User, String) {
    let user = User::register(http, url, "bench@example.com").await;
    let name = csv.file_name().unwrap().to_str().unwrap();
    let id = user.upload(name, std::fs::read(csv).unwrap()).await;
    let d = user.ingested(&id).await;
    assert_eq!(d["status"], "ready", "ingestion ended: {d}");
    (user, id)
}

/// Latencies (ms) of `GET path` from `clients` clients of `user` calling in turn for `secs`
/// seconds.
pub async fn latencies(user: &User, path: &str, clients: usize, secs: u64) -> Vec<f64> {
    let until = Instant::now() + Duration::from_secs(secs);
    let tasks: Vec<_> = (0..clients)
        .map(|_| {
            let (request, path) = (user.request(reqwest::Method::GET, path), path.to_owned());
            tokio::spawn(async move {
                let mut ms = Vec::new();
                while Instant::now() < until {
                    let t = Instant::now();
                    let r = request.try_clone().unwrap().send().await.unwrap();
                    assert!(r.status().is_success(), "{path}: {}", r.status());
                    r.bytes().await.unwrap();
                    ms.push(t.elapsed().as_secs_f64() * 1e3);
                }
                ms
            })
        })
        .collect();
    let mut all = Vec::new();
    for t in tasks {
        all.extend(t.await.unwrap());
    }
    all.sort_by(f64::total_cmp);
    all
}

/// Poll a request's status until it completed (any other end panics).
pub async fn until_completed(user: &User, id: &str) {
    loop {
        let s = user.get(&format!("/generation/status/{id}")).await;
        match s["data"]["status"].as_str() {
            Some("completed") => return,
            Some("failed" | "cancelled") => panic!("the request ended {s}"),
            _ => tokio::time::sleep(Duration::from_millis(20)).await,
        }
    }
}
