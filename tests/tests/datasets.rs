//! Datasets over HTTP against both families: upload (direct and presigned) → ingestion →
//! ready or invalid → inspect, preview, override metadata → delete; and isolation between
//! users. On AWS the `ingest` function's handler is driven with real S3 event JSON.

use std::time::Duration;

use serde_json::json;
use synth_core::{Key, Settings, Update};
use synth_tests::http::{PENGUINS, TestServer, serve};
use synth_tests::sigv4::{self, Refusal};
use synth_tests::{UrlCheck, object_keys, says};

synth_tests::both_families!(
    upload_ingest_inspect_override_delete,
    presigned_upload_is_ingested_once,
    bad_files_are_refused_or_marked_invalid,
    users_never_see_each_others_datasets,
    interrupted_ingestion_is_retried_then_given_up,
);

/// Record `n` generations running on the dataset at `key`, as starting them does.
async fn set_running(s: &TestServer, key: &Key, n: u32) {
    let set = Update::default().set("active_generations", n);
    s.family
        .backends
        .records
        .update(key, set, None)
        .await
        .unwrap();
}

async fn upload_ingest_inspect_override_delete(f: synth_tests::Family) {
    let s = serve(f, Settings::for_tests()).await;
    let (owner, t) = s.register("ada@example.com").await;
    let csv = std::fs::read(PENGUINS).expect("shared penguins dataset");
    let r = s.upload(&t, "penguins.csv", csv).await.expect(201);
    assert_eq!(r.data()["status"], "validating");
    let id = r.id();

    let d = s.ingested(&t, &owner, &id, "penguins.csv").await;
    assert_eq!(d["status"], "ready", "{d}");
    assert_eq!(
        (
            d["n_rows"].as_u64(),
            d["n_columns"].as_u64(),
            d["format"].as_str()
        ),
        (Some(344), Some(8), Some("csv"))
    );
    let sdtype = |c: &str| {
        d["metadata"]["columns"][c]["sdtype"]
            .as_str()
            .unwrap()
            .to_owned()
    };
    assert_eq!(sdtype("species"), "categorical");
    assert_eq!(sdtype("bill_length_mm"), "numerical");
    assert_eq!(d["metadata"]["METADATA_SPEC_VERSION"], "SINGLE_TABLE_V1");
    assert!(
        d["profile"].is_object() || d["profile"].is_array(),
        "profile served: {}",
        d["profile"]
    );
    assert!(d["profile"].to_string().contains("bill_length_mm"));

    // Preview.
    let p = s
        .get(&format!("/upload/datasets/{id}/preview?rows=5"), Some(&t))
        .await;
    let rows = p.data()["rows"].as_array().unwrap();
    assert_eq!(rows.len(), 5);
    assert_eq!(rows[0]["species"], "Adelie");
    assert_eq!(
        s.get(&format!("/upload/datasets/{id}/preview?rows=0"), Some(&t))
            .await
            .status,
        400
    );

    // Metadata override, checked against the data.
    let metadata = format!("/upload/datasets/{id}/metadata");
    let ok = json!({"columns": {"island": {"sdtype": "text"}}});
    let r = s.put(&metadata, Some(&t), ok).await;
    assert_eq!(r.data()["metadata"]["columns"]["island"]["sdtype"], "text");
    assert_eq!(
        r.data()["metadata"]["columns"]["species"]["sdtype"],
        "categorical",
        "other columns kept"
    );
    let bad = json!({"columns": {"species": {"sdtype": "numerical"}}});
    let r = s.put(&metadata, Some(&t), bad).await;
    assert_eq!(
        (r.status, r.body["error"]["details"]["column"].as_str()),
        (400, Some("species"))
    );
    let unknown = json!({"columns": {"wingspan": {"sdtype": "numerical"}}});
    assert_eq!(s.put(&metadata, Some(&t), unknown).await.status, 400);
    // A misspelt key is named, not dropped with the setting it was meant to change.
    let typo = json!({"columns": {"body_mass_g": {"sdtype": "numerical",
                                                  "computer_represntation": "Int64"}}});
    let r = s.put(&metadata, Some(&t), typo).await;
    let r = r.expect_error(400, "VALIDATION_ERROR");
    let field = r.body["error"]["details"]["field"]
        .as_str()
        .unwrap_or_default();
    assert!(field.contains("computer_represntation"), "{}", r.body);
    assert_eq!(
        s.get(&format!("/upload/datasets/{id}"), Some(&t))
            .await
            .data()["metadata"]["columns"]["island"]["sdtype"],
        "text"
    );

    // Listing.
    let list = s.get("/upload/datasets", Some(&t)).await;
    assert_eq!(list.data()["items"].as_array().unwrap().len(), 1);

    // Deletion waits for running generations.
    let key = Key::new(format!("USER#{owner}"), format!("DATASET#{id}"));
    set_running(&s, &key, 1).await;
    let busy = s.delete(&format!("/upload/datasets/{id}"), Some(&t)).await;
    assert_eq!((busy.status, busy.code()), (409, "CONFLICT"));
    set_running(&s, &key, 0).await;
    let del = s.delete(&format!("/upload/datasets/{id}"), Some(&t)).await;
    assert_eq!(del.status, 200);
    assert_eq!(
        s.get(&format!("/upload/datasets/{id}"), Some(&t))
            .await
            .status,
        404
    );
    let objects = s.family.backends.objects.as_ref();
    let derived = object_keys(objects, &format!("users/{owner}/datasets/{id}/")).await;
    assert!(derived.is_empty(), "derived files deleted: {derived:?}");
    let original = object_keys(objects, &format!("uploads/{owner}/{id}/")).await;
    assert!(original.is_empty(), "original deleted: {original:?}");
    assert!(
        s.get("/upload/datasets", Some(&t)).await.data()["items"]
            .as_array()
            .unwrap()
            .is_empty()
    );
}

async fn presigned_upload_is_ingested_once(f: synth_tests::Family) {
    let s = serve(f, Settings::for_tests()).await;
    let (owner, t) = s.register("big@example.com").await;
    let csv = b"city;temp;when\nOslo;-3.5;2024-01-02\nLima;19.25;2024-01-03\n\"Wash; DC\";4.0;2024-01-04\n".to_vec();
    let r = s
        .post(
            "/upload/presign",
            Some(&t),
            json!({"filename": "weather.csv", "size": csv.len(), "content_type": "text/csv"}),
        )
        .await
        .expect(201);
    assert_eq!(r.data()["dataset"]["status"], "pending_upload");
    let id = r.data()["dataset"]["id"].as_str().unwrap().to_owned();
    let upload = r.data()["upload"].clone();
    let mut req = s
        .http
        .put(upload["url"].as_str().unwrap())
        .body(csv.clone());
    for h in upload["headers"].as_array().unwrap() {
        req = req.header(h[0].as_str().unwrap(), h[1].as_str().unwrap());
    }
    assert!(req.send().await.unwrap().status().is_success());
    let d = s.ingested(&t, &owner, &id, "weather.csv").await;
    assert_eq!(d["status"], "ready", "{d}");
    assert_eq!(d["n_rows"], 3);
    assert_eq!(d["metadata"]["columns"]["when"]["sdtype"], "datetime");
    // The same notification again changes nothing.
    if s.family.name == "aws" {
        assert_eq!(
            s.s3_event(&format!("uploads/{owner}/{id}/weather.csv"))
                .await,
            0,
            "duplicate event ignored"
        );
    }
    // The URL is spent: another PUT (of another body) is refused and changes nothing.
    let mut reuse = s
        .http
        .put(upload["url"].as_str().unwrap())
        .body(b"x,y\n1,2\n".to_vec());
    for h in upload["headers"].as_array().unwrap() {
        if h[0] != "content-length" {
            reuse = reuse.header(h[0].as_str().unwrap(), h[1].as_str().unwrap());
        }
    }
    let refused = reuse.send().await.unwrap().status().as_u16();
    assert!(
        refused == 409 || refused == 412,
        "second use answered {refused}"
    );
    let again = s.get(&format!("/upload/datasets/{id}"), Some(&t)).await;
    assert_eq!(again.data()["updated_at"], d["updated_at"]);
    assert_eq!(again.data()["size_bytes"], csv.len());
    assert_eq!(
        s.get("/upload/datasets", Some(&t)).await.data()["items"]
            .as_array()
            .unwrap()
            .len(),
        1
    );

    // Declared 150 bytes, sent 23 KB: refused by the URL (embedded; S3 checks the signed
    // length), and in any case never ingested as if it were the declared file.
    let r = s
        .post(
            "/upload/presign",
            Some(&t),
            json!({"filename": "size.csv", "size": 150}),
        )
        .await;
    let sized = r.data()["dataset"]["id"].as_str().unwrap().to_owned();
    let upload = r.data()["upload"].clone();
    let mut req = s
        .http
        .put(upload["url"].as_str().unwrap())
        .body("a,b\n1,2\n".repeat(23 * 1024 / 8).into_bytes());
    for h in upload["headers"].as_array().unwrap() {
        if h[0] != "content-length" {
            req = req.header(h[0].as_str().unwrap(), h[1].as_str().unwrap());
        }
    }
    let status = req.send().await.unwrap().status().as_u16();
    if s.family.url_check == UrlCheck::Served {
        assert_eq!(status, 400);
    } else {
        // S3 would refuse it: the signature covers the declared length.
        let sent: Vec<(String, String)> = upload["headers"]
            .as_array()
            .unwrap()
            .iter()
            .map(|h| {
                let name = h[0].as_str().unwrap().to_owned();
                let value = match name.as_str() {
                    "content-length" => (23 * 1024).to_string(),
                    _ => h[1].as_str().unwrap().to_owned(),
                };
                (name, value)
            })
            .collect();
        let url = upload["url"].as_str().unwrap();
        let now = std::time::SystemTime::now();
        assert_eq!(
            sigv4::check("PUT", url, &sent, now),
            Err(Refusal::BadSignature)
        );
        assert_eq!(status, 200, "the emulator does not check the signed length");
        let d = s.ingested(&t, &owner, &sized, "size.csv").await;
        assert_eq!(d["status"], "invalid", "{d}");
        assert!(says(&d["error"], "but 150 were declared"), "{d}");
    }

    let too_big = s
        .post(
            "/upload/presign",
            Some(&t),
            json!({"filename": "huge.csv", "size": 600u64 * 1024 * 1024}),
        )
        .await;
    assert_eq!((too_big.status, too_big.code()), (400, "VALIDATION_ERROR"));
    assert_eq!(too_big.body["error"]["details"]["field"], "size");
    let message = &too_big.body["error"]["message"];
    assert!(says(message, "MAX_FILE_SIZE_MB"), "{message}");
}

async fn bad_files_are_refused_or_marked_invalid(f: synth_tests::Family) {
    let s = serve(f, Settings::for_tests()).await;
    let (owner, t) = s.register("bad@example.com").await;
    let empty = s.upload(&t, "empty.csv", Vec::new()).await;
    assert_eq!((empty.status, empty.code()), (400, "VALIDATION_ERROR"));
    let exe = s.upload(&t, "tool.exe", b"MZ....".to_vec()).await;
    assert_eq!(exe.status, 400);
    let message = &exe.body["error"]["message"];
    assert!(says(message, "unsupported"), "{message}");
    // The refusal lists every extension that is taken, NDJSON's among them.
    for ext in ["csv", "tsv", "ndjson", "jsonl", "xlsx", "parquet"] {
        assert!(says(message, ext), "{ext}: {message}");
    }
    let no_file = s
        .http
        .post(format!("{}/upload/dataset", s.url))
        .bearer_auth(&t)
        .multipart(reqwest::multipart::Form::new().text("other", "x"))
        .send()
        .await
        .unwrap();
    assert_eq!(no_file.status(), 400);
    // Not a form at all: the answer says what to send.
    let json_body = s
        .post(
            "/upload/dataset",
            Some(&t),
            serde_json::json!({"file": "a,b\n1,2\n"}),
        )
        .await
        .expect_error(415, "UNSUPPORTED_MEDIA_TYPE");
    assert!(
        says(&json_body.body["error"]["message"], "multipart/form-data"),
        "{}",
        json_body.body
    );
    // Two files in one form: refused, neither stored.
    let two = reqwest::multipart::Form::new()
        .part(
            "file",
            reqwest::multipart::Part::bytes(b"a,b\n1,2\n".to_vec()).file_name("one.csv"),
        )
        .part(
            "file",
            reqwest::multipart::Part::bytes(b"c,d\n3,4\n".to_vec()).file_name("two.csv"),
        );
    let two = s
        .http
        .post(format!("{}/upload/dataset", s.url))
        .bearer_auth(&t)
        .multipart(two)
        .send()
        .await
        .unwrap();
    assert_eq!(two.status(), 400);
    assert_eq!(
        s.get("/upload/datasets", Some(&t)).await.data()["items"]
            .as_array()
            .unwrap()
            .len(),
        0,
        "nothing stored for refused uploads"
    );

    let ragged = s
        .upload(&t, "ragged.csv", b"a,b,c\n1,2,3\n4,5\n6,7,8\n".to_vec())
        .await;
    let id = ragged.id();
    let d = s.ingested(&t, &owner, &id, "ragged.csv").await;
    assert_eq!(d["status"], "invalid");
    let error = &d["error"];
    assert!(says(error, "3"), "names the first bad line: {error}");
    assert!(
        s.family
            .backends
            .objects
            .list(&format!("users/{owner}/datasets/{id}/"))
            .await
            .unwrap()
            .is_empty(),
        "nothing half-written"
    );
    assert_eq!(
        s.get(&format!("/upload/datasets/{id}/preview"), Some(&t))
            .await
            .status,
        409
    );
    let anon = s.get("/upload/datasets", None).await;
    assert_eq!(anon.status, 401);
}

async fn users_never_see_each_others_datasets(f: synth_tests::Family) {
    let s = serve(f, Settings::for_tests()).await;
    let (owner, a) = s.register("alice@example.com").await;
    let (_, b) = s.register("bob@example.com").await;
    let r = s
        .upload(&a, "t.csv", b"x,y\n1,a\n2,b\n3,c\n".to_vec())
        .await;
    let id = r.id();
    s.ingested(&a, &owner, &id, "t.csv").await;
    let b = Some(b.as_str());
    for r in [
        s.get(&format!("/upload/datasets/{id}"), b).await,
        s.get(&format!("/upload/datasets/{id}/preview"), b).await,
        s.put(
            &format!("/upload/datasets/{id}/metadata"),
            b,
            json!({"columns": {}}),
        )
        .await,
        s.call("DELETE", &format!("/upload/datasets/{id}"), b, None)
            .await,
    ] {
        assert_eq!((r.status, r.code()), (404, "NOT_FOUND"));
    }
    assert!(
        s.get("/upload/datasets", b).await.data()["items"]
            .as_array()
            .unwrap()
            .is_empty()
    );
    assert_eq!(
        s.get(&format!("/upload/datasets/{id}"), Some(&a))
            .await
            .data()["status"],
        "ready",
        "still there for its owner"
    );
}

/// An analysis that never finishes, as when the process running it dies or is killed: the
/// test drops the ingestion future after a moment, which is all a crash leaves behind.
struct NeverFinishes;

impl synth_core::datasets::Analyzer for NeverFinishes {
    fn analyze(&self, _: &[u8], _: &str) -> Result<synth_core::datasets::Analysis, String> {
        std::thread::sleep(Duration::from_secs(60));
        Err("the test's analysis was abandoned long ago".into())
    }
}

/// Each claim of an upload is counted durably before its analysis starts: one that was
/// interrupted is retried, and after `MAX_INGEST_ATTEMPTS` interruptions the dataset is
/// `invalid` with the reason instead of being retried forever. A file whose size is not the
/// declared one is refused. Driven on the service directly (no ingest loop), as the
/// `ingest` Lambda and the embedded loop both call it.
async fn interrupted_ingestion_is_retried_then_given_up(f: synth_tests::Family) {
    use synth_core::datasets::{Datasets, MAX_INGEST_ATTEMPTS};
    let settings = Settings::for_tests();
    let datasets = Datasets::new(
        f.backends.records.clone(),
        f.backends.objects.clone(),
        &settings,
    );
    let good = std::sync::Arc::new(synth_analysis::TableAnalyzer::new(
        settings.max_file_bytes(),
    ));
    let csv = b"x,y\n1,a\n2,b\n3,a\n".to_vec();
    let owner = synth_tests::unique("owner");
    let stage = |declared: usize, body: Vec<u8>| {
        let (datasets, objects, owner) =
            (datasets.clone(), f.backends.objects.clone(), owner.clone());
        async move {
            let (d, _) = datasets
                .presign(&owner, "t.csv", declared as u64, "text/csv")
                .await
                .unwrap();
            let key = format!("uploads/{owner}/{}/t.csv", d.id);
            objects.put(&key, body.into(), "text/csv").await.unwrap();
            (d.id, key)
        }
    };
    let crash = |key: String| {
        let datasets = datasets.clone();
        async move {
            let run = datasets.ingest(std::sync::Arc::new(NeverFinishes), &key);
            assert!(
                tokio::time::timeout(Duration::from_millis(300), run)
                    .await
                    .is_err()
            );
        }
    };
    let status = |id: String| {
        let datasets = datasets.clone();
        let owner = owner.clone();
        async move { datasets.get(&owner, &id).await.unwrap() }
    };

    // Interrupted once, then it finishes.
    let (id, key) = stage(csv.len(), csv.clone()).await;
    crash(key.clone()).await;
    assert_eq!(status(id.clone()).await.status.as_str(), "validating");
    let d = datasets
        .ingest(good.clone(), &key)
        .await
        .unwrap()
        .expect("ingested");
    assert_eq!((d.status.as_str(), d.n_rows), ("ready", Some(3)));

    // Interrupted every time: given up after the limit, never analysed again.
    let (id, key) = stage(csv.len(), csv.clone()).await;
    for _ in 0..MAX_INGEST_ATTEMPTS {
        crash(key.clone()).await;
    }
    let d = datasets
        .ingest(good.clone(), &key)
        .await
        .unwrap()
        .expect("given up");
    assert_eq!(d.status.as_str(), "invalid");
    let reason = d.error.clone().unwrap();
    assert!(
        reason.contains(&format!("interrupted {MAX_INGEST_ATTEMPTS} times")),
        "{reason}"
    );
    assert_eq!(status(id).await.status.as_str(), "invalid");
    assert!(
        datasets.ingest(good.clone(), &key).await.unwrap().is_none(),
        "final"
    );

    // Bytes other than the declared size (a presigned URL used with another body).
    let (_, key) = stage(10, csv.clone()).await;
    let d = datasets.ingest(good.clone(), &key).await.unwrap().unwrap();
    assert_eq!(d.status.as_str(), "invalid");
    assert!(
        d.error
            .as_deref()
            .unwrap()
            .contains(&format!("{} bytes, but 10 were declared", csv.len())),
        "{d:?}"
    );
}
