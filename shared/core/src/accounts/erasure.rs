//! The right to erasure and the right to portability. Erasure deletes everything of the
//! caller's — their partition (notifications included), their devices' push endpoints,
//! their files, their login counters — and removes their id
//! from the audit log, keeping one anonymised entry that the erasure happened; export
//! hands back every record of theirs (secrets and key attributes left out) with links to
//! their files.

use std::time::Duration;

use chrono::Utc;
use serde_json::{Value, json};

use super::{
    Accounts, Principal, audit_item, email_key, security_event, upload_prefix, user_key,
    user_partition, user_prefix,
};
use crate::ports::records::{Condition, Index, Item, Query, TxOp, Update, query_all};
use crate::service::{RequestContext, ServiceResult};
use crate::stats::Tally;

/// Attributes an export leaves out: the password hash and the storage keys.
const NOT_EXPORTED: [&str; 6] = [
    "password_hash",
    "pk",
    "gsi1pk",
    "gsi1sk",
    "gsi2pk",
    "gsi2sk",
];

/// How long the links to a user's files in an export work.
const EXPORT_LINK_TTL: Duration = Duration::from_secs(3600);

impl Accounts {
    /// Every record in a user's partition.
    async fn partition(&self, user_id: &str) -> ServiceResult<Vec<Item>> {
        let q = Query::partition(Index::Primary, user_partition(user_id)).limit(1000);
        Ok(query_all(self.records.as_ref(), &q).await?)
    }

    /// Right to erasure: delete everything of the caller, keep one anonymised audit entry.
    pub async fn delete_account(&self, who: &Principal, ctx: &RequestContext) -> ServiceResult<()> {
        let id = &who.user.id;
        let mut objects = self.objects.delete_prefix(&user_prefix(id)).await?;
        objects += self.objects.delete_prefix(&upload_prefix(id)).await?;
        let items = self.partition(id).await?;
        // The account itself (and its counters, which the platform's totals lose at the
        // same time) last, so a failure half-way can be retried by the same user.
        let last = |i: &&Item| matches!(i.str("sk"), Some("PROFILE" | "STATS"));
        let stats = items.iter().find(|i| i.str("sk") == Some("STATS"));
        for item in items.iter().filter(|i| !last(i)) {
            if let Some(endpoint) = item.str("endpoint") {
                self.push.remove(endpoint).await?;
            }
            self.records.delete(&item.key(), None).await?;
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
        let mut ops = vec![
            TxOp::Delete {
                key: user_key(id),
                condition: Some(Condition::Exists),
            },
            TxOp::Delete {
                key: email_key(&who.user.email),
                condition: None,
            },
            TxOp::Put {
                item: audit,
                condition: None,
            },
        ];
        if let Some(s) = stats {
            ops.push(TxOp::Delete {
                key: s.key(),
                condition: None,
            });
        }
        Tally::of(id)
            .erased(stats)
            .commit(self.records.as_ref(), ops)
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
            let q = Query::partition(index, pk).limit(100);
            let entries = query_all(self.records.as_ref(), &q).await?;
            let (ipk, isk) = index.attrs();
            for entry in entries {
                let update = Update::default()
                    .set(field, Value::Null)
                    .remove(ipk)
                    .remove(isk);
                self.records
                    .update(&entry.key(), update, Some(Condition::Exists))
                    .await?;
            }
        }
        Ok(())
    }

    /// Right to portability: everything stored about the caller, with links to their files.
    pub async fn export(&self, who: &Principal) -> ServiceResult<Value> {
        let records: Vec<Value> = self
            .partition(&who.user.id)
            .await?
            .into_iter()
            .map(|mut item| {
                for secret in NOT_EXPORTED {
                    item.0.remove(secret);
                }
                Value::Object(item.0)
            })
            .collect();
        let mut stored = self.objects.list(&upload_prefix(&who.user.id)).await?;
        stored.extend(self.objects.list(&user_prefix(&who.user.id)).await?);
        let mut files = Vec::with_capacity(stored.len());
        for meta in stored {
            let link = self.objects.presign_get(&meta.key, EXPORT_LINK_TTL).await?;
            files.push(json!({
                "key": meta.key, "size": meta.size, "content_type": meta.content_type,
                "url": link.url, "expires_at": link.expires_at,
            }));
        }
        Ok(json!({
            "exported_at": Utc::now(), "user": who.user, "records": records, "files": files,
        }))
    }
}
