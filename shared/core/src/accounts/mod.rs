//! Accounts: registration, login with throttling, rotating refresh tokens with reuse
//! detection, profiles, erasure and export, and the admin's view with its audit log.
//!
//! One module per concern, all on the one [`Accounts`] service:
//! - [`registration`] — creating accounts (the unique-email guard, the password policy);
//! - [`login`] — exchanging credentials for tokens, and its brute-force throttling;
//! - [`sessions`] — refresh-token rotation with reuse detection, authentication, logout;
//! - [`profile`] — a user's own profile and device push tokens;
//! - [`erasure`] — the right to erasure and the right to portability (export);
//! - [`admin`] — the administrators' user list, role and activation changes, audit log.
//!
//! Records (one DynamoDB-shaped table, see `ports::records`):
//! - `USER#{id}` / `PROFILE` — the account; in gsi1 under `USERS` / email (admin listing).
//! - `USER#{id}` / `SESSION#{sid}` — a refresh-token family; `revoked` ends it.
//! - `USER#{id}` / `TOKEN#{sha256}` — one refresh token of a session; `used` once rotated.
//! - `USER#{id}` / `PUSH#{sha256}` — a device push token, with its push `endpoint` where a
//!   platform application serves its platform.
//! - Administrators' accounts are also in gsi2 under `ADMINS`, for admin alerts.
//! - `USER#{id}` / `NOTIF#…`, `NOTIFSTATE` — notifications (see `notifications`).
//! - `EMAIL#{email}` / `EMAIL` — the unique-email guard, written in the same transaction as
//!   the account.
//! - `LOGIN#…`, `LOGINCLIENT#…` — failed-login counters (see [`login`]).
//! - `AUDIT` / `{time}#{id}` — the audit log, written in the same transaction as the change.
//!
//! Everything a user owns lives in their `USER#{id}` partition or under `users/{id}/` in
//! the object store, so erasure is one partition and one prefix.

pub mod admin;
pub mod erasure;
pub mod login;
pub mod password;
pub mod profile;
pub mod registration;
pub mod sessions;
pub mod tokens;

pub(crate) use admin::audit_item;
pub use admin::{AUDIT_PK, AuditEntry, UserFilter, create_admin};
pub use login::{ClientId, LoginPolicy};
pub use profile::ProfileUpdate;
pub use registration::{normalise_email, register};
pub use sessions::TokenPair;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::notifications::NotificationKind;
use crate::ports::records::Key;
use crate::service::{ServiceError, ServiceResult};
use crate::{NoPush, ObjectStore, Push, RecordStore, Settings, Topic};
use tokens::TokenIssuer;

/// What an account may do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "lowercase")]
pub enum Role {
    User,
    Admin,
}

impl Role {
    pub fn as_str(self) -> &'static str {
        match self {
            Role::User => "user",
            Role::Admin => "admin",
        }
    }
}

/// Which notifications a user wants, by channel. In-app notifications are always kept (they
/// are the account's record of what happened); push can be turned off as a whole or per kind.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct NotificationPreferences {
    pub email: bool,
    /// Push to the user's registered devices at all.
    pub push: bool,
    /// Kept for clients that show it; in-app notifications are always recorded.
    pub in_app: bool,
    /// Push per kind (`"generation.completed": false`); a kind not named follows `push`.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub push_kinds: BTreeMap<NotificationKind, bool>,
}

impl NotificationPreferences {
    /// Whether a notification of `kind` is pushed to the user's devices.
    pub fn pushes(&self, kind: NotificationKind) -> bool {
        self.push && self.push_kinds.get(&kind).copied().unwrap_or(true)
    }
}

impl Default for NotificationPreferences {
    fn default() -> Self {
        Self {
            email: true,
            push: true,
            in_app: true,
            push_kinds: BTreeMap::new(),
        }
    }
}

/// An account as clients see it (never the password hash).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct User {
    pub id: String,
    pub email: String,
    pub full_name: Option<String>,
    pub organization: Option<String>,
    pub bio: Option<String>,
    pub avatar_url: Option<String>,
    pub role: Role,
    pub is_active: bool,
    pub notification_preferences: NotificationPreferences,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

/// The account record: the user and their password hash.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct StoredUser {
    #[serde(flatten)]
    user: User,
    password_hash: String,
}

/// The authenticated caller of a request.
#[derive(Debug, Clone, PartialEq)]
pub struct Principal {
    pub user: User,
    pub session_id: String,
}

impl Principal {
    pub fn is_admin(&self) -> bool {
        self.user.role == Role::Admin
    }
}

pub(crate) fn user_key(id: &str) -> Key {
    Key::new(format!("USER#{id}"), "PROFILE")
}

fn email_key(email: &str) -> Key {
    Key::new(format!("EMAIL#{email}"), "EMAIL")
}

/// The gsi2 partition of the administrators' accounts.
pub const ADMINS_INDEX: &str = "ADMINS";

/// The partition holding everything of a user's.
pub(crate) fn user_partition(id: &str) -> String {
    format!("USER#{id}")
}

/// The object-store prefix holding a user's files (results, canonical copies...).
pub fn user_prefix(user_id: &str) -> String {
    format!("users/{user_id}/")
}

/// The object-store prefix where a user's uploads land (the ingestion trigger's prefix).
pub fn upload_prefix(user_id: &str) -> String {
    format!("uploads/{user_id}/")
}

/// A text field of at most `max` characters (when present).
fn check_text(field: &str, value: &Option<String>, max: usize) -> ServiceResult<()> {
    match value {
        Some(v) if v.chars().count() > max => Err(ServiceError::field(
            field,
            format!("at most {max} characters"),
        )),
        _ => Ok(()),
    }
}

fn security_event(event: &str, fields: Value) {
    tracing::warn!(target: "security", event, details = %fields, "security event");
}

/// The accounts service over the platform's backends.
#[derive(Clone)]
pub struct Accounts {
    records: Arc<dyn RecordStore>,
    objects: Arc<dyn ObjectStore>,
    topic: Arc<dyn Topic>,
    push: Arc<dyn Push>,
    tokens: TokenIssuer,
    refresh_ttl: chrono::Duration,
    policy: LoginPolicy,
}

impl Accounts {
    /// The service over the records and objects; security alerts go to `topic`.
    pub fn new(
        records: Arc<dyn RecordStore>,
        objects: Arc<dyn ObjectStore>,
        topic: Arc<dyn Topic>,
        settings: &Settings,
    ) -> Self {
        let max_failures = settings.login_max_attempts as i64;
        Self {
            records,
            objects,
            topic,
            push: Arc::new(NoPush),
            tokens: TokenIssuer::new(&settings.secret_key, settings.access_token_expire_minutes),
            refresh_ttl: chrono::Duration::days(settings.refresh_token_expire_days as i64),
            policy: LoginPolicy {
                max_failures,
                max_client_failures: max_failures * 4,
                alert_failures: max_failures * 4,
                window: Duration::from_secs(settings.login_window_minutes * 60),
                max_delay: Duration::from_secs(settings.login_lockout_minutes * 60),
            },
        }
    }

    /// The same service registering device tokens with `push`.
    pub fn with_push(mut self, push: Arc<dyn Push>) -> Self {
        self.push = push;
        self
    }

    async fn stored_user(&self, id: &str) -> ServiceResult<Option<StoredUser>> {
        let item = self.records.get(&user_key(id)).await?;
        Ok(match item {
            Some(item) => Some(item.to_value()?),
            None => None,
        })
    }

    /// The account `id`; `NotFound` when there is none.
    async fn existing_user(&self, id: &str) -> ServiceResult<User> {
        match self.stored_user(id).await? {
            Some(stored) => Ok(stored.user),
            None => Err(ServiceError::NotFound("no such user".into())),
        }
    }

    async fn user_id_for_email(&self, email: &str) -> ServiceResult<Option<String>> {
        let guard = self.records.get(&email_key(email)).await?;
        Ok(guard.and_then(|g| g.str("user_id").map(str::to_owned)))
    }
}
