//! Notifications against both families, through the deployments' own paths: what the
//! platform publishes on its topic reaches the notifications' subscriber (the `notify`
//! Lambda's SNS event on AWS, `synth serve`'s notify loop on one machine), which writes one
//! notification per message and recipient and pushes to the recipient's devices (SNS mobile
//! push on the emulator's platform endpoints; a log line where none is configured).

use std::time::{Duration, Instant};

use serde_json::{Value, json};
use synth_tests::http::{TestServer, quick_settings, serve};
use synth_tests::pluck;

synth_tests::both_families!(
    a_finished_generation_notifies_its_owner_once,
    the_long_poll_answers_when_one_arrives_and_after_its_wait_when_none,
    reading_deleting_and_other_users,
    pushes_follow_devices_and_preferences,
    administrators_hear_of_slow_calls_and_trainers_short_of_memory,
    erasure_takes_notifications_and_devices_and_export_has_them,
);

/// Publish a message on the platform's topic, as a service would.
async fn publish(s: &TestServer, message: Value) -> String {
    let kind = message["type"].as_str().unwrap().to_owned();
    let topic = s.family.backends.topic.clone();
    topic.publish(&kind, &message.to_string()).await.unwrap()
}

/// A request's completion message, as the trainer publishes it (dated now).
fn completed(user: &str, request: &str) -> Value {
    json!({"type": "generation.completed", "user_id": user, "request_id": request,
           "rows": 100, "quality_score": 0.9, "at": chrono::Utc::now().to_rfc3339()})
}

async fn list(s: &TestServer, token: &str, query: &str) -> Value {
    let r = s.get(&format!("/notifications{query}"), Some(token)).await;
    r.expect(200).data().clone()
}

/// The caller's notifications once they number `n`.
async fn once_there_are(s: &TestServer, token: &str, n: usize) -> Value {
    let found = synth_tests::eventually(Duration::from_secs(30), || async {
        let page = list(s, token, "").await;
        (page["items"].as_array().unwrap().len() >= n).then_some(page)
    })
    .await;
    found.unwrap_or_else(|| panic!("{n} notifications did not arrive"))
}

fn kinds(page: &Value) -> Vec<&str> {
    pluck(&page["items"], "/kind")
}

/// A generation that completes tells its owner once, with what it is about and where to
/// see it, even when its message is delivered again.
async fn a_finished_generation_notifies_its_owner_once(f: synth_tests::Family) {
    let s = serve(f, quick_settings()).await;
    let (_, t, dataset) = s.penguins("ada@example.com").await;
    let id = s.quick_generation(&t, &dataset, 100).await;
    s.run_queued_jobs().await;

    let page = list(&s, &t, "?wait=20").await;
    assert_eq!(kinds(&page), ["generation.completed"], "{page}");
    let n = &page["items"][0];
    assert_eq!(n["title"], "Synthetic data ready");
    assert_eq!(n["object"], json!({"kind": "generation_request", "id": id}));
    assert_eq!(n["link"], format!("/generation/status/{id}"));
    assert!(n["body"].as_str().unwrap().contains("100 rows"), "{n}");
    assert!(n.get("read_at").is_none());
    assert_eq!(page["unread_count"], 1);

    // SNS delivers at least once: every message again writes nothing new.
    assert_eq!(s.redeliver_notices().await, 0);
    let again = list(&s, &t, "").await;
    assert_eq!(again["items"], page["items"]);
    assert_eq!(again["unread_count"], 1);
}

/// `wait` answers as soon as a notification is made, and after `wait` seconds when none is.
async fn the_long_poll_answers_when_one_arrives_and_after_its_wait_when_none(
    f: synth_tests::Family,
) {
    let s = serve(f, quick_settings()).await;
    let (user, t) = s.register("ada@example.com").await;

    let started = Instant::now();
    let empty = list(&s, &t, "?wait=2").await;
    let waited = started.elapsed();
    assert!(empty["items"].as_array().unwrap().is_empty(), "{empty}");
    assert!(
        (Duration::from_secs(2)..Duration::from_secs(5)).contains(&waited),
        "{waited:?}"
    );
    assert_eq!(empty["latest_at"], Value::Null);

    let poll = {
        let (url, http, t) = (s.url.clone(), s.http.clone(), t.clone());
        tokio::spawn(async move {
            let started = Instant::now();
            let req = http
                .get(format!("{url}/notifications?wait=20"))
                .bearer_auth(t);
            let r = synth_tests::http::Reply::of(req).await;
            (started.elapsed(), r)
        })
    };
    tokio::time::sleep(Duration::from_millis(1500)).await;
    publish(&s, completed(&user, "r1")).await;
    let (took, r) = poll.await.unwrap();
    let page = r.expect(200).data().clone();
    assert_eq!(kinds(&page), ["generation.completed"], "{page}");
    assert!(
        took >= Duration::from_millis(1500) && took < Duration::from_secs(15),
        "answered {took:?} after the call, the notification came 1.5 s in"
    );

    // `since` the newest one: the next poll waits for a newer one, not the one it has seen.
    let since = page["latest_at"].as_str().unwrap().to_owned();
    let q = format!("?wait=1&since={}", since.replace('+', "%2B"));
    let started = Instant::now();
    let same = list(&s, &t, &q).await;
    assert!(started.elapsed() >= Duration::from_secs(1));
    assert_eq!(same["items"].as_array().unwrap().len(), 1);

    let too_long = s.get("/notifications?wait=21", Some(&t)).await;
    assert_eq!(
        (too_long.status, too_long.code()),
        (400, "VALIDATION_ERROR")
    );
}

/// Unread first, newest first; marking read by id or all at once; deleting; another
/// user's notification is never found, and a request naming one changes nothing.
async fn reading_deleting_and_other_users(f: synth_tests::Family) {
    let s = serve(f, quick_settings()).await;
    let (ada, a) = s.register("ada@example.com").await;
    let (bob, b) = s.register("bob@example.com").await;
    for r in ["r1", "r2", "r3"] {
        publish(&s, completed(&ada, r)).await;
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    publish(
        &s,
        json!({"type": "generation.failed", "user_id": bob, "request_id": "r9",
                       "error": "out of memory"}),
    )
    .await;
    let page = once_there_are(&s, &a, 3).await;
    let ids = pluck(&page["items"], "/id");
    let objects = pluck(&page["items"], "/object/id");
    assert_eq!(objects, ["r3", "r2", "r1"], "newest first");
    let bobs = once_there_are(&s, &b, 1).await;
    let bobs_id = bobs["items"][0]["id"].as_str().unwrap().to_owned();
    assert_eq!(
        bobs["items"][0]["body"],
        "Your synthetic data failed: out of memory"
    );

    // Another user's id, alone or among one's own: 404, and nothing changes.
    let mixed = json!({"ids": [ids[0], bobs_id]});
    s.post("/notifications/read", Some(&a), mixed)
        .await
        .expect_error(404, "NOT_FOUND");
    let r = s
        .post_empty(&format!("/notifications/{bobs_id}/read"), Some(&a))
        .await;
    assert_eq!(r.status, 404);
    let r = s
        .delete(&format!("/notifications/{bobs_id}"), Some(&a))
        .await;
    assert_eq!(r.status, 404);
    let r = s.delete("/notifications/not-an-id", Some(&a)).await;
    assert_eq!(r.status, 404);
    assert_eq!(list(&s, &b, "").await["unread_count"], 1);
    assert_eq!(list(&s, &a, "").await["unread_count"], 3);
    s.post("/notifications/read", Some(&a), json!({"ids": []}))
        .await
        .expect_error(400, "VALIDATION_ERROR");
    // Neither shape (nothing, both, or a stray field): the answer says which two there
    // are, and nothing is marked.
    for body in [
        json!({}),
        json!({"ids": [ids[0]], "all": true}),
        json!({"ids": [ids[0]], "al": true}),
        json!({"all": true, "force": true}),
    ] {
        let r = s.post("/notifications/read", Some(&a), body.clone()).await;
        let r = r.expect_error(400, "VALIDATION_ERROR");
        let reason = r.body["error"]["details"]["reason"].as_str().unwrap();
        assert!(
            reason.contains("\"ids\"") && reason.contains("\"all\""),
            "{body}: {reason}"
        );
    }
    assert_eq!(list(&s, &a, "").await["unread_count"], 3);

    // The oldest read: it goes after the unread ones.
    let r = s
        .post_empty(&format!("/notifications/{}/read", ids[2]), Some(&a))
        .await
        .expect(200);
    assert_eq!(r.data(), &json!({"marked": 1, "unread_count": 2}));
    let r = s
        .post_empty(&format!("/notifications/{}/read", ids[2]), Some(&a))
        .await
        .expect(200);
    assert_eq!(
        r.data(),
        &json!({"marked": 0, "unread_count": 2}),
        "read once"
    );
    let page = list(&s, &a, "").await;
    assert_eq!(pluck(&page["items"], "/object/id"), ["r3", "r2", "r1"]);
    assert!(page["items"][2]["read_at"].is_string());
    let first = list(&s, &a, "?limit=1").await;
    assert_eq!(first["items"].as_array().unwrap().len(), 1);
    let cursor = first["next_cursor"].as_str().unwrap();
    let rest = list(&s, &a, &format!("?limit=5&cursor={cursor}")).await;
    assert_eq!(rest["items"].as_array().unwrap().len(), 2);

    let r = s
        .post("/notifications/read", Some(&a), json!({"all": true}))
        .await
        .expect(200);
    assert_eq!(r.data(), &json!({"marked": 2, "unread_count": 0}));
    s.delete(&format!("/notifications/{}", ids[1]), Some(&a))
        .await
        .expect(200);
    let page = list(&s, &a, "").await;
    assert_eq!(page["items"].as_array().unwrap().len(), 2);
    assert_eq!(page["unread_count"], 0);
    assert_eq!(
        list(&s, &b, "").await["unread_count"],
        1,
        "bob's is untouched"
    );
}

/// What one message's delivery pushes, delivered straight to the subscriber's handler.
async fn deliver(s: &TestServer, id: &str, message: Value) -> (usize, usize) {
    let done = s
        .state
        .notifications
        .deliver(id, &message.to_string())
        .await
        .unwrap();
    (done.written, done.pushed)
}

fn device_endpoints(items: &[synth_core::Item]) -> Vec<Option<String>> {
    items
        .iter()
        .map(|i| i.str("endpoint").map(str::to_owned))
        .collect()
}

async fn devices(s: &TestServer, user: &str) -> Vec<synth_core::Item> {
    let q = synth_core::Query::partition(synth_core::Index::Primary, format!("USER#{user}"))
        .sk(synth_core::SortKey::BeginsWith("PUSH#".into()));
    s.family.backends.records.query(&q).await.unwrap().items
}

/// Each registered device gets a platform endpoint (AWS: under the platform's
/// application) and each notification a push there, unless the user turned that kind off;
/// a device whose endpoint the platform disabled is forgotten. Without a platform
/// application (`synth serve`), devices are kept and nothing is sent.
async fn pushes_follow_devices_and_preferences(f: synth_tests::Family) {
    let aws = f.name == "aws";
    let s = serve(f, quick_settings()).await;
    let (ada, t) = s.register("ada@example.com").await;
    for (token, platform) in [("fcm-token-1", "android"), ("apns-token-1", "ios")] {
        let body = json!({"token": token, "platform": platform});
        s.post("/users/push-token", Some(&t), body)
            .await
            .expect(201);
    }
    let registered = devices(&s, &ada).await;
    assert_eq!(registered.len(), 2);
    let endpoints = device_endpoints(&registered);
    if aws {
        assert!(
            endpoints
                .iter()
                .all(|e| e.as_deref().is_some_and(|a| a.contains(":endpoint/"))),
            "{endpoints:?}"
        );
    } else {
        assert_eq!(
            endpoints,
            [None, None],
            "no platform application: no endpoints"
        );
    }
    let pushes = if aws { 2 } else { 0 };
    assert_eq!(deliver(&s, "m-1", completed(&ada, "r1")).await, (1, pushes));
    assert_eq!(
        deliver(&s, "m-1", completed(&ada, "r1")).await,
        (0, 0),
        "once"
    );

    let prefs = json!({"notification_preferences": {"email": false, "push": true, "in_app": true,
                        "push_kinds": {"generation.failed": false}}});
    let r = s.put("/users/profile", Some(&t), prefs).await.expect(200);
    assert_eq!(
        r.data()["notification_preferences"]["push_kinds"]["generation.failed"],
        false
    );
    // One preference at a time: the others stay as they are.
    let push_off = json!({"notification_preferences": {"push": false}});
    let r = s
        .put("/users/profile", Some(&t), push_off)
        .await
        .expect(200);
    let p = &r.data()["notification_preferences"];
    assert_eq!(
        (&p["push"], &p["email"]),
        (&json!(false), &json!(false)),
        "{p}"
    );
    assert_eq!(p["push_kinds"]["generation.failed"], false, "{p}");
    let push_on = json!({"notification_preferences": {"push": true}});
    s.put("/users/profile", Some(&t), push_on).await.expect(200);
    let failed = json!({"type": "generation.failed", "user_id": ada, "request_id": "r2",
                        "error": "x"});
    assert_eq!(
        deliver(&s, "m-2", failed).await,
        (1, 0),
        "kept in-app, not pushed"
    );
    assert_eq!(deliver(&s, "m-3", completed(&ada, "r3")).await, (1, pushes));

    if aws {
        // The platform disabled the Android endpoint (the app was uninstalled).
        let android = registered
            .iter()
            .find(|d| d.str("platform") == Some("android"))
            .and_then(|d| d.str("endpoint"))
            .unwrap();
        let sns = aws_sdk_sns::Client::new(&synth_tests::aws::emulator().await);
        sns.set_endpoint_attributes()
            .endpoint_arn(android)
            .attributes("Enabled", "false")
            .send()
            .await
            .unwrap();
        assert_eq!(deliver(&s, "m-4", completed(&ada, "r4")).await, (1, 1));
        let left = devices(&s, &ada).await;
        let platforms: Vec<_> = left.iter().map(|d| d.str("platform").unwrap()).collect();
        assert_eq!(platforms, ["ios"], "the disabled device is forgotten");
    }
    let r = s
        .post(
            "/users/push-token",
            Some(&t),
            json!({"token": "x", "platform": "fax"}),
        )
        .await;
    assert_eq!(r.status, 400);
}

/// Administrators are told of an API call over `SLOW_REQUEST_SECONDS` and of a trainer
/// run above `TRAINER_MEMORY_ALERT_PERCENT` of its memory; users are not.
async fn administrators_hear_of_slow_calls_and_trainers_short_of_memory(f: synth_tests::Family) {
    let mut settings = quick_settings();
    settings.slow_request_seconds = 0.000_001;
    settings.trainer_memory_alert_percent = 0.000_001;
    let s = serve(f, settings).await;
    let (_, root) = s.admin("root@example.com").await;
    let (_, t, dataset) = s.penguins("ada@example.com").await;
    let id = s.quick_generation(&t, &dataset, 100).await;
    s.run_queued_jobs().await;

    let found = synth_tests::eventually(Duration::from_secs(30), || async {
        let page = list(&s, &root, "?limit=100").await;
        let k = kinds(&page);
        (k.contains(&"admin.trainer_memory") && k.contains(&"admin.slow_request")).then_some(page)
    })
    .await
    .expect("both alerts reach the administrator");
    let items = found["items"].as_array().unwrap();
    let memory = items
        .iter()
        .find(|n| n["kind"] == "admin.trainer_memory")
        .unwrap();
    assert_eq!(
        memory["object"],
        json!({"kind": "generation_request", "id": id})
    );
    assert_eq!(memory["title"], "Trainer close to its memory limit");
    let slow = items
        .iter()
        .find(|n| n["kind"] == "admin.slow_request")
        .unwrap();
    assert_eq!(slow["object"]["kind"], "route");
    assert_eq!(slow["link"], "/stats/performance");
    let user_kinds = kinds(&list(&s, &t, "?limit=100").await).join(",");
    assert!(!user_kinds.contains("admin."), "{user_kinds}");
}

/// Erasure deletes the user's notifications and device endpoints; an export lists them.
async fn erasure_takes_notifications_and_devices_and_export_has_them(f: synth_tests::Family) {
    let aws = f.name == "aws";
    let s = serve(f, quick_settings()).await;
    let (ada, t) = s.register("ada@example.com").await;
    let body = json!({"token": "apns-token-9", "platform": "ios"});
    s.post("/users/push-token", Some(&t), body)
        .await
        .expect(201);
    let endpoint = device_endpoints(&devices(&s, &ada).await)[0].clone();
    assert_eq!(endpoint.is_some(), aws);
    publish(&s, completed(&ada, "r1")).await;
    once_there_are(&s, &t, 1).await;

    let export = s.get("/users/export", Some(&t)).await.expect(200);
    let records = export.data()["records"].as_array().unwrap().clone();
    let has = |sk: &str| {
        records
            .iter()
            .any(|r| r["sk"].as_str().is_some_and(|k| k.starts_with(sk)))
    };
    assert!(has("NOTIF#") && has("PUSH#"), "{records:?}");

    s.delete("/users/account", Some(&t)).await.expect(200);
    let q = synth_core::Query::partition(synth_core::Index::Primary, format!("USER#{ada}"));
    let left = s.family.backends.records.query(&q).await.unwrap().items;
    assert!(left.is_empty(), "{left:?}");
    if let Some(arn) = endpoint {
        let sns = aws_sdk_sns::Client::new(&synth_tests::aws::emulator().await);
        let gone = sns.get_endpoint_attributes().endpoint_arn(arn).send().await;
        assert!(gone.is_err(), "the endpoint is deleted: {gone:?}");
    }
}
