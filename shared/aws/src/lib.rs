//! The AWS adapter family: Synth's ports implemented on DynamoDB (records), S3 (objects),
//! SQS FIFO (queue), SNS (topic) and AWS Batch (jobs). Production Lambdas and the Batch
//! trainer build their [`Backends`] here; tests run the same code against a local emulator
//! by setting `AWS_ENDPOINT_URL`.

mod batch;
mod dynamo;
mod error;
mod push;
mod s3;
mod sns;
mod sqs;

use std::sync::Arc;

use aws_config::{BehaviorVersion, SdkConfig};
use synth_core::{Backends, ConfigError};

pub use batch::BatchJobs;
pub use dynamo::DynamoRecords;
pub use push::{PushApps, SnsPush};
pub use s3::S3Objects;
pub use sns::SnsTopic;
pub use sqs::SqsQueue;

/// Where the deployed resources are, as the SAM template hands them to every function.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AwsSettings {
    pub table: String,
    pub bucket: String,
    pub queue_url: String,
    pub topic_arn: String,
    pub job_queue: String,
    pub job_definition: String,
    /// The SNS platform applications for device push (`SYNTH_PUSH_APNS_ARN`,
    /// `SYNTH_PUSH_FCM_ARN`); none configured means push is logged, not sent.
    pub push: PushApps,
    /// An endpoint override (a local emulator); `None` on real AWS.
    pub endpoint_url: Option<String>,
}

impl AwsSettings {
    /// Read the settings from the process environment, naming the first missing variable.
    pub fn from_env() -> Result<Self, ConfigError> {
        Self::from_lookup(|name| std::env::var(name).ok())
    }

    /// Read the settings through any lookup (tests, tools).
    pub fn from_lookup(get: impl Fn(&str) -> Option<String>) -> Result<Self, ConfigError> {
        let required = |name: &str| {
            get(name)
                .map(|v| v.trim().to_owned())
                .filter(|v| !v.is_empty())
                .ok_or_else(|| ConfigError {
                    variable: name.to_owned(),
                    message: "must be set".to_owned(),
                })
        };
        let optional = |name: &str| {
            get(name)
                .map(|v| v.trim().to_owned())
                .filter(|v| !v.is_empty())
        };
        Ok(Self {
            table: required("SYNTH_TABLE")?,
            bucket: required("SYNTH_BUCKET")?,
            queue_url: required("SYNTH_QUEUE_URL")?,
            topic_arn: required("SYNTH_TOPIC_ARN")?,
            job_queue: required("SYNTH_JOB_QUEUE")?,
            job_definition: required("SYNTH_JOB_DEFINITION")?,
            push: PushApps {
                apns: optional("SYNTH_PUSH_APNS_ARN"),
                fcm: optional("SYNTH_PUSH_FCM_ARN"),
            },
            endpoint_url: get("AWS_ENDPOINT_URL")
                .map(|v| v.trim().to_owned())
                .filter(|v| !v.is_empty()),
        })
    }
}

/// The shared SDK configuration (region, credentials) with the emulator endpoint applied
/// to every service when one is given.
pub async fn sdk_config(endpoint_url: Option<&str>) -> SdkConfig {
    let mut loader = aws_config::defaults(BehaviorVersion::latest());
    if let Some(url) = endpoint_url {
        loader = loader.endpoint_url(url);
    }
    loader.load().await
}

/// An S3 client; path-style addressing whenever an endpoint override is set, because
/// emulators cannot resolve `bucket.host` virtual-hosted names.
pub fn s3_client(cfg: &SdkConfig, endpoint_set: bool) -> aws_sdk_s3::Client {
    let conf = aws_sdk_s3::config::Builder::from(cfg)
        .force_path_style(endpoint_set)
        .build();
    aws_sdk_s3::Client::from_conf(conf)
}

/// The AWS adapters, sharing one SDK configuration, behind the ports' checking layer; device
/// push through SNS where a platform application is configured.
pub async fn backends(settings: &AwsSettings) -> Backends {
    let cfg = sdk_config(settings.endpoint_url.as_deref()).await;
    let endpoint_set = settings.endpoint_url.is_some() || cfg.endpoint_url().is_some();
    let backends = Backends::new(
        Arc::new(DynamoRecords::new(
            aws_sdk_dynamodb::Client::new(&cfg),
            &settings.table,
        )),
        Arc::new(S3Objects::new(
            s3_client(&cfg, endpoint_set),
            &settings.bucket,
        )),
        Arc::new(SqsQueue::new(
            aws_sdk_sqs::Client::new(&cfg),
            &settings.queue_url,
        )),
        Arc::new(SnsTopic::new(
            aws_sdk_sns::Client::new(&cfg),
            &settings.topic_arn,
        )),
        Arc::new(BatchJobs::new(
            aws_sdk_batch::Client::new(&cfg),
            &settings.job_queue,
            &settings.job_definition,
        )),
    );
    if settings.push.any() {
        let push = SnsPush::new(aws_sdk_sns::Client::new(&cfg), settings.push.clone());
        backends.with_push(Arc::new(push))
    } else {
        backends
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn full() -> HashMap<&'static str, &'static str> {
        HashMap::from([
            ("SYNTH_TABLE", "t"),
            ("SYNTH_BUCKET", "b"),
            ("SYNTH_QUEUE_URL", "http://q"),
            ("SYNTH_TOPIC_ARN", "arn:aws:sns:us-east-1:1:t"),
            ("SYNTH_JOB_QUEUE", "jq"),
            ("SYNTH_JOB_DEFINITION", "jd"),
        ])
    }

    #[test]
    fn settings_name_the_missing_variable() {
        let mut vars = full();
        let s = AwsSettings::from_lookup(|n| vars.get(n).map(|v| v.to_string())).unwrap();
        assert_eq!(s.table, "t");
        assert_eq!(s.endpoint_url, None);
        vars.insert("AWS_ENDPOINT_URL", "http://127.0.0.1:5055");
        let s = AwsSettings::from_lookup(|n| vars.get(n).map(|v| v.to_string())).unwrap();
        assert_eq!(s.endpoint_url.as_deref(), Some("http://127.0.0.1:5055"));
        assert_eq!(s.push, PushApps::default());
        vars.insert(
            "SYNTH_PUSH_FCM_ARN",
            " arn:aws:sns:us-east-1:1:app/GCM/synth ",
        );
        vars.insert("SYNTH_PUSH_APNS_ARN", "");
        let s = AwsSettings::from_lookup(|n| vars.get(n).map(|v| v.to_string())).unwrap();
        assert_eq!(
            s.push.fcm.as_deref(),
            Some("arn:aws:sns:us-east-1:1:app/GCM/synth")
        );
        assert_eq!(s.push.apns, None);
        vars.remove("SYNTH_TOPIC_ARN");
        let e = AwsSettings::from_lookup(|n| vars.get(n).map(|v| v.to_string())).unwrap_err();
        assert_eq!(e.variable, "SYNTH_TOPIC_ARN");
    }
}
