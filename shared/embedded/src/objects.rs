//! The objects port on a folder.
//!
//! Object `a/b.csv` lives in `{root}/a/b.csv~obj`. The `~obj` suffix holds a character
//! keys may not contain, so an object's file never collides with the folder of another
//! key (`a` and `a/b` can coexist, as in S3). Each file starts with a short header holding
//! the content type, then the bytes: data and metadata are committed by one atomic rename.
//! Writes go to `{root}/.tmp` (same filesystem), are fsynced, renamed into place, and the
//! folder is fsynced, so a crash leaves either the old object or the new one, never a mix.
//!
//! Keys, content types, prefixes and expiries were checked by the ports' layer in front
//! (`synth_core::Checked`, which [`crate::open`] puts in); the folder keeps only what is its
//! own: a segment must fit in a file name, and — because it turns keys into paths, whoever
//! calls it — a key never names a path outside the root.

use std::fs;
use std::io::{self, BufRead, BufReader, Read, Seek, SeekFrom, Write};
use std::path::{Component, Path, PathBuf};
use std::sync::{Arc, PoisonError, RwLock};
use std::time::{Duration, SystemTime};

use async_trait::async_trait;
use bytes::Bytes;
use chrono::{DateTime, Utc};
use futures::{Stream, StreamExt};
use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, utf8_percent_encode};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use synth_core::error::PortResult;
use synth_core::{ObjectBody, ObjectMeta, ObjectStore, PortError, PresignedRequest};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::sync::broadcast;

use crate::signer::{SignedRequest, UrlSigner};

const SUFFIX: &str = "~obj";
const TMP_DIR: &str = ".tmp";
const MAGIC: &[u8] = b"SYNTHOBJ 1\n";
const MAX_HEADER_LINE: u64 = 4096;
/// Longest file name most filesystems accept.
const NAME_MAX: usize = 255;
/// Temp files older than this at start-up were left by a crash.
const STALE_TEMP: Duration = Duration::from_secs(3600);
/// Events kept for a slow `subscribe_created` receiver before it starts lagging.
const EVENT_BACKLOG: usize = 1024;
/// What a query value keeps unescaped: RFC 3986's unreserved characters.
const QUERY_VALUE: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'.')
    .remove(b'_')
    .remove(b'~');

/// An `ObjectStore` over a local folder, with signed URLs served by [`crate::object_router`].
#[derive(Clone)]
pub struct FsObjects {
    inner: Arc<Inner>,
}

struct Inner {
    root: PathBuf,
    signer: UrlSigner,
    public_base_url: RwLock<String>,
    created: broadcast::Sender<ObjectMeta>,
}

impl std::fmt::Debug for FsObjects {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FsObjects")
            .field("root", &self.inner.root)
            .finish_non_exhaustive()
    }
}

#[derive(Serialize, Deserialize)]
struct Header {
    content_type: String,
}

/// Why a streamed upload did not become an object.
#[derive(Debug)]
pub(crate) enum UploadError {
    /// The body ended with another length than the one signed.
    WrongLength {
        got: u64,
    },
    /// The object exists: a presigned PUT only creates.
    Exists,
    Body(String),
    Port(PortError),
}

impl From<PortError> for UploadError {
    fn from(e: PortError) -> Self {
        Self::Port(e)
    }
}

impl FsObjects {
    /// A store rooted at `root` (created if missing). URLs it signs point at
    /// `public_base_url`, where [`crate::object_router`] must be served. Blocking.
    pub fn new(root: PathBuf, signer: UrlSigner, public_base_url: String) -> PortResult<Self> {
        let tmp = root.join(TMP_DIR);
        fs::create_dir_all(&tmp).map_err(|e| io_error(&tmp, e))?;
        remove_stale_temps(&tmp);
        let (created, _) = broadcast::channel(EVENT_BACKLOG);
        Ok(Self {
            inner: Arc::new(Inner {
                root,
                signer,
                public_base_url: RwLock::new(trim_base(public_base_url)),
                created,
            }),
        })
    }

    /// Point signed URLs at a new base (the server learns its port only after binding).
    pub fn set_public_base_url(&self, url: impl Into<String>) {
        *self
            .inner
            .public_base_url
            .write()
            .unwrap_or_else(PoisonError::into_inner) = trim_base(url.into());
    }

    /// The base signed URLs currently point at.
    pub fn public_base_url(&self) -> String {
        self.inner
            .public_base_url
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// Every successful write from now on (put, put_file, presigned PUT): the embedded
    /// stand-in for the S3 `ObjectCreated` trigger. A receiver that falls more than 1024
    /// events behind sees `Lagged` and loses the oldest.
    pub fn subscribe_created(&self) -> broadcast::Receiver<ObjectMeta> {
        self.inner.created.subscribe()
    }

    /// The folder holding the objects.
    pub fn root(&self) -> &Path {
        &self.inner.root
    }

    pub(crate) fn signer(&self) -> &UrlSigner {
        &self.inner.signer
    }

    /// The file of `key`: a path of plain names under the root, each short enough to be a
    /// file name once suffixed.
    fn object_path(&self, key: &str) -> PortResult<PathBuf> {
        let rel = Path::new(key);
        if key.is_empty() || !rel.components().all(|c| matches!(c, Component::Normal(_))) {
            return Err(PortError::Invalid(format!(
                "object key {key:?} is not a relative path"
            )));
        }
        if key
            .split('/')
            .any(|seg| seg.len() + SUFFIX.len() > NAME_MAX)
        {
            return Err(PortError::Invalid(format!(
                "object key {key:?} has a segment longer than {} bytes",
                NAME_MAX - SUFFIX.len()
            )));
        }
        Ok(self.inner.root.join(format!("{key}{SUFFIX}")))
    }

    fn temp(&self) -> TempFile {
        TempFile {
            path: self
                .inner
                .root
                .join(TMP_DIR)
                .join(uuid::Uuid::new_v4().to_string()),
            armed: true,
        }
    }

    /// Move a complete, fsynced temp file into place as `key` and announce it. With
    /// `create_only`, an existing object is left as it is and `Ok(None)` returned: the file
    /// is hard-linked into place, which fails atomically when the name is taken.
    fn commit_blocking(
        &self,
        temp: &mut TempFile,
        key: &str,
        content_type: &str,
        header_len: u64,
        create_only: bool,
    ) -> PortResult<Option<ObjectMeta>> {
        let dest = self.object_path(key)?;
        let parent = dest.parent().expect("object paths are under the root");
        let stat = fs::metadata(&temp.path).map_err(|e| io_error(&temp.path, e))?;
        let mut attempt = 0;
        loop {
            ensure_dir(&self.inner.root, parent).map_err(|e| io_error(parent, e))?;
            let placed = if create_only {
                fs::hard_link(&temp.path, &dest)
            } else {
                fs::rename(&temp.path, &dest)
            };
            match placed {
                Ok(()) => break,
                Err(e) if create_only && e.kind() == io::ErrorKind::AlreadyExists => {
                    return Ok(None);
                }
                // A concurrent delete pruned the (then empty) folder: make it again.
                Err(e) if e.kind() == io::ErrorKind::NotFound && attempt < 5 => attempt += 1,
                Err(e) => return Err(io_error(&dest, e)),
            }
        }
        // Linked: the temp name goes (the armed guard removes it); renamed: it is gone.
        temp.armed = create_only;
        sync_dir(parent).map_err(|e| io_error(parent, e))?;
        let meta = ObjectMeta {
            key: key.to_owned(),
            size: stat.len().saturating_sub(header_len),
            content_type: Some(content_type.to_owned()),
            last_modified: stat.modified().ok().map(DateTime::<Utc>::from),
        };
        // No receiver is not an error: nobody is listening for uploads.
        let _ = self.inner.created.send(meta.clone());
        Ok(Some(meta))
    }

    /// The blocking commit of a temp file that must replace any existing object.
    fn replace_blocking(
        &self,
        temp: &mut TempFile,
        key: &str,
        content_type: &str,
        header_len: u64,
    ) -> PortResult<ObjectMeta> {
        self.commit_blocking(temp, key, content_type, header_len, false)
            .map(|m| m.expect("a replacing commit always places the file"))
    }

    /// Stream a presigned upload of exactly `length` bytes into a temp file, then create
    /// the object from it; nothing is kept on failure, and an existing object is never
    /// replaced. Returns the object and the hex SHA-256 of its bytes (the ETag).
    pub(crate) async fn create_from_stream<S, E>(
        &self,
        key: &str,
        content_type: &str,
        mut body: S,
        length: u64,
    ) -> Result<(ObjectMeta, String), UploadError>
    where
        S: Stream<Item = Result<Bytes, E>> + Unpin,
        E: std::fmt::Display,
    {
        self.object_path(key)?;
        // Refused before a byte is stored; the commit checks again for a racing upload.
        if self.head(key).await?.is_some() {
            return Err(UploadError::Exists);
        }
        let temp = self.temp();
        let header = header(content_type);
        let file = tokio::fs::File::create_new(&temp.path)
            .await
            .map_err(|e| io_error(&temp.path, e))?;
        let mut out = tokio::io::BufWriter::with_capacity(256 * 1024, file);
        let werr = |e| UploadError::Port(io_error(&temp.path, e));
        out.write_all(&header).await.map_err(werr)?;
        let mut hasher = Sha256::new();
        let mut size = 0u64;
        while let Some(chunk) = body.next().await {
            let chunk = chunk.map_err(|e| UploadError::Body(e.to_string()))?;
            size += chunk.len() as u64;
            if size > length {
                return Err(UploadError::WrongLength { got: size });
            }
            hasher.update(&chunk);
            out.write_all(&chunk).await.map_err(werr)?;
        }
        if size != length {
            return Err(UploadError::WrongLength { got: size });
        }
        out.flush().await.map_err(werr)?;
        let file = out.into_inner();
        file.sync_all().await.map_err(werr)?;
        drop(file);
        let this = self.clone();
        let (k, ct, header_len) = (key.to_owned(), content_type.to_owned(), header.len() as u64);
        let mut temp = temp;
        let meta = blocking(move || this.commit_blocking(&mut temp, &k, &ct, header_len, true))
            .await?
            .ok_or(UploadError::Exists)?;
        Ok((meta, hex::encode(hasher.finalize())))
    }

    fn url(&self, req: &SignedRequest<'_>) -> String {
        let sig = self.inner.signer.sign(req);
        let base = self.public_base_url();
        let ct = if req.content_type.is_empty() {
            String::new()
        } else {
            format!("&ct={}", utf8_percent_encode(req.content_type, QUERY_VALUE))
        };
        let len = req
            .content_length
            .map(|n| format!("&len={n}"))
            .unwrap_or_default();
        format!(
            "{base}/objects/{}?method={}&expires={}{ct}{len}&sig={sig}",
            req.key, req.method, req.expires
        )
    }

    fn presign(
        &self,
        method: &str,
        key: &str,
        content: Option<(&str, u64)>,
        expires: Duration,
    ) -> PortResult<PresignedRequest> {
        self.object_path(key)?;
        let expires_at = Utc::now().timestamp() + expires.as_secs() as i64;
        let (content_type, content_length) = match content {
            Some((ct, len)) => (ct, Some(len)),
            None => ("", None),
        };
        let headers = match content {
            Some((ct, len)) => vec![
                ("content-type".to_owned(), ct.to_owned()),
                ("content-length".to_owned(), len.to_string()),
            ],
            None => Vec::new(),
        };
        let req = SignedRequest {
            method,
            key,
            expires: expires_at,
            content_type,
            content_length,
        };
        Ok(PresignedRequest {
            url: self.url(&req),
            method: method.to_owned(),
            headers,
            expires_at: DateTime::from_timestamp(expires_at, 0)
                .ok_or_else(|| PortError::Invalid("expiry out of range".into()))?,
        })
    }

    fn list_blocking(&self, prefix: &str) -> PortResult<Vec<(String, PathBuf)>> {
        let mut found = Vec::new();
        walk(&self.inner.root, "", prefix, &mut found)?;
        found.sort_by(|a, b| a.0.cmp(&b.0));
        Ok(found)
    }

    fn delete_blocking(&self, key: &str) -> PortResult<bool> {
        let path = self.object_path(key)?;
        let parent = path.parent().expect("object paths are under the root");
        match fs::remove_file(&path) {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(false),
            Err(e) => return Err(io_error(&path, e)),
        }
        sync_dir(parent).map_err(|e| io_error(parent, e))?;
        // Prune folders left empty; stops at the first that is not (or at the root).
        let mut dir = parent;
        while dir != self.inner.root && fs::remove_dir(dir).is_ok() {
            dir = dir.parent().expect("under the root");
        }
        Ok(true)
    }
}

#[async_trait]
impl ObjectStore for FsObjects {
    async fn put(&self, key: &str, body: Bytes, content_type: &str) -> PortResult<ObjectMeta> {
        self.object_path(key)?;
        let this = self.clone();
        let (key, ct) = (key.to_owned(), content_type.to_owned());
        blocking(move || {
            let mut temp = this.temp();
            let header = header(&ct);
            write_temp(&temp.path, |f| {
                f.write_all(&header)?;
                f.write_all(&body)
            })?;
            this.replace_blocking(&mut temp, &key, &ct, header.len() as u64)
        })
        .await
    }

    async fn put_file(&self, key: &str, path: &Path, content_type: &str) -> PortResult<ObjectMeta> {
        self.object_path(key)?;
        let this = self.clone();
        let (key, ct, src) = (key.to_owned(), content_type.to_owned(), path.to_owned());
        blocking(move || {
            // A caller error, as in the S3 adapter: the store is fine.
            let mut input = fs::File::open(&src)
                .map_err(|e| PortError::Invalid(format!("cannot read {}: {e}", src.display())))?;
            let mut temp = this.temp();
            let header = header(&ct);
            write_temp(&temp.path, |f| {
                f.write_all(&header)?;
                io::copy(&mut input, f).map(|_| ())
            })?;
            this.replace_blocking(&mut temp, &key, &ct, header.len() as u64)
        })
        .await
    }

    async fn get(&self, key: &str) -> PortResult<ObjectBody> {
        let path = self.object_path(key)?;
        let k = key.to_owned();
        let (meta, file) = blocking(move || {
            let Some((meta, header_len, mut file)) = open_object(&path, &k)? else {
                return Err(PortError::NotFound(format!("object {k}")));
            };
            file.seek(SeekFrom::Start(header_len))
                .map_err(|e| io_error(&path, e))?;
            Ok((meta, file))
        })
        .await?;
        // The file is never rewritten in place (writes rename a new one over it), so this
        // handle reads exactly the object that `meta` describes.
        let reader = tokio::fs::File::from_std(file).take(meta.size);
        Ok(ObjectBody {
            meta,
            reader: Box::pin(reader),
        })
    }

    async fn head(&self, key: &str) -> PortResult<Option<ObjectMeta>> {
        let path = self.object_path(key)?;
        let k = key.to_owned();
        blocking(move || Ok(open_object(&path, &k)?.map(|(meta, _, _)| meta))).await
    }

    async fn delete(&self, key: &str) -> PortResult<()> {
        self.object_path(key)?;
        let this = self.clone();
        let key = key.to_owned();
        blocking(move || this.delete_blocking(&key).map(|_| ())).await
    }

    /// As S3's ListObjectsV2, a listing carries no content type (use `head` for that).
    async fn list(&self, prefix: &str) -> PortResult<Vec<ObjectMeta>> {
        let this = self.clone();
        let prefix = prefix.to_owned();
        blocking(move || {
            let mut out = Vec::new();
            for (key, path) in this.list_blocking(&prefix)? {
                // Deleted since the walk: not listed.
                if let Some((meta, _, _)) = open_object(&path, &key)? {
                    out.push(ObjectMeta {
                        content_type: None,
                        ..meta
                    });
                }
            }
            Ok(out)
        })
        .await
    }

    async fn delete_prefix(&self, prefix: &str) -> PortResult<u64> {
        let this = self.clone();
        let prefix = prefix.to_owned();
        blocking(move || {
            let mut deleted = 0;
            for (key, _) in this.list_blocking(&prefix)? {
                if this.delete_blocking(&key)? {
                    deleted += 1;
                }
            }
            Ok(deleted)
        })
        .await
    }

    async fn presign_get(&self, key: &str, expires: Duration) -> PortResult<PresignedRequest> {
        self.presign("GET", key, None, expires)
    }

    async fn presign_put(
        &self,
        key: &str,
        content_type: &str,
        content_length: u64,
        expires: Duration,
    ) -> PortResult<PresignedRequest> {
        self.presign("PUT", key, Some((content_type, content_length)), expires)
    }

    async fn health(&self) -> PortResult<()> {
        let tmp = self.inner.root.join(TMP_DIR);
        match tokio::fs::metadata(&tmp).await {
            Ok(m) if m.is_dir() => Ok(()),
            Ok(_) => Err(PortError::Unavailable(format!(
                "{} is not a folder",
                tmp.display()
            ))),
            Err(e) => Err(PortError::Unavailable(format!("{}: {e}", tmp.display()))),
        }
    }
}

/// A temp file that removes itself unless it was committed, so a failed or abandoned
/// write (error, client gone, task cancelled) leaves nothing behind.
struct TempFile {
    path: PathBuf,
    armed: bool,
}

impl Drop for TempFile {
    fn drop(&mut self) {
        if self.armed {
            let _ = fs::remove_file(&self.path);
        }
    }
}

fn header(content_type: &str) -> Vec<u8> {
    let mut h = MAGIC.to_vec();
    serde_json::to_writer(
        &mut h,
        &Header {
            content_type: content_type.to_owned(),
        },
    )
    .expect("header serialises");
    h.push(b'\n');
    h
}

/// Open an object file and read its header: (meta, header length, file). `None` when absent.
fn open_object(path: &Path, key: &str) -> PortResult<Option<(ObjectMeta, u64, fs::File)>> {
    let file = match fs::File::open(path) {
        Ok(f) => f,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(io_error(path, e)),
    };
    let stat = file.metadata().map_err(|e| io_error(path, e))?;
    let corrupt = || PortError::Backend(format!("{} is not an object file", path.display()));
    let mut reader = BufReader::new(file);
    let mut magic = Vec::new();
    let mut json = Vec::new();
    for line in [&mut magic, &mut json] {
        (&mut reader)
            .take(MAX_HEADER_LINE)
            .read_until(b'\n', line)
            .map_err(|e| io_error(path, e))?;
    }
    if magic != MAGIC || json.last() != Some(&b'\n') {
        return Err(corrupt());
    }
    let h: Header = serde_json::from_slice(&json).map_err(|_| corrupt())?;
    let header_len = (magic.len() + json.len()) as u64;
    let meta = ObjectMeta {
        key: key.to_owned(),
        size: stat.len().checked_sub(header_len).ok_or_else(corrupt)?,
        content_type: Some(h.content_type),
        last_modified: stat.modified().ok().map(DateTime::<Utc>::from),
    };
    Ok(Some((meta, header_len, reader.into_inner())))
}

/// Write a new temp file with `fill` and fsync it.
fn write_temp(path: &Path, fill: impl FnOnce(&mut fs::File) -> io::Result<()>) -> PortResult<()> {
    let mut f = fs::File::create_new(path).map_err(|e| io_error(path, e))?;
    fill(&mut f).map_err(|e| io_error(path, e))?;
    f.sync_all().map_err(|e| io_error(path, e))
}

/// Create the missing folders from `root` down to `dir`, fsyncing each new entry's parent
/// so the folder itself survives a crash along with the file renamed into it.
fn ensure_dir(root: &Path, dir: &Path) -> io::Result<()> {
    if dir.is_dir() {
        return Ok(());
    }
    let rel = dir.strip_prefix(root).map_err(io::Error::other)?;
    let mut cur = root.to_path_buf();
    for part in rel.components() {
        let next = cur.join(part);
        match fs::create_dir(&next) {
            Ok(()) => sync_dir(&cur)?,
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {}
            Err(e) => return Err(e),
        }
        cur = next;
    }
    Ok(())
}

fn sync_dir(dir: &Path) -> io::Result<()> {
    fs::File::open(dir)?.sync_all()
}

/// Collect (key, path) of objects under `dir` whose key starts with `prefix`, descending only
/// into folders that can hold such keys.
fn walk(dir: &Path, rel: &str, prefix: &str, out: &mut Vec<(String, PathBuf)>) -> PortResult<()> {
    let entries = match fs::read_dir(dir) {
        Ok(e) => e,
        // Pruned by a concurrent delete.
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(io_error(dir, e)),
    };
    for entry in entries {
        let entry = entry.map_err(|e| io_error(dir, e))?;
        let Some(name) = entry.file_name().to_str().map(str::to_owned) else {
            continue;
        };
        if name.starts_with('.') {
            continue;
        }
        let Ok(kind) = entry.file_type() else {
            continue;
        };
        if kind.is_dir() {
            let sub = format!("{rel}{name}/");
            if sub.starts_with(prefix) || prefix.starts_with(&sub) {
                walk(&entry.path(), &sub, prefix, out)?;
            }
        } else if let Some(stem) = name.strip_suffix(SUFFIX).filter(|_| kind.is_file()) {
            let key = format!("{rel}{stem}");
            if key.starts_with(prefix) {
                out.push((key, entry.path()));
            }
        }
    }
    Ok(())
}

fn remove_stale_temps(tmp: &Path) {
    let Ok(entries) = fs::read_dir(tmp) else {
        return;
    };
    for entry in entries.flatten() {
        let stale = entry
            .metadata()
            .and_then(|m| m.modified())
            .ok()
            .and_then(|t| SystemTime::now().duration_since(t).ok())
            .is_some_and(|age| age > STALE_TEMP);
        if stale {
            let _ = fs::remove_file(entry.path());
        }
    }
}

fn trim_base(url: String) -> String {
    url.trim_end_matches('/').to_owned()
}

fn io_error(path: &Path, e: io::Error) -> PortError {
    let msg = format!("{}: {e}", path.display());
    match e.kind() {
        io::ErrorKind::PermissionDenied
        | io::ErrorKind::StorageFull
        | io::ErrorKind::ReadOnlyFilesystem => PortError::Unavailable(msg),
        _ => PortError::Backend(msg),
    }
}

async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> PortResult<T> + Send + 'static,
) -> PortResult<T> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| PortError::Backend(format!("storage task failed: {e}")))?
}

#[cfg(test)]
mod tests {
    use super::*;

    fn store() -> (tempfile::TempDir, FsObjects) {
        let dir = tempfile::tempdir().unwrap();
        let s = FsObjects::new(
            dir.path().join("objects"),
            UrlSigner::new("k"),
            "http://localhost:1/".into(),
        )
        .unwrap();
        (dir, s)
    }

    async fn listed(s: &FsObjects, prefix: &str) -> Vec<String> {
        let found = s.list(prefix).await.unwrap();
        found.into_iter().map(|m| m.key).collect()
    }

    fn temp_files(s: &FsObjects) -> usize {
        fs::read_dir(s.root().join(TMP_DIR)).unwrap().count()
    }

    #[tokio::test]
    async fn a_key_and_its_sub_keys_coexist_and_list_in_key_order() {
        let (_d, s) = store();
        for k in ["a/b", "a", "a-c", "a/b/c", "b"] {
            s.put(k, Bytes::from(k.to_owned()), "text/plain")
                .await
                .unwrap();
        }
        let keys = listed(&s, "a").await;
        assert_eq!(keys, ["a", "a-c", "a/b", "a/b/c"]);
        let keys = listed(&s, "a/").await;
        assert_eq!(keys, ["a/b", "a/b/c"]);
        let got = s.get("a/b").await.unwrap();
        assert_eq!(got.meta.content_type.as_deref(), Some("text/plain"));
        assert_eq!(got.bytes().await.unwrap(), Bytes::from_static(b"a/b"));
        assert_eq!(s.delete_prefix("a/").await.unwrap(), 2);
        assert_eq!(s.head("a").await.unwrap().unwrap().size, 1);
        assert!(!s.root().join("a").exists(), "empty folders are pruned");
        s.delete("a/b").await.unwrap();
    }

    #[tokio::test]
    async fn failed_writes_leave_nothing_behind_and_keep_the_old_object() {
        let (d, s) = store();
        s.put("x/y.csv", Bytes::from_static(b"old"), "text/csv")
            .await
            .unwrap();
        let missing = d.path().join("nope.csv");
        let err = s
            .put_file("x/y.csv", &missing, "text/csv")
            .await
            .unwrap_err();
        assert!(matches!(err, PortError::Invalid(_)), "{err:?}");
        // A body stream that breaks half-way.
        let chunks: Vec<Result<Bytes, String>> = vec![
            Ok(Bytes::from_static(b"new, partial")),
            Err("connection reset".into()),
        ];
        let r = s
            .create_from_stream("x/z.csv", "text/csv", futures::stream::iter(chunks), 20)
            .await;
        assert!(matches!(r, Err(UploadError::Body(_))));
        // One over and one under the signed length.
        for (len, expected) in [(11, 10), (9, 10)] {
            let chunks: Vec<Result<Bytes, String>> = vec![Ok(Bytes::from(vec![0u8; len]))];
            let r = s
                .create_from_stream(
                    "x/z.csv",
                    "text/csv",
                    futures::stream::iter(chunks),
                    expected,
                )
                .await;
            assert!(
                matches!(r, Err(UploadError::WrongLength { got }) if got == len as u64),
                "{r:?}"
            );
        }
        // An existing object is never replaced by a signed upload.
        let chunks: Vec<Result<Bytes, String>> = vec![Ok(Bytes::from_static(b"new"))];
        let r = s
            .create_from_stream("x/y.csv", "text/csv", futures::stream::iter(chunks), 3)
            .await;
        assert!(matches!(r, Err(UploadError::Exists)), "{r:?}");
        assert_eq!(temp_files(&s), 0);
        assert_eq!(s.head("x/z.csv").await.unwrap(), None);
        let old = s.get("x/y.csv").await.unwrap().bytes().await.unwrap();
        assert_eq!(old, Bytes::from_static(b"old"));
    }

    #[tokio::test]
    async fn writes_are_announced_and_survive_a_new_instance() {
        let (d, s) = store();
        let mut events = s.subscribe_created();
        let src = d.path().join("src.bin");
        fs::write(&src, vec![7u8; 300_000]).unwrap();
        let meta = s
            .put_file("big/file.bin", &src, "application/octet-stream")
            .await
            .unwrap();
        assert_eq!(meta.size, 300_000);
        assert_eq!(events.recv().await.unwrap().key, "big/file.bin");
        let again =
            FsObjects::new(s.root().to_owned(), UrlSigner::new("k"), String::new()).unwrap();
        let head = again.head("big/file.bin").await.unwrap().unwrap();
        assert_eq!(head.size, 300_000);
        assert_eq!(
            head.content_type.as_deref(),
            Some("application/octet-stream")
        );
        let body = again
            .get("big/file.bin")
            .await
            .unwrap()
            .bytes()
            .await
            .unwrap();
        assert_eq!(&body[..], &vec![7u8; 300_000][..]);
    }

    #[tokio::test]
    async fn behind_the_layer_bad_keys_and_types_never_reach_the_folder() {
        let (_d, s) = store();
        let checked = synth_core::Checked::new(Arc::new(s.clone()));
        for k in [
            "../x",
            "a/../../x",
            "/etc/passwd",
            ".tmp/x",
            "a/.hidden",
            "a~obj",
        ] {
            let r = checked.put(k, Bytes::new(), "text/plain").await;
            assert!(matches!(r, Err(PortError::Invalid(_))), "{k}: {r:?}");
        }
        let r = checked.put("a", Bytes::new(), "text/\nplain").await;
        assert!(matches!(r, Err(PortError::Invalid(_))), "{r:?}");
        assert_eq!(temp_files(&s), 0);
        assert!(matches!(
            checked.get("missing").await,
            Err(PortError::NotFound(_))
        ));
        assert_eq!(checked.head("missing").await.unwrap(), None);
        checked.delete("missing").await.unwrap();
    }

    #[tokio::test]
    async fn the_folder_alone_refuses_paths_out_of_the_root_and_overlong_names() {
        let (d, s) = store();
        for k in ["../x", "a/../../x", "/etc/passwd", ""] {
            let r = s.put(k, Bytes::new(), "text/plain").await;
            assert!(matches!(r, Err(PortError::Invalid(_))), "{k}: {r:?}");
        }
        assert!(!d.path().join("x~obj").exists());
        // A key the port allows (at most 512 bytes) whose segment is no file name.
        let long = format!("a/{}", "b".repeat(NAME_MAX - SUFFIX.len() + 1));
        let checked = synth_core::Checked::new(Arc::new(s.clone()));
        let r = checked.put(&long, Bytes::new(), "text/plain").await;
        assert!(matches!(r, Err(PortError::Invalid(_))), "{r:?}");
        let fits = format!("a/{}", "b".repeat(NAME_MAX - SUFFIX.len()));
        checked
            .put(&fits, Bytes::new(), "text/plain")
            .await
            .unwrap();
    }

    #[tokio::test]
    async fn presigned_urls_carry_method_expiry_type_and_signature() {
        let (_d, s) = store();
        s.set_public_base_url("http://127.0.0.1:8080/");
        let p = s
            .presign_put(
                "d/in.csv",
                "text/csv; charset=utf-8",
                150,
                Duration::from_secs(60),
            )
            .await
            .unwrap();
        let exp = p.expires_at.timestamp();
        let sig = s.signer().sign(&SignedRequest {
            method: "PUT",
            key: "d/in.csv",
            expires: exp,
            content_type: "text/csv; charset=utf-8",
            content_length: Some(150),
        });
        assert_eq!(
            p.url,
            format!(
                "http://127.0.0.1:8080/objects/d/in.csv?method=PUT&expires={exp}\
                 &ct=text%2Fcsv%3B%20charset%3Dutf-8&len=150&sig={sig}"
            )
        );
        assert_eq!(
            p.headers,
            vec![
                (
                    "content-type".to_owned(),
                    "text/csv; charset=utf-8".to_owned()
                ),
                ("content-length".to_owned(), "150".to_owned())
            ]
        );
        let g = s
            .presign_get("d/in.csv", Duration::from_secs(60))
            .await
            .unwrap();
        assert!(g.url.contains("method=GET") && !g.url.contains("ct=") && !g.url.contains("len="));
        assert!(g.headers.is_empty());
        // Expiries are the checking layer's.
        let checked = synth_core::Checked::new(Arc::new(s.clone()));
        assert!(
            checked
                .presign_get("d/in.csv", Duration::ZERO)
                .await
                .is_err()
        );
    }
}
