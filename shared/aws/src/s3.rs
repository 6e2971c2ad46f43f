//! The objects port on one S3 bucket. Bodies stream in both directions and large
//! transfers go straight between the client and S3 through presigned URLs. Keys, content
//! types, prefixes and expiries were checked by the layer in front (`synth_core::Checked`).

use std::path::Path;
use std::time::Duration;

use async_trait::async_trait;
use aws_sdk_s3::Client;
use aws_sdk_s3::operation::get_object::GetObjectError;
use aws_sdk_s3::operation::head_object::HeadObjectError;
use aws_sdk_s3::presigning::PresigningConfig;
use aws_sdk_s3::primitives::{ByteStream, DateTime as AwsDateTime};
use aws_sdk_s3::types::{Delete, ObjectIdentifier};
use bytes::Bytes;
use chrono::{DateTime, Utc};
use synth_core::error::PortResult;
use synth_core::{ObjectBody, ObjectMeta, ObjectStore, PortError, PresignedRequest};

use crate::error::port_error;

/// Most keys one DeleteObjects request takes.
const DELETE_BATCH: usize = 1000;

/// An [`ObjectStore`] on an S3 bucket.
#[derive(Debug, Clone)]
pub struct S3Objects {
    client: Client,
    bucket: String,
}

impl S3Objects {
    /// Wrap a client (see [`crate::s3_client`] for emulators) and the bucket's name.
    pub fn new(client: Client, bucket: impl Into<String>) -> Self {
        Self {
            client,
            bucket: bucket.into(),
        }
    }
}

impl S3Objects {
    /// Store `body` (`len` bytes) under `key`.
    async fn put_stream(
        &self,
        key: &str,
        body: ByteStream,
        len: u64,
        content_type: &str,
    ) -> PortResult<ObjectMeta> {
        self.client
            .put_object()
            .bucket(&self.bucket)
            .key(key)
            .content_type(content_type)
            .body(body)
            .send()
            .await
            .map_err(|e| port_error("PutObject", e))?;
        Ok(ObjectMeta {
            key: key.to_owned(),
            size: len,
            content_type: Some(content_type.to_owned()),
            last_modified: Some(Utc::now()),
        })
    }
}

fn to_chrono(t: Option<&AwsDateTime>) -> Option<DateTime<Utc>> {
    t.and_then(|t| DateTime::from_timestamp(t.secs(), t.subsec_nanos()))
}

fn size(n: Option<i64>) -> u64 {
    n.and_then(|n| u64::try_from(n).ok()).unwrap_or(0)
}

fn presign_config(expires: Duration) -> PortResult<PresigningConfig> {
    PresigningConfig::expires_in(expires).map_err(|e| PortError::Invalid(e.to_string()))
}

fn presigned(
    req: aws_sdk_s3::presigning::PresignedRequest,
    expires: Duration,
) -> PortResult<PresignedRequest> {
    let expires_at = Utc::now()
        + chrono::Duration::from_std(expires).map_err(|e| PortError::Invalid(e.to_string()))?;
    Ok(PresignedRequest {
        url: req.uri().to_owned(),
        method: req.method().to_owned(),
        headers: req
            .headers()
            .map(|(k, v)| (k.to_ascii_lowercase(), v.to_owned()))
            .collect(),
        expires_at,
    })
}

#[async_trait]
impl ObjectStore for S3Objects {
    async fn put(&self, key: &str, body: Bytes, content_type: &str) -> PortResult<ObjectMeta> {
        let len = body.len() as u64;
        self.put_stream(key, ByteStream::from(body), len, content_type)
            .await
    }

    async fn put_file(&self, key: &str, path: &Path, content_type: &str) -> PortResult<ObjectMeta> {
        // Streams from disk with a known length; the file is never read whole into memory.
        let body = ByteStream::from_path(path)
            .await
            .map_err(|e| PortError::Invalid(format!("cannot read {}: {e}", path.display())))?;
        let len = body.size_hint().0;
        self.put_stream(key, body, len, content_type).await
    }

    async fn get(&self, key: &str) -> PortResult<ObjectBody> {
        let out = match self
            .client
            .get_object()
            .bucket(&self.bucket)
            .key(key)
            .send()
            .await
        {
            Ok(out) => out,
            Err(e) if matches!(e.as_service_error(), Some(GetObjectError::NoSuchKey(_))) => {
                return Err(PortError::NotFound(key.to_owned()));
            }
            Err(e) => return Err(port_error("GetObject", e)),
        };
        let meta = ObjectMeta {
            key: key.to_owned(),
            size: size(out.content_length),
            content_type: out.content_type.clone(),
            last_modified: to_chrono(out.last_modified.as_ref()),
        };
        Ok(ObjectBody {
            meta,
            reader: Box::pin(out.body.into_async_read()),
        })
    }

    async fn head(&self, key: &str) -> PortResult<Option<ObjectMeta>> {
        match self
            .client
            .head_object()
            .bucket(&self.bucket)
            .key(key)
            .send()
            .await
        {
            Ok(out) => Ok(Some(ObjectMeta {
                key: key.to_owned(),
                size: size(out.content_length),
                content_type: out.content_type,
                last_modified: to_chrono(out.last_modified.as_ref()),
            })),
            Err(e)
                if matches!(e.as_service_error(), Some(HeadObjectError::NotFound(_)))
                    || e.raw_response().is_some_and(|r| r.status().as_u16() == 404) =>
            {
                Ok(None)
            }
            Err(e) => Err(port_error("HeadObject", e)),
        }
    }

    async fn delete(&self, key: &str) -> PortResult<()> {
        self.client
            .delete_object()
            .bucket(&self.bucket)
            .key(key)
            .send()
            .await
            .map_err(|e| port_error("DeleteObject", e))?;
        Ok(())
    }

    async fn list(&self, prefix: &str) -> PortResult<Vec<ObjectMeta>> {
        let mut out = Vec::new();
        let mut token = None;
        loop {
            let page = self
                .client
                .list_objects_v2()
                .bucket(&self.bucket)
                .prefix(prefix)
                .set_continuation_token(token.take())
                .send()
                .await
                .map_err(|e| port_error("ListObjectsV2", e))?;
            out.extend(page.contents().iter().map(|o| ObjectMeta {
                key: o.key().unwrap_or_default().to_owned(),
                size: size(o.size),
                content_type: None,
                last_modified: to_chrono(o.last_modified.as_ref()),
            }));
            match page.next_continuation_token {
                Some(t) if page.is_truncated == Some(true) => token = Some(t),
                _ => break,
            }
        }
        Ok(out)
    }

    async fn delete_prefix(&self, prefix: &str) -> PortResult<u64> {
        let keys: Vec<String> = self
            .list(prefix)
            .await?
            .into_iter()
            .map(|m| m.key)
            .collect();
        let mut deleted = 0u64;
        for batch in keys.chunks(DELETE_BATCH) {
            let objects = batch
                .iter()
                .map(|k| ObjectIdentifier::builder().key(k).build())
                .collect::<Result<Vec<_>, _>>()
                .map_err(|e| PortError::Invalid(e.to_string()))?;
            let delete = Delete::builder()
                .set_objects(Some(objects))
                .quiet(true)
                .build()
                .map_err(|e| PortError::Invalid(e.to_string()))?;
            let out = self
                .client
                .delete_objects()
                .bucket(&self.bucket)
                .delete(delete)
                .send()
                .await
                .map_err(|e| port_error("DeleteObjects", e))?;
            if let Some(first) = out.errors().first() {
                return Err(PortError::Backend(format!(
                    "DeleteObjects: {} of {} keys failed, first {:?}: {}",
                    out.errors().len(),
                    batch.len(),
                    first.key().unwrap_or_default(),
                    first.message().unwrap_or_default()
                )));
            }
            deleted += batch.len() as u64;
        }
        Ok(deleted)
    }

    async fn presign_get(&self, key: &str, expires: Duration) -> PortResult<PresignedRequest> {
        let req = self
            .client
            .get_object()
            .bucket(&self.bucket)
            .key(key)
            .presigned(presign_config(expires)?)
            .await
            .map_err(|e| port_error("presign GetObject", e))?;
        presigned(req, expires)
    }

    /// Signs the content type, the length and `If-None-Match: *`: S3 refuses a body of
    /// another length (the signature no longer matches) and any PUT once the object exists
    /// (412, conditional writes), so the URL uploads one object of the declared size, once.
    async fn presign_put(
        &self,
        key: &str,
        content_type: &str,
        content_length: u64,
        expires: Duration,
    ) -> PortResult<PresignedRequest> {
        let length = i64::try_from(content_length).map_err(|_| {
            PortError::Invalid(format!("content length {content_length} too large"))
        })?;
        let req = self
            .client
            .put_object()
            .bucket(&self.bucket)
            .key(key)
            .content_type(content_type)
            .content_length(length)
            .if_none_match("*")
            .presigned(presign_config(expires)?)
            .await
            .map_err(|e| port_error("presign PutObject", e))?;
        let mut out = presigned(req, expires)?;
        // Signed headers: the client must send exactly these values.
        for (name, value) in [
            ("content-type", content_type.to_owned()),
            ("content-length", content_length.to_string()),
            ("if-none-match", "*".to_owned()),
        ] {
            if !out.headers.iter().any(|(k, _)| k == name) {
                out.headers.push((name.to_owned(), value));
            }
        }
        Ok(out)
    }

    async fn health(&self) -> PortResult<()> {
        self.client
            .head_bucket()
            .bucket(&self.bucket)
            .send()
            .await
            .map_err(|e| port_error("HeadBucket", e))?;
        Ok(())
    }
}
