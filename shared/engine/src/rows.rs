//! Row-wise table helper for rejection sampling: stack tables (keeping rows is
//! `Table::take_rows`).

use synth_core::table::{ColumnData, Table};

pub fn append(table: &mut Table, more: Table) {
    if table.columns.is_empty() {
        *table = more;
        return;
    }
    for (c, m) in table.columns.iter_mut().zip(more.columns) {
        match (&mut c.data, m.data) {
            (ColumnData::Float(a), ColumnData::Float(b)) => a.extend(b),
            (ColumnData::Int(a), ColumnData::Int(b))
            | (ColumnData::Datetime(a), ColumnData::Datetime(b)) => a.extend(b),
            (ColumnData::Bool(a), ColumnData::Bool(b)) => a.extend(b),
            (ColumnData::Str(a), ColumnData::Str(b)) => a.extend(b),
            _ => unreachable!("tables decoded by the same transformer have the same column types"),
        }
    }
}
