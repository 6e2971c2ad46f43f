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
            suggested_constraints: synth_constraints::discover(table, metadata),
            profile,
            compatible_sdtypes: loaded.compatible_sdtypes,
            metadata: loaded.metadata,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::Value;

    /// A demo dataset of the repository (/work/shared/data, beside the checkout).
    fn shared_data(name: &str) -> Vec<u8> {
        let path = format!("{}/../../../shared/data/{name}", env!("CARGO_MANIFEST_DIR"));
        std::fs::read(path).expect("the shared dataset")
    }

    /// The typed preview stores what the preview was before it was typed (the table written
    /// as JSON and parsed back): datasets stored then and now read alike.
    #[test]
    fn the_preview_keeps_the_shape_of_the_tables_json() {
        for name in ["penguins.csv", "seattle_weather.csv", "diamonds.csv"] {
            let bytes = shared_data(name);
            let a = TableAnalyzer::default().analyze(&bytes, name).unwrap();
            let source = Source::Bytes {
                bytes: &bytes,
                filename: Some(name),
            };
            let loaded = synth_data::load(source, &LoadOptions::default()).unwrap();
            let head = loaded.table.head(PREVIEW_ROWS);
            let json = synth_data::write_bytes(&head, &loaded.metadata, FileFormat::Json).unwrap();
            let written: Value = serde_json::from_slice(&json).unwrap();
            assert_eq!(serde_json::to_value(&a.preview).unwrap(), written, "{name}");
            assert_eq!(a.preview.len(), PREVIEW_ROWS);
        }
    }

    #[test]
    fn an_analysis_survives_its_trip_between_processes() {
        let bytes = shared_data("seattle_weather.csv");
        let a = TableAnalyzer::default().analyze(&bytes, "w.csv").unwrap();
        assert_eq!(a.format, FileFormat::Csv);
        assert!(a.canonical_parquet.starts_with(b"PAR1"));
        assert_eq!(a.profile.n_rows as u64, a.n_rows);
        assert_eq!(a.compatible_sdtypes.len() as u64, a.n_columns);
        let back: Analysis = serde_json::from_slice(&serde_json::to_vec(&a).unwrap()).unwrap();
        // The canonical copy travels as a file of its own, the rest as JSON.
        assert!(back.canonical_parquet.is_empty());
        let canonical_parquet = a.canonical_parquet.clone();
        assert_eq!(
            Analysis {
                canonical_parquet,
                ..back
            },
            a
        );
    }
}
