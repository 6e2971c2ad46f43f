//! Notifications: each topic message the platform publishes (a request finished, was
//! approved, a dataset was invalid, an admin alert) becomes a notification for its user, or
//! for every active administrator, and a push to their devices where they want one.
//!
//! SNS delivers at least once and the embedded topic may replay, so a notification's id is
//! derived from the message id and its recipient: a message delivered twice writes one
//! notification and pushes once.
//!
//! Records (in the recipient's partition, so erasure and export take them with the rest):
//! - `USER#{id}` / `NOTIF#{nid}` — one notification; in gsi1 under `NOTIFS#{id}` with the
//!   sort key `{0 unread | 1 read}#{inverted time}#{nid}`, so one query lists the unread
//!   first, then the read, each newest first. Reading one sets `expires_at` (DynamoDB's TTL
//!   attribute; the embedded store purges it periodically).
//! - `USER#{id}` / `NOTIFSTATE` — the unread count and the time of the newest, kept in the
//!   same transactions as the notifications; the long poll reads only this item.
//! - `ADMINS` in gsi2 — the administrators' accounts (see `accounts`).

mod events;

pub use events::{Content, NotificationKind, ObjectRef, content_of};

use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use sha2::{Digest, Sha256};

use crate::accounts::{User, user_key, user_partition};
use crate::error::PortError;
use crate::ports::push::{Delivery, Push, PushMessage};
use crate::ports::records::{
    Condition, Index, Item, Key, Query, RecordStore, SortKey, TxOp, Update, query_all,
};
use crate::service::{ServiceError, ServiceResult};
use crate::{Paged, Settings};

/// The longest a client may wait for a new notification (API Gateway ends a call at 30 s).
pub const MAX_WAIT: Duration = Duration::from_secs(20);
/// How often a waiting call looks again.
const POLL: Duration = Duration::from_millis(250);
/// The most ids one mark-read call takes.
pub const MAX_IDS: usize = 100;
/// Inverted times sort newest first; this is past any millisecond time until the year 2286.
const TIME_CEILING: i64 = 9_999_999_999_999;

/// One notification, as its user sees it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Notification {
    pub id: String,
    pub kind: NotificationKind,
    pub title: String,
    pub body: String,
    /// What it is about.
    pub object: ObjectRef,
    /// Where the object is seen (an API path; the web app's route of the same name).
    pub link: String,
    pub created_at: DateTime<Utc>,
    /// When it was read; absent while unread.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub read_at: Option<DateTime<Utc>>,
}

/// A page of the caller's notifications.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct NotificationPage {
    /// Unread first, then read; newest first within each.
    pub items: Vec<Notification>,
    /// Pass as `cursor` for the next page; absent on the last.
    pub next_cursor: Option<String>,
    /// How many of the caller's notifications are unread.
    pub unread_count: i64,
    /// When the newest notification arrived; pass it as `since` to wait for the next.
    pub latest_at: Option<DateTime<Utc>>,
}

/// What delivering one message came to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Delivered {
    /// Notifications written (0 when the message was delivered before).
    pub written: usize,
    /// Push messages handed to a platform.
    pub pushed: usize,
    /// Why the message notifies nobody, when it does not.
    pub ignored: Option<String>,
}

/// The notifications service over the record store and device push.
#[derive(Clone)]
pub struct Notifications {
    records: Arc<dyn RecordStore>,
    push: Arc<dyn Push>,
    retention: chrono::Duration,
}

fn notification_key(user_id: &str, id: &str) -> Key {
    Key::new(user_partition(user_id), format!("NOTIF#{id}"))
}

fn state_key(user_id: &str) -> Key {
    Key::new(user_partition(user_id), "NOTIFSTATE")
}

fn list_partition(user_id: &str) -> String {
    format!("NOTIFS#{user_id}")
}

fn list_sort_key(read: bool, created: DateTime<Utc>, id: &str) -> String {
    let inverted = TIME_CEILING - created.timestamp_millis();
    format!("{}#{inverted:013}#{id}", u8::from(read))
}

/// The id of `message_id`'s notification for `user_id`: the same on every delivery.
fn notification_id(message_id: &str, user_id: &str) -> String {
    let digest = Sha256::digest(format!("{message_id}\n{user_id}"));
    hex::encode(&digest[..16])
}

impl Notifications {
    pub fn new(records: Arc<dyn RecordStore>, push: Arc<dyn Push>, settings: &Settings) -> Self {
        Self {
            records,
            push,
            retention: chrono::Duration::days(settings.notification_retention_days as i64),
        }
    }

    /// Turn one topic message into notifications and pushes (the `notify` function's and
    /// `synth serve`'s subscriber). Fails only when a store failed, so the delivery is
    /// retried; a message that notifies nobody is logged and acknowledged.
    pub async fn deliver(&self, message_id: &str, message: &str) -> ServiceResult<Delivered> {
        let parsed: Result<Value, _> = synth_table::json::from_slice(message.as_bytes());
        let content = match parsed
            .map_err(|e| e.to_string())
            .and_then(|m| content_of(&m))
        {
            Ok(c) => c,
            Err(why) => {
                tracing::info!(message_id, %why, "topic message notifies nobody");
                return Ok(Delivered {
                    written: 0,
                    pushed: 0,
                    ignored: Some(why),
                });
            }
        };
        let recipients = match &content.user_id {
            Some(id) => vec![id.clone()],
            None => self.admin_ids().await?,
        };
        let mut done = Delivered {
            written: 0,
            pushed: 0,
            ignored: None,
        };
        for user_id in recipients {
            let Some(user) = self.user(&user_id).await? else {
                tracing::info!(message_id, %user_id, "notification for an account that is gone");
                continue;
            };
            if content.kind.for_admins() && !user.is_active {
                continue;
            }
            let id = notification_id(message_id, &user_id);
            if !self.write(&user_id, &id, &content).await? {
                tracing::info!(message_id, notification_id = %id, "message delivered again; nothing new");
                continue;
            }
            done.written += 1;
            if user.notification_preferences.pushes(content.kind) {
                done.pushed += self.push_to(&user_id, &content).await?;
            }
        }
        Ok(done)
    }

    /// The ids of every administrator (the `ADMINS` index).
    async fn admin_ids(&self) -> ServiceResult<Vec<String>> {
        let q = Query::partition(Index::Gsi2, crate::accounts::ADMINS_INDEX).limit(100);
        let admins = query_all(self.records.as_ref(), &q).await?;
        Ok(admins
            .iter()
            .filter_map(|i| i.str("id").map(str::to_owned))
            .collect())
    }

    async fn user(&self, user_id: &str) -> ServiceResult<Option<User>> {
        match self.records.get(&user_key(user_id)).await? {
            Some(item) => Ok(Some(item.to_value()?)),
            None => Ok(None),
        }
    }

    /// Write one notification and count it unread; false when it was written before.
    async fn write(&self, user_id: &str, id: &str, c: &Content) -> ServiceResult<bool> {
        let now = Utc::now();
        // Listed by when it happened: deliveries may come out of order.
        let happened = c.at.filter(|t| *t <= now).unwrap_or(now);
        let n = Notification {
            id: id.to_owned(),
            kind: c.kind,
            title: c.title.clone(),
            body: c.body.clone(),
            object: c.object.clone(),
            link: c.link.clone(),
            created_at: happened,
            read_at: None,
        };
        let item = Item::from_value(&notification_key(user_id, id), &n)?
            .with_gsi1(list_partition(user_id), list_sort_key(false, happened, id));
        let ops = vec![
            TxOp::Put {
                item,
                condition: Some(Condition::NotExists),
            },
            TxOp::Update {
                key: state_key(user_id),
                update: Update::default()
                    .add("unread", 1)
                    .set("latest_ms", now.timestamp_millis()),
                condition: None,
            },
        ];
        match self.records.transact(ops).await {
            Ok(()) => Ok(true),
            Err(PortError::TransactionCanceled { failed }) if failed == [0] => Ok(false),
            Err(e) => Err(e.into()),
        }
    }

    /// Push `c` to every device of the user; a device whose endpoint is gone is forgotten.
    /// Returns how many pushes a platform took. A platform's failure is logged, not
    /// retried: the notification itself is stored.
    async fn push_to(&self, user_id: &str, c: &Content) -> ServiceResult<usize> {
        let q = Query::partition(Index::Primary, user_partition(user_id))
            .sk(SortKey::BeginsWith("PUSH#".into()));
        let devices = query_all(self.records.as_ref(), &q).await?;
        let message = PushMessage {
            title: c.title.clone(),
            body: c.body.clone(),
            link: c.link.clone(),
        };
        let mut pushed = 0;
        for device in devices {
            let platform = device.str("platform").unwrap_or_default();
            let Some(endpoint) = device.str("endpoint") else {
                tracing::info!(
                    target: "push",
                    user_id, platform, kind = c.kind.as_str(), title = %c.title, link = %c.link,
                    "push (no platform application configured for this device)"
                );
                continue;
            };
            match self.push.send(endpoint, &message).await {
                Ok(Delivery::Sent(id)) => {
                    tracing::info!(target: "push", user_id, platform, push_id = %id, "pushed");
                    pushed += 1;
                }
                Ok(Delivery::Gone) => {
                    tracing::info!(target: "push", user_id, platform, "push endpoint gone; forgetting the device");
                    if let Err(e) = self.push.remove(endpoint).await {
                        tracing::warn!(error = %e, "deleting a disabled push endpoint failed");
                    }
                    self.records.delete(&device.key(), None).await?;
                }
                Err(e) => {
                    tracing::warn!(target: "push", user_id, platform, error = %e, "push failed")
                }
            }
        }
        Ok(pushed)
    }

    /// Wait until the user has a notification newer than `since` (the time of the call
    /// when absent), or `wait` (at most [`MAX_WAIT`]) is over: the long poll. Returns how
    /// long it waited.
    pub async fn wait_for_new(
        &self,
        user_id: &str,
        since: Option<DateTime<Utc>>,
        wait: Duration,
    ) -> ServiceResult<Duration> {
        let started = tokio::time::Instant::now();
        let since = since.unwrap_or_else(Utc::now).timestamp_millis();
        let deadline = started + wait.min(MAX_WAIT);
        while self.state(user_id).await?.1.is_none_or(|l| l <= since)
            && tokio::time::Instant::now() < deadline
        {
            let left = deadline.saturating_duration_since(tokio::time::Instant::now());
            tokio::time::sleep(POLL.min(left)).await;
        }
        Ok(started.elapsed())
    }

    /// A page of the caller's notifications, unread first, with the unread count.
    pub async fn list(
        &self,
        user_id: &str,
        limit: usize,
        cursor: Option<String>,
    ) -> ServiceResult<NotificationPage> {
        let q = Query::partition(Index::Gsi1, list_partition(user_id))
            .limit(limit.clamp(1, 100))
            .after(cursor);
        let page = self.records.query(&q).await?;
        let now = Utc::now().timestamp();
        let live: Vec<Item> = page
            .items
            .into_iter()
            .filter(|i| i.i64("expires_at").is_none_or(|t| t > now))
            .collect();
        let items = live
            .iter()
            .map(Item::to_value)
            .collect::<Result<Vec<Notification>, _>>()?;
        let (unread_count, latest) = self.state(user_id).await?;
        Ok(NotificationPage {
            items,
            next_cursor: page.next,
            unread_count,
            latest_at: latest.and_then(DateTime::from_timestamp_millis),
        })
    }

    /// How many of the user's notifications are unread.
    pub async fn unread_count(&self, user_id: &str) -> ServiceResult<i64> {
        Ok(self.state(user_id).await?.0)
    }

    /// The unread count and the newest notification's time (ms).
    async fn state(&self, user_id: &str) -> ServiceResult<(i64, Option<i64>)> {
        let item = self.records.get(&state_key(user_id)).await?;
        Ok(match item {
            Some(i) => (i.i64("unread").unwrap_or(0).max(0), i.i64("latest_ms")),
            None => (0, None),
        })
    }

    async fn stored(&self, user_id: &str, id: &str) -> ServiceResult<Notification> {
        if !valid_id(id) {
            return Err(ServiceError::NotFound("no such notification".into()));
        }
        match self.records.get(&notification_key(user_id, id)).await? {
            Some(item) => Ok(item.to_value()?),
            None => Err(ServiceError::NotFound("no such notification".into())),
        }
    }

    /// Mark the caller's notifications `ids` read. Every id must be the caller's (404
    /// otherwise, before anything changes); ones already read stay as they are.
    pub async fn mark_read(&self, user_id: &str, ids: &[String]) -> ServiceResult<usize> {
        if ids.is_empty() || ids.len() > MAX_IDS {
            return Err(ServiceError::field(
                "ids",
                format!("1..={MAX_IDS} notification ids"),
            ));
        }
        let mut unread = Vec::new();
        for id in ids {
            let n = self.stored(user_id, id).await?;
            if n.read_at.is_none() && !unread.iter().any(|u: &Notification| u.id == n.id) {
                unread.push(n);
            }
        }
        let mut marked = 0;
        for n in unread {
            marked += usize::from(self.read_one(user_id, &n).await?);
        }
        Ok(marked)
    }

    /// Mark every unread notification of the caller read.
    pub async fn mark_all_read(&self, user_id: &str) -> ServiceResult<usize> {
        let q = Query::partition(Index::Gsi1, list_partition(user_id))
            .sk(SortKey::BeginsWith("0#".into()));
        let mut marked = 0;
        for item in query_all(self.records.as_ref(), &q).await? {
            let n: Notification = item.to_value()?;
            marked += usize::from(self.read_one(user_id, &n).await?);
        }
        Ok(marked)
    }

    /// Mark one notification read with its count; false when it was read meanwhile.
    async fn read_one(&self, user_id: &str, n: &Notification) -> ServiceResult<bool> {
        let now = Utc::now();
        let expires = now + self.retention;
        let ops = vec![
            TxOp::Update {
                key: notification_key(user_id, &n.id),
                update: Update::default()
                    .set("read_at", now.to_rfc3339())
                    .set("gsi1sk", list_sort_key(true, n.created_at, &n.id))
                    .set("expires_at", expires.timestamp()),
                condition: Some(still_unread()),
            },
            one_less_unread(user_id),
        ];
        match self.records.transact(ops).await {
            Ok(()) => Ok(true),
            Err(PortError::TransactionCanceled { .. }) => Ok(false),
            Err(e) => Err(e.into()),
        }
    }

    /// Delete one of the caller's notifications (another user's id: 404).
    pub async fn delete(&self, user_id: &str, id: &str) -> ServiceResult<()> {
        for _ in 0..3 {
            let n = self.stored(user_id, id).await?;
            let key = notification_key(user_id, id);
            let ops = if n.read_at.is_some() {
                vec![TxOp::Delete {
                    key,
                    condition: Some(Condition::AttrExists("read_at".into())),
                }]
            } else {
                vec![
                    TxOp::Delete {
                        key,
                        condition: Some(still_unread()),
                    },
                    one_less_unread(user_id),
                ]
            };
            match self.records.transact(ops).await {
                Ok(()) => return Ok(()),
                // Read or deleted meanwhile: look again.
                Err(PortError::TransactionCanceled { .. }) => continue,
                Err(e) => return Err(e.into()),
            }
        }
        Err(ServiceError::Conflict(
            "the notification kept changing; try again".into(),
        ))
    }

    /// Every notification of a user (for tests and tools), in listing order.
    pub async fn all(&self, user_id: &str) -> ServiceResult<Paged<Notification>> {
        let q = Query::partition(Index::Gsi1, list_partition(user_id));
        let items = query_all(self.records.as_ref(), &q).await?;
        Ok(Paged {
            items: items.iter().map(Item::to_value).collect::<Result<_, _>>()?,
            next_cursor: None,
        })
    }
}

/// The notification exists and is unread.
fn still_unread() -> Condition {
    Condition::And(vec![
        Condition::Exists,
        Condition::AttrNotExists("read_at".into()),
    ])
}

/// The user's unread count, one less.
fn one_less_unread(user_id: &str) -> TxOp {
    TxOp::Update {
        key: state_key(user_id),
        update: Update::default().add("unread", -1),
        condition: None,
    }
}

/// Ids are the 32 hex digits this module makes; anything else is no notification.
fn valid_id(id: &str) -> bool {
    id.len() == 32 && id.bytes().all(|b| b.is_ascii_hexdigit())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_stable_per_message_and_recipient() {
        let a = notification_id("m1", "u1");
        assert_eq!(a, notification_id("m1", "u1"));
        assert_ne!(a, notification_id("m1", "u2"));
        assert_ne!(a, notification_id("m2", "u1"));
        assert!(valid_id(&a));
        assert!(!valid_id("../x") && !valid_id(&"g".repeat(32)));
    }

    #[test]
    fn the_sort_key_puts_unread_first_then_newest_first() {
        let t = |ms| DateTime::from_timestamp_millis(ms).unwrap();
        let mut keys = [
            list_sort_key(true, t(3_000), "a"),
            list_sort_key(false, t(1_000), "b"),
            list_sort_key(true, t(5_000), "c"),
            list_sort_key(false, t(2_000), "d"),
        ];
        keys.sort();
        let order: Vec<&str> = keys.iter().map(|k| &k[k.len() - 1..]).collect();
        assert_eq!(order, ["d", "b", "c", "a"]);
    }
}
