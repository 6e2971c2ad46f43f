//! Login and its throttling: one answer for every wrong credential, slow-downs for the
//! guessing client only, alerts for attacks on one account.

use std::time::Duration;

use serde_json::Value;
use synth_core::accounts::ClientId;
use synth_core::{Index, Query, ServiceError};

use crate::{Env, PASSWORD};

fn unauthorized(r: &Result<impl std::fmt::Debug, ServiceError>) -> bool {
    matches!(r, Err(ServiceError::Unauthorized(m)) if m == "invalid email or password")
}

#[tokio::test]
async fn wrong_credentials_get_one_answer() {
    let env = Env::new().await;
    env.signed_up("ada@example.com").await;
    let a = &env.accounts;
    let client = ClientId::new("198.51.100.9");
    let pair = a
        .login("ADA@example.com ", PASSWORD, &client)
        .await
        .unwrap();
    assert_eq!(
        (pair.token_type.as_str(), pair.expires_in),
        ("bearer", 1800)
    );
    assert!(unauthorized(
        &a.login("ada@example.com", "wrong", &client).await
    ));
    assert!(unauthorized(
        &a.login("nobody@example.com", PASSWORD, &client).await
    ));
    assert!(unauthorized(
        &a.login("not an email", PASSWORD, &client).await
    ));
}

#[tokio::test]
async fn guessing_slows_the_guessing_client_not_the_owner() {
    let (env, owner_account, _, _) = Env::with_user("lock@example.com").await;
    let a = &env.accounts;
    let attacker = ClientId::new("203.0.113.66");
    let owner = ClientId::new("198.51.100.7");
    for _ in 0..3 {
        assert!(unauthorized(
            &a.login("lock@example.com", "guess", &attacker).await
        ));
    }
    // Even the right password waits now, and says for how long.
    let slowed = a.login("lock@example.com", PASSWORD, &attacker).await;
    let Err(ServiceError::RateLimited {
        retry_after_seconds,
        ..
    }) = slowed
    else {
        panic!("slowed down: {slowed:?}")
    };
    assert!((1..=2).contains(&retry_after_seconds));
    a.login("lock@example.com", PASSWORD, &owner)
        .await
        .expect("the owner logs in during the attack");
    // After the wait, one more failure doubles it.
    tokio::time::sleep(Duration::from_millis(1100 * retry_after_seconds)).await;
    assert!(unauthorized(
        &a.login("lock@example.com", "guess", &attacker).await
    ));
    match a.login("lock@example.com", PASSWORD, &attacker).await {
        Err(ServiceError::RateLimited {
            retry_after_seconds,
            ..
        }) => assert!((2..=3).contains(&retry_after_seconds)),
        other => panic!("slowed for longer: {other:?}"),
    }
    // An unknown email is throttled alike.
    let prober = ClientId::new("203.0.113.99");
    for _ in 0..3 {
        assert!(unauthorized(
            &a.login("nobody@example.com", "guess", &prober).await
        ));
    }
    let r = a.login("nobody@example.com", "guess", &prober).await;
    assert!(matches!(r, Err(ServiceError::RateLimited { .. })), "{r:?}");
    // Counters are per (email, client) and per email, with client addresses hashed.
    let counters = env
        .backends()
        .records
        .query(&Query::partition(Index::Primary, "LOGIN#lock@example.com"))
        .await
        .unwrap();
    let sks: Vec<&str> = counters.items.iter().filter_map(|i| i.str("sk")).collect();
    assert!(sks.contains(&"FAILURES"), "{sks:?}");
    assert!(sks.iter().any(|k| k.starts_with("CLIENT#")), "{sks:?}");
    let stored: Vec<_> = counters.items.iter().map(|i| &i.0).collect();
    let stored = serde_json::to_string(&stored).unwrap();
    assert!(!stored.contains("203.0.113.66"), "{stored}");
    assert!(owner_account.is_active);
}

#[tokio::test]
async fn many_clients_failing_on_one_account_raise_one_alert() {
    let mut env = Env::new().await;
    let mut subscriber = env.family.subscribers.remove(0);
    let (user, _, _) = env.signed_up("target@example.com").await;
    // 4 × LOGIN_MAX_ATTEMPTS failures, one per client: nobody is slowed, the owner is told.
    for i in 0..12 {
        let client = ClientId::new(&format!("192.0.2.{i}"));
        let r = env
            .accounts
            .login("target@example.com", "guess", &client)
            .await;
        assert!(unauthorized(&r), "attempt {i}: {r:?}");
    }
    let alert = subscriber
        .next(Duration::from_secs(10))
        .await
        .expect("an alert on the topic");
    let alert: Value = serde_json::from_str(&alert).unwrap();
    assert_eq!(alert["type"], "security.login_failures");
    assert_eq!(alert["user_id"], user.id.as_str());
    assert_eq!(alert["failures"], 12);
    // Only once per window.
    let client = ClientId::new("192.0.2.200");
    let _ = env
        .accounts
        .login("target@example.com", "guess", &client)
        .await;
    assert_eq!(subscriber.next(Duration::from_millis(300)).await, None);
}

#[tokio::test]
async fn a_deactivated_account_cannot_log_in() {
    let (env, admin, user, _) = Env::with_admin_and_user("off@example.com").await;
    env.accounts
        .toggle_user(&admin, &user.id, &crate::ctx())
        .await
        .unwrap();
    let r = env
        .accounts
        .login("off@example.com", PASSWORD, &ClientId::unknown())
        .await;
    assert!(
        matches!(&r, Err(ServiceError::Unauthorized(m)) if m.contains("deactivated")),
        "{r:?}"
    );
}
