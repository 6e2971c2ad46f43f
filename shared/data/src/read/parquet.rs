//! Parquet via polars' reader; its types are already explicit, so nothing is sniffed.

use std::io::Cursor;

use polars::prelude::*;
use synth_table::Table;

use super::{frame_to_table, malformed};
use crate::{DataError, FileFormat};

pub(super) fn read(bytes: &[u8]) -> Result<Table, DataError> {
    let df = ParquetReader::new(Cursor::new(bytes))
        .finish()
        .map_err(|e| malformed(FileFormat::Parquet, e))?;
    frame_to_table(&df, FileFormat::Parquet)
}
