//! Creating the resources the adapters expect, for tests and for local development against
//! an emulator (production resources come from template.yaml). Each function tolerates the
//! resource already existing and returns its identifier, so a test can call it freely.

use std::time::Duration;

use aws_config::SdkConfig;
use aws_sdk_batch::types::{
    CeState, CeType, ComputeEnvironmentOrder, ContainerProperties, JobDefinitionType, JqState,
    ResourceRequirement, ResourceType,
};
use aws_sdk_dynamodb::types::{
    AttributeDefinition, BillingMode, GlobalSecondaryIndex, IndexStatus, KeySchemaElement, KeyType,
    Projection, ProjectionType, ScalarAttributeType, TableStatus,
};
use aws_sdk_s3::types::{BucketLocationConstraint, CreateBucketConfiguration};
use aws_sdk_sqs::types::QueueAttributeName;
use synth_core::PortError;
use synth_core::error::PortResult;
use synth_core::ports::records::{GSI1_PK, GSI1_SK, GSI2_PK, GSI2_SK, PK, SK};

use crate::error::port_error;

/// Visibility timeout given to queues created here; receivers override it per call.
pub const DEFAULT_VISIBILITY_TIMEOUT_S: u32 = 30;

/// How long to wait for a table or compute environment to become usable.
const READY_TIMEOUT: Duration = Duration::from_secs(120);

fn build_err(e: impl std::fmt::Display) -> PortError {
    PortError::Invalid(e.to_string())
}

fn key(name: &str, kind: KeyType) -> PortResult<KeySchemaElement> {
    KeySchemaElement::builder()
        .attribute_name(name)
        .key_type(kind)
        .build()
        .map_err(build_err)
}

fn gsi(name: &str, pk: &str, sk: &str) -> PortResult<GlobalSecondaryIndex> {
    GlobalSecondaryIndex::builder()
        .index_name(name)
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
pub async fn create_table(client: &aws_sdk_dynamodb::Client, name: &str) -> PortResult<String> {
    let mut req = client
        .create_table()
        .table_name(name)
        .billing_mode(BillingMode::PayPerRequest)
        .key_schema(key(PK, KeyType::Hash)?)
        .key_schema(key(SK, KeyType::Range)?)
        .global_secondary_indexes(gsi("gsi1", GSI1_PK, GSI1_SK)?)
        .global_secondary_indexes(gsi("gsi2", GSI2_PK, GSI2_SK)?);
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
        Err(e) => return Err(port_error("CreateTable", e)),
    }
    let deadline = tokio::time::Instant::now() + READY_TIMEOUT;
    loop {
        let out = client
            .describe_table()
            .table_name(name)
            .send()
            .await
            .map_err(|e| port_error("DescribeTable", e))?;
        let table = out.table();
        let ready = table.and_then(|t| t.table_status()) == Some(&TableStatus::Active)
            && table.is_some_and(|t| {
                t.global_secondary_indexes()
                    .iter()
                    .all(|i| i.index_status().is_none_or(|s| *s == IndexStatus::Active))
            });
        if ready {
            return Ok(name.to_owned());
        }
        if tokio::time::Instant::now() > deadline {
            return Err(PortError::Unavailable(format!(
                "table {name} is not active"
            )));
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

/// Create a bucket in the client's region.
pub async fn create_bucket(client: &aws_sdk_s3::Client, name: &str) -> PortResult<String> {
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
        Err(e) => Err(port_error("CreateBucket", e)),
    }
}

/// Create the work queue (FIFO, as [`crate::SqsQueue`] needs; the name must end in
/// `.fifo`) and return its URL.
pub async fn create_fifo_queue(client: &aws_sdk_sqs::Client, name: &str) -> PortResult<String> {
    if !name.ends_with(".fifo") {
        return Err(PortError::Invalid(format!(
            "a FIFO queue's name must end in .fifo: {name}"
        )));
    }
    let out = client
        .create_queue()
        .queue_name(name)
        .attributes(QueueAttributeName::FifoQueue, "true")
        .attributes(QueueAttributeName::ContentBasedDeduplication, "false")
        .attributes(
            QueueAttributeName::VisibilityTimeout,
            DEFAULT_VISIBILITY_TIMEOUT_S.to_string(),
        )
        .send()
        .await
        .map_err(|e| port_error("CreateQueue", e))?;
    out.queue_url
        .ok_or_else(|| PortError::Backend("CreateQueue returned no URL".into()))
}

/// Create a standard queue and return its URL: the kind of queue a standard SNS topic can
/// deliver to (AWS refuses to subscribe a FIFO queue to a standard topic).
pub async fn create_queue(client: &aws_sdk_sqs::Client, name: &str) -> PortResult<String> {
    let out = client
        .create_queue()
        .queue_name(name)
        .attributes(
            QueueAttributeName::VisibilityTimeout,
            DEFAULT_VISIBILITY_TIMEOUT_S.to_string(),
        )
        .send()
        .await
        .map_err(|e| port_error("CreateQueue", e))?;
    out.queue_url
        .ok_or_else(|| PortError::Backend("CreateQueue returned no URL".into()))
}

/// Create a (standard) topic and return its ARN.
pub async fn create_topic(client: &aws_sdk_sns::Client, name: &str) -> PortResult<String> {
    let out = client
        .create_topic()
        .name(name)
        .send()
        .await
        .map_err(|e| port_error("CreateTopic", e))?;
    out.topic_arn
        .ok_or_else(|| PortError::Backend("CreateTopic returned no ARN".into()))
}

/// Subscribe a queue to a topic with raw message delivery (the queue receives the published
/// message itself, not an SNS envelope), allowing the topic to send to the queue. Returns
/// the subscription ARN.
pub async fn subscribe_queue(
    sns: &aws_sdk_sns::Client,
    sqs: &aws_sdk_sqs::Client,
    topic_arn: &str,
    queue_url: &str,
) -> PortResult<String> {
    let attrs = sqs
        .get_queue_attributes()
        .queue_url(queue_url)
        .attribute_names(QueueAttributeName::QueueArn)
        .send()
        .await
        .map_err(|e| port_error("GetQueueAttributes", e))?;
    let queue_arn = attrs
        .attributes()
        .and_then(|a| a.get(&QueueAttributeName::QueueArn))
        .cloned()
        .ok_or_else(|| PortError::Backend("queue has no ARN".into()))?;
    let policy = serde_json::json!({
        "Version": "2012-10-17",
        "Statement": [{
            "Effect": "Allow",
            "Principal": {"Service": "sns.amazonaws.com"},
            "Action": "sqs:SendMessage",
            "Resource": queue_arn,
            "Condition": {"ArnEquals": {"aws:SourceArn": topic_arn}},
        }],
    });
    sqs.set_queue_attributes()
        .queue_url(queue_url)
        .attributes(QueueAttributeName::Policy, policy.to_string())
        .send()
        .await
        .map_err(|e| port_error("SetQueueAttributes", e))?;
    let out = sns
        .subscribe()
        .topic_arn(topic_arn)
        .protocol("sqs")
        .endpoint(&queue_arn)
        .attributes("RawMessageDelivery", "true")
        .return_subscription_arn(true)
        .send()
        .await
        .map_err(|e| port_error("Subscribe", e))?;
    out.subscription_arn
        .ok_or_else(|| PortError::Backend("Subscribe returned no ARN".into()))
}

/// Batch on the emulator at `endpoint`: the IAM service role moto insists on, then
/// [`create_batch_with_role`]. Jobs only succeed there once moto runs Batch without Docker
/// ([`moto::batch_without_docker`], which `scripts/test` does).
pub async fn create_batch(
    cfg: &SdkConfig,
    endpoint: &str,
    prefix: &str,
) -> PortResult<(String, String)> {
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
) -> PortResult<(String, String)> {
    let ce_name = format!("{prefix}-ce");
    let queue_name = format!("{prefix}-jobs");
    let def_name = format!("{prefix}-trainer");

    let ce_arn = match existing_compute_env(client, &ce_name).await? {
        Some(arn) => arn,
        None => client
            .create_compute_environment()
            .compute_environment_name(&ce_name)
            .r#type(CeType::Unmanaged)
            .state(CeState::Enabled)
            .service_role(service_role_arn)
            .send()
            .await
            .map_err(|e| port_error("CreateComputeEnvironment", e))?
            .compute_environment_arn
            .ok_or_else(|| PortError::Backend("no compute environment ARN".into()))?,
    };
    wait_compute_env_valid(client, &ce_arn).await?;

    let existing_queue = client
        .describe_job_queues()
        .job_queues(&queue_name)
        .send()
        .await
        .map_err(|e| port_error("DescribeJobQueues", e))?
        .job_queues()
        .iter()
        .find(|q| q.status().is_none_or(|s| s.as_str() != "DELETED"))
        .and_then(|q| q.job_queue_arn().map(str::to_owned));
    let queue_arn = match existing_queue {
        Some(arn) => arn,
        None => client
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
            .send()
            .await
            .map_err(|e| port_error("CreateJobQueue", e))?
            .job_queue_arn
            .ok_or_else(|| PortError::Backend("CreateJobQueue returned no ARN".into()))?,
    };

    let resource = |kind: ResourceType, value: &str| {
        ResourceRequirement::builder()
            .r#type(kind)
            .value(value)
            .build()
    };
    let def = client
        .register_job_definition()
        .job_definition_name(&def_name)
        .r#type(JobDefinitionType::Container)
        .container_properties(
            ContainerProperties::builder()
                .image("synth-trainer:latest")
                .command("synth-trainer")
                .resource_requirements(resource(ResourceType::Vcpu, "1"))
                .resource_requirements(resource(ResourceType::Memory, "2048"))
                .build(),
        )
        .send()
        .await
        .map_err(|e| port_error("RegisterJobDefinition", e))?;
    let def_arn = def
        .job_definition_arn
        .ok_or_else(|| PortError::Backend("RegisterJobDefinition returned no ARN".into()))?;
    Ok((queue_arn, def_arn))
}

async fn existing_compute_env(
    client: &aws_sdk_batch::Client,
    name: &str,
) -> PortResult<Option<String>> {
    let out = client
        .describe_compute_environments()
        .compute_environments(name)
        .send()
        .await
        .map_err(|e| port_error("DescribeComputeEnvironments", e))?;
    Ok(out
        .compute_environments()
        .iter()
        .find(|c| c.status().is_none_or(|s| s.as_str() != "DELETED"))
        .and_then(|c| c.compute_environment_arn().map(str::to_owned)))
}

async fn wait_compute_env_valid(client: &aws_sdk_batch::Client, arn: &str) -> PortResult<()> {
    let deadline = tokio::time::Instant::now() + READY_TIMEOUT;
    loop {
        let out = client
            .describe_compute_environments()
            .compute_environments(arn)
            .send()
            .await
            .map_err(|e| port_error("DescribeComputeEnvironments", e))?;
        let status = out
            .compute_environments()
            .first()
            .and_then(|c| c.status())
            .map(|s| s.as_str().to_owned());
        match status.as_deref() {
            Some("VALID") | None => return Ok(()),
            Some("INVALID") => {
                return Err(PortError::Backend(format!(
                    "compute environment {arn} is INVALID"
                )));
            }
            _ if tokio::time::Instant::now() > deadline => {
                return Err(PortError::Unavailable(format!(
                    "compute environment {arn} is not valid yet"
                )));
            }
            _ => tokio::time::sleep(Duration::from_secs(1)).await,
        }
    }
}

/// Set-up only the moto emulator needs, done over its HTTP API. Not for real AWS.
pub mod moto {
    use aws_config::SdkConfig;
    use aws_sdk_s3::config::ProvideCredentials;
    use synth_core::PortError;
    use synth_core::error::PortResult;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    /// Make moto run Batch jobs without Docker: a submitted job then goes straight to
    /// SUCCEEDED (or FAILED with `MOTO_SIMPLE_BATCH_FAIL_AFTER` set on the server).
    pub async fn batch_without_docker(endpoint: &str) -> PortResult<()> {
        let body = r#"{"batch":{"use_docker":false}}"#;
        let (status, text) = post(
            endpoint,
            "/moto-api/config",
            &[("Content-Type", "application/json")],
            body,
        )
        .await?;
        if !(200..300).contains(&status) {
            return Err(PortError::Backend(format!(
                "moto config answered {status}: {text}"
            )));
        }
        Ok(())
    }

    /// Create (or find) an IAM role on moto and return its ARN: moto's Batch refuses a
    /// compute environment whose service role does not exist in its IAM. Uses the SDK
    /// configuration's endpoint and access key (moto derives the account from it).
    pub async fn create_role(cfg: &SdkConfig, name: &str) -> PortResult<String> {
        let endpoint = cfg
            .endpoint_url()
            .ok_or_else(|| PortError::Invalid("no emulator endpoint configured".into()))?;
        create_role_at(endpoint, cfg, name).await
    }

    /// [`create_role`] on an explicit endpoint.
    pub(crate) async fn create_role_at(
        endpoint: &str,
        cfg: &SdkConfig,
        name: &str,
    ) -> PortResult<String> {
        let access_key = match cfg.credentials_provider() {
            Some(p) => p
                .provide_credentials()
                .await
                .map(|c| c.access_key_id().to_owned())
                .unwrap_or_else(|_| "test".to_owned()),
            None => "test".to_owned(),
        };
        let trust = serde_json::json!({
            "Version": "2012-10-17",
            "Statement": [{
                "Effect": "Allow",
                "Principal": {"Service": "batch.amazonaws.com"},
                "Action": "sts:AssumeRole",
            }],
        })
        .to_string();
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
        let create = format!(
            "Action=CreateRole&Version=2010-05-08&RoleName={}&AssumeRolePolicyDocument={}",
            form_encode(name),
            form_encode(&trust)
        );
        let (status, text) = post(endpoint, "/", &headers, &create).await?;
        let text = if status == 409 || text.contains("EntityAlreadyExists") {
            let get = format!(
                "Action=GetRole&Version=2010-05-08&RoleName={}",
                form_encode(name)
            );
            post(endpoint, "/", &headers, &get).await?.1
        } else if (200..300).contains(&status) {
            text
        } else {
            return Err(PortError::Backend(format!(
                "moto CreateRole answered {status}: {text}"
            )));
        };
        let arn = text
            .split_once("<Arn>")
            .and_then(|(_, rest)| rest.split_once("</Arn>"))
            .map(|(arn, _)| arn.trim().to_owned())
            .ok_or_else(|| PortError::Backend(format!("no role ARN in {text}")))?;
        Ok(arn)
    }

    fn form_encode(s: &str) -> String {
        s.bytes()
            .map(|b| match b {
                b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                    (b as char).to_string()
                }
                _ => format!("%{b:02X}"),
            })
            .collect()
    }

    /// A minimal HTTP/1.0 POST to a plain-HTTP emulator: enough for moto's control API
    /// without pulling an HTTP client into every Lambda.
    async fn post(
        endpoint: &str,
        path: &str,
        headers: &[(&str, &str)],
        body: &str,
    ) -> PortResult<(u16, String)> {
        let unavailable = |e: std::io::Error| PortError::Unavailable(format!("{endpoint}: {e}"));
        let rest = endpoint.strip_prefix("http://").ok_or_else(|| {
            PortError::Invalid(format!("emulator endpoint must be http://: {endpoint}"))
        })?;
        let authority = rest.split('/').next().unwrap_or(rest);
        let addr = if authority.contains(':') {
            authority.to_owned()
        } else {
            format!("{authority}:80")
        };
        let mut stream = tokio::net::TcpStream::connect(&addr)
            .await
            .map_err(unavailable)?;
        let mut req = format!(
            "POST {path} HTTP/1.0\r\nHost: {authority}\r\nContent-Length: {}\r\n",
            body.len()
        );
        for (k, v) in headers {
            req.push_str(&format!("{k}: {v}\r\n"));
        }
        req.push_str("\r\n");
        req.push_str(body);
        stream
            .write_all(req.as_bytes())
            .await
            .map_err(unavailable)?;
        let mut raw = Vec::new();
        stream.read_to_end(&mut raw).await.map_err(unavailable)?;
        let raw = String::from_utf8_lossy(&raw);
        let (head, body) = raw.split_once("\r\n\r\n").unwrap_or((&raw, ""));
        let status = head
            .split_whitespace()
            .nth(1)
            .and_then(|s| s.parse().ok())
            .ok_or_else(|| PortError::Backend(format!("bad HTTP answer from {endpoint}")))?;
        Ok((status, body.to_owned()))
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
