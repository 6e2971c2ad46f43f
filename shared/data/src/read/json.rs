//! JSON (an array of objects) and NDJSON (an object per line), both via polars' JSON reader,
//! after a scan that refuses deep nesting (the reader would recurse into it).

use std::io::Cursor;

use polars::prelude::*;
use synth_table::Table;

use super::{frame_to_table, malformed};
use crate::{DataError, FileFormat, Limits};

pub(super) fn read(
    bytes: &[u8],
    json_format: JsonFormat,
    limits: &Limits,
) -> Result<Table, DataError> {
    let format = match json_format {
        JsonFormat::Json => FileFormat::Json,
        JsonFormat::JsonLines => FileFormat::Ndjson,
    };
    let bytes = bytes.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(bytes);
    // Before polars sees it: its reader recurses once per level with no bound of its own.
    synth_table::json::check_depth(bytes, limits.max_json_depth)
        .map_err(|e| DataError::TooDeep { limit: e.limit })?;
    let df = JsonReader::new(Cursor::new(bytes))
        .with_json_format(json_format)
        .infer_schema_len(None)
        .finish()
        .map_err(|e| malformed(format, e))?;
    frame_to_table(&df, format)
}
