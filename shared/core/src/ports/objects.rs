//! The objects port: a bucket of named blobs (S3, or a data folder), with presigned URLs
//! so large files never pass through the API process.

use std::path::Path;
use std::pin::Pin;
use std::time::Duration;

use async_trait::async_trait;
use bytes::Bytes;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use tokio::io::{AsyncRead, AsyncReadExt};

use crate::error::{PortError, PortResult};

/// Longest expiry of a presigned URL (S3's limit for SigV4 is seven days).
pub const MAX_PRESIGN: Duration = Duration::from_secs(7 * 24 * 3600);

/// What is known about a stored object.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ObjectMeta {
    pub key: String,
    pub size: u64,
    pub content_type: Option<String>,
    pub last_modified: Option<DateTime<Utc>>,
}

/// An object's bytes as a stream, with its metadata.
pub struct ObjectBody {
    pub meta: ObjectMeta,
    pub reader: Pin<Box<dyn AsyncRead + Send>>,
}

impl ObjectBody {
    /// Read the whole object into memory (for small objects only).
    pub async fn bytes(mut self) -> PortResult<Bytes> {
        let mut buf = Vec::with_capacity(self.meta.size as usize);
        self.reader
            .read_to_end(&mut buf)
            .await
            .map_err(|e| PortError::Backend(format!("reading object: {e}")))?;
        Ok(buf.into())
    }
}

/// A request the client makes itself, directly against the object store.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct PresignedRequest {
    pub url: String,
    pub method: String,
    /// Headers the client must send with the request (e.g. the signed content type), as
    /// `[name, value]` pairs.
    #[cfg_attr(feature = "openapi", schema(value_type = Vec<Vec<String>>))]
    pub headers: Vec<(String, String)>,
    pub expires_at: DateTime<Utc>,
}

/// Keys are relative, slash-separated paths of plain characters, so that the same key
/// is valid for S3 and as a path under the embedded data folder.
pub fn validate_key(key: &str) -> PortResult<()> {
    let ok = !key.is_empty()
        && key.len() <= 512
        && !key.starts_with('/')
        && !key.ends_with('/')
        && key
            .split('/')
            .all(|seg| !seg.is_empty() && seg != "." && seg != "..")
        && key
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_./=+@".contains(c))
        && !key.split('/').any(|seg| seg.starts_with('.'));
    if ok {
        Ok(())
    } else {
        Err(PortError::Invalid(format!("bad object key {key:?}")))
    }
}

/// A prefix for bulk deletion: a non-empty folder-like key ending in `/`, so that no
/// caller can empty the whole bucket by accident.
pub fn validate_prefix(prefix: &str) -> PortResult<()> {
    match prefix.strip_suffix('/') {
        Some(folder) => validate_key(folder),
        None => Err(PortError::Invalid(format!(
            "prefix {prefix:?} must end with '/'"
        ))),
    }
}

/// A content type is one printable ASCII header value, as S3 would store it.
pub fn validate_content_type(ct: &str) -> PortResult<()> {
    if ct.is_empty() || ct.len() > 255 || !ct.bytes().all(|b| (0x20..0x7f).contains(&b)) {
        return Err(PortError::Invalid(format!("bad content type {ct:?}")));
    }
    Ok(())
}

/// Check an expiry against the limits both families share.
pub fn validate_expiry(expires: Duration) -> PortResult<()> {
    if expires.is_zero() || expires > MAX_PRESIGN {
        return Err(PortError::Invalid(
            "presign expiry must be between 1 s and 7 days".into(),
        ));
    }
    Ok(())
}

/// A bucket of objects.
#[async_trait]
pub trait ObjectStore: Send + Sync {
    /// Store bytes under `key`, replacing any previous object.
    async fn put(&self, key: &str, body: Bytes, content_type: &str) -> PortResult<ObjectMeta>;
    /// Store a local file under `key` without reading it into memory.
    async fn put_file(&self, key: &str, path: &Path, content_type: &str) -> PortResult<ObjectMeta>;
    /// Stream an object; `NotFound` when absent.
    async fn get(&self, key: &str) -> PortResult<ObjectBody>;
    /// Metadata of an object, `None` when absent.
    async fn head(&self, key: &str) -> PortResult<Option<ObjectMeta>>;
    /// Delete an object; deleting a missing one is not an error.
    async fn delete(&self, key: &str) -> PortResult<()>;
    /// Objects whose key starts with `prefix`, in key order.
    async fn list(&self, prefix: &str) -> PortResult<Vec<ObjectMeta>>;
    /// Delete every object under `prefix` (see [`validate_prefix`]); returns how many were
    /// deleted.
    async fn delete_prefix(&self, prefix: &str) -> PortResult<u64>;
    /// A URL that downloads the object until it expires.
    async fn presign_get(&self, key: &str, expires: Duration) -> PortResult<PresignedRequest>;
    /// A URL that uploads the object until it expires: once, with this content type and
    /// exactly `content_length` bytes. It only creates: once the object exists (the URL
    /// was used), it is refused, so stored bytes never change behind a check of them.
    async fn presign_put(
        &self,
        key: &str,
        content_type: &str,
        content_length: u64,
        expires: Duration,
    ) -> PortResult<PresignedRequest>;
    /// Whether the store answers.
    async fn health(&self) -> PortResult<()>;
}
