//! The one ingestion path: read a file, infer its SDV metadata (or take the caller's), type
//! the table by it and, when asked, profile it and list the sdtypes each column allows.
//! `synth generate`/`optimize`/`evaluate`/`profile` and the analysis of an upload all load
//! their tables here, so a file reads the same way wherever it is given.

use std::collections::BTreeMap;
use std::path::Path;

use synth_table::{FileFormat, Metadata, Profile, SdType, Table};

use crate::{
    DataError, Inference, ReadOptions, apply_metadata_noting, compatible_sdtypes, infer_metadata,
    profile, read_bytes, read_path,
};

/// Where a table comes from.
#[derive(Debug, Clone, Copy)]
pub enum Source<'a> {
    /// A file on disk; its size is checked before a byte is read.
    Path(&'a Path),
    /// A file in memory; its name, when known, is compared with what the content shows.
    Bytes {
        bytes: &'a [u8],
        filename: Option<&'a str>,
    },
}

/// How to load a table; `Default` infers the metadata and neither profiles nor lists
/// compatible sdtypes.
#[derive(Debug, Clone, Default)]
pub struct LoadOptions {
    /// Sheet, limits and forced format of the read.
    pub read: ReadOptions,
    /// Type the table by this metadata instead of the inferred one.
    pub metadata: Option<Metadata>,
    /// Profile the typed table (with inference's confidence and reasons).
    pub profile: bool,
    /// List, per column, the sdtypes its values allow (what a metadata override may pick).
    pub compatible_sdtypes: bool,
}

/// A loaded table: typed by its metadata, with what the read and the analysis found.
#[derive(Debug, Clone)]
pub struct Loaded {
    /// The table, each column coerced to its sdtype's storage.
    pub table: Table,
    /// The metadata it was typed by: the caller's, or the inferred.
    pub metadata: Metadata,
    /// The format it was read as.
    pub format: FileFormat,
    /// The non-fatal findings of the read (extension/content mismatch, encoding fallback, ...)
    /// and of typing (values read as missing).
    pub warnings: Vec<String>,
    /// Inference's verdicts, when it ran: without metadata given, or for a profile.
    pub inference: Option<Inference>,
    /// Present when [`LoadOptions::profile`] asked for it.
    pub profile: Option<Profile>,
    /// Filled when [`LoadOptions::compatible_sdtypes`] asked for it.
    pub compatible_sdtypes: BTreeMap<String, Vec<SdType>>,
}

/// Read → infer → apply (→ profile): the table at `source`, typed and analysed as `options` say.
pub fn load(source: Source<'_>, options: &LoadOptions) -> Result<Loaded, DataError> {
    let read = match source {
        Source::Path(path) => read_path(path, &options.read)?,
        Source::Bytes { bytes, filename } => read_bytes(bytes, filename, &options.read)?,
    };
    let (metadata, inference) = match &options.metadata {
        Some(given) => (
            given.clone(),
            options.profile.then(|| infer_metadata(&read.table)),
        ),
        None => {
            let inferred = infer_metadata(&read.table);
            (inferred.metadata.clone(), Some(inferred))
        }
    };
    // Judged on the columns as read: once typed, a column no longer shows what else it could be.
    let compatible = if options.compatible_sdtypes {
        compatible_sdtypes(&read.table, &metadata)
    } else {
        BTreeMap::new()
    };
    let (table, missing) = apply_metadata_noting(read.table, &metadata)?;
    let profile = options
        .profile
        .then(|| profile(&table, &metadata, inference.as_ref()));
    Ok(Loaded {
        table,
        metadata,
        format: read.format,
        warnings: read.warnings.into_iter().chain(missing).collect(),
        inference,
        profile,
        compatible_sdtypes: compatible,
    })
}
