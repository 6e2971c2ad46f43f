//! Creating accounts: the email's shape, the password policy, and the unique-email guard
//! written in the same transaction as the account, so two concurrent registrations of one
//! email give one account. (The throttled entry point for the public is
//! [`Accounts::register`](super::Accounts::register), in [`super::login`].)

use chrono::Utc;

use super::{
    NotificationPreferences, Role, StoredUser, User, check_text, email_key, password, user_key,
};
use crate::ports::records::{Condition, Item, TxOp};
use crate::service::{ServiceError, ServiceResult};
use crate::stats::Tally;
use crate::{PortError, RecordStore};

/// Trim and lower-case an email, and check its shape.
pub fn normalise_email(raw: &str) -> ServiceResult<String> {
    let email = raw.trim_matches(is_space).to_lowercase();
    // As the API document's pattern states it: at most 254 characters as sent, one `@`, a
    // domain of two or more non-empty labels, no whitespace (but around it) and no control
    // characters.
    let valid = raw.chars().count() <= 254
        && !email.chars().any(|c| is_space(c) || c.is_control())
        && email.split_once('@').is_some_and(|(local, domain)| {
            !local.is_empty()
                && !domain.contains('@')
                && domain.split('.').count() >= 2
                && domain.split('.').all(|label| !label.is_empty())
        });
    if valid {
        Ok(email)
    } else {
        Err(ServiceError::field("email", "not a valid email address"))
    }
}

/// Whitespace as the API document's patterns (ECMAScript's `\s`) mean it.
fn is_space(c: char) -> bool {
    matches!(
        c,
        '\t' | '\n' | '\u{b}' | '\u{c}' | '\r' | ' ' | '\u{a0}' | '\u{1680}' | '\u{2000}'
            ..='\u{200a}'
                | '\u{2028}'
                | '\u{2029}'
                | '\u{202f}'
                | '\u{205f}'
                | '\u{3000}'
                | '\u{feff}'
    )
}

/// The account record, listed in gsi1 under `USERS` by email for the admin's list.
pub(super) fn user_item(stored: &StoredUser) -> ServiceResult<Item> {
    let item = Item::from_value(&user_key(&stored.user.id), stored)?
        .with_gsi1("USERS", stored.user.email.as_str());
    Ok(match stored.user.role {
        Role::Admin => item.with_gsi2(super::ADMINS_INDEX, stored.user.id.as_str()),
        Role::User => item,
    })
}

/// Create an account (any role). Two concurrent registrations of one email give one account.
pub async fn register(
    records: &dyn RecordStore,
    email: &str,
    password: &str,
    full_name: Option<String>,
    role: Role,
) -> ServiceResult<User> {
    let email = normalise_email(email)?;
    if let Some(why) = password::policy_violation(password, &email) {
        return Err(ServiceError::field("password", why));
    }
    check_text("full_name", &full_name, 200)?;
    let now = Utc::now();
    let user = User {
        id: uuid::Uuid::new_v4().to_string(),
        email: email.clone(),
        full_name: full_name.filter(|n| !n.trim().is_empty()),
        organization: None,
        bio: None,
        avatar_url: None,
        role,
        is_active: true,
        notification_preferences: NotificationPreferences::default(),
        created_at: now,
        updated_at: now,
    };
    let stored = StoredUser {
        user: user.clone(),
        password_hash: password::hash(password),
    };
    let ops = vec![
        TxOp::Put {
            item: user_item(&stored)?,
            condition: Some(Condition::NotExists),
        },
        TxOp::Put {
            item: Item::new(&email_key(&email)).with("user_id", user.id.as_str()),
            condition: Some(Condition::NotExists),
        },
    ];
    let tally = Tally::of(&user.id).registered();
    match tally.commit(records, ops).await {
        Ok(()) => Ok(user),
        Err(PortError::TransactionCanceled { failed }) if failed.contains(&1) => Err(
            ServiceError::Conflict("an account with this email already exists".into()),
        ),
        Err(e) => Err(e.into()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn emails_are_trimmed_lowered_and_shaped() {
        assert_eq!(
            normalise_email("\u{a0} Ada@Example.COM\t").unwrap(),
            "ada@example.com"
        );
        for bad in [
            "",
            "ada",
            "ada@",
            "@example.com",
            "ada@example",
            "a@b@c.d",
            "a b@c.d",
        ] {
            assert!(normalise_email(bad).is_err(), "{bad:?}");
        }
        assert!(normalise_email(&format!("{}@example.com", "a".repeat(243))).is_err());
        assert!(normalise_email("ada@example..com").is_err());
        assert!(normalise_email("ada\u{7}@example.com").is_err());
    }
}
