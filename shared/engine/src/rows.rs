//! Row-wise table helpers for rejection sampling: keep some rows, stack tables.

use synth_core::table::{Column, ColumnData, Table};

fn take<T: Clone>(v: &[T], rows: &[usize]) -> Vec<T> {
    rows.iter().map(|&i| v[i].clone()).collect()
}

/// The table restricted to `rows`, in that order.
pub fn take_rows(table: &Table, rows: &[usize]) -> Table {
    let columns = table
        .columns
        .iter()
        .map(|c| Column {
            name: c.name.clone(),
            data: match &c.data {
                ColumnData::Float(v) => ColumnData::Float(take(v, rows)),
                ColumnData::Int(v) => ColumnData::Int(take(v, rows)),
                ColumnData::Bool(v) => ColumnData::Bool(take(v, rows)),
                ColumnData::Str(v) => ColumnData::Str(take(v, rows)),
                ColumnData::Datetime(v) => ColumnData::Datetime(take(v, rows)),
            },
        })
        .collect();
    Table { columns }
}

/// Appends `more` (same columns, same order and types) below `table`.
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
