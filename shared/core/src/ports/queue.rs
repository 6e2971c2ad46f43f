//! The queue port: at-least-once delivery with a visibility timeout and send-side
//! deduplication (SQS FIFO, or a durable table in the embedded store).

use std::time::Duration;

use async_trait::async_trait;
use serde::{Deserialize, Serialize};

use crate::error::PortResult;

/// How long a deduplication key suppresses repeats of a message (SQS FIFO's window).
pub const DEDUP_WINDOW: Duration = Duration::from_secs(5 * 60);

/// A received message; `receipt` acknowledges it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct QueueMessage {
    pub id: String,
    pub body: String,
    pub receipt: String,
    /// 1 on first delivery, more on redelivery.
    pub receive_count: u32,
}

/// How many messages a queue holds.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct QueueDepth {
    /// Waiting to be received.
    pub waiting: u64,
    /// Received and not yet acknowledged (hidden).
    pub in_flight: u64,
}

#[async_trait]
pub trait Queue: Send + Sync {
    /// Enqueue `body`; a second send with the same `dedup_key` within the dedup window is
    /// accepted but not delivered again. Returns the message id.
    async fn send(&self, body: &str, dedup_key: &str) -> PortResult<String>;
    /// Up to `max` visible messages, waiting up to `wait` for the first. Each one is hidden
    /// for `visibility`, then delivered again unless acknowledged.
    async fn receive(
        &self,
        max: usize,
        visibility: Duration,
        wait: Duration,
    ) -> PortResult<Vec<QueueMessage>>;
    /// Acknowledge (delete) a received message.
    async fn ack(&self, receipt: &str) -> PortResult<()>;
    /// Keep a received message hidden for `visibility` from now (long work).
    async fn extend(&self, receipt: &str, visibility: Duration) -> PortResult<()>;
    /// How many messages wait and how many are being worked on (SQS: approximately).
    async fn depth(&self) -> PortResult<QueueDepth>;
    /// Whether the queue answers.
    async fn health(&self) -> PortResult<()>;
}
