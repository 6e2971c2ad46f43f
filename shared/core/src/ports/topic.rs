//! The topic port: publish once, every subscriber gets a copy (SNS, or in-process fan-out).

use async_trait::async_trait;

use crate::error::PortResult;

#[async_trait]
pub trait Topic: Send + Sync {
    /// Publish a message to every subscriber; returns the message id.
    async fn publish(&self, subject: &str, message: &str) -> PortResult<String>;
    /// Whether the topic answers.
    async fn health(&self) -> PortResult<()>;
}
