//! The topic port on an SNS standard topic.

use async_trait::async_trait;
use aws_sdk_sns::Client;
use synth_core::error::PortResult;
use synth_core::{PortError, Topic};

use crate::error::port_error;

/// SNS's limit on a subject.
const MAX_SUBJECT: usize = 100;

/// A [`Topic`] on an SNS topic.
#[derive(Debug, Clone)]
pub struct SnsTopic {
    client: Client,
    topic_arn: String,
}

impl SnsTopic {
    /// Wrap a client and the topic's ARN.
    pub fn new(client: Client, topic_arn: impl Into<String>) -> Self {
        Self {
            client,
            topic_arn: topic_arn.into(),
        }
    }
}

/// A subject SNS accepts (printable ASCII, not starting with a space, at most 100
/// characters), or none when nothing printable is left: a subject is a courtesy for
/// e-mail subscribers and must never make a publish fail.
pub(crate) fn sanitize_subject(subject: &str) -> Option<String> {
    let s: String = subject
        .chars()
        .map(|c| if c.is_whitespace() { ' ' } else { c })
        .filter(|c| c.is_ascii_graphic() || *c == ' ')
        .collect();
    let s: String = s.trim().chars().take(MAX_SUBJECT).collect();
    let s = s.trim_end().to_owned();
    (!s.is_empty()).then_some(s)
}

#[async_trait]
impl Topic for SnsTopic {
    async fn publish(&self, subject: &str, message: &str) -> PortResult<String> {
        let out = self
            .client
            .publish()
            .topic_arn(&self.topic_arn)
            .set_subject(sanitize_subject(subject))
            .message(message)
            .send()
            .await
            .map_err(|e| port_error("Publish", e))?;
        out.message_id
            .ok_or_else(|| PortError::Backend("Publish returned no message id".into()))
    }

    async fn health(&self) -> PortResult<()> {
        self.client
            .get_topic_attributes()
            .topic_arn(&self.topic_arn)
            .send()
            .await
            .map_err(|e| port_error("GetTopicAttributes", e))?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn subjects_are_made_acceptable() {
        assert_eq!(
            sanitize_subject("Training done").as_deref(),
            Some("Training done")
        );
        assert_eq!(
            sanitize_subject("  café\nready\t!  ").as_deref(),
            Some("caf ready !")
        );
        assert_eq!(sanitize_subject(&"a".repeat(150)).unwrap().len(), 100);
        assert_eq!(sanitize_subject(" \n\t"), None);
        assert_eq!(sanitize_subject("日本"), None);
    }
}
