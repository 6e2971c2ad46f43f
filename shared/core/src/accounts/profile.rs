//! A user's own profile (name, organisation, bio, avatar, notification preferences) and
//! the push tokens of their devices.

use std::collections::BTreeMap;

use chrono::Utc;
use serde::{Deserialize, Serialize};

use super::{
    Accounts, NotificationPreferences, Principal, StoredUser, User, check_text, tokens, user_key,
    user_partition,
};
use crate::notifications::NotificationKind;
use crate::ports::records::{Condition, Item, Key, Update};
use crate::service::{ServiceError, ServiceResult};

/// Changes to a profile; absent fields stay as they are, `null` clears a text field. Any
/// other field (a misspelt one, or `email`, which this does not change) is refused.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct ProfileUpdate {
    #[serde(default, deserialize_with = "double_option")]
    #[cfg_attr(feature = "openapi", schema(max_length = 200))]
    pub full_name: Option<Option<String>>,
    #[serde(default, deserialize_with = "double_option")]
    #[cfg_attr(feature = "openapi", schema(max_length = 200))]
    pub organization: Option<Option<String>>,
    #[serde(default, deserialize_with = "double_option")]
    #[cfg_attr(feature = "openapi", schema(max_length = 2000))]
    pub bio: Option<Option<String>>,
    /// An http(s) URL.
    #[serde(default, deserialize_with = "double_option")]
    #[cfg_attr(feature = "openapi", schema(max_length = 2048, pattern = "^https?://"))]
    pub avatar_url: Option<Option<String>>,
    pub notification_preferences: Option<PreferencesChange>,
}

/// Changes to the notification preferences; absent fields stay as they are (`push_kinds`,
/// when given, replaces the kinds named before).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct PreferencesChange {
    pub email: Option<bool>,
    pub push: Option<bool>,
    pub in_app: Option<bool>,
    /// Push per kind (`"generation.completed": false`); a kind not named follows `push`.
    pub push_kinds: Option<BTreeMap<NotificationKind, bool>>,
}

impl PreferencesChange {
    /// `current` with this change made.
    pub fn apply(self, current: NotificationPreferences) -> NotificationPreferences {
        NotificationPreferences {
            email: self.email.unwrap_or(current.email),
            push: self.push.unwrap_or(current.push),
            in_app: self.in_app.unwrap_or(current.in_app),
            push_kinds: self.push_kinds.unwrap_or(current.push_kinds),
        }
    }
}

impl From<NotificationPreferences> for PreferencesChange {
    /// Every preference set as `p` has it.
    fn from(p: NotificationPreferences) -> Self {
        Self {
            email: Some(p.email),
            push: Some(p.push),
            in_app: Some(p.in_app),
            push_kinds: Some(p.push_kinds),
        }
    }
}

/// `null` as `Some(None)`, so a client can clear a field (absent stays `None`).
fn double_option<'de, D, T>(d: D) -> Result<Option<Option<T>>, D::Error>
where
    D: serde::Deserializer<'de>,
    T: Deserialize<'de>,
{
    Option::<T>::deserialize(d).map(Some)
}

/// The platforms a push token can belong to.
const PUSH_PLATFORMS: [&str; 3] = ["ios", "android", "web"];

impl Accounts {
    /// Change the caller's profile.
    pub async fn update_profile(
        &self,
        who: &Principal,
        change: ProfileUpdate,
    ) -> ServiceResult<User> {
        let mut update = Update::default().set("updated_at", Utc::now().to_rfc3339());
        let texts = [
            ("full_name", &change.full_name, 200),
            ("organization", &change.organization, 200),
            ("bio", &change.bio, 2000),
            ("avatar_url", &change.avatar_url, 2048),
        ];
        for (field, value, max) in texts {
            if let Some(v) = value {
                check_text(field, v, max)?;
                update = update.set(field, v.clone().filter(|s| !s.trim().is_empty()));
            }
        }
        if let Some(Some(url)) = &change.avatar_url
            && !(url.starts_with("https://") || url.starts_with("http://"))
        {
            return Err(ServiceError::field("avatar_url", "must be an http(s) URL"));
        }
        if let Some(p) = change.notification_preferences {
            let p = p.apply(who.user.notification_preferences.clone());
            update = update.set_json("notification_preferences", &p);
        }
        let item = self
            .records
            .update(&user_key(&who.user.id), update, Some(Condition::Exists))
            .await?;
        Ok(item.to_value::<StoredUser>()?.user)
    }

    /// Remember a device push token of the caller (registering it again replaces it), with
    /// its push endpoint where a platform application serves the platform.
    pub async fn register_push_token(
        &self,
        who: &Principal,
        token: &str,
        platform: &str,
    ) -> ServiceResult<()> {
        if token.trim().is_empty() || token.chars().count() > 4096 {
            return Err(ServiceError::field("token", "must be 1..=4096 characters"));
        }
        if !PUSH_PLATFORMS.contains(&platform) {
            return Err(ServiceError::field("platform", "one of ios, android, web"));
        }
        let key = Key::new(
            user_partition(&who.user.id),
            format!("PUSH#{}", tokens::sha256_hex(token)),
        );
        let mut item = Item::new(&key)
            .with("token", token)
            .with("platform", platform)
            .with("registered_at", Utc::now().to_rfc3339());
        if let Some(endpoint) = self.push.register(platform, token).await? {
            item = item.with("endpoint", endpoint);
        }
        self.records.put(item, None).await?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn null_clears_and_absent_keeps() {
        let u: ProfileUpdate =
            serde_json::from_str(r#"{"bio": null, "full_name": "Ada"}"#).unwrap();
        assert_eq!(u.bio, Some(None));
        assert_eq!(u.full_name, Some(Some("Ada".into())));
        assert_eq!(u.organization, None);
        assert_eq!(u.notification_preferences, None);
    }

    #[test]
    fn a_preferences_change_keeps_what_it_does_not_name() {
        let current = NotificationPreferences {
            push_kinds: [(NotificationKind::GenerationFailed, false)].into(),
            ..Default::default()
        };
        let u: ProfileUpdate =
            serde_json::from_str(r#"{"notification_preferences": {"email": false}}"#).unwrap();
        let p = u.notification_preferences.unwrap().apply(current.clone());
        assert_eq!(
            p,
            NotificationPreferences {
                email: false,
                ..current.clone()
            }
        );
        let kinds =
            r#"{"notification_preferences": {"push_kinds": {"generation.completed": false}}}"#;
        let u: ProfileUpdate = serde_json::from_str(kinds).unwrap();
        let p = u.notification_preferences.unwrap().apply(current.clone());
        assert_eq!(
            p.push_kinds,
            [(NotificationKind::GenerationCompleted, false)].into(),
            "named kinds replace the kinds named before"
        );
        assert!(p.email && p.push && p.in_app);
        assert_eq!(PreferencesChange::from(p.clone()).apply(current), p);
    }
}
