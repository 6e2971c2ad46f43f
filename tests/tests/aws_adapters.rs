//! What only the AWS family has, checked against a moto server: provisioning, DynamoDB
//! pages cut short by the 1 MB limit, S3 deletes spanning several DeleteObjects batches,
//! the index-key guard on updates, SNS → SQS fan-out and a Batch job run to completion.
//! The shared contract suite (contract.rs) covers the ports' behaviour itself. These tests
//! use the adapters bare, without the checking layer: what they check is the adapters' own.
//!
//! Needs a moto server at `SYNTH_TEST_AWS_ENDPOINT` (scripts/test starts one and sets it);
//! like the shared suite, these tests fail loudly without it.

use std::sync::Arc;
use std::time::Duration;

use aws_config::{BehaviorVersion, Region, SdkConfig};
use aws_sdk_s3::config::Credentials;
use synth_aws::{BatchJobs, DynamoRecords, S3Objects, SnsTopic};
use synth_core::{
    Condition, Index, Item, JobRunner, JobSpec, JobState, Key, ObjectStore, PortError, Query,
    RecordStore, Topic, TxOp, Update,
};
use synth_tests::aws::emulator;
use synth_tests::provision::{self, ProvisionError};
use synth_tests::unique;

async fn records(cfg: &SdkConfig) -> DynamoRecords {
    let client = aws_sdk_dynamodb::Client::new(cfg);
    let table = provision::create_table(&client, &unique("records"))
        .await
        .unwrap();
    // A second call finds the table and succeeds.
    provision::create_table(&client, &table).await.unwrap();
    DynamoRecords::new(client, table)
}

#[tokio::test]
async fn pages_cut_short_by_the_size_limit_are_followed() {
    let cfg = emulator().await;
    let store = records(&cfg).await;
    // 300 KB items: DynamoDB (and moto) return at most three per 1 MB response.
    let blob = "x".repeat(300 * 1024);
    for i in 0..8 {
        let item = Item::new(&Key::new("fat", format!("{i}")))
            .with("blob", blob.as_str())
            .with_gsi1("fat-index", format!("{i}"));
        store.put(item, None).await.unwrap();
    }
    for index in [Index::Primary, Index::Gsi1] {
        let pk = if index == Index::Primary {
            "fat"
        } else {
            "fat-index"
        };
        let first = store
            .query(&Query::partition(index, pk).limit(5))
            .await
            .unwrap();
        assert_eq!(
            first.items.len(),
            5,
            "{index:?}: a full page despite short responses"
        );
        assert!(first.next.is_some());
        let second = store
            .query(&Query::partition(index, pk).limit(5).after(first.next))
            .await
            .unwrap();
        let sks: Vec<_> = second.items.iter().map(|i| i.key().sk).collect();
        assert_eq!(sks, ["5", "6", "7"], "{index:?}");
        assert_eq!(
            second.next, None,
            "{index:?}: no cursor after the last item"
        );
    }
}

#[tokio::test]
async fn updates_keep_index_key_pairs_whole() {
    let cfg = emulator().await;
    let store = records(&cfg).await;
    let key = Key::new("u#1", "profile");
    store.put(Item::new(&key).with("v", 1), None).await.unwrap();
    // Setting half of an index key is refused, as Item::validate refuses it in the
    // embedded family, but a failing caller condition still reads as a lost race.
    let half = Update::default().set("gsi1pk", "email#a");
    assert!(matches!(
        store.update(&key, half.clone(), None).await,
        Err(PortError::Invalid(_))
    ));
    assert_eq!(
        store
            .update(&key, half.clone(), Some(Condition::eq("v", 2)))
            .await,
        Err(PortError::ConditionFailed)
    );
    let missing = Key::new("u#2", "profile");
    assert!(matches!(
        store.update(&missing, half.clone(), None).await,
        Err(PortError::Invalid(_))
    ));
    assert_eq!(
        store.get(&missing).await.unwrap(),
        None,
        "nothing was created"
    );
    let tx = vec![
        TxOp::Update {
            key: key.clone(),
            update: half,
            condition: None,
        },
        TxOp::Put {
            item: Item::new(&missing),
            condition: None,
        },
    ];
    assert!(matches!(
        store.transact(tx).await,
        Err(PortError::Invalid(_))
    ));
    // Both halves together are fine, and so is completing a pair later.
    let both = Update::default()
        .set("gsi1pk", "email#a")
        .set("gsi1sk", "u");
    store.update(&key, both, None).await.unwrap();
    let moved = store
        .update(&key, Update::default().set("gsi1pk", "email#b"), None)
        .await
        .unwrap();
    assert_eq!(moved.str("gsi1pk"), Some("email#b"));
    let found = store
        .query(&Query::partition(Index::Gsi1, "email#b"))
        .await
        .unwrap();
    assert_eq!(found.items.len(), 1);
}

#[tokio::test]
async fn delete_prefix_spans_several_delete_batches() {
    let cfg = emulator().await;
    let client = synth_aws::s3_client(&cfg, true);
    let bucket = provision::create_bucket(&client, &unique("bucket"))
        .await
        .unwrap();
    provision::create_bucket(&client, &bucket).await.unwrap();
    let store: Arc<dyn ObjectStore> = Arc::new(S3Objects::new(client, bucket));
    let mut tasks = tokio::task::JoinSet::new();
    for worker in 0..10 {
        let store = store.clone();
        tasks.spawn(async move {
            for i in (worker..1005).step_by(10) {
                let key = format!("bulk/{i:05}.txt");
                store.put(&key, "x".into(), "text/plain").await.unwrap();
            }
        });
    }
    while let Some(done) = tasks.join_next().await {
        done.unwrap();
    }
    store
        .put("keep/a.txt", "y".into(), "text/plain")
        .await
        .unwrap();
    let listed = store.list("bulk/").await.unwrap();
    assert_eq!(listed.len(), 1005, "listing follows continuation tokens");
    assert!(listed.windows(2).all(|w| w[0].key < w[1].key));
    assert_eq!(store.delete_prefix("bulk/").await.unwrap(), 1005);
    assert!(store.list("bulk/").await.unwrap().is_empty());
    assert_eq!(store.list("").await.unwrap().len(), 1);
}

#[tokio::test]
async fn a_published_message_reaches_a_subscribed_queue() {
    let cfg = emulator().await;
    let sns = aws_sdk_sns::Client::new(&cfg);
    let sqs = aws_sdk_sqs::Client::new(&cfg);
    let topic_arn = provision::create_topic(&sns, &unique("events"))
        .await
        .unwrap();
    let queue_url = provision::create_queue(&sqs, &unique("inbox"))
        .await
        .unwrap();
    provision::subscribe_queue(&sns, &sqs, &topic_arn, &queue_url, true)
        .await
        .unwrap();
    assert!(matches!(
        provision::create_fifo_queue(&sqs, "not-fifo").await,
        Err(ProvisionError::Invalid(_))
    ));
    let topic = SnsTopic::new(sns, topic_arn);
    topic
        .publish("Done:\tnon-ASCII é dropped", r#"{"event":"done"}"#)
        .await
        .unwrap();
    let got = sqs
        .receive_message()
        .queue_url(&queue_url)
        .wait_time_seconds(5)
        .send()
        .await
        .unwrap();
    let bodies: Vec<_> = got.messages().iter().filter_map(|m| m.body()).collect();
    assert_eq!(
        bodies,
        [r#"{"event":"done"}"#],
        "raw delivery, no SNS envelope"
    );
}

#[tokio::test]
async fn a_batch_job_runs_to_success() {
    let cfg = emulator().await;
    let endpoint = cfg.endpoint_url().unwrap().to_owned();
    provision::moto::batch_without_docker(&endpoint)
        .await
        .unwrap();
    let role = provision::moto::create_role(&cfg, "synth-batch-service")
        .await
        .unwrap();
    assert_eq!(
        provision::moto::create_role(&cfg, "synth-batch-service")
            .await
            .unwrap(),
        role,
        "an existing role is found again"
    );
    let client = aws_sdk_batch::Client::new(&cfg);
    let prefix = unique("synth");
    let (queue, definition) = provision::create_batch_with_role(&client, &role, &prefix)
        .await
        .unwrap();
    let (again, _) = provision::create_batch_with_role(&client, &role, &prefix)
        .await
        .unwrap();
    assert_eq!(again, queue, "an existing queue is reused");
    // The one-call form the shared suite uses, on a fresh prefix.
    let (other, _) = provision::create_batch(&cfg, &endpoint, &unique("synth"))
        .await
        .unwrap();
    assert_ne!(other, queue);
    let jobs = BatchJobs::new(client, queue, definition);
    jobs.health().await.unwrap();
    let id = jobs
        .submit(JobSpec {
            name: "train-r1".into(),
            args: vec!["train".into(), "--request".into(), "r1".into()],
            env: vec![("SYNTH_REQUEST_ID".into(), "r1".into())],
        })
        .await
        .unwrap();
    let mut state = JobState::Queued;
    for _ in 0..40 {
        state = jobs.status(&id).await.unwrap().state;
        if state.is_final() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    assert_eq!(state, JobState::Succeeded);
    assert!(matches!(
        jobs.status("4f1c0e4e-0000-4000-8000-000000000000").await,
        Err(PortError::NotFound(_))
    ));
}

#[tokio::test]
async fn an_unreachable_endpoint_is_unavailable() {
    emulator().await;
    let cfg = aws_config::defaults(BehaviorVersion::latest())
        .endpoint_url("http://127.0.0.1:9")
        .region(Region::new("us-east-1"))
        .credentials_provider(Credentials::new("test", "test", None, None, "moto"))
        .retry_config(aws_config::retry::RetryConfig::disabled())
        .load()
        .await;
    let store = DynamoRecords::new(aws_sdk_dynamodb::Client::new(&cfg), "t");
    assert!(matches!(
        store.health().await,
        Err(PortError::Unavailable(_))
    ));
}
