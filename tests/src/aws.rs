//! The AWS family for tests, on the emulator (moto server) that `scripts/test` starts.
//! Without it these tests fail loudly: they never skip.

use std::time::Duration;

use async_trait::async_trait;
use aws_config::SdkConfig;
use synth_aws::{AwsSettings, SqsQueue};
use synth_core::Queue;

use crate::{Family, Subscriber, UrlCheck, provision, unique};

/// The emulator's address, from `SYNTH_TEST_AWS_ENDPOINT`.
pub fn endpoint() -> String {
    std::env::var("SYNTH_TEST_AWS_ENDPOINT").unwrap_or_else(|_| {
        panic!(
            "SYNTH_TEST_AWS_ENDPOINT is not set: the AWS family runs against moto server; \
             run ./scripts/test, which installs and starts it"
        )
    })
}

/// The SDK configuration for the emulator (credentials and region from the environment,
/// as `scripts/test` sets them).
pub async fn emulator() -> SdkConfig {
    synth_aws::sdk_config(Some(&endpoint())).await
}

struct QueueSubscriber(SqsQueue);

#[async_trait]
impl Subscriber for QueueSubscriber {
    async fn next(&mut self, timeout: Duration) -> Option<String> {
        let deadline = tokio::time::Instant::now() + timeout;
        while tokio::time::Instant::now() < deadline {
            let got = self
                .0
                .receive(1, Duration::from_secs(30), Duration::from_secs(1))
                .await;
            if let Some(m) = got
                .expect("receive from subscriber queue")
                .into_iter()
                .next()
            {
                self.0.ack(&m.receipt).await.expect("ack");
                return Some(m.body);
            }
        }
        None
    }
}

/// The SNS envelopes a queue subscribed without raw delivery receives, handed on as the
/// Lambda's SNS event (the same fields, named as Lambda names them).
struct SnsNotices(SqsQueue);

#[async_trait]
impl crate::NoticeFeed for SnsNotices {
    async fn next(&mut self, timeout: Duration) -> Option<crate::Notice> {
        let deadline = tokio::time::Instant::now() + timeout;
        while tokio::time::Instant::now() < deadline {
            let got = self
                .0
                .receive(1, Duration::from_secs(30), Duration::from_secs(1))
                .await
                .expect("receive from the notices queue");
            if let Some(m) = got.into_iter().next() {
                self.0.ack(&m.receipt).await.expect("ack");
                return Some(crate::Notice::Sns(sns_event(&m.body)));
            }
        }
        None
    }
}

/// The Lambda SNS event of one SNS envelope as SQS receives it.
pub fn sns_event(envelope: &str) -> aws_lambda_events::event::sns::SnsEvent {
    let e: serde_json::Value = serde_json::from_str(envelope).expect("an SNS envelope");
    let field = |name: &str| e[name].clone();
    let event = serde_json::json!({"Records": [{
        "EventSource": "aws:sns", "EventVersion": "1.0",
        "EventSubscriptionArn": format!("{}:notify", e["TopicArn"].as_str().unwrap_or_default()),
        "Sns": {
            "Type": field("Type"), "MessageId": field("MessageId"), "TopicArn": field("TopicArn"),
            "Subject": field("Subject"), "Message": field("Message"), "Timestamp": field("Timestamp"),
            "SignatureVersion": field("SignatureVersion"), "Signature": field("Signature"),
            "SigningCertUrl": field("SigningCertURL"), "UnsubscribeUrl": field("UnsubscribeURL"),
            "MessageAttributes": {},
        }
    }]});
    serde_json::from_value(event).expect("an SNS event")
}

/// Settings naming fresh resources in the emulator (created here), sharing the Batch
/// queue and job definition that `scripts/test` provisioned.
pub async fn settings() -> AwsSettings {
    let cfg = emulator().await;
    let table = unique("synth-test");
    let bucket = unique("synth-test");
    let queue_name = format!("{}.fifo", unique("synth-test"));
    let topic_name = unique("synth-test");
    let ddb = aws_sdk_dynamodb::Client::new(&cfg);
    let s3 = synth_aws::s3_client(&cfg, true);
    let sqs = aws_sdk_sqs::Client::new(&cfg);
    let sns = aws_sdk_sns::Client::new(&cfg);
    provision::create_table(&ddb, &table)
        .await
        .expect("create table");
    provision::create_bucket(&s3, &bucket)
        .await
        .expect("create bucket");
    let queue_url = provision::create_fifo_queue(&sqs, &queue_name)
        .await
        .expect("create queue");
    let topic_arn = provision::create_topic(&sns, &topic_name)
        .await
        .expect("create topic");
    let push = synth_aws::PushApps {
        apns: Some(
            provision::create_platform_application(&sns, &unique("synth-apns"), "APNS")
                .await
                .expect("create APNs application"),
        ),
        fcm: Some(
            provision::create_platform_application(&sns, &unique("synth-fcm"), "GCM")
                .await
                .expect("create FCM application"),
        ),
    };
    let (job_queue, job_definition) = batch().await;
    AwsSettings {
        table,
        bucket,
        queue_url,
        topic_arn,
        job_queue,
        job_definition,
        push,
        endpoint_url: Some(endpoint()),
    }
}

/// The Batch job queue and definition shared by all tests of one run.
async fn batch() -> (String, String) {
    static BATCH: tokio::sync::OnceCell<(String, String)> = tokio::sync::OnceCell::const_new();
    BATCH
        .get_or_init(|| async {
            let cfg = emulator().await;
            provision::create_batch(&cfg, &endpoint(), &unique("synth-test"))
                .await
                .expect("provision Batch")
        })
        .await
        .clone()
}

/// A fresh queue named after `prefix`, subscribed to the topic (`raw`: see
/// [`provision::subscribe_queue`]).
async fn subscribed_queue(cfg: &SdkConfig, topic_arn: &str, prefix: &str, raw: bool) -> SqsQueue {
    let sqs = aws_sdk_sqs::Client::new(cfg);
    let sns = aws_sdk_sns::Client::new(cfg);
    let url = provision::create_queue(&sqs, &unique(prefix))
        .await
        .expect("create queue");
    provision::subscribe_queue(&sns, &sqs, topic_arn, &url, raw)
        .await
        .expect("subscribe");
    SqsQueue::new(sqs, url)
}

/// A fresh AWS family on the emulator.
pub async fn family() -> Family {
    let settings = settings().await;
    let backends = synth_aws::backends(&settings).await;
    let cfg = synth_aws::sdk_config(settings.endpoint_url.as_deref()).await;
    let topic = settings.topic_arn.as_str();
    let mut subscribers: Vec<Box<dyn Subscriber>> = Vec::new();
    for _ in 0..2 {
        let queue = subscribed_queue(&cfg, topic, "synth-sub", true).await;
        subscribers.push(Box::new(QueueSubscriber(queue)));
    }
    let notices = SnsNotices(subscribed_queue(&cfg, topic, "synth-notify", false).await);
    Family {
        name: "aws",
        backends,
        subscribers,
        url_check: UrlCheck::SigV4,
        objects_created: None,
        notices: Some(Box::new(notices)),
        _guard: Box::new(()),
    }
}
