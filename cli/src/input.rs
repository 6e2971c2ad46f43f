//! What `synth generate` and `synth optimize` share: reading the real table with its
//! metadata, and saving a fitted model with the metadata its output is written by.

use std::path::Path;

use synth_data::ReadOptions;
use synth_engine::Synthesizer;
use synth_table::{Metadata, Table};

/// The SDV metadata saved beside a model, so a loaded model writes its output alike.
pub const METADATA_FILE: &str = "metadata.json";

pub fn read_metadata(path: &Path) -> Result<Metadata, String> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| format!("cannot read {}: {e}", path.display()))?;
    Metadata::from_json(&text).map_err(|e| format!("{}: {e}", path.display()))
}

/// The table at `input`, typed by the metadata at `metadata` or by inference; reader
/// warnings go to stderr, and a table without rows is an error.
pub fn read_table(input: &Path, metadata: Option<&Path>) -> Result<(Table, Metadata), String> {
    let read = synth_data::read_path(input, &ReadOptions::default())
        .map_err(|e| format!("{}: {e}", input.display()))?;
    for w in &read.warnings {
        eprintln!("warning: {w}");
    }
    let metadata = match metadata {
        Some(p) => read_metadata(p)?,
        None => synth_data::infer_metadata(&read.table).metadata,
    };
    let table = synth_data::apply_metadata(read.table, &metadata).map_err(|e| e.to_string())?;
    if table.n_rows() == 0 {
        return Err(format!("{} has no rows", input.display()));
    }
    Ok((table, metadata))
}

/// Saves `model` to `dir` with the metadata beside it.
pub fn save_model(model: &dyn Synthesizer, metadata: &Metadata, dir: &Path) -> Result<(), String> {
    model
        .save(dir)
        .map_err(|e| format!("cannot save the model to {}: {e}", dir.display()))?;
    let text = serde_json::to_string_pretty(metadata).expect("metadata serialises");
    std::fs::write(dir.join(METADATA_FILE), text)
        .map_err(|e| format!("cannot save the metadata: {e}"))
}
