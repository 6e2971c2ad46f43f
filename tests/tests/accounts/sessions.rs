//! Sessions: rotation of refresh tokens, reuse detection, authentication, logout.

use synth_core::accounts::tokens;
use synth_core::{Key, ServiceError, Update};

use crate::{Env, ctx};

fn refused<T: std::fmt::Debug>(r: Result<T, ServiceError>) -> bool {
    matches!(r, Err(ServiceError::Unauthorized(_)))
}

#[tokio::test]
async fn refresh_rotates_and_a_replay_ends_the_session() {
    let (env, _, who, first) = Env::with_user("ada@example.com").await;
    let a = &env.accounts;
    let second = a.refresh(&first.refresh_token).await.unwrap();
    assert_ne!(second.refresh_token, first.refresh_token);
    assert_ne!(second.access_token, first.access_token);
    let again = a.authenticate(&second.access_token).await.unwrap();
    assert_eq!(again.session_id, who.session_id, "the same session goes on");
    // The first token again: refused, and the whole session ends with it.
    assert!(refused(a.refresh(&first.refresh_token).await));
    assert!(refused(a.refresh(&second.refresh_token).await));
    assert!(refused(a.authenticate(&second.access_token).await));
    // Another login is another session.
    let (other, _) = env.logged_in("ada@example.com").await;
    assert_ne!(other.session_id, who.session_id);
}

#[tokio::test]
async fn racing_refreshes_rotate_once_and_count_as_reuse() {
    let (env, _, _, pair) = Env::with_user("race@example.com").await;
    let a = &env.accounts;
    let (x, y) = tokio::join!(
        a.refresh(&pair.refresh_token),
        a.refresh(&pair.refresh_token)
    );
    let won: Vec<_> = [x, y].into_iter().filter_map(Result::ok).collect();
    assert!(won.len() <= 1, "at most one rotation of one token");
    for pair in won {
        assert!(
            refused(a.refresh(&pair.refresh_token).await),
            "the race counts as reuse and ends the session"
        );
    }
}

#[tokio::test]
async fn logout_and_expiry_end_what_they_should() {
    let (env, user, who, pair) = Env::with_user("ada@example.com").await;
    let a = &env.accounts;
    let (_, other) = env.logged_in("ada@example.com").await;
    a.logout(&who).await.unwrap();
    assert!(refused(a.authenticate(&pair.access_token).await));
    assert!(refused(a.refresh(&pair.refresh_token).await));
    // Only that session: the other one still works.
    a.authenticate(&other.access_token).await.unwrap();
    // A refresh token past its expiry is refused.
    let (_, hash) = tokens::parse_refresh_token(&other.refresh_token).unwrap();
    let key = Key::new(format!("USER#{}", user.id), format!("TOKEN#{hash}"));
    let past = chrono::Utc::now().timestamp() - 1;
    env.backends()
        .records
        .update(&key, Update::default().set("expires_at", past), None)
        .await
        .unwrap();
    assert!(refused(a.refresh(&other.refresh_token).await));
    for garbage in [
        "",
        "x.y",
        "not-a-token",
        &format!("{}.{}", user.id, "a".repeat(43)),
    ] {
        assert!(refused(a.refresh(garbage).await), "{garbage}");
    }
    assert!(refused(a.authenticate("not.a.jwt").await));
}

#[tokio::test]
async fn deactivation_stops_live_tokens_at_once() {
    let (env, admin, user, pair) = Env::with_admin_and_user("ada@example.com").await;
    let a = &env.accounts;
    a.toggle_user(&admin, &user.id, &ctx()).await.unwrap();
    let r = a.authenticate(&pair.access_token).await;
    assert!(
        matches!(&r, Err(ServiceError::Unauthorized(m)) if m.contains("deactivated")),
        "{r:?}"
    );
    assert!(refused(a.refresh(&pair.refresh_token).await));
    // Reactivated, the same session works again.
    a.toggle_user(&admin, &user.id, &ctx()).await.unwrap();
    a.authenticate(&pair.access_token).await.unwrap();
}
