//! Accounts over HTTP against both families: registration, login, tokens, profile,
//! erasure, export, admin and audit log — happy paths, every 4xx, and the races.

use std::collections::HashMap;

use serde_json::{Value, json};
use synth_core::accounts::Role;
use synth_core::{Index, Query, Settings};
use synth_tests::http::{Reply, TestServer, serve};
use synth_tests::{object_keys, pluck, put_csv};

synth_tests::both_families!(
    register_login_refresh_logout,
    bad_tokens_are_refused,
    concurrent_registrations_make_one_account,
    refresh_token_reuse_ends_the_session,
    failed_logins_slow_the_guessing_client_not_the_owner,
    profile_and_push_tokens,
    admin_manages_users_with_an_audit_trail,
    users_are_refused_every_admin_route,
    erasure_removes_everything_and_export_has_it_all;
    ignored on aws:
    concurrent_refresh_is_one_rotation = "moto does not make conditional writes atomic across \
        its request threads, so two racing rotations can both succeed there; DynamoDB's are",
);

const PASSWORD: &str = "a perfectly fine passphrase";

fn settings() -> Settings {
    let mut s = Settings::for_tests();
    s.login_max_attempts = 3;
    // The tests play several clients by their forwarded address.
    s.trust_forwarded_for = true;
    s
}

async fn server(f: synth_tests::Family) -> TestServer {
    serve(f, settings()).await
}

async fn register(s: &TestServer, email: &str) -> Reply {
    s.post(
        "/auth/register",
        None,
        json!({"email": email, "password": PASSWORD, "full_name": "Ada"}),
    )
    .await
}

/// Register and log in; returns (user id, access token, refresh token).
async fn user(s: &TestServer, email: &str) -> (String, String, String) {
    let r = register(s, email).await;
    assert_eq!(r.status, 201, "{:?}", r.body);
    let id = r.id();
    let (a, rt) = login(s, email).await;
    (id, a, rt)
}

async fn login(s: &TestServer, email: &str) -> (String, String) {
    s.login(email, PASSWORD).await
}

/// Present a refresh token (a string, or the JSON value a reply carried).
async fn refresh(s: &TestServer, token: impl serde::Serialize) -> Reply {
    s.post("/auth/refresh", None, json!({"refresh_token": token}))
        .await
}

fn assert_no_secret(v: &Value) {
    let text = v.to_string();
    assert!(
        !text.contains("password_hash") && !text.contains("$argon2"),
        "a hash leaked: {text}"
    );
}

async fn register_login_refresh_logout(f: synth_tests::Family) {
    let s = server(f).await;
    let r = register(&s, "  Ada@Example.COM ").await;
    assert_eq!(r.status, 201);
    assert_eq!(r.data()["email"], "ada@example.com", "email normalised");
    assert_eq!(r.data()["role"], "user");
    assert_no_secret(&r.body);
    assert_eq!(register(&s, "ada@example.com").await.code(), "CONFLICT");

    // Each refused registration names its field: a weak or short password, a bad email,
    // and a missing password.
    for (body, field) in [
        (
            json!({"email": "b@example.com", "password": "password123"}),
            "password",
        ),
        (
            json!({"email": "b@example.com", "password": "short"}),
            "password",
        ),
        (
            json!({"email": "b@example.com", "password": "            "}),
            "password",
        ),
        (
            json!({"email": "brenda@example.com", "password": "brenda@example.com"}),
            "password",
        ),
        (
            json!({"email": "not-an-email", "password": PASSWORD}),
            "email",
        ),
        (json!({"email": "c@example.com"}), "password"),
    ] {
        let r = s.post("/auth/register", None, body.clone()).await;
        assert_eq!((r.status, r.code()), (400, "VALIDATION_ERROR"), "{body}");
        assert_eq!(r.body["error"]["details"]["field"], field, "{body}");
    }

    let wrong = s.try_login("ada@example.com", "wrong password!").await;
    let unknown = s.try_login("nobody@example.com", PASSWORD).await;
    assert_eq!((wrong.status, unknown.status), (401, 401));
    assert_eq!(
        wrong.body["error"]["message"], unknown.body["error"]["message"],
        "no account enumeration"
    );

    let r = s.try_login("ADA@example.com", PASSWORD).await;
    let pair = r.data().clone();
    assert_eq!(pair["token_type"], "bearer");
    assert_eq!(pair["expires_in"], 1800);
    let access = pair["access_token"].as_str().unwrap();
    let me = s.get("/auth/me", Some(access)).await;
    assert_eq!(me.data()["email"], "ada@example.com");
    assert_no_secret(&me.body);
    let anon = s.get("/auth/me", None).await;
    assert_eq!((anon.status, anon.code()), (401, "UNAUTHORIZED"));
    assert_eq!(anon.headers["www-authenticate"], "Bearer");

    let refreshed = refresh(&s, &pair["refresh_token"]).await;
    let next = refreshed.data().clone();
    assert_ne!(
        next["refresh_token"], pair["refresh_token"],
        "refresh tokens rotate"
    );
    assert_eq!(
        s.get("/auth/me", Some(next["access_token"].as_str().unwrap()))
            .await
            .status,
        200
    );

    let out = s
        .post(
            "/auth/logout",
            Some(next["access_token"].as_str().unwrap()),
            json!({}),
        )
        .await;
    assert_eq!(out.status, 200);
    assert_eq!(
        s.get("/auth/me", Some(next["access_token"].as_str().unwrap()))
            .await
            .status,
        401,
        "logged-out access token"
    );
    assert_eq!(
        s.get("/auth/me", Some(access)).await.status,
        401,
        "every token of the session ends"
    );
    let after = refresh(&s, &next["refresh_token"]).await;
    assert_eq!(after.status, 401, "logged-out refresh token");
    let garbage = refresh(&s, "nonsense").await;
    assert_eq!(garbage.status, 401);
}

async fn bad_tokens_are_refused(f: synth_tests::Family) {
    let s = server(f).await;
    let (id, access, _) = user(&s, "tok@example.com").await;
    let secret = settings().secret_key;
    let claims: Value = {
        let payload = access.split('.').nth(1).unwrap();
        use base64::Engine as _;
        serde_json::from_slice(
            &base64::engine::general_purpose::URL_SAFE_NO_PAD
                .decode(payload)
                .unwrap(),
        )
        .unwrap()
    };
    let sign = |alg: jsonwebtoken::Algorithm, key: &str, claims: &Value| {
        jsonwebtoken::encode(
            &jsonwebtoken::Header::new(alg),
            claims,
            &jsonwebtoken::EncodingKey::from_secret(key.as_bytes()),
        )
        .unwrap()
    };
    let mut expired = claims.clone();
    expired["exp"] = json!(chrono::Utc::now().timestamp() - 10);
    let mut wrong_aud = claims.clone();
    wrong_aud["aud"] = json!("someone-else");
    let mut wrong_iss = claims.clone();
    wrong_iss["iss"] = json!("evil");
    let mut ghost = claims.clone();
    ghost["sub"] = json!("00000000-0000-0000-0000-000000000000");
    let none = {
        use base64::Engine as _;
        let e = |v: &Value| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(v.to_string());
        format!(
            "{}.{}.",
            e(&json!({"alg": "none", "typ": "JWT"})),
            e(&claims)
        )
    };
    let cases = [
        ("alg none", none),
        (
            "HS512",
            sign(jsonwebtoken::Algorithm::HS512, &secret, &claims),
        ),
        (
            "bad signature",
            sign(
                jsonwebtoken::Algorithm::HS256,
                "another-secret-another-secret-0000",
                &claims,
            ),
        ),
        (
            "expired",
            sign(jsonwebtoken::Algorithm::HS256, &secret, &expired),
        ),
        (
            "audience",
            sign(jsonwebtoken::Algorithm::HS256, &secret, &wrong_aud),
        ),
        (
            "issuer",
            sign(jsonwebtoken::Algorithm::HS256, &secret, &wrong_iss),
        ),
        (
            "unknown user",
            sign(jsonwebtoken::Algorithm::HS256, &secret, &ghost),
        ),
        ("not a jwt", "abc.def".into()),
    ];
    for (what, token) in cases {
        let r = s.get("/auth/me", Some(&token)).await;
        assert_eq!((r.status, r.code()), (401, "UNAUTHORIZED"), "{what}");
    }
    // The genuine token still works, and re-signing its claims with the secret too.
    assert_eq!(s.get("/auth/me", Some(&access)).await.status, 200);
    assert_eq!(
        s.get(
            "/auth/me",
            Some(&sign(jsonwebtoken::Algorithm::HS256, &secret, &claims))
        )
        .await
        .data()["id"],
        id
    );
}

async fn concurrent_registrations_make_one_account(f: synth_tests::Family) {
    let s = server(f).await;
    let attempts = (0..8).map(|i| {
        let email = if i % 2 == 0 {
            "race@example.com"
        } else {
            " RACE@example.com"
        };
        s.post(
            "/auth/register",
            None,
            json!({"email": email, "password": PASSWORD}),
        )
    });
    // moto serves requests on threads without making DynamoDB transactions atomic across
    // them, so against the emulator the attempts go one at a time (the guard's conflict is
    // still what refuses them); the embedded family races them for real.
    let replies = if s.family.name == "aws" {
        let mut out = Vec::new();
        for a in attempts {
            out.push(a.await);
        }
        out
    } else {
        futures::future::join_all(attempts).await
    };
    let created = replies.iter().filter(|r| r.status == 201).count();
    let conflicts = replies.iter().filter(|r| r.status == 409).count();
    assert_eq!(
        (created, conflicts),
        (1, 7),
        "{:?}",
        replies.iter().map(|r| r.status).collect::<Vec<_>>()
    );
    let q = Query::partition(Index::Gsi1, "USERS");
    let users = s.family.backends.records.query(&q).await.unwrap();
    assert_eq!(users.items.len(), 1, "exactly one account stored");
}

async fn refresh_token_reuse_ends_the_session(f: synth_tests::Family) {
    let s = server(f).await;
    let (_, _, first) = user(&s, "reuse@example.com").await;
    // Sequential reuse.
    let second = refresh(&s, &first).await.data()["refresh_token"].clone();
    let replay = refresh(&s, &first).await;
    assert_eq!(replay.status, 401, "a used refresh token is refused");
    let victim = refresh(&s, &second).await;
    assert_eq!(victim.status, 401, "reuse revokes the whole family");
}

/// Two clients present the same refresh token at once: at most one rotation, and the race
/// counts as reuse.
async fn concurrent_refresh_is_one_rotation(f: synth_tests::Family) {
    let s = server(f).await;
    let (_, _, rt) = user(&s, "race@example.com").await;
    let both = futures::future::join(refresh(&s, &rt), refresh(&s, &rt)).await;
    let ok: Vec<_> = [&both.0, &both.1]
        .into_iter()
        .filter(|r| r.status == 200)
        .collect();
    assert!(ok.len() <= 1, "at most one rotation of one token");
    for r in ok {
        let again = refresh(&s, &r.data()["refresh_token"]).await;
        assert_eq!(
            again.status, 401,
            "the race counts as reuse and ends the session"
        );
    }
    // A fresh login still works.
    login(&s, "race@example.com").await;
}

/// A login attempt from the client at `ip`.
async fn login_from(s: &TestServer, ip: &str, email: &str, password: &str) -> Reply {
    post_from(
        s,
        ip,
        "/auth/login",
        json!({"email": email, "password": password}),
    )
    .await
}

async fn post_from(s: &TestServer, ip: &str, path: &str, body: Value) -> Reply {
    let req = s
        .http
        .post(format!("{}{path}", s.url))
        .header("x-forwarded-for", format!("{ip}, 10.255.0.1"))
        .json(&body);
    Reply::of(req).await
}

fn retry_after(r: &Reply) -> u64 {
    r.headers["retry-after"].to_str().unwrap().parse().unwrap()
}

/// Guessing a password slows down the guessing client (for that email, then for every
/// email), with a doubling wait, and never locks the owner out; unknown emails are treated
/// alike, so throttling tells nothing about which emails have accounts; many failures on
/// one account from many clients raise an alert on the topic.
async fn failed_logins_slow_the_guessing_client_not_the_owner(mut f: synth_tests::Family) {
    let mut subscriber = f.subscribers.remove(0);
    let s = server(f).await;
    let (owner_id, _, _) = user(&s, "lock@example.com").await;
    let (attacker, owner) = ("203.0.113.66", "198.51.100.7");
    for _ in 0..3 {
        let r = login_from(&s, attacker, "lock@example.com", "not the password").await;
        assert_eq!((r.status, r.code()), (401, "UNAUTHORIZED"));
    }
    // The third failure slowed this client down for this email: even the right password
    // waits, and says for how long.
    let slowed = login_from(&s, attacker, "lock@example.com", PASSWORD).await;
    assert_eq!((slowed.status, slowed.code()), (429, "RATE_LIMITED"));
    assert!(
        (1..=2).contains(&retry_after(&slowed)),
        "{:?}",
        slowed.headers
    );
    // The owner, from their own client, logs in during the attack.
    login_from(&s, owner, "lock@example.com", PASSWORD)
        .await
        .expect(200);
    // After the wait, one more failure doubles it.
    tokio::time::sleep(std::time::Duration::from_millis(
        1100 * retry_after(&slowed),
    ))
    .await;
    let r = login_from(&s, attacker, "lock@example.com", "still not it").await;
    assert_eq!(r.status, 401);
    let slowed = login_from(&s, attacker, "lock@example.com", PASSWORD).await;
    assert_eq!(slowed.status, 429);
    assert!(
        (2..=3).contains(&retry_after(&slowed)),
        "{:?}",
        slowed.headers
    );

    // An email without an account is throttled exactly the same.
    let prober = "203.0.113.99";
    for _ in 0..3 {
        let r = login_from(&s, prober, "nobody@example.com", "a guess at it").await;
        assert_eq!((r.status, r.code()), (401, "UNAUTHORIZED"));
    }
    let r = login_from(&s, prober, "nobody@example.com", "a guess at it").await;
    assert_eq!(r.status, 429);
    assert_eq!(
        r.body["error"]["message"], slowed.body["error"]["message"],
        "the same answer for an unknown email"
    );

    // A client trying many emails is slowed for all of them after 4x the limit.
    let sprayer = "203.0.113.150";
    for i in 0..12 {
        let r = login_from(&s, sprayer, &format!("u{i}@example.com"), "a guess at it").await;
        assert_eq!(r.status, 401, "attempt {i}");
    }
    let r = login_from(&s, sprayer, "lock@example.com", PASSWORD).await;
    assert_eq!(r.status, 429, "slowed for every email");
    assert_eq!(
        login_from(&s, owner, "lock@example.com", PASSWORD)
            .await
            .status,
        200
    );

    // Counters live in the shared store, per (email, client) and per client.
    let per_client = s
        .family
        .backends
        .records
        .query(&Query::partition(Index::Primary, "LOGIN#lock@example.com"))
        .await
        .unwrap();
    let sks: Vec<&str> = per_client
        .items
        .iter()
        .filter_map(|i| i.str("sk"))
        .collect();
    assert!(sks.contains(&"FAILURES"), "{sks:?}");
    assert!(sks.iter().any(|k| k.starts_with("CLIENT#")), "{sks:?}");
    assert!(
        !per_client.items.iter().any(|i| i
            .to_value::<Value>()
            .unwrap()
            .to_string()
            .contains(attacker)),
        "client addresses are stored hashed"
    );

    // Twelve failures on one account from twelve clients raise one alert for its owner
    // (four have happened above).
    for i in 0..8 {
        let r = login_from(&s, &format!("192.0.2.{i}"), "lock@example.com", "guess").await;
        assert_eq!(r.status, 401);
    }
    let alert = loop {
        let m = subscriber
            .next(std::time::Duration::from_secs(10))
            .await
            .expect("a login alert on the topic");
        let m: Value = serde_json::from_str(&m).unwrap();
        if m["type"] == "security.login_failures" {
            break m;
        }
    };
    assert_eq!(alert["user_id"], owner_id.as_str());
    assert_eq!(alert["failures"], 12);

    // Learning which emails are registered by trying to register them is slowed the same.
    let enumerator = "203.0.113.201";
    let taken = json!({"email": "lock@example.com", "password": PASSWORD});
    for _ in 0..12 {
        assert_eq!(
            post_from(&s, enumerator, "/auth/register", taken.clone())
                .await
                .status,
            409
        );
    }
    let r = post_from(&s, enumerator, "/auth/register", taken).await;
    assert_eq!((r.status, r.code()), (429, "RATE_LIMITED"));
}

async fn profile_and_push_tokens(f: synth_tests::Family) {
    let s = server(f).await;
    let (_, access, _) = user(&s, "prof@example.com").await;
    let t = Some(access.as_str());
    let p = s.get("/users/profile", t).await;
    assert_eq!(
        p.data()["notification_preferences"],
        json!({"email": true, "push": true, "in_app": true})
    );
    let change = json!({"organization": "ACME", "bio": "Data person", "avatar_url": "https://img.example.com/a.png",
                        "notification_preferences": {"email": false, "push": true, "in_app": true}});
    let u = s.put("/users/profile", t, change).await;
    assert_eq!(u.data()["organization"], "ACME");
    assert_eq!(u.data()["full_name"], "Ada", "absent fields are kept");
    assert_eq!(u.data()["notification_preferences"]["email"], false);
    let cleared = s.put("/users/profile", t, json!({"bio": null})).await;
    assert_eq!(cleared.data()["bio"], Value::Null);
    assert_eq!(
        s.get("/users/profile", t).await.data()["organization"],
        "ACME",
        "stored"
    );
    // Each refused change names its field, a value of the wrong type too.
    for (change, field) in [
        (json!({"avatar_url": "javascript:alert(1)"}), "avatar_url"),
        (json!({"bio": "x".repeat(5000)}), "bio"),
        (
            json!({"notification_preferences": "yes"}),
            "notification_preferences",
        ),
        // A misspelt field is refused by name, not ignored.
        (json!({"fullname": "Ada"}), "fullname"),
        (
            json!({"notification_preferences": {"pushh": false}}),
            "notification_preferences.pushh",
        ),
    ] {
        let bad = s.put("/users/profile", t, change).await;
        assert_eq!((bad.status, bad.code()), (400, "VALIDATION_ERROR"));
        let named = bad.body["error"]["details"]["field"].as_str();
        assert_eq!(named, Some(field), "{:?}", bad.body);
    }

    let token = |platform: &str| json!({"token": "device-token-1", "platform": platform});
    assert_eq!(
        s.post("/users/push-token", t, token("ios")).await.status,
        201
    );
    assert_eq!(
        s.post("/users/push-token", t, token("symbian"))
            .await
            .status,
        400
    );
    assert_eq!(
        s.post(
            "/users/push-token",
            None,
            json!({"token": "t", "platform": "ios"})
        )
        .await
        .status,
        401
    );
}

async fn admin_manages_users_with_an_audit_trail(f: synth_tests::Family) {
    let s = server(f).await;
    let (admin_id, admin_token) = s.admin("root@example.com").await;
    let a = Some(admin_token.as_str());
    let mut ids = HashMap::new();
    for name in ["amy", "bob", "cat"] {
        let (id, token, refresh) = user(&s, &format!("{name}@example.com")).await;
        ids.insert(name, (id, token, refresh));
    }
    // Listing, filtering, pagination.
    let all = s.get("/admin/users", a).await;
    assert_eq!(
        pluck(&all.data()["items"], "/email"),
        [
            "amy@example.com",
            "bob@example.com",
            "cat@example.com",
            "root@example.com"
        ]
    );
    assert_no_secret(&all.body);
    let admins = s.get("/admin/users?role=admin", a).await;
    assert_eq!(admins.data()["items"].as_array().unwrap().len(), 1);
    let b = s.get("/admin/users?email_prefix=B", a).await;
    assert_eq!(b.data()["items"][0]["email"], "bob@example.com");
    let mut cursor: Option<String> = None;
    let mut paged = Vec::new();
    loop {
        let path = match &cursor {
            Some(c) => format!("/admin/users?limit=1&role=user&cursor={c}"),
            None => "/admin/users?limit=1&role=user".into(),
        };
        let page = s.get(&path, a).await;
        let emails = pluck(&page.data()["items"], "/email");
        paged.extend(emails.into_iter().map(str::to_owned));
        match page.data()["next_cursor"].as_str() {
            Some(c) => cursor = Some(c.to_owned()),
            None => break,
        }
    }
    assert_eq!(
        paged,
        ["amy@example.com", "bob@example.com", "cat@example.com"]
    );
    assert_eq!(
        s.get("/admin/users?cursor=garbage", a).await.code(),
        "VALIDATION_ERROR"
    );

    // Deactivation takes effect on the very next request, for every token.
    let (bob_id, bob_token, bob_refresh) = ids["bob"].clone();
    let req = s
        .http
        .post(format!("{}/admin/users/{bob_id}/toggle", s.url))
        .bearer_auth(&admin_token)
        .header("x-request-id", "req-toggle-bob")
        .send()
        .await
        .unwrap();
    assert_eq!(req.status(), 200);
    let body: Value = req.json().await.unwrap();
    assert_eq!(body["data"]["is_active"], false);
    assert_eq!(s.get("/auth/me", Some(&bob_token)).await.status, 401);
    assert_eq!(s.try_login("bob@example.com", PASSWORD).await.status, 401);
    assert_eq!(refresh(&s, &bob_refresh).await.status, 401);
    let inactive = s.get("/admin/users?is_active=false", a).await;
    assert_eq!(inactive.data()["items"][0]["id"], bob_id.as_str());
    let back = s
        .post(&format!("/admin/users/{bob_id}/toggle"), a, json!({}))
        .await;
    assert_eq!(back.data()["is_active"], true);
    assert_eq!(
        s.get("/auth/me", Some(&bob_token)).await.status,
        200,
        "reactivated"
    );

    // Roles.
    let (amy_id, amy_token, _) = ids["amy"].clone();
    let role = format!("/admin/users/{amy_id}/role");
    let promoted = s.put(&role, a, json!({"role": "admin"})).await;
    assert_eq!(promoted.data()["role"], "admin");
    assert_eq!(
        s.get("/admin/logs", Some(&amy_token)).await.status,
        200,
        "a promoted user is an admin at once"
    );
    let bad_role = s.put(&role, a, json!({"role": "god"})).await;
    assert_eq!(bad_role.status, 400);
    let missing = s
        .post("/admin/users/no-such-user/toggle", a, json!({}))
        .await;
    assert_eq!((missing.status, missing.code()), (404, "NOT_FOUND"));
    let own = s
        .post(&format!("/admin/users/{admin_id}/toggle"), a, json!({}))
        .await;
    assert_eq!(own.status, 409, "an admin cannot lock themselves out");

    // The audit log: who, what, target, when, which request.
    let logs = s.get("/admin/logs?limit=10", a).await;
    let entries = &logs.data()["items"];
    assert_eq!(
        pluck(entries, "/action")[..4],
        [
            "user.role_changed",
            "user.activated",
            "user.deactivated",
            "admin.created"
        ]
    );
    let deactivated = &entries[2];
    assert_eq!(deactivated["actor_id"], admin_id.as_str());
    assert_eq!(deactivated["target_id"], bob_id.as_str());
    assert_eq!(deactivated["request_id"], "req-toggle-bob");
    assert!(deactivated["at"].is_string());
    let page = s.get("/admin/logs?limit=2", a).await;
    let next = page.data()["next_cursor"].as_str().unwrap().to_owned();
    let rest = s
        .get(&format!("/admin/logs?limit=10&cursor={next}"), a)
        .await;
    assert_eq!(rest.data()["items"][0]["action"], "user.deactivated");
}

async fn users_are_refused_every_admin_route(f: synth_tests::Family) {
    let s = server(f).await;
    let (admin_id, _) = s.admin("root@example.com").await;
    let (_, token, _) = user(&s, "eve@example.com").await;
    let t = Some(token.as_str());
    // Every operation the API document lists as needing the admin role.
    let doc = serde_json::to_value(synth_api::openapi()).unwrap();
    let mut refused = Vec::new();
    for (path, item) in doc["paths"].as_object().unwrap() {
        for (method, op) in item.as_object().unwrap() {
            if op["security"] == json!([{"bearer": ["admin"]}]) {
                let path = path.replace("{id}", &admin_id);
                let body = (method != "get").then(|| json!({"role": "user", "reason": "no"}));
                let r = s.call(&method.to_uppercase(), &path, t, body).await;
                assert_eq!((r.status, r.code()), (403, "FORBIDDEN"), "{method} {path}");
                refused.push(path);
            }
        }
    }
    assert_eq!(refused.len(), 9, "{refused:?}");
    // Nothing changed.
    let root = s
        .family
        .backends
        .records
        .get(&synth_core::Key::new(format!("USER#{admin_id}"), "PROFILE"))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(root.get("is_active"), Some(&json!(true)));
    assert_eq!(root.str("role"), Some(Role::Admin.as_str()));
    assert_eq!(s.get("/admin/users", None).await.status, 401);
}

async fn erasure_removes_everything_and_export_has_it_all(f: synth_tests::Family) {
    let s = server(f).await;
    let (_, admin_token) = s.admin("root@example.com").await;
    let (id, token, rt) = user(&s, "gone@example.com").await;
    let (other_id, other_token, _) = user(&s, "stays@example.com").await;
    let t = Some(token.as_str());
    s.post(
        "/users/push-token",
        t,
        json!({"token": "device-1", "platform": "android"}),
    )
    .await;
    let objects = s.family.backends.objects.as_ref();
    let original = |owner: &str, d: &str| format!("users/{owner}/datasets/{d}/original.csv");
    put_csv(objects, &original(&id, "d1"), "a,b\n1,2\n").await;
    put_csv(objects, &original(&other_id, "d2"), "x\n").await;

    let export = s.get("/users/export", t).await;
    let doc = export.data();
    assert_eq!(doc["user"]["email"], "gone@example.com");
    assert_no_secret(&export.body);
    let files = doc["files"].as_array().unwrap();
    assert_eq!(files.len(), 1, "only the caller's files");
    let link = files[0]["url"].as_str().unwrap();
    assert_eq!(
        s.http.get(link).send().await.unwrap().text().await.unwrap(),
        "a,b\n1,2\n"
    );
    let kinds: Vec<_> = doc["records"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            r["sk"]
                .as_str()
                .unwrap()
                .split('#')
                .next()
                .unwrap()
                .to_owned()
        })
        .collect();
    assert!(kinds.contains(&"PUSH".to_owned()) && kinds.contains(&"SESSION".to_owned()));

    // Admin actions on the user name them in the audit log until erasure.
    for _ in 0..2 {
        let r = s
            .post(
                &format!("/admin/users/{id}/toggle"),
                Some(&admin_token),
                json!({}),
            )
            .await;
        assert_eq!(r.status, 200);
    }
    assert!(
        s.get("/admin/logs", Some(&admin_token))
            .await
            .body
            .to_string()
            .contains(&id)
    );
    let del = s.call("DELETE", "/users/account", t, None).await;
    assert_eq!(del.status, 200);
    assert_eq!(s.get("/auth/me", t).await.status, 401);
    assert_eq!(s.get("/users/export", t).await.status, 401);
    assert_eq!(refresh(&s, &rt).await.status, 401);
    assert_eq!(s.try_login("gone@example.com", PASSWORD).await.status, 401);
    let erased = object_keys(objects, &format!("users/{id}/")).await;
    assert!(erased.is_empty(), "files erased: {erased:?}");
    let left = s
        .family
        .backends
        .records
        .query(&Query::partition(Index::Primary, format!("USER#{id}")))
        .await
        .unwrap();
    assert!(left.items.is_empty(), "records erased: {:?}", left.items);
    let listed = s.get("/admin/users", Some(&admin_token)).await;
    assert!(!listed.body.to_string().contains("gone@example.com"));
    // The other user is untouched; the email can be used again.
    assert_eq!(s.get("/auth/me", Some(&other_token)).await.status, 200);
    assert_eq!(
        object_keys(objects, &format!("users/{other_id}/"))
            .await
            .len(),
        1
    );
    assert_eq!(register(&s, "gone@example.com").await.status, 201);
    // One anonymised audit entry remains.
    let logs = s.get("/admin/logs", Some(&admin_token)).await;
    let erased: Vec<_> = logs.data()["items"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["action"] == "user.erased")
        .cloned()
        .collect();
    assert_eq!(erased.len(), 1);
    assert_eq!(erased[0]["actor_id"], Value::Null);
    assert!(!erased[0].to_string().contains("gone@"));
    assert!(
        !logs.body.to_string().contains(&id),
        "no audit entry names the erased user"
    );
    let toggles = logs.data()["items"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["action"] == "user.deactivated")
        .count();
    assert_eq!(toggles, 1, "the entries stay, anonymised");
}
