//! The topic port as in-process fan-out.

use std::sync::{Mutex, PoisonError};

use async_trait::async_trait;
use synth_core::error::PortResult;
use synth_core::{PortError, Topic};
use tokio::sync::mpsc;

/// SNS's limit, kept so that code tested here behaves the same on AWS. (Subjects are
/// passed as given; the SNS adapter makes them acceptable to SNS.)
const MAX_MESSAGE: usize = 256 * 1024;

/// One published message as a subscriber receives it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TopicMessage {
    pub id: String,
    pub subject: String,
    pub message: String,
}

/// A `Topic` whose subscribers live in this process (the embedded stand-in for SNS).
#[derive(Debug, Default)]
pub struct LocalTopic {
    subscribers: Mutex<Vec<mpsc::UnboundedSender<TopicMessage>>>,
}

impl LocalTopic {
    /// A topic with no subscribers yet; publishing to it is not an error.
    pub fn new() -> Self {
        Self::default()
    }

    /// Receive every message published from now on; dropping the receiver unsubscribes.
    pub fn subscribe(&self) -> mpsc::UnboundedReceiver<TopicMessage> {
        let (tx, rx) = mpsc::unbounded_channel();
        self.lock().push(tx);
        rx
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Vec<mpsc::UnboundedSender<TopicMessage>>> {
        self.subscribers
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }
}

#[async_trait]
impl Topic for LocalTopic {
    async fn publish(&self, subject: &str, message: &str) -> PortResult<String> {
        if message.is_empty() || message.len() > MAX_MESSAGE {
            return Err(PortError::Invalid(format!(
                "a message is 1..={MAX_MESSAGE} bytes"
            )));
        }
        let msg = TopicMessage {
            id: uuid::Uuid::new_v4().to_string(),
            subject: subject.to_owned(),
            message: message.to_owned(),
        };
        // Unbounded sends never wait, so holding the lock here is brief.
        self.lock().retain(|s| s.send(msg.clone()).is_ok());
        Ok(msg.id)
    }

    async fn health(&self) -> PortResult<()> {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn every_live_subscriber_gets_every_later_message() {
        let t = LocalTopic::new();
        t.publish("early", "nobody hears this").await.unwrap();
        let mut a = t.subscribe();
        let b = t.subscribe();
        let mut c = t.subscribe();
        drop(b);
        let id = t.publish("done", "{\"x\":1}").await.unwrap();
        for rx in [&mut a, &mut c] {
            let m = rx.recv().await.unwrap();
            assert_eq!((m.id.as_str(), m.subject.as_str()), (id.as_str(), "done"));
            assert!(rx.try_recv().is_err(), "only messages after subscribing");
        }
        assert_eq!(t.lock().len(), 2, "the dead subscriber was dropped");
        assert!(t.publish("s", "").await.is_err());
    }
}
