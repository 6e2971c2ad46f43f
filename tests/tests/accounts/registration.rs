//! Registration: the email's shape, the password policy, one account per email.

use synth_core::accounts::{ClientId, Role, register};
use synth_core::{Index, Key, Query, ServiceError};

use crate::{Env, PASSWORD, refuses_field};

#[tokio::test]
async fn registration_normalises_and_refuses_what_breaks_the_rules() {
    let env = Env::new().await;
    let client = ClientId::new("198.51.100.1");
    let a = &env.accounts;
    let u = a
        .register(" Ada@Example.com ", PASSWORD, Some("  ".into()), &client)
        .await
        .unwrap();
    assert_eq!(u.email, "ada@example.com");
    assert_eq!((u.role, u.is_active, u.full_name), (Role::User, true, None));
    let dup = a.register("ADA@example.com", PASSWORD, None, &client).await;
    assert!(matches!(dup, Err(ServiceError::Conflict(_))), "{dup:?}");
    let weak = a.register("b@example.com", "password", None, &client).await;
    assert!(refuses_field(&weak.unwrap_err(), "password"));
    let email = a.register("not-an-email", PASSWORD, None, &client).await;
    assert!(refuses_field(&email.unwrap_err(), "email"));
    let long = a
        .register("c@example.com", PASSWORD, Some("x".repeat(201)), &client)
        .await;
    assert!(refuses_field(&long.unwrap_err(), "full_name"));
    // The guard and the account, nothing for the refused ones.
    let records = &env.backends().records;
    let guard = records
        .get(&Key::new("EMAIL#ada@example.com", "EMAIL"))
        .await
        .unwrap()
        .expect("the unique-email guard");
    assert_eq!(guard.str("user_id"), Some(u.id.as_str()));
    let listed = records
        .query(&Query::partition(Index::Gsi1, "USERS"))
        .await
        .unwrap();
    assert_eq!(listed.items.len(), 1);
    assert!(
        listed.items[0]
            .str("password_hash")
            .is_some_and(|h| !h.contains(PASSWORD)),
        "the password is stored hashed"
    );
}

#[tokio::test]
async fn concurrent_registrations_of_one_email_make_one_account() {
    let env = Env::new().await;
    let records = env.backends().records.clone();
    let attempts = (0..8).map(|i| {
        let records = records.clone();
        let email = if i % 2 == 0 {
            "race@example.com"
        } else {
            "RACE@example.com "
        };
        async move { register(records.as_ref(), email, PASSWORD, None, Role::User).await }
    });
    let results = futures::future::join_all(attempts).await;
    let made = results.iter().filter(|r| r.is_ok()).count();
    let conflicts = results
        .iter()
        .filter(|r| matches!(r, Err(ServiceError::Conflict(_))))
        .count();
    assert_eq!((made, conflicts), (1, 7), "{results:?}");
}

#[tokio::test]
async fn refused_registrations_slow_down_their_client() {
    let env = Env::new().await;
    env.signed_up("taken@example.com").await;
    let enumerator = ClientId::new("203.0.113.201");
    // 4 × LOGIN_MAX_ATTEMPTS conflicts, then the client waits.
    for i in 0..12 {
        let r = env
            .accounts
            .register("taken@example.com", PASSWORD, None, &enumerator)
            .await;
        assert!(
            matches!(r, Err(ServiceError::Conflict(_))),
            "attempt {i}: {r:?}"
        );
    }
    let r = env
        .accounts
        .register("new@example.com", PASSWORD, None, &enumerator)
        .await;
    assert!(matches!(r, Err(ServiceError::RateLimited { .. })), "{r:?}");
    // Another client registers as usual.
    let other = ClientId::new("198.51.100.2");
    env.accounts
        .register("new@example.com", PASSWORD, None, &other)
        .await
        .unwrap();
}
