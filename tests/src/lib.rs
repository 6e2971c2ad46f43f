//! Test harness shared by the cross-crate tests under `tests/tests/`: the two adapter
//! families behind one [`Family`] handle, the AWS emulator connection and the provisioning
//! of its resources, a SigV4 check of presigned S3 URLs, a record store that keeps what was
//! written, and helpers to run `synth serve` as a real process.

pub mod aws;
pub mod embedded;
pub mod http;
pub mod provision;
pub mod recording;
pub mod sigv4;

use std::time::Duration;

use async_trait::async_trait;
use synth_core::Backends;

/// One adapter family, ready for a test: fresh, uniquely named resources.
pub struct Family {
    pub name: &'static str,
    pub backends: Backends,
    /// Two independent subscribers of `backends.topic`, for fan-out checks.
    pub subscribers: Vec<Box<dyn Subscriber>>,
    /// Who judges a presigned URL's signature and expiry in the tests.
    pub url_check: UrlCheck,
    /// Objects created in the store (the embedded family's stand-in for S3 notifications);
    /// `None` for AWS, whose notifications the tests deliver as S3 event JSON.
    pub objects_created: Option<tokio::sync::broadcast::Receiver<synth_core::ObjectMeta>>,
    /// The topic's messages as the notifications' subscriber receives them (taken by
    /// [`http::serve`], which delivers them as the deployment does).
    pub notices: Option<Box<dyn NoticeFeed>>,
    /// Keeps temporary folders and servers alive for the test's duration.
    pub _guard: Box<dyn std::any::Any + Send>,
}

/// How the tests find out whether a presigned URL would be honoured.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UrlCheck {
    /// The family's own URL server verifies them and answers 4xx (embedded).
    Served,
    /// The store is S3, whose emulator does not verify them: the tests judge the URL's
    /// SigV4 signature and expiry themselves with [`sigv4::check`] (AWS).
    SigV4,
}

/// A subscriber of the family's topic.
#[async_trait]
pub trait Subscriber: Send {
    /// The next message body, waiting up to `timeout`.
    async fn next(&mut self, timeout: Duration) -> Option<String>;
}

/// One topic message as the notifications' subscriber receives it.
#[derive(Debug, Clone)]
pub enum Notice {
    /// From the embedded topic (what `synth serve`'s notify loop hands on).
    Local(synth_embedded::TopicMessage),
    /// An SNS delivery, as the `notify` Lambda's event.
    Sns(aws_lambda_events::event::sns::SnsEvent),
}

/// The topic's messages, for the notifications' subscriber.
#[async_trait]
pub trait NoticeFeed: Send {
    /// The next message, waiting up to `timeout`.
    async fn next(&mut self, timeout: Duration) -> Option<Notice>;
}

/// The keys of the objects under `prefix`, in key order.
pub async fn object_keys(objects: &dyn synth_core::ObjectStore, prefix: &str) -> Vec<String> {
    let listed = objects.list(prefix).await.expect("list objects");
    listed.into_iter().map(|m| m.key).collect()
}

/// Store a small CSV object.
pub async fn put_csv(objects: &dyn synth_core::ObjectStore, key: &str, body: &str) {
    let stored = objects.put(key, body.to_owned().into(), "text/csv").await;
    stored.expect("put object");
}

/// The next message on `queue`, which must come within `wait`; hidden from other receivers
/// for `visibility`.
pub async fn next_message(
    queue: &dyn synth_core::Queue,
    visibility: Duration,
    wait: Duration,
) -> synth_core::QueueMessage {
    let got = queue.receive(1, visibility, wait).await;
    let message = got.expect("receive from the queue").into_iter().next();
    message.expect("a message on the queue")
}

/// The string at `pointer` (a JSON pointer such as `/id`) in each element of the array
/// `list`; panics where the list or one of the strings is missing.
pub fn pluck<'a>(list: &'a serde_json::Value, pointer: &str) -> Vec<&'a str> {
    let items = list
        .as_array()
        .unwrap_or_else(|| panic!("not a list: {list}"));
    let at = |v: &'a serde_json::Value| v.pointer(pointer).and_then(|s| s.as_str());
    let each = items
        .iter()
        .map(|v| at(v).unwrap_or_else(|| panic!("no {pointer}: {v}")));
    each.collect()
}

/// Whether `v` is a string that contains `part`.
pub fn says(v: &serde_json::Value, part: &str) -> bool {
    v.as_str().is_some_and(|s| s.contains(part))
}

/// A name no other test run uses (emulator resources are never reset, only new).
pub fn unique(prefix: &str) -> String {
    let id = uuid::Uuid::new_v4().simple().to_string();
    format!("{prefix}-{}", &id[..12])
}

/// Poll `f` until it yields `Some`, for at most `timeout`.
pub async fn eventually<T, F, Fut>(timeout: Duration, mut f: F) -> Option<T>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let deadline = tokio::time::Instant::now() + timeout;
    loop {
        if let Some(v) = f().await {
            return Some(v);
        }
        if tokio::time::Instant::now() >= deadline {
            return None;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Define each named test function (`async fn name(f: Family)`) once per adapter family:
/// `embedded::name` and `aws::name`. Tests after `; ignored on aws:` run on the embedded
/// family and show as ignored on the AWS one, with the reason given (what the emulator
/// cannot do), never as passed.
#[macro_export]
macro_rules! both_families {
    (
        $($name:ident),* $(,)?
        $(; ignored on aws: $($ignored:ident = $why:literal),+ $(,)?)?
    ) => {
        mod embedded {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    super::$name($crate::embedded::family().await).await
                }
            )*
            $($(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $ignored() {
                    super::$ignored($crate::embedded::family().await).await
                }
            )+)?
        }
        mod aws {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    super::$name($crate::aws::family().await).await
                }
            )*
            $($(
                #[ignore = $why]
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $ignored() {
                    super::$ignored($crate::aws::family().await).await
                }
            )+)?
        }
    };
}
