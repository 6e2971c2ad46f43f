//! A table and its metadata from named, typed columns: for the engine's unit tests (through
//! `test_support`) and its integration tests.

use synth_table::{Column, ColumnData, ColumnMetadata, Metadata, SdType, Table};

/// The table of `columns` (name, type, values), and its metadata.
pub fn table_of(columns: Vec<(&str, SdType, ColumnData)>) -> (Table, Metadata) {
    let metadata = columns
        .iter()
        .map(|(name, sdtype, _)| (name.to_string(), ColumnMetadata::new(*sdtype)))
        .collect();
    let columns = columns
        .into_iter()
        .map(|(name, _, data)| Column {
            name: name.into(),
            data,
        })
        .collect();
    (Table::new(columns).unwrap(), Metadata::new(metadata))
}
