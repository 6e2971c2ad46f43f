//! What `synth generate`, `optimize` and `evaluate` share: loading a table with its metadata
//! (through `synth_data::load`, as every ingestion does), and saving a fitted model with the
//! metadata its output is written by.

use std::path::Path;

use synth_data::{LoadOptions, Loaded, Source};
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
    let metadata = metadata.map(read_metadata).transpose()?;
    let loaded = load(input, metadata)?;
    for w in &loaded.warnings {
        eprintln!("warning: {w}");
    }
    if loaded.table.n_rows() == 0 {
        return Err(format!("{} has no rows", input.display()));
    }
    Ok((loaded.table, loaded.metadata))
}

/// The table at `path` typed by `metadata` (inferred when `None`); errors name the file.
pub fn load(path: &Path, metadata: Option<Metadata>) -> Result<Loaded, String> {
    let options = LoadOptions {
        metadata,
        ..LoadOptions::default()
    };
    load_with(path, &options)
}

/// The table at `path`, loaded as `options` say; errors name the file.
pub fn load_with(path: &Path, options: &LoadOptions) -> Result<Loaded, String> {
    synth_data::load(Source::Path(path), options).map_err(|e| format!("{}: {e}", path.display()))
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

/// Refuse, before any work, an output the run could not write at its end: a format no
/// extension names (when `table`), a folder that does not exist, or one of the inputs
/// (which it would overwrite).
pub fn check_output(output: &Path, inputs: &[&Path], table: bool) -> Result<(), String> {
    let name = output
        .file_name()
        .and_then(|n| n.to_str())
        .unwrap_or_default();
    if table && synth_data::FileFormat::from_extension(name).is_none() {
        return Err(format!(
            "{}: unsupported output format; name the file .csv, .tsv, .psv, .json, .ndjson, \
             .parquet or .xlsx",
            output.display()
        ));
    }
    let folder = match output.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    };
    let Ok(folder) = folder.canonicalize() else {
        return Err(format!("{}: the folder does not exist", folder.display()));
    };
    let target = folder.join(name);
    let same = |input: &&&Path| input.canonicalize().is_ok_and(|i| i == target);
    if let Some(input) = inputs.iter().find(same) {
        return Err(format!(
            "{}: that is an input ({}); write the output to another file",
            output.display(),
            input.display()
        ));
    }
    Ok(())
}
