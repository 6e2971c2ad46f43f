//! The embedded family for tests: a temporary data folder and the object URL server on a
//! free loopback port.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use synth_core::JobSpec;
use synth_embedded::{EmbeddedOptions, JobHandler, TopicMessage};
use tokio::sync::mpsc::UnboundedReceiver;

use crate::{Family, Subscriber, UrlCheck};

/// The secret the embedded test family signs URLs with.
pub const TEST_SECRET: &str = "embedded-test-secret-key-0123456789abcdef";

/// A job handler for tests: `args[0] == "fail"` fails, `sleep:MS` sleeps first.
pub struct TestJobs;

#[async_trait]
impl JobHandler for TestJobs {
    async fn run(&self, spec: JobSpec) -> Result<(), String> {
        for a in &spec.args {
            if let Some(ms) = a.strip_prefix("sleep:").and_then(|m| m.parse().ok()) {
                tokio::time::sleep(Duration::from_millis(ms)).await;
            }
        }
        if spec.args.first().map(String::as_str) == Some("fail") {
            return Err("asked to fail".into());
        }
        Ok(())
    }
}

struct LocalSubscriber(UnboundedReceiver<TopicMessage>);

struct LocalNotices(UnboundedReceiver<TopicMessage>);

#[async_trait]
impl crate::NoticeFeed for LocalNotices {
    async fn next(&mut self, timeout: Duration) -> Option<crate::Notice> {
        let m = tokio::time::timeout(timeout, self.0.recv()).await.ok()??;
        Some(crate::Notice::Local(m))
    }
}

#[async_trait]
impl Subscriber for LocalSubscriber {
    async fn next(&mut self, timeout: Duration) -> Option<String> {
        tokio::time::timeout(timeout, self.0.recv())
            .await
            .ok()
            .flatten()
            .map(|m| m.message)
    }
}

/// Aborts the server task when the test ends.
struct Abort(tokio::task::JoinHandle<()>);

impl Drop for Abort {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// A fresh embedded family.
pub async fn family() -> Family {
    let dir = tempfile::tempdir().expect("temp dir");
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    let emb = synth_embedded::open(
        EmbeddedOptions {
            data_dir: dir.path().to_path_buf(),
            secret_key: TEST_SECRET.into(),
            public_base_url: format!("http://{addr}"),
            max_concurrent_jobs: 2,
            max_upload_bytes: 16 * 1024 * 1024,
        },
        Arc::new(TestJobs),
    )
    .await
    .expect("open embedded stores");
    let router = emb.router.clone();
    let server = tokio::spawn(async move {
        let _ = axum::serve(listener, router).await;
    });
    let subscribers: Vec<Box<dyn Subscriber>> = vec![
        Box::new(LocalSubscriber(emb.topic.subscribe())),
        Box::new(LocalSubscriber(emb.topic.subscribe())),
    ];
    Family {
        name: "embedded",
        backends: emb.backends.clone(),
        subscribers,
        url_check: UrlCheck::Served,
        objects_created: Some(emb.objects.subscribe_created()),
        notices: Some(Box::new(LocalNotices(emb.topic.subscribe()))),
        _guard: Box::new((dir, Abort(server), emb)),
    }
}
