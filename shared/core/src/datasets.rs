//! Datasets: a user's uploaded table, its ingestion (validate, profile, canonical copy) and
//! its metadata. The HTTP side stays light (no table parsing); the analysis itself is an
//! [`Analyzer`] the ingesting process provides (polars lives in `synth-data`).
//!
//! Records: `USER#{owner}` / `DATASET#{id}` (ids are UUIDv7, so the sort key is creation
//! order), also in gsi1 under `DATASETS#{status}` for administrators.
//! Objects: the original at `uploads/{owner}/{id}/{file}` (the prefix the S3 trigger
//! watches); derived files under `users/{owner}/datasets/{id}/`, never under `uploads/`.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use synth_constraints::Constraint;

use crate::ports::Paged;
use crate::ports::objects::PresignedRequest;
use crate::ports::records::{Cmp, Condition, Index, Item, Key, Query, SortKey, TxOp, Update};
use crate::service::{ServiceError, ServiceResult, read_by_id};
use crate::stats::Tally;
use crate::{ObjectStore, PortError, RecordStore, Settings, Topic};
use synth_table::{ColumnMetadata, FileFormat, Metadata, PreviewRow, Profile, SdType};

/// Where a dataset is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum DatasetStatus {
    /// A presigned upload was issued; the file has not arrived yet.
    PendingUpload,
    /// The file arrived and is being validated and profiled.
    Validating,
    Ready,
    /// The file cannot be used; `error` says why.
    Invalid,
    /// Being deleted.
    Deleting,
}

impl DatasetStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::PendingUpload => "pending_upload",
            Self::Validating => "validating",
            Self::Ready => "ready",
            Self::Invalid => "invalid",
            Self::Deleting => "deleting",
        }
    }
}

/// A dataset as stored and as clients see it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Dataset {
    pub id: String,
    pub owner_id: String,
    /// The uploaded file's (sanitised) name.
    pub filename: String,
    pub content_type: String,
    pub size_bytes: u64,
    pub status: DatasetStatus,
    pub error: Option<String>,
    #[serde(default)]
    pub warnings: Vec<String>,
    /// Detected file format (csv, json, ndjson, xlsx, parquet).
    pub format: Option<String>,
    pub n_rows: Option<u64>,
    pub n_columns: Option<u64>,
    /// SDV single-table metadata (inferred, or as the user overrode it).
    pub metadata: Option<Metadata>,
    /// For each column, the sdtypes its values allow (what a metadata override may pick).
    #[serde(default)]
    pub compatible_sdtypes: BTreeMap<String, Vec<SdType>>,
    /// Generations running on this dataset; deletion waits for none.
    #[serde(default)]
    pub active_generations: i64,
    /// Constraints every real row keeps, found at ingestion: accept them with `PUT
    /// /upload/datasets/{id}/constraints` (`{"accept_suggested": true}`).
    #[serde(default)]
    pub suggested_constraints: Vec<Constraint>,
    /// The constraints generation requests on this dataset keep unless they give their own.
    #[serde(default)]
    pub constraints: Vec<Constraint>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

/// What analysing an uploaded file yields. Serialisable so the analysis can run in a
/// process of its own; the canonical copy travels beside it as a file, not in the JSON.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Analysis {
    /// The format the content showed (stored as its name: csv, json, ndjson, xlsx, parquet).
    pub format: FileFormat,
    pub n_rows: u64,
    pub n_columns: u64,
    pub metadata: Metadata,
    pub compatible_sdtypes: BTreeMap<String, Vec<SdType>>,
    /// The per-column profile, as served to clients (stored as `profile.json`).
    pub profile: Profile,
    /// The first [`PREVIEW_ROWS`] rows (stored as `preview.json`).
    pub preview: Vec<PreviewRow>,
    /// Constraints every row keeps (discovered; the owner accepts them or not).
    #[serde(default)]
    pub suggested_constraints: Vec<Constraint>,
    /// The table as Parquet: what the trainer reads.
    #[serde(skip)]
    pub canonical_parquet: Vec<u8>,
    pub warnings: Vec<String>,
}

/// Validates and profiles a file. Implemented where the table readers live; CPU-bound.
pub trait Analyzer: Send + Sync {
    /// Analyse a file; `Err` is a user-facing reason the file is invalid.
    fn analyze(&self, bytes: &[u8], filename: &str) -> Result<Analysis, String>;
}

/// Rows kept for previews.
pub const PREVIEW_ROWS: usize = 100;
/// Analyses of one upload that may start before it is given up. Each claim counts one,
/// durably and before the analysis begins, so a file whose analysis never finishes (the
/// process crashed, was killed, or a Lambda timed out on it) is retried once and then
/// marked `invalid`, never retried forever. The `ingest` Lambda is tried three times
/// (`MaximumRetryAttempts: 2`), so its third try is the one that marks it.
pub const MAX_INGEST_ATTEMPTS: i64 = 2;
/// Stack of the thread that analyses an upload: readers of nested formats recurse, and
/// their depth is bounded (see `json`), so a known, generous stack makes that bound safe
/// whatever thread the runtime would have lent.
pub const ANALYSIS_STACK_BYTES: usize = 16 * 1024 * 1024;
/// How long an upload URL stays valid.
pub const UPLOAD_URL_TTL: Duration = Duration::from_secs(15 * 60);

/// `PUT /upload/datasets/{id}/constraints`: constraints in SDV's JSON, or the suggested
/// ones accepted (`false` clears them).
#[derive(Debug, Clone, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(
    untagged,
    expecting = "one of {\"constraints\": [...]} or {\"accept_suggested\": true or false}"
)]
pub enum ConstraintsChange {
    Given {
        #[cfg_attr(feature = "openapi", schema(value_type = Vec<Constraint>))]
        constraints: Vec<Value>,
    },
    Suggested {
        accept_suggested: bool,
    },
}

/// The record of a dataset.
pub fn dataset_key(owner: &str, id: &str) -> Key {
    Key::new(format!("USER#{owner}"), format!("DATASET#{id}"))
}

/// Folder of a dataset's derived files.
pub fn derived_prefix(owner: &str, id: &str) -> String {
    format!("users/{owner}/datasets/{id}/")
}

/// Where the canonical Parquet copy of a dataset lives (what the trainer reads).
pub fn canonical_key(owner: &str, id: &str) -> String {
    format!("{}canonical.parquet", derived_prefix(owner, id))
}

fn profile_key(owner: &str, id: &str) -> String {
    format!("{}profile.json", derived_prefix(owner, id))
}

fn preview_key(owner: &str, id: &str) -> String {
    format!("{}preview.json", derived_prefix(owner, id))
}

fn original_key(owner: &str, id: &str, filename: &str) -> String {
    format!("uploads/{owner}/{id}/{filename}")
}

/// The owner and dataset id an uploaded object's key belongs to.
pub fn parse_upload_key(key: &str) -> Option<(String, String)> {
    let mut parts = key.split('/');
    match (
        parts.next(),
        parts.next(),
        parts.next(),
        parts.next(),
        parts.next(),
    ) {
        (Some("uploads"), Some(owner), Some(id), Some(_file), None) => {
            Some((owner.into(), id.into()))
        }
        _ => None,
    }
}

/// A file name safe as an object key segment, keeping its extension.
fn sanitise_filename(raw: &str) -> String {
    let base = raw.rsplit(['/', '\\']).next().unwrap_or(raw);
    let mut clean: String = base
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || "-_.".contains(c) {
                c
            } else {
                '_'
            }
        })
        .collect();
    clean = clean.trim_start_matches('.').to_owned();
    if clean.len() > 100 {
        let ext = clean
            .rsplit_once('.')
            .map(|(_, e)| e.to_owned())
            .unwrap_or_default();
        clean.truncate(90);
        if !ext.is_empty() {
            clean = format!("{clean}.{ext}");
        }
    }
    if clean.is_empty() {
        "dataset".into()
    } else {
        clean
    }
}

/// The `SUPPORTED_FILE_TYPES` entry ([`crate::config::KNOWN_FILE_TYPES`]) that allows a format.
fn file_type(format: FileFormat) -> &'static str {
    match format {
        FileFormat::Csv => "csv",
        FileFormat::Json | FileFormat::Ndjson => "json",
        FileFormat::Xlsx => "xlsx",
        FileFormat::Parquet => "parquet",
    }
}

/// Whether the values of a text column in a dataset's first rows (its preview) all read as
/// dates in `format`, and there is at least one: what a datetime override of such a column
/// with a format of the user's is checked by (inference found none it reads in). Rows
/// further down that do not read in it fail the generation that applies it, naming the row.
fn dates_in(preview: &[PreviewRow], column: &str, format: &str) -> bool {
    use chrono::{NaiveDate, NaiveDateTime};
    let reads = |s: &str| {
        let s = s.trim();
        NaiveDateTime::parse_from_str(s, format).is_ok()
            || NaiveDate::parse_from_str(s, format).is_ok()
            || DateTime::parse_from_str(s, format).is_ok()
    };
    let mut seen = 0;
    for row in preview {
        match row.get(column) {
            Some(Value::String(s)) if reads(s) => seen += 1,
            None | Some(Value::Null) => {}
            Some(_) => return false,
        }
    }
    seen > 0
}

/// Whether `change` makes a column a datetime in a format of the user's although its values
/// allowed none (stored as text): that needs the data's first rows to be checked.
fn makes_text_dates(change: &Metadata, compatible: &BTreeMap<String, Vec<SdType>>) -> bool {
    change.columns.iter().any(|(name, col)| {
        let allowed = compatible
            .get(name)
            .is_some_and(|a| a.contains(&SdType::Datetime));
        col.sdtype == SdType::Datetime && col.datetime_format.is_some() && !allowed
    })
}

/// The refusal of an sdtype a column's values do not allow, naming the ones they do (and,
/// for a datetime, what to give).
fn not_allowed(name: &str, col: &ColumnMetadata, allowed: &[SdType]) -> ServiceError {
    let format = match (&col.datetime_format, col.sdtype) {
        (Some(f), SdType::Datetime) => format!(" (its first rows are not all dates in {f:?})"),
        (None, SdType::Datetime) => " (or give the datetime_format its dates are in)".into(),
        _ => String::new(),
    };
    let names: Vec<&str> = allowed.iter().map(|t| t.as_str()).collect();
    ServiceError::Validation(
        format!(
            "column {name:?} cannot be {}: its values allow {}{format}",
            col.sdtype.as_str(),
            names.join(", ")
        ),
        serde_json::json!({ "field": "columns", "column": name, "allowed": allowed }),
    )
}

/// `current` metadata with the columns and primary key of `change` put in, each column's
/// sdtype checked against what its values allow; a text column may become a datetime in a
/// format its first rows (`preview`) all read in.
fn overridden(
    current: Metadata,
    change: &Metadata,
    compatible: &BTreeMap<String, Vec<SdType>>,
    preview: &[PreviewRow],
) -> ServiceResult<Metadata> {
    let mut next = current;
    for (name, col) in &change.columns {
        let Some(slot) = next.columns.iter_mut().find(|(n, _)| n == name) else {
            return Err(ServiceError::field(
                "columns",
                format!("unknown column {name:?}"),
            ));
        };
        let allowed = compatible.get(name).cloned().unwrap_or_default();
        let dated = col.sdtype == SdType::Datetime
            && col
                .datetime_format
                .as_deref()
                .is_some_and(|f| dates_in(preview, name, f));
        if !allowed.contains(&col.sdtype) && !dated {
            return Err(not_allowed(name, col, &allowed));
        }
        if col.sdtype == SdType::Datetime
            && col.datetime_format.is_none()
            && slot.1.datetime_format.is_none()
        {
            return Err(ServiceError::field(
                "columns",
                format!("column {name:?}: a datetime needs datetime_format"),
            ));
        }
        let keep_format = slot.1.datetime_format.clone();
        slot.1 = col.clone();
        if slot.1.datetime_format.is_none() && slot.1.sdtype == SdType::Datetime {
            slot.1.datetime_format = keep_format;
        }
    }
    if let Some(pk) = &change.primary_key {
        match next.column(pk) {
            Some(c) if c.sdtype == SdType::Id => next.primary_key = Some(pk.clone()),
            Some(_) => {
                return Err(ServiceError::field(
                    "primary_key",
                    format!("{pk:?} must have sdtype id"),
                ));
            }
            None => {
                return Err(ServiceError::field(
                    "primary_key",
                    format!("unknown column {pk:?}"),
                ));
            }
        }
    }
    if let Some(pk) = next.primary_key.clone()
        && next.column(&pk).is_none_or(|c| c.sdtype != SdType::Id)
    {
        next.primary_key = None;
    }
    Ok(next)
}

/// What claiming an upload for analysis came to.
enum Claim {
    /// This run analyses the dataset; `attempt` marks the result it may write.
    Claimed { dataset: Dataset, attempt: String },
    /// Nothing to analyse: the outcome is already known (`None`: nothing changed).
    Done(Option<Dataset>),
}

/// `update` moving a dataset to `status`, in its record and in the administrators' index.
fn with_status(update: Update, status: DatasetStatus) -> Update {
    update
        .set("status", status.as_str())
        .set("gsi1pk", format!("DATASETS#{}", status.as_str()))
}

/// The update that records a finished analysis and makes the dataset ready.
fn ready(a: &Analysis) -> Update {
    with_status(Update::default(), DatasetStatus::Ready)
        .set("format", a.format.extension())
        .set("n_rows", a.n_rows)
        .set("n_columns", a.n_columns)
        .set_json("metadata", &a.metadata)
        .set_json("compatible_sdtypes", &a.compatible_sdtypes)
        .set_json("warnings", &a.warnings)
        .set_json("suggested_constraints", &a.suggested_constraints)
}

/// The datasets service.
#[derive(Clone)]
pub struct Datasets {
    records: Arc<dyn RecordStore>,
    objects: Arc<dyn ObjectStore>,
    supported: Vec<String>,
    max_file_bytes: u64,
    /// Where an invalid upload is announced (`dataset.invalid`), when set.
    topic: Option<Arc<dyn Topic>>,
}

impl Datasets {
    pub fn new(
        records: Arc<dyn RecordStore>,
        objects: Arc<dyn ObjectStore>,
        settings: &Settings,
    ) -> Self {
        Self {
            records,
            objects,
            supported: settings.supported_file_types.clone(),
            max_file_bytes: settings.max_file_bytes(),
            topic: None,
        }
    }

    /// The same service announcing invalid uploads on `topic`, so their owners are told.
    pub fn with_topic(mut self, topic: Arc<dyn Topic>) -> Self {
        self.topic = Some(topic);
        self
    }

    /// Tell the owner that their upload cannot be used; best effort, as the status is
    /// stored already.
    async fn announce_invalid(&self, d: &Dataset) {
        let Some(topic) = &self.topic else { return };
        let message = serde_json::json!({
            "type": "dataset.invalid",
            "user_id": d.owner_id,
            "dataset_id": d.id,
            "name": d.filename,
            "error": d.error,
            "at": Utc::now().to_rfc3339(),
        });
        if let Err(e) = topic.publish("dataset.invalid", &message.to_string()).await {
            tracing::error!(dataset_id = %d.id, error = %e, "could not publish the invalid-dataset notice");
        }
    }

    /// Check a file's name and size: the bytes of a direct upload (`declared == false`:
    /// too large is 413, like any oversized body) or the size a presign request declares
    /// (a field of the request: 400 naming it).
    fn check_file(&self, filename: &str, size: u64, declared: bool) -> ServiceResult<String> {
        let (name_field, size_field) = if declared {
            ("filename", "size")
        } else {
            ("file", "file")
        };
        let name = sanitise_filename(filename);
        let ext = name
            .rsplit_once('.')
            .map(|(_, e)| e.to_ascii_lowercase())
            .unwrap_or_default();
        let allowed = |f: FileFormat| self.supported.iter().any(|s| s == file_type(f));
        if !FileFormat::from_extension(&ext).is_some_and(allowed) {
            // Every extension the supported types take (`json` takes NDJSON's too).
            let extensions: Vec<&str> = FileFormat::EXTENSIONS
                .iter()
                .filter(|(_, f)| allowed(*f))
                .map(|(e, _)| *e)
                .collect();
            return Err(ServiceError::field(
                name_field,
                format!(
                    "unsupported file type {ext:?}; supported: {}",
                    extensions.join(", ")
                ),
            ));
        }
        if size == 0 {
            return Err(ServiceError::field(size_field, "the file is empty"));
        }
        if size > self.max_file_bytes {
            let why = format!(
                "the file is {size} bytes; MAX_FILE_SIZE_MB allows {} bytes",
                self.max_file_bytes
            );
            return Err(if declared {
                ServiceError::field(size_field, why)
            } else {
                ServiceError::TooLarge(why)
            });
        }
        Ok(name)
    }

    fn new_record(
        owner: &str,
        filename: String,
        content_type: &str,
        size: u64,
        status: DatasetStatus,
    ) -> Dataset {
        let now = Utc::now();
        Dataset {
            id: uuid::Uuid::now_v7().to_string(),
            owner_id: owner.into(),
            filename,
            content_type: content_type.into(),
            size_bytes: size,
            status,
            error: None,
            warnings: Vec::new(),
            format: None,
            n_rows: None,
            n_columns: None,
            metadata: None,
            compatible_sdtypes: BTreeMap::new(),
            active_generations: 0,
            suggested_constraints: Vec::new(),
            constraints: Vec::new(),
            created_at: now,
            updated_at: now,
        }
    }

    fn item(d: &Dataset) -> ServiceResult<Item> {
        Ok(
            Item::from_value(&dataset_key(&d.owner_id, &d.id), d)?.with_gsi1(
                format!("DATASETS#{}", d.status.as_str()),
                format!("{}#{}", d.created_at.to_rfc3339(), d.id),
            ),
        )
    }

    /// Store a new dataset's record, counted in its owner's datasets.
    async fn create_record(&self, d: &Dataset) -> ServiceResult<()> {
        let put = vec![TxOp::Put {
            item: Self::item(d)?,
            condition: Some(Condition::NotExists),
        }];
        let tally = Tally::of(&d.owner_id).dataset(None, Some(d.status));
        Ok(tally.commit(self.records.as_ref(), put).await?)
    }

    /// Store a small file sent through the API and start its ingestion.
    pub async fn upload(
        &self,
        owner: &str,
        filename: &str,
        content_type: &str,
        bytes: bytes::Bytes,
    ) -> ServiceResult<Dataset> {
        let name = self.check_file(filename, bytes.len() as u64, false)?;
        let d = Self::new_record(
            owner,
            name,
            content_type,
            bytes.len() as u64,
            DatasetStatus::Validating,
        );
        self.create_record(&d).await?;
        let key = original_key(owner, &d.id, &d.filename);
        if let Err(e) = self
            .objects
            .put(&key, bytes, "application/octet-stream")
            .await
        {
            // Nothing half-stored: the record goes with the failed upload.
            let gone = vec![TxOp::Delete {
                key: dataset_key(owner, &d.id),
                condition: Some(Condition::eq("status", d.status.as_str())),
            }];
            let tally = Tally::of(owner).dataset(Some(d.status), None);
            let _ = tally.commit(self.records.as_ref(), gone).await;
            return Err(e.into());
        }
        Ok(d)
    }

    /// Issue a presigned upload for a large file; its arrival starts ingestion.
    pub async fn presign(
        &self,
        owner: &str,
        filename: &str,
        size: u64,
        content_type: &str,
    ) -> ServiceResult<(Dataset, PresignedRequest)> {
        let name = self.check_file(filename, size, true)?;
        let printable = (1..=255).contains(&content_type.len())
            && content_type.bytes().all(|b| (0x20..0x7f).contains(&b));
        if !printable {
            return Err(ServiceError::field(
                "content_type",
                "must be 1 to 255 printable ASCII characters",
            ));
        }
        let d = Self::new_record(
            owner,
            name,
            content_type,
            size,
            DatasetStatus::PendingUpload,
        );
        let url = self
            .objects
            .presign_put(
                &original_key(owner, &d.id, &d.filename),
                "application/octet-stream",
                size,
                UPLOAD_URL_TTL,
            )
            .await?;
        self.create_record(&d).await?;
        Ok((d, url))
    }

    /// The caller's datasets, newest first.
    pub async fn list(
        &self,
        owner: &str,
        limit: usize,
        cursor: Option<String>,
    ) -> ServiceResult<Paged<Dataset>> {
        let q = Query::partition(Index::Primary, format!("USER#{owner}"))
            .sk(SortKey::BeginsWith("DATASET#".into()))
            .backward()
            .limit(limit.clamp(1, 100))
            .after(cursor);
        Ok(self.records.query(&q).await?.decode()?)
    }

    /// The caller's newest ready dataset uploaded under `filename` (the seed platform names
    /// datasets by their file); none is not found.
    pub async fn find_ready_by_name(&self, owner: &str, filename: &str) -> ServiceResult<Dataset> {
        let mut cursor = None;
        loop {
            let page = self.list(owner, 100, cursor).await?;
            if let Some(d) = page
                .items
                .into_iter()
                .find(|d| d.filename == filename && d.status == DatasetStatus::Ready)
            {
                return Ok(d);
            }
            match page.next_cursor {
                Some(c) => cursor = Some(c),
                None => {
                    return Err(ServiceError::NotFound(format!(
                        "no ready dataset named {filename:?}"
                    )));
                }
            }
        }
    }

    /// One of the caller's datasets; another user's is simply not found.
    pub async fn get(&self, owner: &str, id: &str) -> ServiceResult<Dataset> {
        let not_found = || ServiceError::NotFound("no such dataset".into());
        let key_of = |id: &str| dataset_key(owner, id);
        let d: Dataset = read_by_id(self.records.as_ref(), id, key_of, not_found).await?;
        if d.status == DatasetStatus::Deleting {
            return Err(not_found());
        }
        Ok(d)
    }

    /// A JSON object this service stored, read back as the type it was written from.
    async fn json_object<T: DeserializeOwned>(&self, key: &str) -> ServiceResult<T> {
        let bytes = self.objects.get(key).await?.bytes().await?;
        serde_json::from_slice(&bytes)
            .map_err(|e| PortError::Backend(format!("stored {key} does not parse: {e}")).into())
    }

    /// The per-column profile of a ready dataset (`None` before ingestion finished).
    pub async fn profile(&self, d: &Dataset) -> ServiceResult<Option<Profile>> {
        if d.status != DatasetStatus::Ready {
            return Ok(None);
        }
        Ok(Some(
            self.json_object(&profile_key(&d.owner_id, &d.id)).await?,
        ))
    }

    /// The first `rows` rows of a ready dataset.
    pub async fn preview(
        &self,
        owner: &str,
        id: &str,
        rows: usize,
    ) -> ServiceResult<Vec<PreviewRow>> {
        self.get_ready(owner, id).await?;
        if rows == 0 || rows > PREVIEW_ROWS {
            return Err(ServiceError::field(
                "rows",
                format!("must be 1..={PREVIEW_ROWS}"),
            ));
        }
        let mut all: Vec<PreviewRow> = self.json_object(&preview_key(owner, id)).await?;
        all.truncate(rows);
        Ok(all)
    }

    /// Override column sdtypes (and the primary key); checked against what the data allows.
    pub async fn set_metadata(
        &self,
        owner: &str,
        id: &str,
        change: Metadata,
    ) -> ServiceResult<Dataset> {
        let (d, current) = self.get_ready(owner, id).await?;
        let preview: Vec<PreviewRow> = if makes_text_dates(&change, &d.compatible_sdtypes) {
            self.json_object(&preview_key(owner, id)).await?
        } else {
            Vec::new()
        };
        let next = overridden(current, &change, &d.compatible_sdtypes, &preview)?;
        // Constraints stay only while the new column types still allow them.
        let still = |cs: &[Constraint]| -> Vec<Constraint> {
            cs.iter()
                .filter(|c| synth_constraints::validate(std::slice::from_ref(*c), &next).is_ok())
                .cloned()
                .collect()
        };
        let update = Update::default()
            .set_json("metadata", &next)
            .set_json("constraints", &still(&d.constraints))
            .set_json("suggested_constraints", &still(&d.suggested_constraints));
        self.update_ready(owner, id, update).await
    }

    /// Sets the constraints generation requests on a ready dataset keep by default: the
    /// given ones, or its suggested ones. Each is checked against the dataset's columns.
    pub async fn set_constraints(
        &self,
        owner: &str,
        id: &str,
        change: ConstraintsChange,
    ) -> ServiceResult<Dataset> {
        let (d, metadata) = self.get_ready(owner, id).await?;
        let chosen = match change {
            ConstraintsChange::Given { constraints } => {
                let cs = synth_constraints::from_values(constraints)
                    .map_err(|e| ServiceError::field("constraints", e.to_string()))?;
                synth_constraints::validate(&cs, &metadata)
                    .map_err(|e| ServiceError::field("constraints", e.to_string()))?;
                cs
            }
            ConstraintsChange::Suggested {
                accept_suggested: true,
            } => d.suggested_constraints.clone(),
            ConstraintsChange::Suggested {
                accept_suggested: false,
            } => Vec::new(),
        };
        let update = Update::default().set_json("constraints", &chosen);
        self.update_ready(owner, id, update).await
    }

    /// One of the caller's datasets that is ready, and its metadata (taken out of it); a
    /// conflict while it is not ready.
    async fn get_ready(&self, owner: &str, id: &str) -> ServiceResult<(Dataset, Metadata)> {
        let mut d = self.get(owner, id).await?;
        match (d.metadata.take(), d.status) {
            (Some(metadata), DatasetStatus::Ready) => Ok((d, metadata)),
            (_, status) => Err(ServiceError::Conflict(format!(
                "the dataset is {}, not ready",
                status.as_str()
            ))),
        }
    }

    /// Changes a dataset that is still ready, stamping the change.
    async fn update_ready(&self, owner: &str, id: &str, update: Update) -> ServiceResult<Dataset> {
        let update = update.set("updated_at", Utc::now().to_rfc3339());
        let cond = Condition::eq("status", DatasetStatus::Ready.as_str());
        let item = self
            .records
            .update(&dataset_key(owner, id), update, Some(cond))
            .await?;
        Ok(item.to_value()?)
    }

    /// Delete a dataset with its files; refused while a generation on it runs.
    pub async fn delete(&self, owner: &str, id: &str) -> ServiceResult<()> {
        let d = self.get(owner, id).await?;
        let idle = Condition::Or(vec![
            Condition::AttrNotExists("active_generations".into()),
            Condition::cmp("active_generations", crate::ports::records::Cmp::Le, 0),
        ]);
        let mark = vec![TxOp::Update {
            key: dataset_key(owner, id),
            update: with_status(Update::default(), DatasetStatus::Deleting),
            condition: Some(Condition::And(vec![
                Condition::eq("status", d.status.as_str()),
                idle,
            ])),
        }];
        // The file counts as stored once it arrived (see `claim`).
        let stored = i64::try_from(d.size_bytes).unwrap_or(i64::MAX);
        let arrived = d.status != DatasetStatus::PendingUpload;
        let tally = Tally::of(owner)
            .dataset(Some(d.status), Some(DatasetStatus::Deleting))
            .storage(if arrived { -stored } else { 0 });
        match tally.commit(self.records.as_ref(), mark).await {
            Ok(()) => {}
            Err(PortError::TransactionCanceled { .. }) => {
                return Err(ServiceError::Conflict(
                    "a generation on this dataset is running".into(),
                ));
            }
            Err(e) => return Err(e.into()),
        }
        // Marked first: a failure below leaves a `deleting` record that a retry finishes.
        self.objects
            .delete(&original_key(owner, id, &d.filename))
            .await?;
        self.objects
            .delete_prefix(&derived_prefix(owner, id))
            .await?;
        self.records.delete(&dataset_key(owner, id), None).await?;
        Ok(())
    }

    /// Ingest an uploaded object: validate, profile, write the canonical copy, and move the
    /// dataset to `ready` or `invalid`. Idempotent: a repeated event for an ingested
    /// dataset does nothing; of two concurrent runs only the last claimant writes its result.
    pub async fn ingest(
        &self,
        analyzer: Arc<dyn Analyzer>,
        object_key: &str,
    ) -> ServiceResult<Option<Dataset>> {
        let Some((owner, id)) = parse_upload_key(object_key) else {
            tracing::warn!(
                object_key,
                "ignoring an object outside uploads/{{owner}}/{{id}}/"
            );
            return Ok(None);
        };
        let key = dataset_key(&owner, &id);
        let (d, attempt) = match self.claim(&key, object_key).await? {
            Claim::Claimed { dataset, attempt } => (dataset, attempt),
            Claim::Done(outcome) => return Ok(outcome),
        };
        let started = std::time::Instant::now();
        let update = match self.analyse(analyzer, &d, object_key).await {
            Ok(a) => ready(&a),
            Err(reason) => {
                // Nothing half-written stays: remove derived files of this attempt.
                let _ = self
                    .objects
                    .delete_prefix(&derived_prefix(&owner, &id))
                    .await;
                with_status(Update::default(), DatasetStatus::Invalid).set("error", reason)
            }
        };
        let update = update.set("updated_at", Utc::now().to_rfc3339());
        let to = if update
            .set
            .iter()
            .any(|(a, v)| a == "status" && v == DatasetStatus::Ready.as_str())
        {
            DatasetStatus::Ready
        } else {
            DatasetStatus::Invalid
        };
        let mine = Condition::And(vec![
            Condition::eq("ingest_attempt", attempt.as_str()),
            Condition::eq("status", DatasetStatus::Validating.as_str()),
        ]);
        let write = vec![TxOp::Update {
            key: key.clone(),
            update,
            condition: Some(mine),
        }];
        let tally = Tally::of(&owner).dataset(Some(DatasetStatus::Validating), Some(to));
        match tally.commit(self.records.as_ref(), write).await {
            Ok(()) => {
                let item = self.records.get(&key).await?;
                let Some(item) = item else { return Ok(None) };
                let d: Dataset = item.to_value()?;
                tracing::info!(dataset_id = %id, status = d.status.as_str(), duration_ms = started.elapsed().as_millis() as u64, "ingested");
                if d.status == DatasetStatus::Invalid {
                    self.announce_invalid(&d).await;
                }
                Ok(Some(d))
            }
            // Another run claimed the dataset since (or it is being deleted): its result,
            // or the deletion, stands.
            Err(PortError::TransactionCanceled { .. }) => Ok(None),
            Err(e) => Err(e.into()),
        }
    }

    /// Claim an upload's dataset for one analysis, counting the attempt durably before the
    /// work starts (a crash during it still counts), or say why there is nothing to do.
    async fn claim(&self, key: &Key, object_key: &str) -> ServiceResult<Claim> {
        let Some(item) = self.records.get(key).await? else {
            // The dataset was deleted (or never existed): drop the stray object.
            self.objects.delete(object_key).await?;
            return Ok(Claim::Done(None));
        };
        let d: Dataset = item.to_value()?;
        if !matches!(
            d.status,
            DatasetStatus::PendingUpload | DatasetStatus::Validating
        ) {
            tracing::info!(dataset_id = %d.id, status = d.status.as_str(), "already ingested; duplicate event ignored");
            return Ok(Claim::Done(None));
        }
        let attempts = item.i64("ingest_attempts").unwrap_or(0);
        if attempts >= MAX_INGEST_ATTEMPTS {
            return Ok(Claim::Done(self.give_up(key, &d, attempts).await?));
        }
        let attempt = uuid::Uuid::new_v4().to_string();
        let claim = with_status(Update::default(), DatasetStatus::Validating)
            .set("ingest_attempt", attempt.as_str())
            .add("ingest_attempts", 1);
        // Exactly as read: of two runs claiming at once, one claims and the other has
        // nothing to do; and the arrival below is counted once.
        let unchanged = Condition::And(vec![
            Condition::eq("status", d.status.as_str()),
            match item.i64("ingest_attempts") {
                Some(n) => Condition::eq("ingest_attempts", n),
                None => Condition::AttrNotExists("ingest_attempts".into()),
            },
        ]);
        let mut tally =
            Tally::of(&d.owner_id).dataset(Some(d.status), Some(DatasetStatus::Validating));
        if attempts == 0 {
            let format =
                FileFormat::from_extension(&d.filename).map_or("other", FileFormat::extension);
            tally = tally.upload(format, d.size_bytes);
        }
        let write = vec![TxOp::Update {
            key: key.clone(),
            update: claim,
            condition: Some(unchanged),
        }];
        match tally.commit(self.records.as_ref(), write).await {
            Ok(()) => {}
            Err(PortError::TransactionCanceled { .. }) => return Ok(Claim::Done(None)),
            Err(e) => return Err(e.into()),
        }
        tracing::info!(dataset_id = %d.id, attempt = attempts + 1, "ingesting");
        Ok(Claim::Claimed {
            dataset: d,
            attempt,
        })
    }

    /// Mark a dataset whose analyses kept being interrupted `invalid`, with the reason.
    async fn give_up(
        &self,
        key: &Key,
        d: &Dataset,
        attempts: i64,
    ) -> ServiceResult<Option<Dataset>> {
        let reason = format!(
            "ingestion was interrupted {attempts} times before it finished (the server \
             stopped or ran out of time or memory on this file); it is not retried"
        );
        let update = with_status(Update::default(), DatasetStatus::Invalid)
            .set("error", reason.as_str())
            // A run still in flight can no longer write its result.
            .set("ingest_attempt", uuid::Uuid::new_v4().to_string())
            .set("updated_at", Utc::now().to_rfc3339());
        let exhausted = Condition::cmp("ingest_attempts", Cmp::Ge, attempts);
        let write = vec![TxOp::Update {
            key: key.clone(),
            update,
            condition: Some(Condition::And(vec![
                Condition::eq("status", d.status.as_str()),
                exhausted,
            ])),
        }];
        let tally = Tally::of(&d.owner_id).dataset(Some(d.status), Some(DatasetStatus::Invalid));
        match tally.commit(self.records.as_ref(), write).await {
            Ok(()) => {
                let Some(item) = self.records.get(key).await? else {
                    return Ok(None);
                };
                let d: Dataset = item.to_value()?;
                let _ = self
                    .objects
                    .delete_prefix(&derived_prefix(&d.owner_id, &d.id))
                    .await;
                tracing::warn!(dataset_id = %d.id, attempts, "ingestion given up");
                self.announce_invalid(&d).await;
                Ok(Some(d))
            }
            Err(PortError::TransactionCanceled { .. }) => Ok(None),
            Err(e) => Err(e.into()),
        }
    }

    /// Ingest again every dataset left `validating` (e.g. by a crash mid-ingestion).
    pub async fn resume_validating(&self, analyzer: Arc<dyn Analyzer>) -> ServiceResult<usize> {
        let pk = format!("DATASETS#{}", DatasetStatus::Validating.as_str());
        let mut q = Query::partition(Index::Gsi1, pk).limit(100);
        let mut pending = Vec::new();
        loop {
            let page = self.records.query(&q).await?;
            for item in &page.items {
                pending.push(item.to_value::<Dataset>()?);
            }
            match page.next {
                Some(c) => q.cursor = Some(c),
                None => break,
            }
        }
        for d in &pending {
            let key = original_key(&d.owner_id, &d.id, &d.filename);
            self.ingest(analyzer.clone(), &key).await?;
        }
        Ok(pending.len())
    }

    async fn analyse(
        &self,
        analyzer: Arc<dyn Analyzer>,
        d: &Dataset,
        object_key: &str,
    ) -> Result<Analysis, String> {
        let (owner, id) = (d.owner_id.as_str(), d.id.as_str());
        let meta = self
            .objects
            .head(object_key)
            .await
            .map_err(|e| e.to_string())?
            .ok_or("the uploaded file is missing")?;
        if meta.size > self.max_file_bytes {
            return Err(format!(
                "the file is {} bytes; MAX_FILE_SIZE_MB allows {} bytes",
                meta.size, self.max_file_bytes
            ));
        }
        // The upload URL is signed for the declared length; this holds it on stores that
        // do not check signatures, and for any other way in.
        if meta.size != d.size_bytes {
            return Err(format!(
                "the uploaded file is {} bytes, but {} were declared",
                meta.size, d.size_bytes
            ));
        }
        let bytes = self
            .objects
            .get(object_key)
            .await
            .map_err(|e| e.to_string())?
            .bytes()
            .await
            .map_err(|e| e.to_string())?;
        let filename = object_key.rsplit('/').next().unwrap_or_default().to_owned();
        let analysis = run_analysis(analyzer, bytes, filename).await?;
        let put = |key: String, body: Vec<u8>, ct: &'static str| {
            let objects = self.objects.clone();
            async move {
                objects
                    .put(&key, body.into(), ct)
                    .await
                    .map(|_| ())
                    .map_err(|e| e.to_string())
            }
        };
        let preview = serde_json::to_vec(&analysis.preview).expect("serialises");
        let profile = serde_json::to_vec(&analysis.profile).expect("serialises");
        put(
            canonical_key(owner, id),
            analysis.canonical_parquet.clone(),
            "application/vnd.apache.parquet",
        )
        .await?;
        put(profile_key(owner, id), profile, "application/json").await?;
        put(preview_key(owner, id), preview, "application/json").await?;
        Ok(analysis)
    }
}

/// Analyse on a thread of its own with a known stack ([`ANALYSIS_STACK_BYTES`]); a panic
/// is an invalid file, not a dead worker.
async fn run_analysis(
    analyzer: Arc<dyn Analyzer>,
    bytes: bytes::Bytes,
    filename: String,
) -> Result<Analysis, String> {
    let (tx, rx) = tokio::sync::oneshot::channel();
    std::thread::Builder::new()
        .name("synth-analysis".into())
        .stack_size(ANALYSIS_STACK_BYTES)
        .spawn(move || {
            let run = std::panic::AssertUnwindSafe(|| analyzer.analyze(&bytes, &filename));
            let _ = tx.send(std::panic::catch_unwind(run));
        })
        .map_err(|e| format!("cannot start the analysis: {e}"))?;
    match rx.await {
        Ok(Ok(result)) => result,
        Ok(Err(panic)) => {
            let what = panic
                .downcast_ref::<&str>()
                .map(|s| (*s).to_owned())
                .or_else(|| panic.downcast_ref::<String>().cloned())
                .unwrap_or_default();
            tracing::error!(panic = %what, "the analysis of an upload panicked");
            Err("the file could not be analysed (the reader failed on it)".into())
        }
        Err(_) => Err("the analysis stopped before it finished".into()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn upload_keys_parse_and_filenames_are_safe() {
        assert_eq!(
            parse_upload_key("uploads/u1/d1/a.csv"),
            Some(("u1".into(), "d1".into()))
        );
        assert_eq!(parse_upload_key("uploads/u1/d1"), None);
        assert_eq!(parse_upload_key("users/u1/d1/a.csv"), None);
        assert_eq!(parse_upload_key("uploads/u1/d1/x/a.csv"), None);
        assert_eq!(sanitise_filename("../../etc/pass wd.csv"), "pass_wd.csv");
        assert_eq!(sanitise_filename("C:\\data\\Größe.xlsx"), "Gr__e.xlsx");
        assert_eq!(sanitise_filename(".hidden"), "hidden");
        let long = sanitise_filename(&format!("{}.parquet", "a".repeat(300)));
        assert!(long.len() <= 100 && long.ends_with(".parquet"));
    }

    #[test]
    fn every_format_is_allowed_by_a_known_file_type() {
        for (_, format) in FileFormat::EXTENSIONS {
            assert!(
                crate::config::KNOWN_FILE_TYPES.contains(&file_type(format)),
                "{format:?}"
            );
        }
    }
}
