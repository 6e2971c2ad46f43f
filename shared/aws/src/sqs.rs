//! The queue port on an SQS FIFO queue, whose deduplication window gives the port's
//! "a repeated send within five minutes is not delivered again" for free.

use std::time::Duration;

use async_trait::async_trait;
use aws_sdk_sqs::Client;
use aws_sdk_sqs::types::{MessageSystemAttributeName, QueueAttributeName};
use sha2::{Digest, Sha256};
use synth_core::error::PortResult;
use synth_core::ports::queue::QueueDepth;
use synth_core::{PortError, Queue, QueueMessage};

use crate::error::port_error;

/// SQS limits: messages per receive, long-poll seconds, visibility seconds.
const MAX_BATCH: usize = 10;
const MAX_WAIT_S: u64 = 20;
const MAX_VISIBILITY_S: u64 = 12 * 3600;
/// Longest deduplication / group id SQS accepts.
const MAX_ID_LEN: usize = 128;

/// A [`Queue`] on an SQS FIFO queue (its URL ends in `.fifo`).
#[derive(Debug, Clone)]
pub struct SqsQueue {
    client: Client,
    queue_url: String,
}

impl SqsQueue {
    /// Wrap a client and the queue's URL.
    pub fn new(client: Client, queue_url: impl Into<String>) -> Self {
        Self {
            client,
            queue_url: queue_url.into(),
        }
    }
}

/// A deduplication key as an SQS `MessageDeduplicationId`: kept when it is already
/// 1–128 ASCII alphanumerics and punctuation, else its SHA-256 in hex, so distinct keys
/// stay distinct and equal keys stay equal.
pub(crate) fn dedup_id(key: &str) -> String {
    let fits = !key.is_empty()
        && key.len() <= MAX_ID_LEN
        && key
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c.is_ascii_punctuation());
    if fits {
        key.to_owned()
    } else {
        hex::encode(Sha256::digest(key.as_bytes()))
    }
}

/// Whole seconds, rounding a fraction up so that a short visibility never becomes zero.
fn seconds_up(d: Duration) -> u64 {
    d.as_secs() + u64::from(d.subsec_nanos() > 0)
}

fn visibility_s(d: Duration) -> i32 {
    seconds_up(d).min(MAX_VISIBILITY_S) as i32
}

#[async_trait]
impl Queue for SqsQueue {
    async fn send(&self, body: &str, dedup_key: &str) -> PortResult<String> {
        let id = dedup_id(dedup_key);
        let out = self
            .client
            .send_message()
            .queue_url(&self.queue_url)
            .message_body(body)
            // One group per message: FIFO order within a key, no head-of-line blocking across.
            .message_group_id(&id)
            .message_deduplication_id(&id)
            .send()
            .await
            .map_err(|e| port_error("SendMessage", e))?;
        out.message_id
            .ok_or_else(|| PortError::Backend("SendMessage returned no message id".into()))
    }

    async fn receive(
        &self,
        max: usize,
        visibility: Duration,
        wait: Duration,
    ) -> PortResult<Vec<QueueMessage>> {
        if max == 0 {
            return Ok(Vec::new());
        }
        let out = self
            .client
            .receive_message()
            .queue_url(&self.queue_url)
            .max_number_of_messages(max.min(MAX_BATCH) as i32)
            .visibility_timeout(visibility_s(visibility))
            .wait_time_seconds(wait.as_secs().min(MAX_WAIT_S) as i32)
            .message_system_attribute_names(MessageSystemAttributeName::ApproximateReceiveCount)
            .send()
            .await
            .map_err(|e| port_error("ReceiveMessage", e))?;
        Ok(out
            .messages
            .unwrap_or_default()
            .into_iter()
            .map(|m| {
                let receive_count = m
                    .attributes()
                    .and_then(|a| a.get(&MessageSystemAttributeName::ApproximateReceiveCount))
                    .and_then(|n| n.parse().ok())
                    .unwrap_or(1);
                QueueMessage {
                    id: m.message_id.unwrap_or_default(),
                    body: m.body.unwrap_or_default(),
                    receipt: m.receipt_handle.unwrap_or_default(),
                    receive_count,
                }
            })
            .collect())
    }

    async fn ack(&self, receipt: &str) -> PortResult<()> {
        self.client
            .delete_message()
            .queue_url(&self.queue_url)
            .receipt_handle(receipt)
            .send()
            .await
            .map_err(|e| port_error("DeleteMessage", e))?;
        Ok(())
    }

    async fn extend(&self, receipt: &str, visibility: Duration) -> PortResult<()> {
        self.client
            .change_message_visibility()
            .queue_url(&self.queue_url)
            .receipt_handle(receipt)
            .visibility_timeout(visibility_s(visibility))
            .send()
            .await
            .map_err(|e| port_error("ChangeMessageVisibility", e))?;
        Ok(())
    }

    async fn depth(&self) -> PortResult<QueueDepth> {
        let out = self
            .client
            .get_queue_attributes()
            .queue_url(&self.queue_url)
            .attribute_names(QueueAttributeName::ApproximateNumberOfMessages)
            .attribute_names(QueueAttributeName::ApproximateNumberOfMessagesNotVisible)
            .send()
            .await
            .map_err(|e| port_error("GetQueueAttributes", e))?;
        let count = |name: QueueAttributeName| {
            out.attributes()
                .and_then(|a| a.get(&name))
                .and_then(|n| n.parse().ok())
                .unwrap_or(0)
        };
        Ok(QueueDepth {
            waiting: count(QueueAttributeName::ApproximateNumberOfMessages),
            in_flight: count(QueueAttributeName::ApproximateNumberOfMessagesNotVisible),
        })
    }

    async fn health(&self) -> PortResult<()> {
        self.client
            .get_queue_attributes()
            .queue_url(&self.queue_url)
            .attribute_names(QueueAttributeName::QueueArn)
            .send()
            .await
            .map_err(|e| port_error("GetQueueAttributes", e))?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dedup_ids_keep_plain_keys_and_hash_the_rest() {
        assert_eq!(dedup_id("train:req-1#2"), "train:req-1#2");
        let long = "x".repeat(129);
        let hashed = dedup_id(&long);
        assert_eq!(hashed.len(), 64);
        assert!(hashed.chars().all(|c| c.is_ascii_hexdigit()));
        assert_eq!(dedup_id(&long), hashed, "hashing is stable");
        assert_ne!(dedup_id(&"x".repeat(130)), hashed);
        assert_eq!(dedup_id(&"y".repeat(128)), "y".repeat(128));
        // Spaces and non-ASCII are not allowed by SQS.
        assert_eq!(dedup_id("a b").len(), 64);
        assert_eq!(dedup_id("é").len(), 64);
        assert_eq!(dedup_id("").len(), 64);
    }

    #[test]
    fn durations_become_sqs_seconds() {
        assert_eq!(visibility_s(Duration::from_millis(1)), 1);
        assert_eq!(visibility_s(Duration::from_secs(30)), 30);
        assert_eq!(visibility_s(Duration::from_millis(30_001)), 31);
        assert_eq!(visibility_s(Duration::from_secs(100_000)), 43_200);
        assert_eq!(visibility_s(Duration::ZERO), 0);
    }
}
