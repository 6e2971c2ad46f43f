//! The embedded adapter family: every port of `synth-core` on one machine, with no AWS.
//!
//! Records, the queue and job state live in one SQLite file (`{data_dir}/synth.db`),
//! objects in a folder (`{data_dir}/objects`) served through signed, expiring URLs by
//! [`object_router`], and the topic is in-process fan-out. `synth serve` and most tests
//! use this family; the contract suite holds it to the same semantics as the AWS one.
//! [`triggers`] are what stands in for the AWS event sources (upload → ingest, queue →
//! dispatch).

mod db;
mod jobs;
mod objects;
mod queue;
mod records;
mod router;
mod signer;
mod topic;
pub mod triggers;

use std::path::PathBuf;
use std::sync::Arc;

use synth_core::{Backends, PortError};

pub use db::Database;
pub use jobs::{JobHandler, LocalJobs};
pub use objects::FsObjects;
pub use queue::SqliteQueue;
pub use records::SqliteRecords;
pub use router::object_router;
pub use signer::{SignatureError, SignedRequest, UrlSigner};
pub use topic::{LocalTopic, TopicMessage};

/// Where and how the embedded backends keep their state.
#[derive(Clone)]
pub struct EmbeddedOptions {
    /// Holds `synth.db` and `objects/`; reopening the same folder finds everything again.
    pub data_dir: PathBuf,
    /// The platform secret; object URLs are signed with a key derived from it.
    pub secret_key: String,
    /// Base of signed object URLs (e.g. `http://127.0.0.1:8000`); changeable later through
    /// [`FsObjects::set_public_base_url`].
    pub public_base_url: String,
    /// Jobs run at once by the in-process worker pool.
    pub max_concurrent_jobs: usize,
    /// Largest body a presigned PUT accepts.
    pub max_upload_bytes: u64,
}

impl std::fmt::Debug for EmbeddedOptions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EmbeddedOptions")
            .field("data_dir", &self.data_dir)
            .field("secret_key", &"<redacted>")
            .field("public_base_url", &self.public_base_url)
            .field("max_concurrent_jobs", &self.max_concurrent_jobs)
            .field("max_upload_bytes", &self.max_upload_bytes)
            .finish()
    }
}

/// The opened family: the ports for handlers (the record and object stores behind the
/// ports' checking layer), plus the concrete pieces the server wires up itself (object
/// routes, upload events, topic subscriptions).
#[derive(Clone)]
pub struct Embedded {
    pub backends: Backends,
    pub objects: Arc<FsObjects>,
    pub topic: Arc<LocalTopic>,
    /// The record store itself, for what only the embedded family does (the purge).
    pub records: SqliteRecords,
    /// `GET`/`PUT /objects/{*key}` for signed URLs; merge it into the server's router.
    pub router: axum::Router,
    pub db: Database,
}

/// Open (or create) the embedded backends in `options.data_dir` and start the job pool,
/// re-running jobs a previous process left unfinished. Must run inside a tokio runtime.
pub async fn open(
    options: EmbeddedOptions,
    handler: Arc<dyn JobHandler>,
) -> Result<Embedded, PortError> {
    let dir = options.data_dir.clone();
    let secret = options.secret_key.clone();
    let base = options.public_base_url.clone();
    let (db, objects) = tokio::task::spawn_blocking(move || {
        std::fs::create_dir_all(&dir)
            .map_err(|e| PortError::Unavailable(format!("creating {}: {e}", dir.display())))?;
        let db = Database::open(&dir.join("synth.db"))?;
        let objects = FsObjects::new(dir.join("objects"), UrlSigner::new(&secret), base)?;
        Ok::<_, PortError>((db, objects))
    })
    .await
    .map_err(|e| PortError::Backend(format!("opening the data folder failed: {e}")))??;
    let objects = Arc::new(objects);
    let topic = Arc::new(LocalTopic::new());
    let jobs = LocalJobs::new(db.clone(), handler, options.max_concurrent_jobs)?;
    let records = SqliteRecords::new(db.clone());
    let backends = Backends::new(
        Arc::new(records.clone()),
        objects.clone(),
        Arc::new(SqliteQueue::new(db.clone())),
        topic.clone(),
        Arc::new(jobs),
    );
    Ok(Embedded {
        backends,
        router: object_router(objects.clone(), options.max_upload_bytes),
        objects,
        topic,
        records,
        db,
    })
}
