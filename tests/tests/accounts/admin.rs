//! The administrators' view: the user list, role and activation changes, the audit log.

use synth_core::accounts::{AuditEntry, Role, UserFilter};
use synth_core::{Paged, ServiceError};

use crate::{Env, ctx};

fn emails(page: &Paged<synth_core::accounts::User>) -> Vec<&str> {
    page.items.iter().map(|u| u.email.as_str()).collect()
}

#[tokio::test]
async fn the_user_list_filters_and_pages() {
    let env = Env::new().await;
    let a = &env.accounts;
    let admin = env.admin("root@example.com").await;
    let mut ids = Vec::new();
    for name in ["amy", "bob", "cat", "dan", "eve"] {
        ids.push(env.signed_up(&format!("{name}@example.com")).await.0.id);
    }
    a.toggle_user(&admin, &ids[1], &ctx()).await.unwrap();
    let all = a
        .list_users(&UserFilter::default(), 100, None)
        .await
        .unwrap();
    assert_eq!(all.items.len(), 6);
    assert_eq!(all.next_cursor, None);
    let by = |role, is_active, email_prefix: Option<&str>| UserFilter {
        role,
        is_active,
        email_prefix: email_prefix.map(str::to_owned),
    };
    let admins = a
        .list_users(&by(Some(Role::Admin), None, None), 1, None)
        .await;
    let admins = admins.unwrap();
    assert_eq!(emails(&admins), ["root@example.com"]);
    assert_eq!(admins.next_cursor, None, "no cursor when nothing follows");
    let off = a.list_users(&by(None, Some(false), None), 10, None).await;
    assert_eq!(emails(&off.unwrap()), ["bob@example.com"]);
    let b = a.list_users(&by(None, None, Some(" B")), 10, None).await;
    assert_eq!(emails(&b.unwrap()), ["bob@example.com"]);
    // Two active users a page: every one once, in email order.
    let active = by(Some(Role::User), Some(true), None);
    let mut seen = Vec::new();
    let mut cursor = None;
    loop {
        let page = a.list_users(&active, 2, cursor).await.unwrap();
        assert!(page.items.len() <= 2);
        seen.extend(emails(&page).into_iter().map(str::to_owned));
        match page.next_cursor {
            Some(c) => cursor = Some(c),
            None => break,
        }
    }
    assert_eq!(
        seen,
        [
            "amy@example.com",
            "cat@example.com",
            "dan@example.com",
            "eve@example.com"
        ]
    );
    let garbage = a.list_users(&active, 2, Some("garbage".into())).await;
    assert!(garbage.is_err());
}

#[tokio::test]
async fn changes_are_audited_and_refused_when_they_should_be() {
    let (env, admin, user, _) = Env::with_admin_and_user("ada@example.com").await;
    let a = &env.accounts;
    let promoted = a
        .set_role(&admin, &user.id, Role::Admin, &ctx())
        .await
        .unwrap();
    assert_eq!(promoted.role, Role::Admin);
    let off = a.toggle_user(&admin, &user.id, &ctx()).await.unwrap();
    assert!(!off.is_active);
    let on = a.toggle_user(&admin, &user.id, &ctx()).await.unwrap();
    assert!(on.is_active);
    let own = a.toggle_user(&admin, &admin.user.id, &ctx()).await;
    assert!(matches!(own, Err(ServiceError::Conflict(_))), "{own:?}");
    let own = a.set_role(&admin, &admin.user.id, Role::User, &ctx()).await;
    assert!(matches!(own, Err(ServiceError::Conflict(_))), "{own:?}");
    let nobody = a.toggle_user(&admin, "no-such-user", &ctx()).await;
    assert!(
        matches!(nobody, Err(ServiceError::NotFound(_))),
        "{nobody:?}"
    );

    // Newest first, one page at a time, each change with who, whom and what.
    let mut log: Vec<AuditEntry> = Vec::new();
    let mut cursor = None;
    loop {
        let page = a.audit_log(1, cursor).await.unwrap();
        log.extend(page.items);
        match page.next_cursor {
            Some(c) => cursor = Some(c),
            None => break,
        }
    }
    let actions: Vec<&str> = log.iter().map(|e| e.action.as_str()).collect();
    assert_eq!(
        actions,
        [
            "user.activated",
            "user.deactivated",
            "user.role_changed",
            "admin.created"
        ]
    );
    let role = &log[2];
    assert_eq!(role.actor_id.as_deref(), Some(admin.user.id.as_str()));
    assert_eq!(role.target_id.as_deref(), Some(user.id.as_str()));
    assert_eq!(
        role.details,
        serde_json::json!({"from": "user", "to": "admin"})
    );
    assert_eq!(role.request_id, "req-test");
    assert_eq!(
        log[3].actor_id, None,
        "the first admin is created from the command line"
    );
    assert_eq!(log[3].target_id.as_deref(), Some(admin.user.id.as_str()));
}
