//! The analysis of an upload: load the file with `synth-data` (read, infer its SDV metadata,
//! profile it, list the sdtypes each column allows), take its preview and write its canonical
//! Parquet copy — the platform's [`Analyzer`]. [`TableAnalyzer`] runs it in this process (the
//! `ingest` Lambda); [`ProcessAnalyzer`] runs it in a child process (`synth serve`), so that a
//! file that crashes its reader takes only the child down. Ingestion itself (claiming the
//! dataset, storing the results, marking it ready or invalid) is `synth_core::datasets`'; this
//! crate is kept apart from it so the light functions and the HTTP crates never link polars.

mod isolated;

use synth_core::datasets::{Analysis, Analyzer, PREVIEW_ROWS};
use synth_data::{FileFormat, Limits, LoadOptions, ReadOptions, Source};

pub use isolated::{ANALYSIS_TIMEOUT, ProcessAnalyzer, SUBCOMMAND, run_child};

/// The analyzer of uploaded tables, in this process.
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

impl Analyzer for TableAnalyzer {
    fn analyze(&self, bytes: &[u8], filename: &str) -> Result<Analysis, String> {
        let options = LoadOptions {
            read: ReadOptions {
                limits: self.limits.clone(),
                ..ReadOptions::default()
            },
            profile: true,
            compatible_sdtypes: true,
            ..LoadOptions::default()
        };
        let source = Source::Bytes {
            bytes,
            filename: Some(filename),
        };
        let loaded = synth_data::load(source, &options).map_err(|e| e.to_string())?;
        let (table, metadata) = (&loaded.table, &loaded.metadata);
        let profile = loaded.profile.expect("asked for");
        let canonical_parquet = synth_data::write_bytes(table, metadata, FileFormat::Parquet)
            .map_err(|e| e.to_string())?;
        Ok(Analysis {
            format: loaded.format,
            n_rows: table.n_rows() as u64,
            n_columns: table.columns.len() as u64,
            preview: synth_data::preview(table, metadata, PREVIEW_ROWS),
            canonical_parquet,
            warnings: loaded
                .warnings
                .into_iter()
                .chain(profile.warnings.iter().cloned())
                .collect(),
            profile,
            compatible_sdtypes: loaded.compatible_sdtypes,
            metadata: loaded.metadata,
        })
    }
}
