//! The profile and push tokens of the caller.

use synth_core::accounts::{NotificationPreferences, ProfileUpdate, tokens};
use synth_core::notifications::NotificationKind;
use synth_core::{Index, Key, Query, SortKey};

use crate::{Env, refuses_field};

#[tokio::test]
async fn profile_changes_set_clear_and_keep() {
    let (env, user, who, _) = Env::with_user("ada@example.com").await;
    let a = &env.accounts;
    assert_eq!(user.full_name.as_deref(), Some("Ada"));
    let prefs = NotificationPreferences {
        email: false,
        push: true,
        in_app: true,
        push_kinds: [(NotificationKind::GenerationFailed, false)].into(),
    };
    let set = ProfileUpdate {
        organization: Some(Some("Analytical Engines".into())),
        bio: Some(Some("   ".into())),
        avatar_url: Some(Some("https://example.com/a.png".into())),
        notification_preferences: Some(prefs.clone().into()),
        ..Default::default()
    };
    let u = a.update_profile(&who, set).await.unwrap();
    assert_eq!(u.organization.as_deref(), Some("Analytical Engines"));
    assert_eq!(u.bio, None, "blank text is stored as none");
    assert_eq!(u.full_name.as_deref(), Some("Ada"), "absent fields stay");
    assert_eq!(u.notification_preferences, prefs);
    assert!(u.updated_at > user.updated_at);
    let clear = ProfileUpdate {
        organization: Some(None),
        ..Default::default()
    };
    let u = a.update_profile(&who, clear).await.unwrap();
    assert_eq!(u.organization, None, "null clears");
    assert_eq!(u.avatar_url.as_deref(), Some("https://example.com/a.png"));
    assert_eq!(
        env.account("ada@example.com").await,
        u,
        "stored as returned"
    );
}

#[tokio::test]
async fn profile_changes_that_break_the_rules_change_nothing() {
    let (env, user, who, _) = Env::with_user("ada@example.com").await;
    let a = &env.accounts;
    let cases = [
        (
            "bio",
            ProfileUpdate {
                bio: Some(Some("x".repeat(2001))),
                ..Default::default()
            },
        ),
        (
            "full_name",
            ProfileUpdate {
                full_name: Some(Some("x".repeat(201))),
                ..Default::default()
            },
        ),
        (
            "avatar_url",
            ProfileUpdate {
                avatar_url: Some(Some("javascript:alert(1)".into())),
                ..Default::default()
            },
        ),
    ];
    for (field, change) in cases {
        let e = a.update_profile(&who, change).await.unwrap_err();
        assert!(refuses_field(&e, field), "{field}: {e:?}");
    }
    assert_eq!(env.account("ada@example.com").await, user);
}

#[tokio::test]
async fn push_tokens_are_kept_once_per_device() {
    let (env, user, who, _) = Env::with_user("ada@example.com").await;
    let a = &env.accounts;
    a.register_push_token(&who, "device-1", "ios")
        .await
        .unwrap();
    a.register_push_token(&who, "device-1", "web")
        .await
        .unwrap();
    a.register_push_token(&who, "device-2", "android")
        .await
        .unwrap();
    for (token, platform, field) in [
        ("device-3", "symbian", "platform"),
        (" ", "ios", "token"),
        (&"t".repeat(4097), "ios", "token"),
    ] {
        let e = a
            .register_push_token(&who, token, platform)
            .await
            .unwrap_err();
        assert!(refuses_field(&e, field), "{field}: {e:?}");
    }
    let q = Query::partition(Index::Primary, format!("USER#{}", user.id))
        .sk(SortKey::BeginsWith("PUSH#".into()));
    let stored = env.backends().records.query(&q).await.unwrap().items;
    assert_eq!(stored.len(), 2, "one record per device token");
    let key = Key::new(
        format!("USER#{}", user.id),
        format!("PUSH#{}", tokens::sha256_hex("device-1")),
    );
    let one = env.backends().records.get(&key).await.unwrap().unwrap();
    assert_eq!(
        (one.str("token"), one.str("platform")),
        (Some("device-1"), Some("web"))
    );
}
