//! Creating the resources the AWS adapters expect, on the emulator the tests run against
//! (production resources come from template.yaml, and this module follows it: the table's
//! keys and indexes, a FIFO work queue, a standard topic with raw delivery to queues, and
//! the trainer's job definition with the template's command). Each function tolerates the
//! resource already existing and returns its identifier, so a test can call it freely.
//! Test-only: it lives in the test harness, not in the production adapter crate.

use std::time::Duration;

use aws_config::SdkConfig;
use aws_sdk_batch::types::{
    CeState, CeType, ComputeEnvironmentDetail, ComputeEnvironmentOrder, ContainerProperties,
    JobDefinitionType, JqState, ResourceRequirement, ResourceType,
};
use aws_sdk_dynamodb::error::{DisplayErrorContext, SdkError};
use aws_sdk_dynamodb::types::{
    AttributeDefinition, BillingMode, GlobalSecondaryIndex, IndexStatus, KeySchemaElement, KeyType,
    Projection, ProjectionType, ScalarAttributeType, TableStatus,
};
use aws_sdk_s3::types::{BucketLocationConstraint, CreateBucketConfiguration};
use aws_sdk_sqs::types::QueueAttributeName;
use synth_core::ports::records::{GSI1_PK, GSI1_SK, GSI2_PK, GSI2_SK, Index, PK, SK};

/// Why a resource could not be provisioned.
#[derive(Debug, thiserror::Error)]
pub enum ProvisionError {
    /// The request was wrong before it was sent (a bad name, a builder missing a field).
    #[error("invalid request: {0}")]
    Invalid(String),
    /// The service (or the emulator's control API) answered with an error.
    #[error("{op}: {message}")]
    Service { op: &'static str, message: String },
    /// The resource did not become usable in time.
    #[error("not ready: {0}")]
    NotReady(String),
}

pub type ProvisionResult<T> = Result<T, ProvisionError>;

/// An SDK failure of `op`, with the service's whole answer.
fn sdk_error<E: std::error::Error + 'static>(op: &'static str, e: SdkError<E>) -> ProvisionError {
    ProvisionError::Service {
        op,
        message: DisplayErrorContext(&e).to_string(),
    }
}

/// A field an answer should have carried.
fn missing(what: &str) -> ProvisionError {
    ProvisionError::Service {
        op: "answer",
        message: format!("no {what} in the answer"),
    }
}

/// The answer to a request of `op` (an SDK builder's `send()`).
async fn sent<O, E>(
    op: &'static str,
    send: impl Future<Output = Result<O, SdkError<E>>>,
) -> ProvisionResult<O>
where
    E: std::error::Error + 'static,
{
    send.await.map_err(|e| sdk_error(op, e))
}

/// The identifier `what` that `take` finds in the answer to a request of `op`.
async fn answered<O, E, T>(
    op: &'static str,
    send: impl Future<Output = Result<O, SdkError<E>>>,
    what: &str,
    take: impl FnOnce(O) -> Option<T>,
) -> ProvisionResult<T>
where
    E: std::error::Error + 'static,
{
    take(sent(op, send).await?).ok_or_else(|| missing(what))
}

/// An IAM policy document of one statement that allows the AWS `service` to do `action`;
/// `more` adds to the statement (its resource, a condition).
fn allow(service: &str, action: &str, more: serde_json::Value) -> String {
    let mut statement = serde_json::json!({
        "Effect": "Allow",
        "Principal": {"Service": service},
        "Action": action,
    });
    for (k, v) in more.as_object().into_iter().flatten() {
        statement[k] = v.clone();
    }
    serde_json::json!({"Version": "2012-10-17", "Statement": [statement]}).to_string()
}

/// The trainer container's command, as template.yaml's `TrainerJobDefinition` gives it
/// (the image puts the `trainer` binary on PATH, see infra/Dockerfile.trainer).
pub const TRAINER_COMMAND: &[&str] = &["trainer"];

/// Visibility timeout given to queues created here; receivers override it per call.
pub const DEFAULT_VISIBILITY_TIMEOUT_S: u32 = 30;

/// How long to wait for a table or compute environment to become usable.
const READY_TIMEOUT: Duration = Duration::from_secs(120);

fn build_err(e: impl std::fmt::Display) -> ProvisionError {
    ProvisionError::Invalid(e.to_string())
}

fn key(name: &str, kind: KeyType) -> ProvisionResult<KeySchemaElement> {
    KeySchemaElement::builder()
        .attribute_name(name)
        .key_type(kind)
        .build()
        .map_err(build_err)
}

fn gsi(index: Index) -> ProvisionResult<GlobalSecondaryIndex> {
    let (pk, sk) = index.attrs();
    GlobalSecondaryIndex::builder()
        .index_name(index.name().expect("a secondary index has a name"))
        .key_schema(key(pk, KeyType::Hash)?)
        .key_schema(key(sk, KeyType::Range)?)
        .projection(
            Projection::builder()
                .projection_type(ProjectionType::All)
                .build(),
        )
        .build()
        .map_err(build_err)
}

/// Create the records table (string `pk`/`sk`, GSIs `gsi1` and `gsi2` projecting all
/// attributes, on-demand billing) and wait until it and its indexes are active.
pub async fn create_table(
    client: &aws_sdk_dynamodb::Client,
    name: &str,
) -> ProvisionResult<String> {
    let mut req = client
        .create_table()
        .table_name(name)
        .billing_mode(BillingMode::PayPerRequest)
        .key_schema(key(PK, KeyType::Hash)?)
        .key_schema(key(SK, KeyType::Range)?)
        .global_secondary_indexes(gsi(Index::Gsi1)?)
        .global_secondary_indexes(gsi(Index::Gsi2)?);
    for attr in [PK, SK, GSI1_PK, GSI1_SK, GSI2_PK, GSI2_SK] {
        req = req.attribute_definitions(
            AttributeDefinition::builder()
                .attribute_name(attr)
                .attribute_type(ScalarAttributeType::S)
                .build()
                .map_err(build_err)?,
        );
    }
    match req.send().await {
        Ok(_) => {}
        Err(e)
            if e.as_service_error()
                .is_some_and(|s| s.is_resource_in_use_exception()) => {}
        Err(e) => return Err(sdk_error("CreateTable", e)),
    }
    until_ready(&format!("table {name}"), || async {
        let describe = client.describe_table().table_name(name).send();
        let out = sent("DescribeTable", describe).await?;
        let table = out.table();
        Ok(
            table.and_then(|t| t.table_status()) == Some(&TableStatus::Active)
                && table.is_some_and(|t| {
                    t.global_secondary_indexes()
                        .iter()
                        .all(|i| i.index_status().is_none_or(|s| *s == IndexStatus::Active))
                }),
        )
    })
    .await?;
    Ok(name.to_owned())
}

/// Poll `ready` until it says so, for at most [`READY_TIMEOUT`].
async fn until_ready<F, Fut>(what: &str, mut ready: F) -> ProvisionResult<()>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = ProvisionResult<bool>>,
{
    let deadline = tokio::time::Instant::now() + READY_TIMEOUT;
    while !ready().await? {
        if tokio::time::Instant::now() > deadline {
            return Err(ProvisionError::NotReady(what.to_owned()));
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    Ok(())
}

/// Create a bucket in the client's region.
pub async fn create_bucket(client: &aws_sdk_s3::Client, name: &str) -> ProvisionResult<String> {
    let region = client
        .config()
        .region()
        .map(|r| r.as_ref().to_owned())
        .unwrap_or_else(|| "us-east-1".to_owned());
    let mut req = client.create_bucket().bucket(name);
    // us-east-1 is the one region that refuses an explicit location constraint.
    if region != "us-east-1" {
        req = req.create_bucket_configuration(
            CreateBucketConfiguration::builder()
                .location_constraint(BucketLocationConstraint::from(region.as_str()))
                .build(),
        );
    }
    match req.send().await {
        Ok(_) => Ok(name.to_owned()),
        Err(e)
            if e.as_service_error()
                .is_some_and(|s| s.is_bucket_already_owned_by_you()) =>
        {
            Ok(name.to_owned())
        }
        Err(e) => Err(sdk_error("CreateBucket", e)),
    }
}

/// Create the work queue (FIFO, as [`crate::SqsQueue`] needs; the name must end in
/// `.fifo`) and return its URL.
pub async fn create_fifo_queue(
    client: &aws_sdk_sqs::Client,
    name: &str,
) -> ProvisionResult<String> {
    if !name.ends_with(".fifo") {
        return Err(ProvisionError::Invalid(format!(
            "a FIFO queue's name must end in .fifo: {name}"
        )));
    }
    let fifo = [
        (QueueAttributeName::FifoQueue, "true"),
        (QueueAttributeName::ContentBasedDeduplication, "false"),
    ];
    new_queue(client, name, &fifo).await
}

/// Create a standard queue and return its URL: the kind of queue a standard SNS topic can
/// deliver to (AWS refuses to subscribe a FIFO queue to a standard topic).
pub async fn create_queue(client: &aws_sdk_sqs::Client, name: &str) -> ProvisionResult<String> {
    new_queue(client, name, &[]).await
}

/// A queue with the default visibility timeout and `attributes`; returns its URL.
async fn new_queue(
    client: &aws_sdk_sqs::Client,
    name: &str,
    attributes: &[(QueueAttributeName, &str)],
) -> ProvisionResult<String> {
    let visibility = DEFAULT_VISIBILITY_TIMEOUT_S.to_string();
    let mut req = client
        .create_queue()
        .queue_name(name)
        .attributes(QueueAttributeName::VisibilityTimeout, visibility);
    for (attribute, value) in attributes {
        req = req.attributes(attribute.clone(), *value);
    }
    answered("CreateQueue", req.send(), "queue URL", |o| o.queue_url).await
}

/// Create a (standard) topic and return its ARN.
pub async fn create_topic(client: &aws_sdk_sns::Client, name: &str) -> ProvisionResult<String> {
    let send = client.create_topic().name(name).send();
    answered("CreateTopic", send, "topic ARN", |o| o.topic_arn).await
}

/// Create an SNS platform application (`GCM` for FCM, `APNS`) for mobile push.
pub async fn create_platform_application(
    client: &aws_sdk_sns::Client,
    name: &str,
    platform: &str,
) -> ProvisionResult<String> {
    let send = client
        .create_platform_application()
        .name(name)
        .platform(platform)
        .attributes("PlatformCredential", "test-credential")
        .send();
    let (op, what) = ("CreatePlatformApplication", "platform application ARN");
    answered(op, send, what, |o| o.platform_application_arn).await
}

/// Subscribe a queue to a topic, allowing the topic to send to the queue: with `raw`
/// message delivery the queue receives the published message itself, without it the SNS
/// envelope (message id, subject, message …) that Lambda subscribers get. Returns the
/// subscription ARN.
pub async fn subscribe_queue(
    sns: &aws_sdk_sns::Client,
    sqs: &aws_sdk_sqs::Client,
    topic_arn: &str,
    queue_url: &str,
    raw: bool,
) -> ProvisionResult<String> {
    let send = sqs
        .get_queue_attributes()
        .queue_url(queue_url)
        .attribute_names(QueueAttributeName::QueueArn)
        .send();
    let queue_arn = answered("GetQueueAttributes", send, "queue ARN", |o| {
        o.attributes?.remove(&QueueAttributeName::QueueArn)
    })
    .await?;
    // The topic may send to the queue.
    let condition = serde_json::json!({"ArnEquals": {"aws:SourceArn": topic_arn}});
    let more = serde_json::json!({"Resource": queue_arn, "Condition": condition});
    let policy = allow("sns.amazonaws.com", "sqs:SendMessage", more);
    let set_policy = sqs
        .set_queue_attributes()
        .queue_url(queue_url)
        .attributes(QueueAttributeName::Policy, policy)
        .send();
    sent("SetQueueAttributes", set_policy).await?;
    let send = sns
        .subscribe()
        .topic_arn(topic_arn)
        .protocol("sqs")
        .endpoint(&queue_arn)
        .attributes("RawMessageDelivery", if raw { "true" } else { "false" })
        .return_subscription_arn(true)
        .send();
    answered("Subscribe", send, "subscription ARN", |o| {
        o.subscription_arn
    })
    .await
}

/// Batch on the emulator at `endpoint`: the IAM service role moto insists on, then
/// [`create_batch_with_role`]. Jobs only succeed there once moto runs Batch without Docker
/// ([`moto::batch_without_docker`], which `scripts/test` does).
pub async fn create_batch(
    cfg: &SdkConfig,
    endpoint: &str,
    prefix: &str,
) -> ProvisionResult<(String, String)> {
    let role = moto::create_role_at(endpoint, cfg, &format!("{prefix}-batch-service")).await?;
    create_batch_with_role(&aws_sdk_batch::Client::new(cfg), &role, prefix).await
}

/// Create an unmanaged compute environment `{prefix}-ce`, a job queue `{prefix}-jobs` on it
/// and a container job definition `{prefix}-trainer`; returns the ARNs of the job queue and
/// the job definition, as the template's `Ref`s give them. `service_role_arn` must name an
/// existing IAM role.
pub async fn create_batch_with_role(
    client: &aws_sdk_batch::Client,
    service_role_arn: &str,
    prefix: &str,
) -> ProvisionResult<(String, String)> {
    let ce_name = format!("{prefix}-ce");
    let queue_name = format!("{prefix}-jobs");
    let def_name = format!("{prefix}-trainer");

    let ce_arn = match existing_compute_env(client, &ce_name).await? {
        Some(arn) => arn,
        None => {
            let send = client
                .create_compute_environment()
                .compute_environment_name(&ce_name)
                .r#type(CeType::Unmanaged)
                .state(CeState::Enabled)
                .service_role(service_role_arn)
                .send();
            let (op, what) = ("CreateComputeEnvironment", "compute environment ARN");
            answered(op, send, what, |o| o.compute_environment_arn).await?
        }
    };
    wait_compute_env_valid(client, &ce_arn).await?;

    let describe = client.describe_job_queues().job_queues(&queue_name).send();
    let existing_queue = sent("DescribeJobQueues", describe)
        .await?
        .job_queues()
        .iter()
        .find(|q| q.status().is_none_or(|s| s.as_str() != "DELETED"))
        .and_then(|q| q.job_queue_arn().map(str::to_owned));
    let queue_arn = match existing_queue {
        Some(arn) => arn,
        None => {
            let send = client
                .create_job_queue()
                .job_queue_name(&queue_name)
                .state(JqState::Enabled)
                .priority(1)
                .compute_environment_order(
                    ComputeEnvironmentOrder::builder()
                        .order(1)
                        .compute_environment(&ce_arn)
                        .build(),
                )
                .send();
            answered("CreateJobQueue", send, "job queue ARN", |o| o.job_queue_arn).await?
        }
    };

    let def_arn = register_trainer(client, &def_name).await?;
    Ok((queue_arn, def_arn))
}

/// Register the trainer's container job definition `name` (a new revision each time, as
/// Batch does); returns its ARN.
async fn register_trainer(client: &aws_sdk_batch::Client, name: &str) -> ProvisionResult<String> {
    let resource = |kind: ResourceType, value: &str| {
        ResourceRequirement::builder()
            .r#type(kind)
            .value(value)
            .build()
    };
    let send = client
        .register_job_definition()
        .job_definition_name(name)
        .r#type(JobDefinitionType::Container)
        .container_properties(
            ContainerProperties::builder()
                .image("synth-trainer:latest")
                .set_command(Some(
                    TRAINER_COMMAND.iter().map(|c| c.to_string()).collect(),
                ))
                .resource_requirements(resource(ResourceType::Vcpu, "1"))
                .resource_requirements(resource(ResourceType::Memory, "2048"))
                .build(),
        )
        .send();
    let (op, what) = ("RegisterJobDefinition", "job definition ARN");
    answered(op, send, what, |o| o.job_definition_arn).await
}

/// The compute environment of that name or ARN, unless there is none (or it was deleted).
async fn compute_env(
    client: &aws_sdk_batch::Client,
    name: &str,
) -> ProvisionResult<Option<ComputeEnvironmentDetail>> {
    let describe = client
        .describe_compute_environments()
        .compute_environments(name)
        .send();
    let out = sent("DescribeComputeEnvironments", describe).await?;
    Ok(out
        .compute_environments()
        .iter()
        .find(|c| c.status().is_none_or(|s| s.as_str() != "DELETED"))
        .cloned())
}

async fn existing_compute_env(
    client: &aws_sdk_batch::Client,
    name: &str,
) -> ProvisionResult<Option<String>> {
    let env = compute_env(client, name).await?;
    Ok(env.and_then(|c| c.compute_environment_arn().map(str::to_owned)))
}

async fn wait_compute_env_valid(client: &aws_sdk_batch::Client, arn: &str) -> ProvisionResult<()> {
    until_ready(&format!("compute environment {arn}"), || async {
        let env = compute_env(client, arn).await?;
        match env.as_ref().and_then(|c| c.status()).map(|s| s.as_str()) {
            Some("VALID") | None => Ok(true),
            Some("INVALID") => Err(ProvisionError::Service {
                op: "DescribeComputeEnvironments",
                message: format!("compute environment {arn} is INVALID"),
            }),
            _ => Ok(false),
        }
    })
    .await
}

/// Set-up only the moto emulator needs, done over its HTTP API. Not for real AWS.
pub mod moto {
    use aws_config::SdkConfig;
    use aws_sdk_s3::config::ProvideCredentials;
    use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, utf8_percent_encode};

    use super::{ProvisionError, ProvisionResult};

    /// What a form value keeps unescaped: RFC 3986's unreserved characters.
    const FORM_VALUE: &AsciiSet = &NON_ALPHANUMERIC
        .remove(b'-')
        .remove(b'_')
        .remove(b'.')
        .remove(b'~');

    fn form_encode(s: &str) -> String {
        utf8_percent_encode(s, FORM_VALUE).to_string()
    }

    /// Make moto run Batch jobs without Docker: a submitted job then goes straight to
    /// SUCCEEDED (or FAILED with `MOTO_SIMPLE_BATCH_FAIL_AFTER` set on the server).
    pub async fn batch_without_docker(endpoint: &str) -> ProvisionResult<()> {
        let body = r#"{"batch":{"use_docker":false}}"#;
        post(
            endpoint,
            "/moto-api/config",
            &[("Content-Type", "application/json")],
            body.to_owned(),
        )
        .await
        .map(|_| ())
    }

    /// Create (or find) an IAM role on moto and return its ARN: moto's Batch refuses a
    /// compute environment whose service role does not exist in its IAM. Uses the SDK
    /// configuration's endpoint and access key (moto derives the account from it).
    pub async fn create_role(cfg: &SdkConfig, name: &str) -> ProvisionResult<String> {
        let endpoint = cfg
            .endpoint_url()
            .ok_or_else(|| ProvisionError::Invalid("no emulator endpoint configured".into()))?;
        create_role_at(endpoint, cfg, name).await
    }

    /// [`create_role`] on an explicit endpoint.
    pub(crate) async fn create_role_at(
        endpoint: &str,
        cfg: &SdkConfig,
        name: &str,
    ) -> ProvisionResult<String> {
        let access_key = match cfg.credentials_provider() {
            Some(p) => p
                .provide_credentials()
                .await
                .map(|c| c.access_key_id().to_owned())
                .unwrap_or_else(|_| "test".to_owned()),
            None => "test".to_owned(),
        };
        let trust = super::allow(
            "batch.amazonaws.com",
            "sts:AssumeRole",
            serde_json::json!({}),
        );
        // moto routes a request by the service in the credential scope and does not check
        // the signature.
        let auth = format!(
            "AWS4-HMAC-SHA256 Credential={access_key}/20240101/us-east-1/iam/aws4_request, \
             SignedHeaders=host, Signature=0"
        );
        let headers = [
            ("Content-Type", "application/x-www-form-urlencoded"),
            ("Authorization", auth.as_str()),
        ];
        let role = form_encode(name);
        let create = format!(
            "Action=CreateRole&Version=2010-05-08&RoleName={role}&AssumeRolePolicyDocument={}",
            form_encode(&trust)
        );
        let text = match post(endpoint, "/", &headers, create).await {
            Ok(text) => text,
            Err(ProvisionError::Service { message, .. })
                if message.contains("EntityAlreadyExists") =>
            {
                let get = format!("Action=GetRole&Version=2010-05-08&RoleName={role}");
                post(endpoint, "/", &headers, get).await?
            }
            Err(e) => return Err(e),
        };
        text.split_once("<Arn>")
            .and_then(|(_, rest)| rest.split_once("</Arn>"))
            .map(|(arn, _)| arn.trim().to_owned())
            .ok_or_else(|| super::missing("role ARN"))
    }

    /// POST to the emulator; the body of a 2xx answer, or the answer as the error.
    async fn post(
        endpoint: &str,
        path: &str,
        headers: &[(&str, &str)],
        body: String,
    ) -> ProvisionResult<String> {
        let failed = |e: reqwest::Error| ProvisionError::Service {
            op: "moto",
            message: format!("{endpoint}{path}: {e}"),
        };
        let mut req = reqwest::Client::new()
            .post(format!("{}{path}", endpoint.trim_end_matches('/')))
            .body(body);
        for (k, v) in headers {
            req = req.header(*k, *v);
        }
        let res = req.send().await.map_err(failed)?;
        let status = res.status();
        let text = res.text().await.map_err(failed)?;
        if status.is_success() {
            Ok(text)
        } else {
            Err(ProvisionError::Service {
                op: "moto",
                message: format!("{path} answered {status}: {text}"),
            })
        }
    }

    #[cfg(test)]
    mod tests {
        #[test]
        fn form_encoding_escapes_everything_but_unreserved() {
            assert_eq!(super::form_encode("a-b_c.d~"), "a-b_c.d~");
            assert_eq!(super::form_encode("{\"x\": 1}"), "%7B%22x%22%3A%201%7D");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::TRAINER_COMMAND;

    /// The `Command` of template.yaml's `TrainerJobDefinition`, as a list of words.
    fn template_trainer_command() -> Vec<String> {
        let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../template.yaml");
        let template = std::fs::read_to_string(path).expect("template.yaml is readable");
        let resource = template
            .split_once("\n  TrainerJobDefinition:\n")
            .expect("the template defines TrainerJobDefinition")
            .1;
        // The resource's lines are indented deeper than the next resource's name.
        let line = resource
            .lines()
            .take_while(|l| l.is_empty() || l.starts_with("   "))
            .find_map(|l| l.trim().strip_prefix("Command:"))
            .expect("TrainerJobDefinition has a Command");
        line.trim()
            .trim_start_matches('[')
            .trim_end_matches(']')
            .split(',')
            .map(|w| w.trim().trim_matches('"').to_owned())
            .collect()
    }

    #[test]
    fn the_trainer_command_is_the_templates() {
        assert_eq!(template_trainer_command(), TRAINER_COMMAND);
    }
}
