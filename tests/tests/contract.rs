//! The contract of the ports, run against both adapter families so they cannot drift:
//! `embedded::*` on SQLite + a folder + in-process queue/topic/workers, `aws::*` on
//! DynamoDB, S3, SQS, SNS and Batch as served by moto server.

use std::time::Duration;

use serde_json::{Value, json};
use synth_core::dispatch::{Dispatched, JobRequest, dispatch};
use synth_core::ports::records::Cmp;
use synth_core::{
    Condition, Index, Item, JobSpec, JobState, Key, PortError, Query, RecordStore, SortKey, TxOp,
    Update,
};
use synth_tests::sigv4::{self, Refusal};
use synth_tests::{Family, UrlCheck, eventually, next_message};

synth_tests::both_families!(
    records_round_trip_every_json_type,
    conditional_writes_conflict,
    updates_create_set_remove_and_count,
    pagination_across_pages_both_orders,
    sort_key_conditions,
    secondary_index_queries,
    transactions_fail_as_a_whole,
    objects_put_get_head_list_delete,
    presigned_put_then_get_over_http,
    presigned_urls_refuse_expiry_and_tampering,
    queue_redelivers_after_visibility_timeout,
    queue_deduplicates_sends,
    topic_fans_out_to_every_subscriber,
    jobs_run_to_completion,
    dispatch_starts_one_job_per_request,
    health_answers;
    ignored on aws:
    failed_jobs_say_why = "moto's Docker-less Batch succeeds every job (unless a server-wide \
        MOTO_SIMPLE_BATCH_FAIL_AFTER fails them all); BatchJobs' reading of a FAILED job is \
        unit-tested in synth-aws (batch.rs)",
);

fn key(pk: &str, sk: &str) -> Key {
    Key::new(pk, sk)
}

async fn records_round_trip_every_json_type(f: Family) {
    let r = &f.backends.records;
    let k = key("USER#1", "PROFILE");
    let doc = json!({
        "name": "Zoë 名前 🚀", "empty": "", "int": -42, "big": 9_007_199_254_740_993i64,
        "float": 3.25, "yes": true, "nothing": null, "list": [1, "two", {"three": 3.5}],
        "map": {"nested": {"deep": [true, false]}},
    });
    let item = Item::from_value(&k, &doc).unwrap();
    r.put(item.clone(), None).await.unwrap();
    let got = r.get(&k).await.unwrap().expect("item stored");
    assert_eq!(got, item, "{}: the item comes back as written", f.name);
    assert_eq!(r.get(&key("USER#1", "OTHER")).await.unwrap(), None);
    r.delete(&k, None).await.unwrap();
    assert_eq!(r.get(&k).await.unwrap(), None);
    // Deleting what is not there is fine.
    r.delete(&k, None).await.unwrap();
}

async fn conditional_writes_conflict(f: Family) {
    let r = &f.backends.records;
    let k = key("DATASET#1", "META");
    let first = Item::new(&k)
        .with("status", "validating")
        .with("version", 1);
    r.put(first.clone(), Some(Condition::NotExists))
        .await
        .unwrap();
    let again = r.put(first.clone(), Some(Condition::NotExists)).await;
    assert_eq!(
        again,
        Err(PortError::ConditionFailed),
        "{}: a second create conflicts",
        f.name
    );

    // Optimistic concurrency: only the writer that saw version 1 wins.
    let win = Item::new(&k).with("status", "ready").with("version", 2);
    r.put(win, Some(Condition::eq("version", 1))).await.unwrap();
    let lose = Item::new(&k).with("status", "invalid").with("version", 2);
    assert_eq!(
        r.put(lose, Some(Condition::eq("version", 1))).await,
        Err(PortError::ConditionFailed)
    );
    assert_eq!(
        r.get(&k).await.unwrap().unwrap().str("status"),
        Some("ready")
    );

    // Conditional delete.
    let stale = r
        .delete(&k, Some(Condition::eq("status", "validating")))
        .await;
    assert_eq!(stale, Err(PortError::ConditionFailed));
    assert!(
        r.get(&k).await.unwrap().is_some(),
        "a failed delete deletes nothing"
    );
    r.delete(&k, Some(Condition::eq("status", "ready")))
        .await
        .unwrap();
    assert!(r.get(&k).await.unwrap().is_none());

    // Comparisons, missing attributes and OR.
    let c = key("COUNTER#1", "C");
    r.put(Item::new(&c).with("n", 5).with("s", "b"), None)
        .await
        .unwrap();
    let upd = Update::default().add("n", 1);
    r.update(&c, upd.clone(), Some(Condition::cmp("n", Cmp::Lt, 6)))
        .await
        .unwrap();
    assert_eq!(
        r.update(&c, upd.clone(), Some(Condition::cmp("n", Cmp::Lt, 6)))
            .await,
        Err(PortError::ConditionFailed)
    );
    assert_eq!(
        r.update(&c, upd.clone(), Some(Condition::eq("missing", 1)))
            .await,
        Err(PortError::ConditionFailed),
        "{}: comparing a missing attribute is false",
        f.name
    );
    let either = Condition::Or(vec![
        Condition::eq("s", "a"),
        Condition::cmp("s", Cmp::Ge, "b"),
    ]);
    let after = r.update(&c, upd.clone(), Some(either)).await.unwrap();
    assert_eq!(after.i64("n"), Some(7));
    let attr = Condition::And(vec![
        Condition::AttrExists("s".into()),
        Condition::AttrNotExists("t".into()),
    ]);
    r.update(&c, upd, Some(attr)).await.unwrap();
}

async fn updates_create_set_remove_and_count(f: Family) {
    let r = &f.backends.records;
    let k = key("STATS#u1", "2026-11");
    let created = r
        .update(
            &k,
            Update::default().add("generations", 1).set("plan", "free"),
            None,
        )
        .await
        .unwrap();
    assert_eq!(
        created.i64("generations"),
        Some(1),
        "{}: update creates the item",
        f.name
    );
    assert_eq!(created.str("pk"), Some("STATS#u1"));
    let next = r
        .update(
            &k,
            Update::default()
                .add("generations", 2)
                .remove("plan")
                .set("note", json!({"a": [1]})),
            None,
        )
        .await
        .unwrap();
    assert_eq!(next.i64("generations"), Some(3));
    assert_eq!(next.get("plan"), None);
    assert_eq!(next.get("note"), Some(&json!({"a": [1]})));
    assert_eq!(
        r.get(&k).await.unwrap().unwrap(),
        next,
        "the returned item is the stored one"
    );
    let missing = key("STATS#u1", "1999-01");
    assert_eq!(
        r.update(
            &missing,
            Update::default().set("x", 1),
            Some(Condition::Exists)
        )
        .await,
        Err(PortError::ConditionFailed)
    );
    assert!(
        r.get(&missing).await.unwrap().is_none(),
        "nothing created when the condition fails"
    );
    assert!(matches!(
        r.update(&k, Update::default().set("pk", "x"), None).await,
        Err(PortError::Invalid(_))
    ));
}

/// Every page of `q`, following each one's cursor: the size of each page, and the integer
/// `attr` of every item in order.
async fn read_pages(r: &dyn RecordStore, mut q: Query, attr: &str) -> (Vec<usize>, Vec<i64>) {
    let (mut sizes, mut values) = (Vec::new(), Vec::new());
    loop {
        let page = r.query(&q).await.unwrap();
        sizes.push(page.items.len());
        values.extend(page.items.iter().map(|i| i.i64(attr).unwrap()));
        match page.next {
            Some(c) => q.cursor = Some(c),
            None => return (sizes, values),
        }
    }
}

async fn pagination_across_pages_both_orders(f: Family) {
    let r = &f.backends.records;
    for i in 0..25 {
        let item = Item::new(&key("P#1", &format!("ITEM#{i:03}"))).with("i", i);
        r.put(item, None).await.unwrap();
    }
    r.put(Item::new(&key("P#2", "ITEM#000")), None)
        .await
        .unwrap();
    for forward in [true, false] {
        let mut q = Query::partition(Index::Primary, "P#1").limit(10);
        q.forward = forward;
        let (pages, seen) = read_pages(r.as_ref(), q, "i").await;
        assert_eq!(
            pages,
            vec![10, 10, 5],
            "{}: page sizes (forward={forward})",
            f.name
        );
        let mut expected: Vec<i64> = (0..25).collect();
        if !forward {
            expected.reverse();
        }
        assert_eq!(seen, expected, "{}: order (forward={forward})", f.name);
    }
    // Exactly one page: no cursor.
    let page = r
        .query(&Query::partition(Index::Primary, "P#1").limit(25))
        .await
        .unwrap();
    assert_eq!((page.items.len(), page.next), (25, None));
    // A cursor from another partition, or garbage, is refused.
    let first = r
        .query(&Query::partition(Index::Primary, "P#1").limit(1))
        .await
        .unwrap();
    let foreign = Query::partition(Index::Primary, "P#2").after(first.next.clone());
    assert_eq!(r.query(&foreign).await, Err(PortError::InvalidCursor));
    let garbage = Query::partition(Index::Primary, "P#1").after(Some("not-a-cursor".into()));
    assert_eq!(r.query(&garbage).await, Err(PortError::InvalidCursor));
    let empty = r
        .query(&Query::partition(Index::Primary, "P#none"))
        .await
        .unwrap();
    assert!(empty.items.is_empty() && empty.next.is_none());
}

async fn sort_key_conditions(f: Family) {
    let r = &f.backends.records;
    for sk in ["A#1", "A#2", "A#3", "B#1", "B#2", "C"] {
        r.put(Item::new(&key("S#1", sk)), None).await.unwrap();
    }
    let sks = |cond: SortKey| {
        let r = r.clone();
        async move {
            let page = r
                .query(&Query::partition(Index::Primary, "S#1").sk(cond))
                .await
                .unwrap();
            page.items
                .iter()
                .map(|i| i.str("sk").unwrap().to_owned())
                .collect::<Vec<_>>()
        }
    };
    assert_eq!(
        sks(SortKey::BeginsWith("A#".into())).await,
        ["A#1", "A#2", "A#3"]
    );
    assert_eq!(
        sks(SortKey::Between("A#2".into(), "B#1".into())).await,
        ["A#2", "A#3", "B#1"]
    );
    assert_eq!(sks(SortKey::Eq("C".into())).await, ["C"]);
    assert_eq!(sks(SortKey::Lt("A#2".into())).await, ["A#1"]);
    assert_eq!(sks(SortKey::Le("A#2".into())).await, ["A#1", "A#2"]);
    assert_eq!(sks(SortKey::Gt("B#1".into())).await, ["B#2", "C"]);
    assert_eq!(sks(SortKey::Ge("B#2".into())).await, ["B#2", "C"]);
    let page = r
        .query(
            &Query::partition(Index::Primary, "S#1")
                .sk(SortKey::BeginsWith("B#".into()))
                .backward(),
        )
        .await
        .unwrap();
    let got: Vec<_> = page.items.iter().map(|i| i.str("sk").unwrap()).collect();
    assert_eq!(got, ["B#2", "B#1"], "{}: begins_with, descending", f.name);
}

async fn secondary_index_queries(f: Family) {
    let r = &f.backends.records;
    // Datasets of two users, indexed by status for admins (gsi1) and by email (gsi2).
    for i in 0..12 {
        let status = if i % 3 == 0 { "ready" } else { "validating" };
        let item = Item::new(&key(&format!("USER#{}", i % 2), &format!("DATASET#{i:02}")))
            .with("n", i)
            .with_gsi1(format!("STATUS#{status}"), format!("2026-11-{i:02}"));
        r.put(item, None).await.unwrap();
    }
    for (user, email) in [("USER#9", "ada@example.com"), ("USER#8", "bob@example.com")] {
        let item = Item::new(&key(user, "PROFILE")).with_gsi2("EMAIL", email);
        r.put(item, None).await.unwrap();
    }
    r.put(Item::new(&key("USER#7", "PROFILE")), None)
        .await
        .unwrap();

    let q = Query::partition(Index::Gsi1, "STATUS#validating").limit(3);
    let (pages, ns) = read_pages(r.as_ref(), q, "n").await;
    assert!(pages.iter().all(|&n| n <= 3), "{pages:?}");
    assert_eq!(
        ns,
        vec![1, 2, 4, 5, 7, 8, 10, 11],
        "{}: gsi1 pages in index order",
        f.name
    );

    let ready = r
        .query(&Query::partition(Index::Gsi1, "STATUS#ready").backward())
        .await
        .unwrap();
    let ready: Vec<_> = ready.items.iter().map(|i| i.i64("n").unwrap()).collect();
    assert_eq!(ready, vec![9, 6, 3, 0]);

    let emails = r
        .query(&Query::partition(Index::Gsi2, "EMAIL").sk(SortKey::BeginsWith("bo".into())))
        .await
        .unwrap();
    assert_eq!(emails.items.len(), 1);
    assert_eq!(emails.items[0].str("pk"), Some("USER#8"));
    let all = r
        .query(&Query::partition(Index::Gsi2, "EMAIL"))
        .await
        .unwrap();
    assert_eq!(
        all.items.len(),
        2,
        "items without index keys are not in the index"
    );

    // Moving an item between index partitions by updating its index key.
    let k = key("USER#0", "DATASET#00");
    r.update(&k, Update::default().set("gsi1pk", "STATUS#invalid"), None)
        .await
        .unwrap();
    let moved = r
        .query(&Query::partition(Index::Gsi1, "STATUS#invalid"))
        .await
        .unwrap();
    assert_eq!(moved.items.len(), 1);
    let ready = r
        .query(&Query::partition(Index::Gsi1, "STATUS#ready"))
        .await
        .unwrap();
    assert_eq!(ready.items.len(), 3);
    // A primary-index cursor does not fit an index query.
    let p = r
        .query(&Query::partition(Index::Primary, "USER#0").limit(1))
        .await
        .unwrap();
    let wrong = Query::partition(Index::Gsi1, "STATUS#ready").after(p.next);
    assert_eq!(r.query(&wrong).await, Err(PortError::InvalidCursor));
}

async fn transactions_fail_as_a_whole(f: Family) {
    let r = &f.backends.records;
    // The unique-email guard: a user and an EMAIL item, created together or not at all.
    let register = |user: &str, email: &str| {
        vec![
            TxOp::Put {
                item: Item::new(&key(&format!("USER#{user}"), "PROFILE")).with("email", email),
                condition: Some(Condition::NotExists),
            },
            TxOp::Put {
                item: Item::new(&key(&format!("EMAIL#{email}"), "EMAIL")).with("user", user),
                condition: Some(Condition::NotExists),
            },
        ]
    };
    r.transact(register("u1", "ada@example.com")).await.unwrap();
    let dup = r.transact(register("u2", "ada@example.com")).await;
    assert_eq!(
        dup,
        Err(PortError::TransactionCanceled { failed: vec![1] }),
        "{}",
        f.name
    );
    assert!(
        r.get(&key("USER#u2", "PROFILE")).await.unwrap().is_none(),
        "nothing half-written"
    );

    // Update + delete + check, all or nothing.
    r.put(Item::new(&key("Q#1", "A")).with("status", "queued"), None)
        .await
        .unwrap();
    let ops = |expect: &str| {
        vec![
            TxOp::Update {
                key: key("Q#1", "A"),
                update: Update::default().set("status", "running"),
                condition: Some(Condition::eq("status", "queued")),
            },
            TxOp::Delete {
                key: key("EMAIL#ada@example.com", "EMAIL"),
                condition: None,
            },
            TxOp::Check {
                key: key("USER#u1", "PROFILE"),
                condition: Condition::eq("email", expect),
            },
        ]
    };
    let failed = r.transact(ops("someone@else.com")).await;
    assert_eq!(
        failed,
        Err(PortError::TransactionCanceled { failed: vec![2] })
    );
    // (status of Q#1/A, whether the email guard exists)
    let state = || async {
        let job = r.get(&key("Q#1", "A")).await.unwrap().unwrap();
        let guard = r.get(&key("EMAIL#ada@example.com", "EMAIL")).await.unwrap();
        (job.str("status").map(str::to_owned), guard.is_some())
    };
    assert_eq!(state().await, (Some("queued".into()), true), "nothing ran");
    r.transact(ops("ada@example.com")).await.unwrap();
    assert_eq!(state().await, (Some("running".into()), false), "all ran");

    // One item twice in a transaction is refused before anything runs.
    let twice = vec![
        TxOp::Delete {
            key: key("Q#1", "A"),
            condition: None,
        },
        TxOp::Check {
            key: key("Q#1", "A"),
            condition: Condition::Exists,
        },
    ];
    assert!(matches!(
        r.transact(twice).await,
        Err(PortError::Invalid(_))
    ));
}

async fn objects_put_get_head_list_delete(f: Family) {
    let o = &f.backends.objects;
    let body = bytes::Bytes::from(vec![7u8; 300_000]);
    o.put(
        "users/u1/datasets/d1/original.csv",
        body.clone(),
        "text/csv",
    )
    .await
    .unwrap();
    o.put(
        "users/u1/datasets/d1/canonical.parquet",
        "p".into(),
        "application/octet-stream",
    )
    .await
    .unwrap();
    o.put("users/u2/datasets/d9/original.csv", "x".into(), "text/csv")
        .await
        .unwrap();
    let got = o.get("users/u1/datasets/d1/original.csv").await.unwrap();
    assert_eq!(got.meta.size, 300_000);
    assert_eq!(
        got.bytes().await.unwrap(),
        body,
        "{}: streamed bytes match",
        f.name
    );
    let head = o
        .head("users/u1/datasets/d1/original.csv")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(head.content_type.as_deref(), Some("text/csv"));
    assert_eq!(o.head("users/u1/none").await.unwrap(), None);
    assert!(matches!(
        o.get("users/u1/none").await.map(|_| ()),
        Err(PortError::NotFound(_))
    ));

    let tmp = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(tmp.path(), b"from a file").unwrap();
    o.put_file("users/u1/results/r1.csv", tmp.path(), "text/csv")
        .await
        .unwrap();
    let listed: Vec<_> = o
        .list("users/u1/")
        .await
        .unwrap()
        .into_iter()
        .map(|m| m.key)
        .collect();
    assert_eq!(
        listed,
        [
            "users/u1/datasets/d1/canonical.parquet",
            "users/u1/datasets/d1/original.csv",
            "users/u1/results/r1.csv"
        ]
    );
    assert_eq!(o.delete_prefix("users/u1/").await.unwrap(), 3);
    assert!(o.list("users/u1/").await.unwrap().is_empty());
    assert_eq!(
        o.list("users/u2/").await.unwrap().len(),
        1,
        "other prefixes untouched"
    );
    o.delete("users/u2/datasets/d9/original.csv").await.unwrap();
    o.delete("users/u2/datasets/d9/original.csv").await.unwrap();
    assert!(matches!(
        o.put("../escape", "x".into(), "text/plain").await,
        Err(PortError::Invalid(_))
    ));
}

/// The emulator stores any body; S3 recomputes the signature over the length sent, which
/// then no longer matches. The URL signs the length, the type and the single-use condition
/// and expires when it says.
fn s3_would_refuse_another_length(put: &synth_core::PresignedRequest) {
    let mut longer = put.headers.clone();
    for (h, v) in &mut longer {
        if h == "content-length" {
            *v = (23 * 1024).to_string();
        }
    }
    let now = std::time::SystemTime::now();
    assert_eq!(
        sigv4::check("PUT", &put.url, &longer, now),
        Err(Refusal::BadSignature),
        "a longer body"
    );
    let signed = sigv4::check("PUT", &put.url, &put.headers, now)
        .expect("the URL carries a valid signature of the declared request");
    for h in ["content-length", "content-type", "host", "if-none-match"] {
        assert!(
            signed.signed_headers.iter().any(|s| s == h),
            "{h} is signed"
        );
    }
    assert!(put.headers.contains(&("if-none-match".into(), "*".into())));
    assert_eq!(signed.expires_in, Duration::from_secs(300));
    let expires_at = std::time::SystemTime::from(put.expires_at);
    let skew = expires_at
        .duration_since(signed.signed_at + signed.expires_in)
        .unwrap_or_default();
    assert!(
        skew <= Duration::from_secs(2),
        "expires_at is the signed expiry"
    );
}

async fn presigned_put_then_get_over_http(f: Family) {
    let o = &f.backends.objects;
    let http = reqwest::Client::new();
    let ct = "application/octet-stream";
    let body = "a,b\n1,2\n";
    let ttl = Duration::from_secs(300);
    let put = o
        .presign_put("uploads/u1/data.csv", ct, body.len() as u64, ttl)
        .await
        .unwrap();
    assert_eq!(put.method, "PUT");
    let send = |url: String, headers: Vec<(String, String)>, body: Vec<u8>| {
        let http = http.clone();
        async move {
            let mut req = http.put(&url).body(body);
            for (h, v) in &headers {
                if h != "content-length" {
                    req = req.header(h, v);
                }
            }
            req.send().await.unwrap()
        }
    };
    let res = send(put.url.clone(), put.headers.clone(), body.into()).await;
    assert!(
        res.status().is_success(),
        "{}: presigned PUT answered {}",
        f.name,
        res.status()
    );
    let meta = o
        .head("uploads/u1/data.csv")
        .await
        .unwrap()
        .expect("uploaded object exists");
    assert_eq!(meta.size, 8);

    // The URL works once: a second PUT, of any body, is refused and changes nothing.
    for again in [body.as_bytes().to_vec(), b"x,y\n9,9\n".to_vec()] {
        let res = send(put.url.clone(), put.headers.clone(), again).await;
        let expected = if f.name == "aws" { 412 } else { 409 };
        assert_eq!(res.status().as_u16(), expected, "{}: second use", f.name);
    }
    assert_eq!(
        o.get("uploads/u1/data.csv")
            .await
            .unwrap()
            .bytes()
            .await
            .unwrap(),
        body
    );

    // A body of another length than the signed one.
    let other = o
        .presign_put("uploads/u1/size.csv", ct, 150, ttl)
        .await
        .unwrap();
    let headers: std::collections::HashMap<_, _> = other.headers.iter().cloned().collect();
    assert_eq!(headers["content-length"], "150");
    assert_eq!(headers["content-type"], ct);
    match f.url_check {
        UrlCheck::Served => {
            let res = send(
                other.url.clone(),
                other.headers.clone(),
                vec![b'x'; 23 * 1024],
            )
            .await;
            assert_eq!(res.status().as_u16(), 400, "{}: a longer body", f.name);
        }
        UrlCheck::SigV4 => s3_would_refuse_another_length(&other),
    }
    assert_eq!(o.head("uploads/u1/size.csv").await.unwrap(), None);

    let get = o.presign_get("uploads/u1/data.csv", ttl).await.unwrap();
    let res = http.get(&get.url).send().await.unwrap();
    assert_eq!(res.status(), 200);
    assert_eq!(res.bytes().await.unwrap(), "a,b\n1,2\n");
}

/// Whether the family's store would honour `method url`, and if not the status and
/// message it answers: asked of the embedded URL server, judged by SigV4 for S3 (whose
/// emulator honours anything). `at` is the time S3 would see the request.
async fn honoured(
    f: &Family,
    method: &str,
    url: &str,
    at: std::time::SystemTime,
) -> Result<(), (u16, String)> {
    match f.url_check {
        UrlCheck::Served => {
            let http = reqwest::Client::new();
            let req = match method {
                "GET" => http.get(url),
                _ => http.put(url).body("overwrite"),
            };
            let res = req.send().await.unwrap();
            let status = res.status().as_u16();
            if res.status().is_success() {
                return Ok(());
            }
            let body: Value = res.json().await.unwrap_or_default();
            Err((
                status,
                body["error"]["message"].as_str().unwrap_or("").into(),
            ))
        }
        UrlCheck::SigV4 => {
            sigv4::check(method, url, &[], at)
                .map(|_| ())
                .map_err(|why| match why {
                    Refusal::Expired => (403, "Request has expired".into()),
                    other => (403, other.to_string()),
                })
        }
    }
}

async fn presigned_urls_refuse_expiry_and_tampering(f: Family) {
    let o = &f.backends.objects;
    let http = reqwest::Client::new();
    o.put("results/r1.csv", "secret".into(), "text/csv")
        .await
        .unwrap();
    o.put("results/r2.csv", "other".into(), "text/csv")
        .await
        .unwrap();
    // Before presigning: no later than the signature's own time, so within its second.
    let before = std::time::SystemTime::now();
    let get = o
        .presign_get("results/r1.csv", Duration::from_secs(1))
        .await
        .unwrap();
    assert_eq!(honoured(&f, "GET", &get.url, before).await, Ok(()));
    assert_eq!(http.get(&get.url).send().await.unwrap().status(), 200);

    let tampered = get.url.replace("results/r1.csv", "results/r2.csv");
    let refused = honoured(&f, "GET", &tampered, before).await;
    assert_eq!(
        refused.map_err(|e| e.0),
        Err(403),
        "{}: a URL for one object does not open another",
        f.name
    );
    let as_put = honoured(&f, "PUT", &get.url, before).await;
    assert!(
        as_put.is_err_and(|(status, _)| (400..500).contains(&status)),
        "{}: a GET URL does not allow a PUT",
        f.name
    );
    assert_eq!(
        o.get("results/r1.csv")
            .await
            .unwrap()
            .bytes()
            .await
            .unwrap(),
        "secret"
    );

    tokio::time::sleep(Duration::from_millis(2100)).await;
    let late = honoured(&f, "GET", &get.url, std::time::SystemTime::now()).await;
    let (status, message) = late.expect_err("an expired URL is refused");
    assert_eq!(status, 403, "{}", f.name);
    assert!(message.contains("expired"), "{}: {message}", f.name);
}

async fn queue_redelivers_after_visibility_timeout(f: Family) {
    let q = &f.backends.queue;
    let id = q.send(r#"{"n":1}"#, "req-1").await.unwrap();
    let wait = Duration::from_secs(2);
    let first = q.receive(10, Duration::from_secs(1), wait).await.unwrap();
    assert_eq!(first.len(), 1, "{}", f.name);
    assert_eq!(
        (
            first[0].id.as_str(),
            first[0].body.as_str(),
            first[0].receive_count
        ),
        (id.as_str(), r#"{"n":1}"#, 1)
    );
    // Hidden while in flight.
    assert!(
        q.receive(10, Duration::from_secs(1), Duration::ZERO)
            .await
            .unwrap()
            .is_empty()
    );
    // Not acknowledged: it comes back.
    let again = eventually(Duration::from_secs(10), || async {
        let got = q
            .receive(10, Duration::from_secs(30), Duration::from_secs(1))
            .await
            .unwrap();
        got.into_iter().next()
    })
    .await
    .expect("the message is delivered again");
    assert_eq!(again.id, id);
    assert_eq!(again.receive_count, 2);
    q.ack(&again.receipt).await.unwrap();
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert!(
        q.receive(10, Duration::from_secs(1), Duration::from_secs(1))
            .await
            .unwrap()
            .is_empty(),
        "an acknowledged message is gone"
    );

    // Extending the visibility keeps a message hidden past its first timeout.
    q.send("long work", "req-2").await.unwrap();
    let m = next_message(q.as_ref(), Duration::from_secs(1), wait).await;
    q.extend(&m.receipt, Duration::from_secs(30)).await.unwrap();
    tokio::time::sleep(Duration::from_millis(2000)).await;
    assert!(
        q.receive(10, Duration::from_secs(1), Duration::ZERO)
            .await
            .unwrap()
            .is_empty()
    );
    q.ack(&m.receipt).await.unwrap();
}

async fn queue_deduplicates_sends(f: Family) {
    let q = &f.backends.queue;
    let a = q.send("train dataset 1", "gen-1").await.unwrap();
    let b = q.send("train dataset 1", "gen-1").await.unwrap();
    q.send("train dataset 2", "gen-2").await.unwrap();
    let _ = (a, b);
    let mut bodies = Vec::new();
    for _ in 0..5 {
        for m in q
            .receive(10, Duration::from_secs(30), Duration::from_secs(1))
            .await
            .unwrap()
        {
            bodies.push(m.body.clone());
            q.ack(&m.receipt).await.unwrap();
        }
        if bodies.len() >= 2 {
            break;
        }
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    for m in q
        .receive(10, Duration::from_secs(30), Duration::from_secs(1))
        .await
        .unwrap()
    {
        bodies.push(m.body);
    }
    bodies.sort();
    assert_eq!(
        bodies,
        ["train dataset 1", "train dataset 2"],
        "{}: one delivery per dedup key",
        f.name
    );
}

async fn topic_fans_out_to_every_subscriber(mut f: Family) {
    let id = f
        .backends
        .topic
        .publish("generation completed", r#"{"request":"r1"}"#)
        .await
        .unwrap();
    assert!(!id.is_empty());
    for (i, s) in f.subscribers.iter_mut().enumerate() {
        let got = s.next(Duration::from_secs(10)).await;
        assert_eq!(
            got.as_deref(),
            Some(r#"{"request":"r1"}"#),
            "{}: subscriber {i}",
            f.name
        );
    }
}

async fn jobs_run_to_completion(f: Family) {
    let jobs = &f.backends.jobs;
    let spec = JobSpec {
        name: "train-r1".into(),
        args: vec!["train".into()],
        env: vec![("A".into(), "1".into())],
    };
    let id = jobs.submit(spec).await.unwrap();
    let done = eventually(Duration::from_secs(60), || async {
        let s = jobs.status(&id).await.unwrap();
        s.state.is_final().then_some(s)
    })
    .await
    .expect("the job finishes");
    assert_eq!(
        done.state,
        JobState::Succeeded,
        "{}: {:?}",
        f.name,
        done.reason
    );
    assert!(matches!(
        jobs.status("no-such-job").await,
        Err(PortError::NotFound(_))
    ));
    let bad = JobSpec {
        name: "bad name!".into(),
        args: vec![],
        env: vec![],
    };
    assert!(matches!(jobs.submit(bad).await, Err(PortError::Invalid(_))));
}

async fn failed_jobs_say_why(f: Family) {
    let jobs = &f.backends.jobs;
    let id = jobs
        .submit(JobSpec {
            name: "fails".into(),
            args: vec!["fail".into()],
            env: vec![],
        })
        .await
        .unwrap();
    let failed = eventually(Duration::from_secs(10), || async {
        let s = jobs.status(&id).await.unwrap();
        s.state.is_final().then_some(s)
    })
    .await
    .unwrap();
    assert_eq!(failed.state, JobState::Failed);
    assert_eq!(failed.reason.as_deref(), Some("asked to fail"));
}

async fn dispatch_starts_one_job_per_request(f: Family) {
    let b = &f.backends;
    let req = JobRequest {
        request_id: "gen-42".into(),
        job: JobSpec {
            name: "gen-42".into(),
            args: vec!["train".into()],
            env: vec![],
        },
    };
    let body = serde_json::to_string(&req).unwrap();
    b.queue.send(&body, &req.request_id).await.unwrap();
    let wait = Duration::from_secs(5);
    let m = next_message(b.queue.as_ref(), Duration::from_secs(30), wait).await;
    let first = dispatch(b.records.as_ref(), b.jobs.as_ref(), &m.body)
        .await
        .unwrap();
    let Dispatched::Submitted { job_id } = first else {
        panic!("first delivery submits")
    };
    // The same message again (a redelivery) starts nothing new.
    let second = dispatch(b.records.as_ref(), b.jobs.as_ref(), &m.body)
        .await
        .unwrap();
    assert_eq!(
        second,
        Dispatched::Duplicate {
            job_id: job_id.clone()
        },
        "{}",
        f.name
    );
    b.queue.ack(&m.receipt).await.unwrap();
    let done = eventually(Duration::from_secs(60), || async {
        let s = b.jobs.status(&job_id).await.unwrap();
        s.state.is_final().then_some(s.state)
    })
    .await;
    assert_eq!(done, Some(JobState::Succeeded));
    assert!(matches!(
        dispatch(b.records.as_ref(), b.jobs.as_ref(), "not json").await,
        Err(PortError::Invalid(_))
    ));
}

async fn health_answers(f: Family) {
    let b = &f.backends;
    b.records.health().await.unwrap();
    b.objects.health().await.unwrap();
    b.queue.health().await.unwrap();
    b.topic.health().await.unwrap();
    b.jobs.health().await.unwrap();
}
