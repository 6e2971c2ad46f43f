//! The `notify` Lambda's event handling: each message of an SNS delivery becomes the
//! notifications (and pushes) of `synth_core::notifications::Notifications::deliver`. A
//! library beside the binary so the test suite hands real SNS events to the same code.

use aws_lambda_events::event::sns::SnsEvent;
use synth_core::ServiceError;
use synth_core::notifications::Notifications;
use tracing::Instrument;

/// Deliver every message of an SNS event; returns how many notifications were written.
/// Fails (so Lambda retries the event, then parks it on the failure queue) only when a
/// store failed; a redelivered message writes nothing again.
pub async fn handle_sns_event(
    notifications: &Notifications,
    event: &SnsEvent,
) -> Result<usize, ServiceError> {
    let mut written = 0;
    for record in &event.records {
        let id = &record.sns.message_id;
        let span = synth_telemetry::event_span("sns", id);
        let done = notifications
            .deliver(id, &record.sns.message)
            .instrument(span)
            .await?;
        tracing::info!(message_id = %id, written = done.written, pushed = done.pushed, "SNS message delivered");
        written += done.written;
    }
    Ok(written)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_sns_delivery_decodes_with_its_message_id() {
        let event: SnsEvent = serde_json::from_value(serde_json::json!({"Records": [{
            "EventSource": "aws:sns", "EventVersion": "1.0",
            "EventSubscriptionArn": "arn:aws:sns:us-east-1:1:t:s",
            "Sns": {
                "Type": "Notification", "MessageId": "m-1",
                "TopicArn": "arn:aws:sns:us-east-1:1:t", "Subject": "generation.completed",
                "Message": "{\"type\":\"generation.completed\"}",
                "Timestamp": "2026-12-04T00:00:00.000Z", "SignatureVersion": "1",
                "Signature": "x", "SigningCertUrl": "https://x", "UnsubscribeUrl": "https://x",
                "MessageAttributes": {}
            }
        }]}))
        .expect("an SNS event");
        assert_eq!(event.records[0].sns.message_id, "m-1");
        assert!(
            event.records[0]
                .sns
                .message
                .contains("generation.completed")
        );
    }
}
