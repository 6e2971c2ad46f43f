//! Erasure and export: everything of the user's goes, or comes out, and nothing else.

use std::time::Duration;

use serde_json::Value;
use synth_core::accounts::{AUDIT_PK, ClientId, Principal, TokenPair};
use synth_core::{Index, Query};

use synth_tests::{object_keys, put_csv};

use crate::{Env, PASSWORD, ctx};

/// A user with a bit of everything: sessions, a push token, files, failed logins, and
/// audit entries naming them.
async fn busy_user(env: &Env, email: &str) -> (String, Principal, TokenPair) {
    let a = &env.accounts;
    let (user, who, pair) = env.signed_up(email).await;
    a.register_push_token(&who, "device-1", "ios")
        .await
        .unwrap();
    let objects = env.backends().objects.as_ref();
    let id = &user.id;
    put_csv(objects, &format!("users/{id}/results/r1.csv"), "a,b\n1,2\n").await;
    put_csv(objects, &format!("uploads/{id}/d1/in.csv"), "x\n1\n").await;
    let r = a.login(email, "wrong", &ClientId::new("203.0.113.5")).await;
    assert!(r.is_err());
    (user.id, who, pair)
}

#[tokio::test]
async fn erasure_removes_everything_and_anonymises_the_audit_log() {
    let env = Env::new().await;
    let a = &env.accounts;
    let admin = env.admin("root@example.com").await;
    let (id, who, pair) = busy_user(&env, "gone@example.com").await;
    let (other_id, _, _) = busy_user(&env, "stays@example.com").await;
    for _ in 0..2 {
        a.toggle_user(&admin, &id, &ctx()).await.unwrap();
    }
    a.delete_account(&who, &ctx()).await.unwrap();

    let records = &env.backends().records;
    let objects = env.backends().objects.as_ref();
    let partition = |pk: String| async move {
        records
            .query(&Query::partition(Index::Primary, pk))
            .await
            .unwrap()
            .items
    };
    assert!(partition(format!("USER#{id}")).await.is_empty(), "records");
    assert!(partition("EMAIL#gone@example.com".into()).await.is_empty());
    assert!(partition("LOGIN#gone@example.com".into()).await.is_empty());
    for prefix in [format!("users/{id}/"), format!("uploads/{id}/")] {
        assert_eq!(object_keys(objects, &prefix).await, Vec::<String>::new());
    }
    // The other user is untouched.
    assert_eq!(partition(format!("USER#{other_id}")).await.len(), 4);
    let kept = object_keys(objects, &format!("users/{other_id}/")).await;
    assert_eq!(kept.len(), 1);
    assert!(!partition("LOGIN#stays@example.com".into()).await.is_empty());
    // The audit log keeps its entries, none naming the user, and one for the erasure.
    let log = partition(AUDIT_PK.into()).await;
    let text = serde_json::to_string(&log.iter().map(|i| &i.0).collect::<Vec<_>>()).unwrap();
    assert!(!text.contains(&id) && !text.contains("gone@"), "{text}");
    let erased: Vec<_> = log
        .iter()
        .filter(|e| e.str("action") == Some("user.erased"))
        .collect();
    assert_eq!(erased.len(), 1);
    assert_eq!(erased[0].get("actor_id"), Some(&Value::Null));
    assert_eq!(erased[0].get("details").unwrap()["objects"], 2);
    let toggles = log
        .iter()
        .filter(|e| e.str("action").is_some_and(|a| a.starts_with("user.")))
        .count();
    assert_eq!(toggles, 3, "deactivated, activated, erased");
    for index in [Index::Gsi1, Index::Gsi2] {
        let pk = match index {
            Index::Gsi1 => format!("AUDITBY#{id}"),
            _ => format!("AUDITON#{id}"),
        };
        let q = Query::partition(index, pk);
        assert!(
            records.query(&q).await.unwrap().items.is_empty(),
            "{index:?}"
        );
    }
    // Signed out everywhere, and the email is free again.
    assert!(a.authenticate(&pair.access_token).await.is_err());
    assert!(a.refresh(&pair.refresh_token).await.is_err());
    env.logged_in("stays@example.com").await;
    let client = ClientId::new("198.51.100.1");
    assert!(
        a.login("gone@example.com", PASSWORD, &client)
            .await
            .is_err()
    );
    a.register("gone@example.com", PASSWORD, None, &client)
        .await
        .unwrap();
}

#[tokio::test]
async fn export_has_every_record_without_secrets_and_links_to_every_file() {
    let env = Env::new().await;
    let (id, who, _) = busy_user(&env, "ada@example.com").await;
    let doc = env.accounts.export(&who).await.unwrap();
    assert_eq!(doc["user"]["id"], id.as_str());
    let records = doc["records"].as_array().unwrap();
    let kinds: Vec<&str> = records
        .iter()
        .map(|r| r["sk"].as_str().unwrap().split('#').next().unwrap())
        .collect();
    for kind in ["PROFILE", "SESSION", "TOKEN", "PUSH"] {
        assert!(kinds.contains(&kind), "{kind} in {kinds:?}");
    }
    let text = doc.to_string();
    for secret in ["password_hash", "\"pk\"", "gsi1pk", "gsi1sk"] {
        assert!(!text.contains(secret), "{secret} is not exported");
    }
    let files = doc["files"].as_array().unwrap();
    let keys: Vec<&str> = files.iter().map(|f| f["key"].as_str().unwrap()).collect();
    assert_eq!(
        keys,
        [
            format!("uploads/{id}/d1/in.csv"),
            format!("users/{id}/results/r1.csv")
        ]
    );
    // The links work, for an hour.
    let link = files[1]["url"].as_str().unwrap();
    let body = reqwest::get(link).await.unwrap().text().await.unwrap();
    assert_eq!(body, "a,b\n1,2\n");
    let expires: chrono::DateTime<chrono::Utc> =
        serde_json::from_value(files[1]["expires_at"].clone()).unwrap();
    let ttl = (expires - chrono::Utc::now()).to_std().unwrap();
    assert!(ttl > Duration::from_secs(3500) && ttl <= Duration::from_secs(3600));
}
