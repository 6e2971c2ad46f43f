//! The queue port as a table in the embedded database, so queued work survives a restart.

use std::time::Duration;

use async_trait::async_trait;
use rusqlite::{Connection, OptionalExtension, TransactionBehavior, params};
use synth_core::error::PortResult;
use synth_core::ports::queue::DEDUP_WINDOW;
use synth_core::ports::queue::QueueDepth;
use synth_core::{PortError, Queue, QueueMessage};
use tokio::time::Instant;

use crate::db::{Database, now_ms, sql_error};

/// SQS's limits, kept so that code tested here behaves the same on AWS.
const MAX_BODY: usize = 256 * 1024;
const MAX_BATCH: usize = 10;
const MAX_VISIBILITY: Duration = Duration::from_secs(12 * 3600);
const MAX_WAIT: Duration = Duration::from_secs(20);
/// Longest sleep of a waiting receiver between looks at the table: sends through another
/// `Database` handle (another process) do not ring this process's bell.
const POLL: Duration = Duration::from_secs(1);

/// A durable at-least-once queue in the embedded database.
///
/// Delivery is ordered by send time; a message comes back, with a fresh receipt and a
/// higher `receive_count`, when its visibility timeout passes unacknowledged.
#[derive(Clone, Debug)]
pub struct SqliteQueue {
    db: Database,
    name: String,
}

impl SqliteQueue {
    /// The default queue of `db`.
    pub fn new(db: Database) -> Self {
        Self::named(db, "default")
    }

    /// A separate queue in the same table, for when one process needs several.
    pub fn named(db: Database, name: impl Into<String>) -> Self {
        Self {
            db,
            name: name.into(),
        }
    }
}

fn ms(d: Duration) -> i64 {
    d.as_millis().min(i64::MAX as u128) as i64
}

/// Hand out up to `max` visible messages; when there are none, say when the next hidden one
/// becomes visible (Unix ms).
fn take_visible(
    conn: &mut Connection,
    queue: &str,
    max: usize,
    visibility: Duration,
) -> PortResult<(Vec<QueueMessage>, Option<i64>)> {
    let tx = conn
        .transaction_with_behavior(TransactionBehavior::Immediate)
        .map_err(sql_error)?;
    let now = now_ms();
    let due: Vec<(i64, String, String, u32)> = {
        let mut stmt = tx
            .prepare_cached(
                "SELECT seq, id, body, receive_count FROM queue_messages
                 WHERE queue = ?1 AND visible_at <= ?2 ORDER BY seq LIMIT ?3",
            )
            .map_err(sql_error)?;
        stmt.query_map(params![queue, now, max as i64], |r| {
            Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?))
        })
        .map_err(sql_error)?
        .collect::<Result<_, _>>()
        .map_err(sql_error)?
    };
    if due.is_empty() {
        let next: Option<i64> = tx
            .query_row(
                "SELECT MIN(visible_at) FROM queue_messages WHERE queue = ?1",
                params![queue],
                |r| r.get(0),
            )
            .map_err(sql_error)?;
        return Ok((Vec::new(), next));
    }
    let mut out = Vec::with_capacity(due.len());
    for (seq, id, body, count) in due {
        let receipt = uuid::Uuid::new_v4().simple().to_string();
        tx.execute(
            "UPDATE queue_messages
             SET receipt = ?1, visible_at = ?2, receive_count = receive_count + 1
             WHERE seq = ?3",
            params![receipt, now.saturating_add(ms(visibility)), seq],
        )
        .map_err(sql_error)?;
        out.push(QueueMessage {
            id,
            body,
            receipt,
            receive_count: count + 1,
        });
    }
    tx.commit().map_err(sql_error)?;
    Ok((out, None))
}

#[async_trait]
impl Queue for SqliteQueue {
    async fn send(&self, body: &str, dedup_key: &str) -> PortResult<String> {
        if body.is_empty() || body.len() > MAX_BODY {
            return Err(PortError::Invalid(format!(
                "a message body is 1..={MAX_BODY} bytes"
            )));
        }
        let (queue, body, dedup) = (self.name.clone(), body.to_owned(), dedup_key.to_owned());
        let id = self
            .db
            .call(move |c| {
                let tx = c
                    .transaction_with_behavior(TransactionBehavior::Immediate)
                    .map_err(sql_error)?;
                let now = now_ms();
                tx.execute(
                    "DELETE FROM queue_dedup WHERE expires_at <= ?1",
                    params![now],
                )
                .map_err(sql_error)?;
                let seen: Option<String> = tx
                    .query_row(
                        "SELECT message_id FROM queue_dedup WHERE queue = ?1 AND dedup_key = ?2",
                        params![queue, dedup],
                        |r| r.get(0),
                    )
                    .optional()
                    .map_err(sql_error)?;
                if let Some(id) = seen {
                    return Ok(id);
                }
                let id = uuid::Uuid::new_v4().to_string();
                tx.execute(
                    "INSERT INTO queue_messages (queue, id, body, sent_at, visible_at)
                     VALUES (?1, ?2, ?3, ?4, ?4)",
                    params![queue, id, body, now],
                )
                .map_err(sql_error)?;
                tx.execute(
                    "INSERT INTO queue_dedup (queue, dedup_key, message_id, expires_at)
                     VALUES (?1, ?2, ?3, ?4)",
                    params![queue, dedup, id, now + ms(DEDUP_WINDOW)],
                )
                .map_err(sql_error)?;
                tx.commit().map_err(sql_error)?;
                Ok(id)
            })
            .await?;
        self.db.queue_sent().notify_waiters();
        Ok(id)
    }

    /// As the SQS adapter: `max` 0 asks for nothing, and `max`, `visibility` and `wait` are
    /// capped at SQS's limits (10 messages, 12 hours, 20 s).
    async fn receive(
        &self,
        max: usize,
        visibility: Duration,
        wait: Duration,
    ) -> PortResult<Vec<QueueMessage>> {
        if max == 0 {
            return Ok(Vec::new());
        }
        let visibility = visibility.min(MAX_VISIBILITY);
        let max = max.min(MAX_BATCH);
        let deadline = Instant::now() + wait.min(MAX_WAIT);
        loop {
            // Register for the bell before looking, so a send in between is not missed.
            let rung = self.db.queue_sent().notified();
            tokio::pin!(rung);
            rung.as_mut().enable();
            let queue = self.name.clone();
            let (messages, next_visible) = self
                .db
                .call(move |c| take_visible(c, &queue, max, visibility))
                .await?;
            if !messages.is_empty() {
                return Ok(messages);
            }
            let now = Instant::now();
            if now >= deadline {
                return Ok(Vec::new());
            }
            let mut until = deadline.min(now + POLL);
            if let Some(at) = next_visible {
                let in_ms = u64::try_from(at - now_ms()).unwrap_or(0);
                until = until.min(now + Duration::from_millis(in_ms));
            }
            tokio::select! {
                _ = &mut rung => {}
                _ = tokio::time::sleep_until(until) => {}
            }
        }
    }

    /// A stale receipt (the message was redelivered or already deleted) is a no-op, as in SQS.
    async fn ack(&self, receipt: &str) -> PortResult<()> {
        if receipt.is_empty() {
            return Err(PortError::Invalid("empty receipt".into()));
        }
        let (queue, receipt) = (self.name.clone(), receipt.to_owned());
        self.db
            .call(move |c| {
                c.execute(
                    "DELETE FROM queue_messages WHERE queue = ?1 AND receipt = ?2",
                    params![queue, receipt],
                )
                .map_err(sql_error)?;
                Ok(())
            })
            .await
    }

    /// `Invalid` when the receipt is no longer current (redelivered or deleted), as SQS
    /// answers: the caller has lost the message and should stop working on it.
    async fn extend(&self, receipt: &str, visibility: Duration) -> PortResult<()> {
        let visibility = visibility.min(MAX_VISIBILITY);
        let (queue, receipt) = (self.name.clone(), receipt.to_owned());
        let changed = self
            .db
            .call(move |c| {
                c.execute(
                    "UPDATE queue_messages SET visible_at = ?1 WHERE queue = ?2 AND receipt = ?3",
                    params![now_ms().saturating_add(ms(visibility)), queue, receipt],
                )
                .map_err(sql_error)
            })
            .await?;
        if changed == 0 {
            return Err(PortError::Invalid(
                "receipt is not current (message redelivered or deleted)".into(),
            ));
        }
        Ok(())
    }

    async fn depth(&self) -> PortResult<QueueDepth> {
        let queue = self.name.clone();
        self.db
            .call(move |c| {
                c.query_row(
                    "SELECT COALESCE(SUM(visible_at <= ?2), 0), COALESCE(SUM(visible_at > ?2), 0)
                     FROM queue_messages WHERE queue = ?1",
                    params![queue, now_ms()],
                    |r| {
                        Ok(QueueDepth {
                            waiting: r.get(0)?,
                            in_flight: r.get(1)?,
                        })
                    },
                )
                .map_err(sql_error)
            })
            .await
    }

    async fn health(&self) -> PortResult<()> {
        self.db.health().await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const NO_WAIT: Duration = Duration::ZERO;

    fn open(dir: &tempfile::TempDir) -> SqliteQueue {
        SqliteQueue::new(Database::open(&dir.path().join("q.db")).unwrap())
    }

    #[tokio::test]
    async fn redelivers_after_the_visibility_timeout_with_a_fresh_receipt() {
        let dir = tempfile::tempdir().unwrap();
        let q = open(&dir);
        let id = q.send("train 1", "d1").await.unwrap();
        let vis = Duration::from_millis(300);
        let first = q.receive(1, vis, NO_WAIT).await.unwrap();
        assert_eq!(first.len(), 1);
        assert_eq!(
            (first[0].id.as_str(), first[0].receive_count),
            (id.as_str(), 1)
        );
        assert!(
            q.receive(1, vis, NO_WAIT).await.unwrap().is_empty(),
            "hidden"
        );
        // A long poll wakes when the message becomes visible again.
        let again = q.receive(1, vis, Duration::from_secs(5)).await.unwrap();
        assert_eq!(again.len(), 1);
        assert_eq!(again[0].receive_count, 2);
        assert_ne!(again[0].receipt, first[0].receipt);
        // The old receipt no longer acknowledges or extends anything.
        q.ack(&first[0].receipt).await.unwrap();
        assert!(matches!(
            q.extend(&first[0].receipt, vis).await,
            Err(PortError::Invalid(_))
        ));
        q.extend(&again[0].receipt, Duration::from_secs(60))
            .await
            .unwrap();
        tokio::time::sleep(Duration::from_millis(400)).await;
        assert!(
            q.receive(1, vis, NO_WAIT).await.unwrap().is_empty(),
            "extended"
        );
        q.ack(&again[0].receipt).await.unwrap();
        q.extend(&again[0].receipt, vis).await.unwrap_err();
    }

    #[tokio::test]
    async fn a_repeated_dedup_key_is_not_delivered_twice() {
        let dir = tempfile::tempdir().unwrap();
        let q = open(&dir);
        let a = q.send("x", "same").await.unwrap();
        let b = q.send("x", "same").await.unwrap();
        assert_eq!(a, b);
        let got = q
            .receive(10, Duration::from_secs(30), NO_WAIT)
            .await
            .unwrap();
        assert_eq!(got.len(), 1);
        q.ack(&got[0].receipt).await.unwrap();
        // Still suppressed after the original was consumed.
        assert_eq!(q.send("x", "same").await.unwrap(), a);
        assert!(
            q.receive(10, Duration::from_secs(30), NO_WAIT)
                .await
                .unwrap()
                .is_empty()
        );
        // Other queues in the same file have their own keys.
        let other = SqliteQueue::named(q.db.clone(), "other");
        assert_ne!(other.send("x", "same").await.unwrap(), a);
    }

    #[tokio::test]
    async fn a_waiting_receiver_wakes_on_send_and_order_is_fifo() {
        let dir = tempfile::tempdir().unwrap();
        let q = open(&dir);
        let waiter = {
            let q = q.clone();
            tokio::spawn(async move {
                let t = Instant::now();
                let got = q
                    .receive(1, Duration::from_secs(30), Duration::from_secs(10))
                    .await;
                (got.unwrap(), t.elapsed())
            })
        };
        tokio::time::sleep(Duration::from_millis(100)).await;
        q.send("first", "1").await.unwrap();
        q.send("second", "2").await.unwrap();
        let (got, waited) = waiter.await.unwrap();
        assert_eq!(got[0].body, "first");
        assert!(
            waited < Duration::from_secs(5),
            "woke on send, not at the deadline"
        );
        let rest = q
            .receive(10, Duration::from_secs(30), NO_WAIT)
            .await
            .unwrap();
        assert_eq!(
            rest.iter().map(|m| m.body.as_str()).collect::<Vec<_>>(),
            ["second"]
        );
    }

    #[tokio::test]
    async fn queued_and_in_flight_messages_survive_reopening() {
        let dir = tempfile::tempdir().unwrap();
        let q = open(&dir);
        q.send("a", "a").await.unwrap();
        q.send("b", "b").await.unwrap();
        let inflight = q
            .receive(1, Duration::from_millis(700), NO_WAIT)
            .await
            .unwrap();
        assert_eq!(inflight[0].body, "a");
        drop(q);
        let q = open(&dir);
        let got = q
            .receive(10, Duration::from_secs(30), Duration::from_secs(5))
            .await
            .unwrap();
        assert_eq!(got[0].body, "b");
        let got = q
            .receive(10, Duration::from_secs(30), Duration::from_secs(5))
            .await
            .unwrap();
        assert_eq!((got[0].body.as_str(), got[0].receive_count), ("a", 2));
        // The dedup window survives too.
        let id = q.send("again", "a").await.unwrap();
        assert_eq!(id, inflight[0].id);
    }
}
