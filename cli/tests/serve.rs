//! `synth serve` as a real process: it answers, stops gracefully on SIGTERM, finds its
//! data again after a restart, and loses no acknowledged write when killed with SIGKILL.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use synth_core::ObjectStore;
use synth_embedded::{FsObjects, UrlSigner};

/// Objects whose upload was acknowledged: key and body.
type Acked = Vec<(String, Vec<u8>)>;

#[path = "common/api.rs"]
mod api;
#[path = "common/server.rs"]
mod server;
use api::{User, answer, reply};
use reqwest::Method;
use server::{SECRET, Server};

/// A fresh data folder, in a temporary folder that is removed with the `TempDir`.
fn data_dir() -> (tempfile::TempDir, PathBuf) {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("data");
    (tmp, dir)
}

/// The server as these tests run it: a lease short enough to take a killed run over.
fn start(data_dir: &Path) -> Server {
    server::start(data_dir, &[("TRAINER_LEASE_SECONDS", "2")])
}

/// Signs URLs for the server's data with the same key, as a handler would.
fn signer_for(server: &Server, data_dir: &Path) -> FsObjects {
    FsObjects::new(
        data_dir.join("objects"),
        UrlSigner::new(SECRET),
        server.url.clone(),
    )
    .unwrap()
}

async fn upload(
    http: &reqwest::Client,
    urls: &FsObjects,
    key: &str,
    body: Vec<u8>,
) -> reqwest::Result<reqwest::StatusCode> {
    let put = urls
        .presign_put(
            key,
            "application/octet-stream",
            body.len() as u64,
            Duration::from_secs(600),
        )
        .await
        .unwrap();
    let mut req = http.put(&put.url).body(body);
    for (h, v) in &put.headers {
        req = req.header(h, v);
    }
    Ok(req.send().await?.status())
}

async fn download(
    http: &reqwest::Client,
    urls: &FsObjects,
    key: &str,
) -> (reqwest::StatusCode, Vec<u8>) {
    let get = urls
        .presign_get(key, Duration::from_secs(600))
        .await
        .unwrap();
    let res = http.get(&get.url).send().await.unwrap();
    (res.status(), res.bytes().await.unwrap().to_vec())
}

/// SIGTERM, then wait (at most `secs` seconds) for a graceful stop: exit status 0.
fn terminate(server: &mut Server, secs: u64) {
    let pid = server.child.id().to_string();
    let sent = Command::new("kill").args(["-TERM", &pid]).status().unwrap();
    assert!(sent.success());
    let status = (0..secs * 10)
        .find_map(|_| {
            let status = server.child.try_wait().unwrap();
            if status.is_none() {
                std::thread::sleep(Duration::from_millis(100));
            }
            status
        })
        .unwrap_or_else(|| panic!("synth serve did not stop within {secs} s of SIGTERM"));
    assert!(status.success(), "graceful stop exits 0, got {status:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn serves_health_stops_gracefully_and_restarts_with_its_data() {
    let (_tmp, dir) = data_dir();
    let http = reqwest::Client::new();
    let mut server = start(&dir);
    let health = reply(http.get(format!("{}/health", server.url))).await;
    assert_eq!(health["data"]["status"], "ok", "{health}");
    assert_eq!(health["data"]["mode"], "embedded");
    let urls = signer_for(&server, &dir);
    assert!(
        upload(&http, &urls, "uploads/u1/kept.csv", b"a,b\n1,2\n".to_vec())
            .await
            .unwrap()
            .is_success()
    );

    terminate(&mut server, 10);

    let server = start(&dir);
    let urls = signer_for(&server, &dir);
    let (status, body) = download(&http, &urls, "uploads/u1/kept.csv").await;
    assert_eq!(
        (status.as_u16(), body.as_slice()),
        (200, &b"a,b\n1,2\n"[..])
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigkill_during_a_burst_of_writes_loses_no_acknowledged_write() {
    let (_tmp, dir) = data_dir();
    let http = reqwest::Client::new();
    let mut server = start(&dir);
    let urls = Arc::new(signer_for(&server, &dir));
    let acked: Arc<Mutex<Acked>> = Arc::default();
    let writers: Vec<_> = (0..8)
        .map(|w| {
            let (http, urls, acked) = (http.clone(), urls.clone(), acked.clone());
            tokio::spawn(async move {
                for i in 0.. {
                    let key = format!("burst/w{w}/obj{i:05}");
                    let body = format!("writer {w} object {i} ").repeat(200).into_bytes();
                    match upload(&http, &urls, &key, body.clone()).await {
                        Ok(s) if s.is_success() => acked.lock().unwrap().push((key, body)),
                        _ => break,
                    }
                }
            })
        })
        .collect();
    let mut waited = 0;
    while acked.lock().unwrap().len() < 200 && waited < 300 {
        tokio::time::sleep(Duration::from_millis(20)).await;
        waited += 1;
    }
    server.child.kill().unwrap(); // SIGKILL, mid-burst
    server.child.wait().unwrap();
    for w in writers {
        let _ = w.await;
    }
    let acked = acked.lock().unwrap().clone();
    assert!(
        acked.len() >= 50,
        "the burst wrote too little to mean anything ({})",
        acked.len()
    );

    let server = start(&dir);
    let urls = signer_for(&server, &dir);
    for (key, body) in &acked {
        let (status, got) = download(&http, &urls, key).await;
        assert_eq!(status.as_u16(), 200, "acknowledged {key} lost");
        assert!(got == *body, "acknowledged {key} corrupted");
    }
    // Nothing half-written is visible: every stored object is complete, acknowledged or not.
    let listed = urls.list("burst/").await.unwrap();
    assert!(listed.len() >= acked.len());
    for meta in listed {
        let (w, i) = meta
            .key
            .trim_start_matches("burst/w")
            .split_once("/obj")
            .unwrap();
        let expected = format!("writer {w} object {} ", i.parse::<u32>().unwrap()).repeat(200);
        let (status, got) = download(&http, &urls, &meta.key).await;
        assert_eq!(status.as_u16(), 200);
        assert!(got == expected.as_bytes(), "{} is complete", meta.key);
    }
}

fn admin_create(data_dir: &Path, email: &str, password: &str) -> std::process::Output {
    use std::io::Write;
    let mut child = Command::new(env!("CARGO_BIN_EXE_synth"))
        .args([
            "admin",
            "create",
            "--email",
            email,
            "--password-stdin",
            "--data-dir",
        ])
        .arg(data_dir)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    writeln!(child.stdin.take().unwrap(), "{password}").unwrap();
    child.wait_with_output().unwrap()
}

/// `TRAINER_DEVICE=cuda` where no GPU opens (this build has no CUDA) stops the start,
/// saying why, rather than serve requests that would all fail.
#[test]
fn a_gpu_that_does_not_open_stops_the_start() {
    let (_tmp, dir) = data_dir();
    let mut child = Command::new(env!("CARGO_BIN_EXE_synth"))
        .args(["serve", "--host", "127.0.0.1", "--port", "0", "--data-dir"])
        .arg(&dir)
        .env("SECRET_KEY", SECRET)
        .env("TRAINER_DEVICE", "cuda")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if std::time::Instant::now() > deadline {
            let _ = child.kill();
            panic!("synth serve kept running with a GPU that does not open");
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    let mut stderr = String::new();
    std::io::Read::read_to_string(&mut child.stderr.take().unwrap(), &mut stderr).unwrap();
    assert!(!status.success(), "{stderr}");
    assert!(
        stderr.contains("configuration: TRAINER_DEVICE is cuda:0, which does not open"),
        "{stderr}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn admin_create_makes_the_first_administrator() {
    let (_tmp, dir) = data_dir();
    let out = admin_create(&dir, "Root@Example.com", "a strong admin passphrase");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains("root@example.com"));
    let again = admin_create(&dir, "root@example.com", "a strong admin passphrase");
    assert!(
        !again.status.success(),
        "a second account with the same email is refused"
    );
    assert!(String::from_utf8_lossy(&again.stderr).contains("already exists"));
    let weak = admin_create(&dir, "other@example.com", "password");
    assert!(!weak.status.success());
    assert!(String::from_utf8_lossy(&weak.stderr).contains("password"));

    let server = start(&dir);
    let http = reqwest::Client::new();
    let admin = User::login(
        &http,
        &server.url,
        "root@example.com",
        "a strong admin passphrase",
    )
    .await;
    let users = admin.get("/admin/users").await;
    assert_eq!(users["data"]["items"][0]["role"], "admin");
    let logs = admin.get("/admin/logs").await;
    assert_eq!(logs["data"]["items"][0]["action"], "admin.created");
}

async fn healthy(http: &reqwest::Client, url: &str) -> bool {
    match http.get(format!("{url}/health")).send().await {
        Ok(r) => r.status().is_success(),
        Err(_) => false,
    }
}

/// Hostile uploads (JSON nested thousands of levels deep, as arrays, objects and NDJSON)
/// end `invalid` with the reason, and the server answers throughout and after a restart on
/// the same data folder, which does not ingest them again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deeply_nested_uploads_never_stop_the_server() {
    let (_tmp, dir) = data_dir();
    let http = reqwest::Client::new();
    let server = start(&dir);
    let mut user = User::register(&http, &server.url, "hostile@example.com").await;
    let deep = |n: usize| format!("{}{}", "[".repeat(n), "]".repeat(n));
    let files = [
        ("arrays.json", deep(1_000)),
        ("million.json", deep(1_000_000)),
        (
            "objects.json",
            format!("[{}1{}]", "{\"a\": ".repeat(5_000), "}".repeat(5_000)),
        ),
        (
            "lines.ndjson",
            format!("{{\"a\": 1}}\n{{\"a\": {}}}\n", deep(3_000)),
        ),
    ];
    let mut ids = Vec::new();
    for (name, body) in files {
        ids.push(user.upload(name, body.into_bytes()).await);
    }
    // A deep request body is refused before it is parsed.
    let (status, r) = answer(
        user.request(Method::POST, "/upload/presign")
            .header("content-type", "application/json")
            .body(deep(100_000)),
    )
    .await;
    assert_eq!(status, 400);
    assert_eq!(r["error"]["details"]["max_depth"], 32, "{r}");

    for id in &ids {
        let mut d = serde_json::Value::Null;
        for _ in 0..300 {
            assert!(healthy(&http, &server.url).await, "the server died");
            d = user.dataset(id).await;
            if d["status"] != "validating" {
                break;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        assert_eq!(d["status"], "invalid", "{d}");
        assert!(
            d["error"]
                .as_str()
                .unwrap()
                .contains("nested more than 64 levels"),
            "{d}"
        );
    }
    drop(server);

    let server = start(&dir);
    user.url = server.url.clone();
    for _ in 0..10 {
        assert!(
            healthy(&http, &server.url).await,
            "the server died after a restart"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    for id in &ids {
        assert_eq!(user.dataset(id).await["status"], "invalid");
    }
}

const PENGUINS: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../../shared/data/penguins.csv"
);

/// Poll a generation request until `done` holds for it (at most `secs` seconds).
async fn request_until(
    user: &User,
    id: &str,
    secs: u64,
    done: impl Fn(&serde_json::Value) -> bool,
) -> serde_json::Value {
    let mut r = serde_json::Value::Null;
    for _ in 0..secs * 10 {
        r = user.get(&format!("/generation/status/{id}")).await["data"].clone();
        if done(&r) {
            return r;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("the request did not get there in {secs} s: {r}")
}

/// The whole flow in the real server: upload → ready → start → the in-process queue and
/// worker train it → completed → download. A request running when the server is killed is
/// taken up again by the next start on the same data folder; one running when it is stopped
/// (SIGTERM) is handed back, and the next start takes it over at once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn generations_run_in_the_server_and_resume_after_a_kill() {
    let (_tmp, dir) = data_dir();
    let http = reqwest::Client::new();
    let mut server = start(&dir);
    let mut user = User::register(&http, &server.url, "ada@example.com").await;
    let dataset_id = user
        .upload("penguins.csv", std::fs::read(PENGUINS).unwrap())
        .await;
    let ingested = user.ingested(&dataset_id).await;
    assert_eq!(ingested["status"], "ready", "{ingested}");
    let start_one = |model: serde_json::Value| {
        let body = serde_json::json!({"dataset_id": dataset_id, "sample_size": 100, "model_config": model});
        let user = &user;
        async move {
            let (_, r) = user.post("/generation/start", &body).await;
            r["data"]["id"]
                .as_str()
                .unwrap_or_else(|| panic!("started: {r}"))
                .to_owned()
        }
    };
    let quick = start_one(serde_json::json!({"model_type": "tvae", "epochs": 3})).await;
    let done = request_until(&user, &quick, 120, |r| r["status"] == "completed").await;
    assert_eq!(done["result"]["rows"], 100, "{done}");
    let links = user.get(&format!("/generation/download/{quick}")).await;
    let csv = http
        .get(links["data"]["data"]["url"].as_str().unwrap())
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert_eq!(csv.lines().count(), 101, "a header and 100 rows");
    assert!(
        csv.starts_with("species,island,"),
        "{}",
        &csv[..40.min(csv.len())]
    );

    let long =
        start_one(serde_json::json!({"model_type": "ctgan", "epochs": 500, "batch_size": 50}))
            .await;
    request_until(&user, &long, 120, |r| {
        r["status"] == "running" && r["progress"]["phase"] == "training"
    })
    .await;
    server.child.kill().unwrap(); // SIGKILL mid-training
    server.child.wait().unwrap();

    let mut server = start(&dir);
    user.url = server.url.clone();
    let resumed = request_until(&user, &long, 120, |r| {
        r["status"] == "running" && r["attempts"] == 2 && r["progress"]["phase"] == "training"
    })
    .await;
    assert!(resumed["error"].is_null(), "{resumed}");

    // SIGTERM mid-training: the server stops within seconds, not at the end of training, and
    // gives the request back. The next start, with a lease of an hour, takes it over at once,
    // and the stopped run does not count as an attempt.
    terminate(&mut server, 40);
    let stopped_at = chrono::Utc::now();
    let server = server::start(&dir, &[("TRAINER_LEASE_SECONDS", "3600")]);
    user.url = server.url.clone();
    let taken_over = request_until(&user, &long, 60, |r| {
        let updated = r["updated_at"].as_str().and_then(|t| t.parse().ok());
        r["status"] == "running"
            && r["progress"]["phase"] == "training"
            && updated.is_some_and(|t: chrono::DateTime<chrono::Utc>| t > stopped_at)
    })
    .await;
    assert_eq!(taken_over["attempts"], 2, "{taken_over}");
    let (cancelled, _) =
        answer(user.request(Method::DELETE, &format!("/generation/requests/{long}"))).await;
    assert_eq!(cancelled, 200);
    request_until(&user, &long, 60, |r| r["status"] == "cancelled").await;
}
