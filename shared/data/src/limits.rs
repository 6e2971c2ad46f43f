//! Limits on what a user may upload: an upload is untrusted, so every dimension that costs
//! memory or time is bounded before or while it is read.

/// Upper bounds checked while reading; exceeding any is a distinct [`crate::DataError`].
#[derive(Debug, Clone, PartialEq)]
pub struct Limits {
    /// Size of the file as uploaded (`MAX_FILE_SIZE_MB`).
    pub max_bytes: u64,
    pub max_rows: usize,
    pub max_columns: usize,
    /// Characters in one text cell.
    pub max_cell_chars: usize,
    /// Declared total uncompressed size of an XLSX's zip entries.
    pub max_xlsx_uncompressed: u64,
    /// Declared uncompressed / compressed size of an XLSX.
    pub max_xlsx_ratio: f64,
    /// Nesting of arrays and objects in a JSON or NDJSON table, checked before parsing
    /// (the parser recurses once per level; see `synth_table::json`).
    pub max_json_depth: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            max_bytes: 500 * 1024 * 1024,
            max_rows: 10_000_000,
            max_columns: 1_000,
            max_cell_chars: 32_768,
            max_xlsx_uncompressed: 2 * 1024 * 1024 * 1024,
            // Sheet XML of repetitive data compresses ~10-50x; hundreds is a bomb.
            max_xlsx_ratio: 200.0,
            max_json_depth: synth_table::json::MAX_TABLE_DEPTH,
        }
    }
}

impl Limits {
    /// Limits with the file-size bound given in megabytes, as the `MAX_FILE_SIZE_MB` setting is.
    pub fn with_max_file_size_mb(mut self, mb: u64) -> Self {
        self.max_bytes = mb.saturating_mul(1024 * 1024);
        self
    }
}
