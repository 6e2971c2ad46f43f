//! What administrators do: list users (filtered by role, activity and email prefix),
//! activate or deactivate them, change their role, and read the audit log. Every change
//! is written in one transaction with its audit entry, so the log misses nothing; an
//! administrator cannot change their own role or status (no lock-out by mistake).

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use super::registration::register;
use super::{Accounts, Principal, Role, StoredUser, User, security_event, user_key};
use crate::ports::Paged;
use crate::ports::records::{Condition, Cursor, Index, Item, Key, Query, SortKey, TxOp, Update};
use crate::service::{RequestContext, ServiceError, ServiceResult};
use crate::{PortError, RecordStore};

/// The partition of the audit log.
pub const AUDIT_PK: &str = "AUDIT";

/// Most query pages one user listing reads while filtering, so a sparse filter stays cheap.
const LIST_READS: usize = 20;

/// Filters of the admin's user list.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct UserFilter {
    pub role: Option<Role>,
    pub is_active: Option<bool>,
    pub email_prefix: Option<String>,
}

impl UserFilter {
    fn admits(&self, u: &User) -> bool {
        self.role.is_none_or(|r| r == u.role) && self.is_active.is_none_or(|a| a == u.is_active)
    }
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

/// One audited change an administrator makes to a user.
struct AdminChange<'a> {
    action: &'a str,
    update: Update,
    condition: Condition,
    details: Value,
}

impl Accounts {
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
        // Role and activity are filtered here.
        for _ in 0..LIST_READS {
            let page = self.records.query(&q).await?;
            let mut last = None;
            for item in page.items {
                let u = item.to_value::<StoredUser>()?.user;
                last = Some(item);
                if filter.admits(&u) {
                    users.push(u);
                    if users.len() == limit {
                        break;
                    }
                }
            }
            let next_cursor = match (users.len() == limit, page.next, last) {
                (true, _, Some(last)) => self.cursor_if_more(&q, &last).await?,
                (false, Some(next), _) => {
                    q.cursor = Some(next);
                    continue;
                }
                _ => None,
            };
            return Ok(Paged {
                items: users,
                next_cursor,
            });
        }
        Ok(Paged {
            items: users,
            next_cursor: q.cursor,
        })
    }

    /// The cursor right after `last` (the last item looked at) when anything follows it.
    async fn cursor_if_more(&self, q: &Query, last: &Item) -> ServiceResult<Option<String>> {
        let after = Cursor::after(last, q.index).encode();
        let probe = q.clone().after(Some(after.clone())).limit(1);
        let more = !self.records.query(&probe).await?.items.is_empty();
        Ok(more.then_some(after))
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
                // Gone, or changed since it was read.
                self.existing_user(target_id).await?;
                return Err(ServiceError::Conflict(
                    "the user was changed concurrently; retry".into(),
                ));
            }
            Err(e) => return Err(e.into()),
        }
        let user = self.existing_user(target_id).await?;
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
        let current = self.existing_user(target_id).await?;
        let next = !current.is_active;
        let change = AdminChange {
            action: if next {
                "user.activated"
            } else {
                "user.deactivated"
            },
            update: Update::default()
                .set("is_active", next)
                .set("updated_at", Utc::now().to_rfc3339()),
            condition: Condition::eq("is_active", current.is_active),
            details: json!({ "is_active": next }),
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
        let current = self.existing_user(target_id).await?;
        let change = AdminChange {
            action: "user.role_changed",
            update: admin_index(
                Update::default()
                    .set("role", role.as_str())
                    .set("updated_at", Utc::now().to_rfc3339()),
                target_id,
                role,
            ),
            condition: Condition::Exists,
            details: json!({ "from": current.role, "to": role }),
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
        Ok(self.records.query(&q).await?.decode()?)
    }
}

/// The account in the `ADMINS` index (gsi2) exactly while its role is admin, so admin
/// alerts find every administrator without scanning the users.
fn admin_index(update: Update, user_id: &str, role: Role) -> Update {
    match role {
        Role::Admin => update
            .set("gsi2pk", super::ADMINS_INDEX)
            .set("gsi2sk", user_id),
        Role::User => update.remove("gsi2pk").remove("gsi2sk"),
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

/// An entry of the audit log, indexed by actor (gsi1) and by target (gsi2) so erasure
/// finds a user's entries without a scan. (Other services audit their changes with it.)
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
    if let Some(actor) = actor {
        item = item.with_gsi1(format!("AUDITBY#{actor}"), sk.as_str());
    }
    if let Some(target) = target {
        item = item.with_gsi2(format!("AUDITON#{target}"), sk.as_str());
    }
    item
}
