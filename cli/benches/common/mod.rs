//! What the benches share: JSON calls, percentiles, and a ready dataset on a running
//! `synth serve`.

use std::path::Path;
use std::time::{Duration, Instant};

use serde_json::{Value, json};

pub async fn json(req: reqwest::RequestBuilder) -> Value {
    req.send().await.unwrap().json().await.unwrap()
}

/// The `p` quantile (0..=1) of sorted figures.
pub fn percentile(sorted: &[f64], p: f64) -> f64 {
    sorted[((sorted.len() as f64 - 1.0) * p).round() as usize]
}

/// Register, upload `csv`, wait until it is ready: the token and the dataset id.
pub async fn ready_dataset(http: &reqwest::Client, url: &str, csv: &Path) -> (String, String) {
    let creds = json!({"email": "bench@example.com", "password": "a long bench passphrase"});
    http.post(format!("{url}/auth/register"))
        .json(&creds)
        .send()
        .await
        .unwrap();
    let login = json(http.post(format!("{url}/auth/login")).json(&creds)).await;
    let token = login["data"]["access_token"].as_str().unwrap().to_owned();
    let name = csv.file_name().unwrap().to_str().unwrap().to_owned();
    let form = reqwest::multipart::Form::new().part(
        "file",
        reqwest::multipart::Part::bytes(std::fs::read(csv).unwrap()).file_name(name),
    );
    let up = json(
        http.post(format!("{url}/upload/dataset"))
            .bearer_auth(&token)
            .multipart(form),
    )
    .await;
    let id = up["data"]["id"].as_str().expect("uploaded").to_owned();
    loop {
        let d = json(
            http.get(format!("{url}/upload/datasets/{id}"))
                .bearer_auth(&token),
        )
        .await;
        match d["data"]["status"].as_str() {
            Some("ready") => return (token, id),
            Some("validating") => tokio::time::sleep(Duration::from_millis(50)).await,
            other => panic!("ingestion ended {other:?}: {d}"),
        }
    }
}

/// Latencies (ms) of `GET target` from `clients` clients calling in turn for `secs` seconds.
pub async fn latencies(
    http: &reqwest::Client,
    target: &str,
    token: &str,
    clients: usize,
    secs: u64,
) -> Vec<f64> {
    let until = Instant::now() + Duration::from_secs(secs);
    let tasks: Vec<_> = (0..clients)
        .map(|_| {
            let (http, target, token) = (http.clone(), target.to_owned(), token.to_owned());
            tokio::spawn(async move {
                let mut ms = Vec::new();
                while Instant::now() < until {
                    let t = Instant::now();
                    let r = http.get(&target).bearer_auth(&token).send().await.unwrap();
                    assert!(r.status().is_success(), "{target}: {}", r.status());
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
pub async fn until_completed(http: &reqwest::Client, url: &str, token: &str, id: &str) {
    loop {
        let s = json(
            http.get(format!("{url}/generation/status/{id}"))
                .bearer_auth(token),
        )
        .await;
        match s["data"]["status"].as_str() {
            Some("completed") => return,
            Some("failed" | "cancelled") => panic!("the request ended {s}"),
            _ => tokio::time::sleep(Duration::from_millis(20)).await,
        }
    }
}
