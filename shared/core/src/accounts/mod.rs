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
//! - `USER#{id}` / `PUSH#{sha256}` — a device push token.
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

use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::ports::records::Key;
use crate::service::{ServiceError, ServiceResult};
use crate::{ObjectStore, RecordStore, Settings, Topic};
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

/// Which notifications a user wants, by channel.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct NotificationPreferences {
    pub email: bool,
    pub push: bool,
    pub in_app: bool,
}

impl Default for NotificationPreferences {
    fn default() -> Self {
        Self {
            email: true,
            push: true,
            in_app: true,
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

fn user_key(id: &str) -> Key {
    Key::new(format!("USER#{id}"), "PROFILE")
}

fn email_key(email: &str) -> Key {
    Key::new(format!("EMAIL#{email}"), "EMAIL")
}

/// The partition holding everything of a user's.
fn user_partition(id: &str) -> String {
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
