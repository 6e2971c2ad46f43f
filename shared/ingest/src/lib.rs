//! Ingestion's analysis: read an uploaded file with `synth-data`, infer its SDV metadata,
//! profile it, and write its canonical Parquet copy. Used by the `ingest` function and by
//! `synth serve`; kept apart from the HTTP crates so light functions never link polars.

mod isolated;

use std::collections::BTreeMap;

use serde_json::{Map, Value};
use synth_core::datasets::{Analysis, Analyzer, PREVIEW_ROWS};
use synth_data::{FileFormat, Limits, ReadOptions};
use synth_table::{Column, ColumnData, ColumnMetadata, Metadata, SdType, Table};

pub use isolated::{ANALYSIS_TIMEOUT, ProcessAnalyzer, SUBCOMMAND, run_child};

/// The analyzer of uploaded tables.
#[derive(Debug, Clone, Default)]
pub struct TableAnalyzer {
    pub limits: Limits,
}

impl TableAnalyzer {
    /// An analyzer refusing files above `max_bytes` (MAX_FILE_SIZE_MB).
    pub fn new(max_bytes: u64) -> Self {
        Self {
            limits: Limits {
                max_bytes,
                ..Limits::default()
            },
        }
    }
}

/// Whether every present value of a column is distinct (what an `id` column needs).
fn all_unique(data: &ColumnData) -> bool {
    fn uniq<T: std::hash::Hash + Eq>(v: impl Iterator<Item = T>) -> bool {
        let mut seen = std::collections::HashSet::new();
        v.into_iter().all(|x| seen.insert(x))
    }
    match data {
        ColumnData::Float(v) => uniq(v.iter().flatten().map(|f| f.to_bits())),
        ColumnData::Int(v) | ColumnData::Datetime(v) => uniq(v.iter().flatten()),
        ColumnData::Bool(v) => v.iter().flatten().count() <= 2 && uniq(v.iter().flatten()),
        ColumnData::Str(v) => uniq(v.iter().flatten()),
    }
}

/// The sdtypes a column's values allow: each is tried by coercing the column to it.
fn compatible(column: &Column, inferred: &ColumnMetadata) -> Vec<SdType> {
    let single = Table {
        columns: vec![column.clone()],
    };
    let candidates = [
        SdType::Numerical,
        SdType::Categorical,
        SdType::Boolean,
        SdType::Datetime,
        SdType::Id,
        SdType::Text,
        SdType::Email,
        SdType::Phone,
    ];
    let is_text = matches!(column.data, ColumnData::Str(_));
    candidates
        .into_iter()
        .filter(|&sdtype| match sdtype {
            SdType::Categorical => true,
            SdType::Text | SdType::Email | SdType::Phone => is_text || inferred.sdtype == sdtype,
            SdType::Id => all_unique(&column.data),
            _ if sdtype == inferred.sdtype => true,
            _ => {
                let mut meta = ColumnMetadata::new(sdtype);
                if sdtype == SdType::Datetime {
                    let Some(format) = inferred.datetime_format.clone() else {
                        return false;
                    };
                    meta.datetime_format = Some(format);
                }
                let m = Metadata::new(vec![(column.name.clone(), meta)]);
                synth_data::apply_metadata(single.clone(), &m).is_ok()
            }
        })
        .collect()
}

impl Analyzer for TableAnalyzer {
    fn analyze(&self, bytes: &[u8], filename: &str) -> Result<Analysis, String> {
        let opts = ReadOptions {
            limits: self.limits.clone(),
            ..ReadOptions::default()
        };
        let read =
            synth_data::read_bytes(bytes, Some(filename), &opts).map_err(|e| e.to_string())?;
        let inference = synth_data::infer_metadata(&read.table);
        let metadata = inference.metadata.clone();
        let mut compatible_sdtypes = BTreeMap::new();
        for column in &read.table.columns {
            if let Some(inferred) = metadata.column(&column.name) {
                compatible_sdtypes.insert(column.name.clone(), compatible(column, inferred));
            }
        }
        let table = synth_data::apply_metadata(read.table, &metadata).map_err(|e| e.to_string())?;
        let profile = synth_data::profile(&table, &metadata, Some(&inference));
        let canonical_parquet = synth_data::write_bytes(&table, &metadata, FileFormat::Parquet)
            .map_err(|e| e.to_string())?;
        let preview_json =
            synth_data::write_bytes(&table.head(PREVIEW_ROWS), &metadata, FileFormat::Json)
                .map_err(|e| e.to_string())?;
        let preview: Vec<Map<String, Value>> =
            serde_json::from_slice(&preview_json).map_err(|e| e.to_string())?;
        Ok(Analysis {
            format: serde_json::to_value(read.format)
                .ok()
                .and_then(|v| v.as_str().map(str::to_owned))
                .unwrap_or_default(),
            n_rows: table.n_rows() as u64,
            n_columns: table.columns.len() as u64,
            metadata,
            compatible_sdtypes,
            profile: serde_json::to_value(&profile).map_err(|e| e.to_string())?,
            preview,
            canonical_parquet,
            warnings: read.warnings.into_iter().chain(profile.warnings).collect(),
        })
    }
}

/// The object keys of an S3 notification, decoded (S3 URL-encodes them, `+` for a space).
pub fn event_keys(event: &aws_lambda_events::event::s3::S3Event) -> Vec<String> {
    event
        .records
        .iter()
        .filter(|r| {
            r.event_name
                .as_deref()
                .is_none_or(|n| n.starts_with("ObjectCreated"))
        })
        .filter_map(|r| r.s3.object.key.as_deref())
        .map(|k| {
            percent_encoding::percent_decode_str(&k.replace('+', " "))
                .decode_utf8_lossy()
                .into_owned()
        })
        .collect()
}

/// Ingest every object an S3 notification announces. Fails (so Lambda retries the event)
/// only when a store failed; an invalid file is a dataset marked `invalid`, not an error.
pub async fn handle_s3_event(
    datasets: &synth_core::datasets::Datasets,
    analyzer: std::sync::Arc<dyn Analyzer>,
    event: &aws_lambda_events::event::s3::S3Event,
) -> Result<usize, synth_core::ServiceError> {
    let mut ingested = 0;
    for key in event_keys(event) {
        if datasets.ingest(analyzer.clone(), &key).await?.is_some() {
            ingested += 1;
        }
    }
    Ok(ingested)
}

/// Uploads ingested at once by the embedded server (each is CPU-bound).
const EMBEDDED_INGEST_CONCURRENCY: usize = 2;

/// The embedded stand-in for the S3 trigger: ingest every object created under
/// `uploads/`, and first whatever a previous run left half-ingested. Runs until `stop`.
pub async fn run_embedded(
    datasets: synth_core::datasets::Datasets,
    analyzer: std::sync::Arc<dyn Analyzer>,
    mut created: tokio::sync::broadcast::Receiver<synth_core::ObjectMeta>,
    mut stop: tokio::sync::watch::Receiver<bool>,
) {
    match datasets.resume_validating(analyzer.clone()).await {
        Ok(0) => {}
        Ok(n) => tracing::info!(datasets = n, "resumed interrupted ingestions"),
        Err(e) => tracing::error!(error = %e, "resuming interrupted ingestions failed"),
    }
    let permits = std::sync::Arc::new(tokio::sync::Semaphore::new(EMBEDDED_INGEST_CONCURRENCY));
    loop {
        let meta = tokio::select! {
            _ = stop.changed() => break,
            m = created.recv() => m,
        };
        let meta = match meta {
            Ok(m) => m,
            Err(tokio::sync::broadcast::error::RecvError::Lagged(n)) => {
                // Missed events: whatever is still validating is picked up again.
                tracing::warn!(missed = n, "ingest loop lagged; resuming from the records");
                let _ = datasets.resume_validating(analyzer.clone()).await;
                continue;
            }
            Err(tokio::sync::broadcast::error::RecvError::Closed) => break,
        };
        if !meta.key.starts_with("uploads/") {
            continue;
        }
        let (datasets, analyzer, permits) = (datasets.clone(), analyzer.clone(), permits.clone());
        tokio::spawn(async move {
            let _permit = permits.acquire().await;
            if let Err(e) = datasets.ingest(analyzer, &meta.key).await {
                tracing::error!(key = %meta.key, error = %e, "ingestion failed; it resumes at the next start");
            }
        });
    }
}
