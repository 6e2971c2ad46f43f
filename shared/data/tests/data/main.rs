//! Flow tests of synth-data on real files: generated in the test (every format, tricky CSVs,
//! limits, malformed input) and the shared demo datasets.

mod apply;
mod infer;
mod limits;
mod load;
mod profile;
mod read;
mod write;

use std::path::{Path, PathBuf};

use synth_data::{DataError, Dataset, ReadOptions, read_bytes, read_path};
use synth_table::{Column, ColumnData, ColumnMetadata, Metadata, SdType, Table};

/// The repository's shared demo datasets (/work/shared/data, beside the /work/main checkout).
pub fn shared_data(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../../shared/data")
        .join(name)
}

pub fn read_str(text: &str, name: &str) -> Result<Dataset, DataError> {
    read_bytes(text.as_bytes(), Some(name), &ReadOptions::default())
}

pub fn col<'a>(t: &'a Table, name: &str) -> &'a ColumnData {
    &t.column(name)
        .unwrap_or_else(|| panic!("no column {name}: {:?}", names(t)))
        .data
}

pub fn names(t: &Table) -> Vec<&str> {
    t.columns.iter().map(|c| c.name.as_str()).collect()
}

pub fn strs(v: &[Option<&str>]) -> ColumnData {
    ColumnData::Str(v.iter().map(|s| s.map(str::to_owned)).collect())
}

pub fn table(cols: Vec<(&str, ColumnData)>) -> Table {
    Table::new(
        cols.into_iter()
            .map(|(n, d)| Column {
                name: n.into(),
                data: d,
            })
            .collect(),
    )
    .unwrap()
}

/// The metadata of `cols`, in order.
pub fn meta(cols: Vec<(&str, ColumnMetadata)>) -> Metadata {
    Metadata::new(cols.into_iter().map(|(n, c)| (n.to_owned(), c)).collect())
}

/// A datetime column written as `format`.
pub fn dt(format: &str) -> ColumnMetadata {
    ColumnMetadata {
        datetime_format: Some(format.into()),
        ..ColumnMetadata::new(SdType::Datetime)
    }
}

/// Write bytes to a temp file named `name` and read it back through `read_path`.
pub fn read_file(bytes: &[u8], name: &str, opts: &ReadOptions) -> Result<Dataset, DataError> {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join(name);
    std::fs::write(&path, bytes).unwrap();
    read_path(&path, opts)
}
