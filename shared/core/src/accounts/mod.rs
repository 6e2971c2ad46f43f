//! Accounts: registration, login with lockout, rotating refresh tokens with reuse
//! detection, profiles, erasure and export, and the admin's view with its audit log.
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

pub mod login;
pub mod password;
pub mod tokens;

pub use login::{ClientId, LoginPolicy};

use std::time::Duration;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use crate::ports::records::{Condition, Index, Item, Key, Query, SortKey, TxOp, Update};
use crate::service::{RequestContext, ServiceError, ServiceResult};
use std::sync::Arc;

use crate::{ObjectStore, PortError, RecordStore, Settings, Topic};
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

#[derive(Debug, Clone, Serialize, Deserialize)]
struct StoredUser {
    #[serde(flatten)]
    user: User,
    password_hash: String,
}

/// The tokens a login or refresh hands out.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct TokenPair {
    pub access_token: String,
    pub refresh_token: String,
    /// Always `bearer`.
    pub token_type: String,
    /// Seconds until the access token expires.
    pub expires_in: i64,
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

/// Changes to a profile; absent fields stay as they are, `null` clears a text field.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
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
    pub notification_preferences: Option<NotificationPreferences>,
}

fn double_option<'de, D, T>(d: D) -> Result<Option<Option<T>>, D::Error>
where
    D: serde::Deserializer<'de>,
    T: Deserialize<'de>,
{
    Option::<T>::deserialize(d).map(Some)
}

/// Filters of the admin's user list.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct UserFilter {
    pub role: Option<Role>,
    pub is_active: Option<bool>,
    pub email_prefix: Option<String>,
}

/// One entry of the audit log.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct AuditEntry {
    pub id: String,
    pub at: DateTime<Utc>,
    /// The acting user's id (`null` once that user has been erased).
    pub actor_id: Option<String>,
    pub action: String,
    /// The affected user or resource.
    pub target_id: Option<String>,
    pub request_id: String,
    #[cfg_attr(feature = "openapi", schema(value_type = Object))]
    pub details: Value,
}

/// A page of results with the cursor of the next one.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Paged<T> {
    pub items: Vec<T>,
    /// Pass as `cursor` to get the next page; absent on the last page.
    pub next_cursor: Option<String>,
}

/// One audited change an administrator makes to a user.
struct AdminChange<'a> {
    action: &'a str,
    update: Update,
    condition: Condition,
    details: Value,
}

fn user_key(id: &str) -> Key {
    Key::new(format!("USER#{id}"), "PROFILE")
}

fn email_key(email: &str) -> Key {
    Key::new(format!("EMAIL#{email}"), "EMAIL")
}

fn session_key(user: &str, sid: &str) -> Key {
    Key::new(format!("USER#{user}"), format!("SESSION#{sid}"))
}

fn token_key(user: &str, hash: &str) -> Key {
    Key::new(format!("USER#{user}"), format!("TOKEN#{hash}"))
}

pub const AUDIT_PK: &str = "AUDIT";

/// The object-store prefix holding a user's files (results, canonical copies...).
pub fn user_prefix(user_id: &str) -> String {
    format!("users/{user_id}/")
}

/// The object-store prefix where a user's uploads land (the ingestion trigger's prefix).
pub fn upload_prefix(user_id: &str) -> String {
    format!("uploads/{user_id}/")
}

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

    async fn user_id_for_email(&self, email: &str) -> ServiceResult<Option<String>> {
        let guard = self.records.get(&email_key(email)).await?;
        Ok(guard.and_then(|g| g.str("user_id").map(str::to_owned)))
    }

    async fn start_session(&self, user: &User) -> ServiceResult<TokenPair> {
        let sid = uuid::Uuid::new_v4().to_string();
        let refresh = tokens::new_refresh_token(&user.id);
        let (_, hash) = tokens::parse_refresh_token(&refresh).expect("fresh token parses");
        let now = Utc::now();
        let ops = vec![
            TxOp::Put {
                item: Item::new(&session_key(&user.id, &sid))
                    .with("revoked", false)
                    .with("created_at", now.to_rfc3339()),
                condition: Some(Condition::NotExists),
            },
            TxOp::Put {
                item: self.token_item(&user.id, &hash, &sid),
                condition: Some(Condition::NotExists),
            },
        ];
        self.records.transact(ops).await?;
        Ok(self.pair(user, &sid, refresh))
    }

    fn token_item(&self, user_id: &str, hash: &str, sid: &str) -> Item {
        Item::new(&token_key(user_id, hash))
            .with("session_id", sid)
            .with("used", false)
            .with("expires_at", (Utc::now() + self.refresh_ttl).timestamp())
    }

    fn pair(&self, user: &User, sid: &str, refresh: String) -> TokenPair {
        TokenPair {
            access_token: self.tokens.issue(&user.id, user.role, sid),
            refresh_token: refresh,
            token_type: "bearer".into(),
            expires_in: self.tokens.ttl_seconds(),
        }
    }

    async fn revoke_session(&self, user_id: &str, sid: &str) -> ServiceResult<()> {
        let update = Update::default().set("revoked", true);
        match self
            .records
            .update(&session_key(user_id, sid), update, Some(Condition::Exists))
            .await
        {
            Ok(_) | Err(PortError::ConditionFailed) => Ok(()),
            Err(e) => Err(e.into()),
        }
    }

    /// Rotate a refresh token. A token presented twice revokes its whole session.
    pub async fn refresh(&self, refresh_token: &str) -> ServiceResult<TokenPair> {
        let invalid = || ServiceError::Unauthorized("invalid or expired refresh token".into());
        let (user_id, hash) = tokens::parse_refresh_token(refresh_token).ok_or_else(invalid)?;
        let records = &self.records;
        let token = records
            .get(&token_key(&user_id, &hash))
            .await?
            .ok_or_else(invalid)?;
        let sid = token.str("session_id").unwrap_or_default().to_owned();
        if token.get("used") == Some(&Value::Bool(true)) {
            self.revoke_session(&user_id, &sid).await?;
            security_event(
                "refresh_token_reuse",
                json!({ "user_id": user_id, "session_id": sid }),
            );
            return Err(invalid());
        }
        if token
            .i64("expires_at")
            .is_some_and(|e| e <= Utc::now().timestamp())
        {
            return Err(invalid());
        }
        let user = self.stored_user(&user_id).await?.ok_or_else(invalid)?.user;
        if !user.is_active {
            return Err(ServiceError::Unauthorized(
                "this account is deactivated".into(),
            ));
        }
        let next = tokens::new_refresh_token(&user_id);
        let (_, next_hash) = tokens::parse_refresh_token(&next).expect("fresh token parses");
        let ops = vec![
            TxOp::Update {
                key: token_key(&user_id, &hash),
                update: Update::default().set("used", true),
                condition: Some(Condition::eq("used", false)),
            },
            TxOp::Put {
                item: self.token_item(&user_id, &next_hash, &sid),
                condition: Some(Condition::NotExists),
            },
            TxOp::Check {
                key: session_key(&user_id, &sid),
                condition: Condition::eq("revoked", false),
            },
        ];
        match records.transact(ops).await {
            Ok(()) => Ok(self.pair(&user, &sid, next)),
            Err(PortError::TransactionCanceled { failed }) if failed.contains(&0) => {
                // Another request rotated this token first: a reuse.
                self.revoke_session(&user_id, &sid).await?;
                security_event(
                    "refresh_token_reuse",
                    json!({ "user_id": user_id, "session_id": sid }),
                );
                Err(invalid())
            }
            Err(PortError::TransactionCanceled { .. }) => Err(invalid()),
            Err(e) => Err(e.into()),
        }
    }

    /// The caller of a bearer token: valid signature and claims, an existing active
    /// account and a live session — checked on every request.
    pub async fn authenticate(&self, bearer: &str) -> ServiceResult<Principal> {
        let invalid = || ServiceError::Unauthorized("invalid or expired access token".into());
        let claims = self.tokens.verify(bearer).ok_or_else(invalid)?;
        let records = &self.records;
        let sk = session_key(&claims.sub, &claims.sid);
        let (user, session) = tokio::join!(self.stored_user(&claims.sub), records.get(&sk));
        let user = user?.ok_or_else(invalid)?.user;
        let session = session?.ok_or_else(invalid)?;
        if !user.is_active {
            return Err(ServiceError::Unauthorized(
                "this account is deactivated".into(),
            ));
        }
        if session.get("revoked") != Some(&Value::Bool(false)) {
            return Err(invalid());
        }
        Ok(Principal {
            user,
            session_id: claims.sid,
        })
    }

    /// End the caller's session: its refresh tokens and access tokens stop working.
    pub async fn logout(&self, who: &Principal) -> ServiceResult<()> {
        self.revoke_session(&who.user.id, &who.session_id).await
    }

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
            update = update.set(
                "notification_preferences",
                serde_json::to_value(p).expect("serialises"),
            );
        }
        let item = self
            .records
            .update(&user_key(&who.user.id), update, Some(Condition::Exists))
            .await?;
        Ok(item.to_value::<StoredUser>()?.user)
    }

    /// Remember a device push token of the caller.
    pub async fn register_push_token(
        &self,
        who: &Principal,
        token: &str,
        platform: &str,
    ) -> ServiceResult<()> {
        if token.trim().is_empty() || token.chars().count() > 4096 {
            return Err(ServiceError::field("token", "must be 1..=4096 characters"));
        }
        if !["ios", "android", "web"].contains(&platform) {
            return Err(ServiceError::field("platform", "one of ios, android, web"));
        }
        let key = Key::new(
            format!("USER#{}", who.user.id),
            format!("PUSH#{}", tokens::sha256_hex(token)),
        );
        let item = Item::new(&key)
            .with("token", token)
            .with("platform", platform)
            .with("registered_at", Utc::now().to_rfc3339());
        self.records.put(item, None).await?;
        Ok(())
    }

    async fn partition(&self, user_id: &str) -> ServiceResult<Vec<Item>> {
        let mut q = Query::partition(Index::Primary, format!("USER#{user_id}")).limit(1000);
        let mut all = Vec::new();
        loop {
            let page = self.records.query(&q).await?;
            all.extend(page.items);
            match page.next {
                Some(c) => q.cursor = Some(c),
                None => return Ok(all),
            }
        }
    }

    /// Right to erasure: delete everything of the caller, keep one anonymised audit entry.
    pub async fn delete_account(&self, who: &Principal, ctx: &RequestContext) -> ServiceResult<()> {
        let id = &who.user.id;
        let mut objects = self.objects.delete_prefix(&user_prefix(id)).await?;
        objects += self.objects.delete_prefix(&upload_prefix(id)).await?;
        let items = self.partition(id).await?;
        let records = &self.records;
        // The account itself last, so a failure half-way can be retried by the same user.
        for item in items.iter().filter(|i| i.str("sk") != Some("PROFILE")) {
            records.delete(&item.key(), None).await?;
        }
        self.forget_login_failures(&who.user.email).await?;
        self.anonymise_audit(id).await?;
        let audit = audit_item(
            None,
            "user.erased",
            None,
            ctx,
            json!({ "items": items.len(), "objects": objects }),
        );
        records
            .transact(vec![
                TxOp::Delete {
                    key: user_key(id),
                    condition: None,
                },
                TxOp::Delete {
                    key: email_key(&who.user.email),
                    condition: None,
                },
                TxOp::Put {
                    item: audit,
                    condition: None,
                },
            ])
            .await?;
        security_event("account_erased", json!({ "request_id": ctx.request_id }));
        Ok(())
    }

    /// Remove a user's id from the audit entries that name them (as actor or target).
    async fn anonymise_audit(&self, user_id: &str) -> ServiceResult<()> {
        let lookups = [
            (Index::Gsi1, format!("AUDITBY#{user_id}"), "actor_id"),
            (Index::Gsi2, format!("AUDITON#{user_id}"), "target_id"),
        ];
        for (index, pk, field) in lookups {
            let mut q = Query::partition(index, pk).limit(100);
            let mut keys = Vec::new();
            loop {
                let page = self.records.query(&q).await?;
                keys.extend(page.items.iter().map(Item::key));
                match page.next {
                    Some(c) => q.cursor = Some(c),
                    None => break,
                }
            }
            let (ipk, isk) = index.attrs();
            for key in keys {
                let update = Update::default()
                    .set(field, Value::Null)
                    .remove(ipk)
                    .remove(isk);
                self.records
                    .update(&key, update, Some(Condition::Exists))
                    .await?;
            }
        }
        Ok(())
    }

    /// Right to portability: everything stored about the caller, with links to their files.
    pub async fn export(&self, who: &Principal) -> ServiceResult<Value> {
        let items = self.partition(&who.user.id).await?;
        let mut records = Vec::new();
        for mut item in items {
            for secret in [
                "password_hash",
                "pk",
                "gsi1pk",
                "gsi1sk",
                "gsi2pk",
                "gsi2sk",
            ] {
                item.0.remove(secret);
            }
            records.push(Value::Object(item.0));
        }
        let mut files = Vec::new();
        let ttl = Duration::from_secs(3600);
        let mut stored = self.objects.list(&upload_prefix(&who.user.id)).await?;
        stored.extend(self.objects.list(&user_prefix(&who.user.id)).await?);
        for meta in stored {
            let link = self.objects.presign_get(&meta.key, ttl).await?;
            files.push(json!({ "key": meta.key, "size": meta.size, "content_type": meta.content_type, "url": link.url, "expires_at": link.expires_at }));
        }
        Ok(
            json!({ "exported_at": Utc::now(), "user": who.user, "records": records, "files": files }),
        )
    }

    /// The admin's list of users.
    pub async fn list_users(
        &self,
        filter: &UserFilter,
        limit: usize,
        cursor: Option<String>,
    ) -> ServiceResult<Paged<User>> {
        let limit = limit.clamp(1, 100);
        let prefix = filter
            .email_prefix
            .as_deref()
            .map(|p| p.trim().to_lowercase())
            .unwrap_or_default();
        let sk = if prefix.is_empty() {
            SortKey::Any
        } else {
            SortKey::BeginsWith(prefix)
        };
        let mut q = Query::partition(Index::Gsi1, "USERS")
            .sk(sk)
            .limit(limit)
            .after(cursor);
        let mut users = Vec::new();
        // Role and activity are filtered here; bounded reads keep a sparse filter cheap.
        for _ in 0..20 {
            let page = self.records.query(&q).await?;
            let mut last = None;
            for item in page.items {
                last = Some(item.clone());
                let u = item.to_value::<StoredUser>()?.user;
                if filter.role.is_none_or(|r| r == u.role)
                    && filter.is_active.is_none_or(|a| a == u.is_active)
                {
                    users.push(u);
                    if users.len() == limit {
                        break;
                    }
                }
            }
            let next = match (users.len() == limit, page.next, last) {
                (true, _, Some(last)) => {
                    // Continue right after the last item looked at.
                    let probe = q
                        .clone()
                        .after(Some(
                            crate::ports::records::Cursor::after(&last, Index::Gsi1).encode(),
                        ))
                        .limit(1);
                    let more = !self.records.query(&probe).await?.items.is_empty();
                    more.then(|| probe.cursor.unwrap())
                }
                (false, Some(next), _) => {
                    q.cursor = Some(next);
                    continue;
                }
                _ => None,
            };
            return Ok(Paged {
                items: users,
                next_cursor: next,
            });
        }
        Ok(Paged {
            items: users,
            next_cursor: q.cursor,
        })
    }

    async fn admin_change(
        &self,
        admin: &Principal,
        target_id: &str,
        change: AdminChange<'_>,
        ctx: &RequestContext,
    ) -> ServiceResult<User> {
        let AdminChange {
            action,
            update,
            condition,
            details,
        } = change;
        if target_id == admin.user.id {
            return Err(ServiceError::Conflict(
                "administrators cannot change their own role or status".into(),
            ));
        }
        let audit = audit_item(Some(&admin.user.id), action, Some(target_id), ctx, details);
        let ops = vec![
            TxOp::Update {
                key: user_key(target_id),
                update,
                condition: Some(condition),
            },
            TxOp::Put {
                item: audit,
                condition: None,
            },
        ];
        match self.records.transact(ops).await {
            Ok(()) => {}
            Err(PortError::TransactionCanceled { failed }) if failed.contains(&0) => {
                return Err(match self.stored_user(target_id).await? {
                    None => ServiceError::NotFound("no such user".into()),
                    Some(_) => {
                        ServiceError::Conflict("the user was changed concurrently; retry".into())
                    }
                });
            }
            Err(e) => return Err(e.into()),
        }
        let user = self
            .stored_user(target_id)
            .await?
            .ok_or_else(|| ServiceError::NotFound("no such user".into()))?
            .user;
        security_event(
            action,
            json!({ "actor": admin.user.id, "target": target_id, "request_id": ctx.request_id }),
        );
        Ok(user)
    }

    /// Activate or deactivate a user; a deactivated user's tokens stop working at once.
    pub async fn toggle_user(
        &self,
        admin: &Principal,
        target_id: &str,
        ctx: &RequestContext,
    ) -> ServiceResult<User> {
        let current = self
            .stored_user(target_id)
            .await?
            .ok_or_else(|| ServiceError::NotFound("no such user".into()))?
            .user;
        let next = !current.is_active;
        let update = Update::default()
            .set("is_active", next)
            .set("updated_at", Utc::now().to_rfc3339());
        let action = if next {
            "user.activated"
        } else {
            "user.deactivated"
        };
        let details = json!({ "is_active": next });
        let condition = Condition::eq("is_active", current.is_active);
        let change = AdminChange {
            action,
            update,
            condition,
            details,
        };
        self.admin_change(admin, target_id, change, ctx).await
    }

    /// Change a user's role.
    pub async fn set_role(
        &self,
        admin: &Principal,
        target_id: &str,
        role: Role,
        ctx: &RequestContext,
    ) -> ServiceResult<User> {
        let current = self
            .stored_user(target_id)
            .await?
            .ok_or_else(|| ServiceError::NotFound("no such user".into()))?
            .user;
        let update = Update::default()
            .set("role", role.as_str())
            .set("updated_at", Utc::now().to_rfc3339());
        let details = json!({ "from": current.role, "to": role });
        let action = "user.role_changed";
        let change = AdminChange {
            action,
            update,
            condition: Condition::Exists,
            details,
        };
        self.admin_change(admin, target_id, change, ctx).await
    }

    /// The audit log, newest first.
    pub async fn audit_log(
        &self,
        limit: usize,
        cursor: Option<String>,
    ) -> ServiceResult<Paged<AuditEntry>> {
        let q = Query::partition(Index::Primary, AUDIT_PK)
            .backward()
            .limit(limit.clamp(1, 100))
            .after(cursor);
        let page = self.records.query(&q).await?;
        let items = page
            .items
            .iter()
            .map(Item::to_value)
            .collect::<Result<Vec<AuditEntry>, _>>()?;
        Ok(Paged {
            items,
            next_cursor: page.next,
        })
    }
}

fn user_item(stored: &StoredUser) -> ServiceResult<Item> {
    Ok(Item::from_value(&user_key(&stored.user.id), stored)?
        .with_gsi1("USERS", stored.user.email.as_str()))
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
    if let Some(why) = password::policy_violation(password) {
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
    match records.transact(ops).await {
        Ok(()) => Ok(user),
        Err(PortError::TransactionCanceled { failed }) if failed.contains(&1) => Err(
            ServiceError::Conflict("an account with this email already exists".into()),
        ),
        Err(e) => Err(e.into()),
    }
}

/// Create an administrator (the first one, from the command line), with an audit entry.
pub async fn create_admin(
    records: &dyn RecordStore,
    email: &str,
    password: &str,
    ctx: &RequestContext,
) -> ServiceResult<User> {
    let user = register(records, email, password, None, Role::Admin).await?;
    let audit = audit_item(
        None,
        "admin.created",
        Some(&user.id),
        ctx,
        json!({ "via": "cli" }),
    );
    records.put(audit, None).await?;
    Ok(user)
}

pub(crate) fn audit_item(
    actor: Option<&str>,
    action: &str,
    target: Option<&str>,
    ctx: &RequestContext,
    details: Value,
) -> Item {
    let now = Utc::now();
    let entry = AuditEntry {
        id: uuid::Uuid::new_v4().to_string(),
        at: now,
        actor_id: actor.map(str::to_owned),
        action: action.into(),
        target_id: target.map(str::to_owned),
        request_id: ctx.request_id.clone(),
        details,
    };
    let sk = format!("{}#{}", now.format("%Y-%m-%dT%H:%M:%S%.6fZ"), entry.id);
    let mut item =
        Item::from_value(&Key::new(AUDIT_PK, &sk), &entry).expect("audit entry is an object");
    // Indexed by actor and by target, so erasure finds a user's entries without a scan.
    if let Some(actor) = actor {
        item = item.with_gsi1(format!("AUDITBY#{actor}"), sk.as_str());
    }
    if let Some(target) = target {
        item = item.with_gsi2(format!("AUDITON#{target}"), sk.as_str());
    }
    item
}
