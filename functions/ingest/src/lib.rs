//! The `ingest` Lambda's event handling: decode the object keys of an S3 notification and
//! ingest each upload through `synth_core::datasets::Datasets::ingest`, with the analysis of
//! `synth-analysis`. A library beside the binary so the test suite delivers real S3 events
//! to the same code the Lambda runs.

use std::sync::Arc;

use aws_lambda_events::event::s3::S3Event;
use synth_core::ServiceError;
use synth_core::datasets::{Analyzer, Datasets};

/// The object keys of an S3 notification's `ObjectCreated` records, decoded (S3 URL-encodes
/// them, with `+` for a space).
pub fn event_keys(event: &S3Event) -> Vec<String> {
    event
        .records
        .iter()
        .filter(|r| {
            r.event_name
                .as_deref()
                .is_none_or(|n| n.starts_with("ObjectCreated"))
        })
        .filter_map(|r| r.s3.object.key.as_deref())
        .map(|k| {
            percent_encoding::percent_decode_str(&k.replace('+', " "))
                .decode_utf8_lossy()
                .into_owned()
        })
        .collect()
}

/// Ingest every object an S3 notification announces. Fails (so Lambda retries the event)
/// only when a store failed; an invalid file is a dataset marked `invalid`, not an error.
pub async fn handle_s3_event(
    datasets: &Datasets,
    analyzer: Arc<dyn Analyzer>,
    event: &S3Event,
) -> Result<usize, ServiceError> {
    let mut ingested = 0;
    for key in event_keys(event) {
        if datasets.ingest(analyzer.clone(), &key).await?.is_some() {
            ingested += 1;
        }
    }
    Ok(ingested)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_of_created_objects_are_decoded() {
        let record = |name: &str, key: &str| {
            serde_json::json!({
                "eventVersion": "2.1", "eventSource": "aws:s3", "awsRegion": "us-east-1",
                "eventTime": "2025-01-01T00:00:00.000Z", "eventName": name,
                "userIdentity": {"principalId": "AWS:EXAMPLE"},
                "requestParameters": {"sourceIPAddress": "127.0.0.1"},
                "responseElements": {"x-amz-request-id": "EXAMPLE", "x-amz-id-2": "EXAMPLE"},
                "s3": {"s3SchemaVersion": "1.0", "configurationId": "ingest",
                       "bucket": {"name": "synth", "arn": "arn:aws:s3:::synth"},
                       "object": {"key": key, "size": 10, "sequencer": "0A"}}
            })
        };
        let event: S3Event = serde_json::from_value(serde_json::json!({"Records": [
            record("ObjectCreated:Put", "uploads/u1/d1/my+file%C3%A9.csv"),
            record("ObjectRemoved:Delete", "uploads/u1/d2/gone.csv"),
            record("ObjectCreated:CompleteMultipartUpload", "uploads/u1/d3/a%2Bb.csv"),
        ]}))
        .expect("an S3 event");
        assert_eq!(
            event_keys(&event),
            ["uploads/u1/d1/my fileé.csv", "uploads/u1/d3/a+b.csv"]
        );
    }
}
