//! XLSX via calamine, after checking the zip's central directory so that a zip bomb is refused
//! before anything is decompressed. Cells are typed per column here because a sheet has no
//! schema: a column is numeric, boolean or datetime only if all its non-empty cells are.

use std::io::Cursor;

use calamine::{Data, Reader, Xlsx};
use synth_table::{Column, ColumnData, Table};

use super::{is_null_token, malformed};
use crate::{DataError, FileFormat, Limits};

/// Days between Excel's epoch (1899-12-30) and the Unix epoch.
const EXCEL_UNIX_DAYS: f64 = 25_569.0;
const MICROS_PER_DAY: f64 = 86_400_000_000.0;

pub(super) fn read(bytes: &[u8], sheet: Option<&str>, limits: &Limits) -> Result<Table, DataError> {
    check_zip(bytes, limits)?;
    let mut book: Xlsx<_> =
        Xlsx::new(Cursor::new(bytes)).map_err(|e| malformed(FileFormat::Xlsx, e))?;
    let names = book.sheet_names();
    let name = match sheet {
        Some(s) if names.iter().any(|n| n == s) => s.to_owned(),
        Some(s) => {
            return Err(DataError::SheetNotFound {
                sheet: s.to_owned(),
                available: names,
            });
        }
        None => names.first().cloned().ok_or(DataError::Empty)?,
    };
    let range = book
        .worksheet_range(&name)
        .map_err(|e| malformed(FileFormat::Xlsx, e))?;
    if range.height() == 0 || range.width() == 0 {
        return Err(DataError::Empty);
    }
    if range.width() > limits.max_columns {
        return Err(DataError::TooManyColumns {
            count: range.width(),
            limit: limits.max_columns,
        });
    }
    if range.height() - 1 > limits.max_rows {
        return Err(DataError::TooManyRows {
            limit: limits.max_rows,
        });
    }
    let mut rows = range.rows();
    let header = rows.next().ok_or(DataError::Empty)?;
    let names: Vec<String> = header
        .iter()
        .enumerate()
        .map(|(i, c)| match c {
            Data::Empty => format!("column_{}", i + 1),
            other => other.to_string(),
        })
        .collect();
    let body: Vec<&[Data]> = rows.collect();
    let columns = names
        .into_iter()
        .enumerate()
        .map(|(i, name)| Column {
            name,
            data: column(body.iter().map(|r| r.get(i).unwrap_or(&Data::Empty))),
        })
        .collect();
    Table::new(columns).map_err(DataError::InvalidTable)
}

/// Refuse archives whose declared sizes are absurd, from the central directory alone.
fn check_zip(bytes: &[u8], limits: &Limits) -> Result<(), DataError> {
    let mut zip =
        zip::ZipArchive::new(Cursor::new(bytes)).map_err(|e| malformed(FileFormat::Xlsx, e))?;
    let (mut uncompressed, mut compressed) = (0u64, 0u64);
    for i in 0..zip.len() {
        // `by_index_raw` reads the entry's header only; nothing is inflated.
        let entry = zip
            .by_index_raw(i)
            .map_err(|e| malformed(FileFormat::Xlsx, e))?;
        uncompressed = uncompressed.saturating_add(entry.size());
        compressed = compressed.saturating_add(entry.compressed_size());
    }
    if uncompressed > limits.max_xlsx_uncompressed {
        return Err(DataError::XlsxTooLarge {
            uncompressed,
            limit: limits.max_xlsx_uncompressed,
        });
    }
    let ratio = uncompressed as f64 / compressed.max(1) as f64;
    if ratio > limits.max_xlsx_ratio {
        return Err(DataError::XlsxRatio {
            ratio,
            limit: limits.max_xlsx_ratio,
        });
    }
    Ok(())
}

fn is_missing(cell: &Data) -> bool {
    match cell {
        Data::Empty | Data::Error(_) => true,
        Data::String(s) => is_null_token(s),
        Data::Float(f) => f.is_nan(),
        _ => false,
    }
}

/// One column's cells, typed by what all its non-missing cells agree on.
fn column<'a>(cells: impl Iterator<Item = &'a Data> + Clone) -> ColumnData {
    let present = || cells.clone().filter(|c| !is_missing(c));
    let numeric = |c: &Data| matches!(c, Data::Int(_) | Data::Float(_));
    if present().all(|c| matches!(c, Data::Bool(_))) && present().next().is_some() {
        return ColumnData::Bool(
            cells
                .map(|c| match c {
                    Data::Bool(b) => Some(*b),
                    _ => None,
                })
                .collect(),
        );
    }
    if present().all(|c| matches!(c, Data::DateTime(_))) && present().next().is_some() {
        return ColumnData::Datetime(
            cells
                .map(|c| match c {
                    Data::DateTime(d) => Some(micros(d.as_f64())),
                    _ => None,
                })
                .collect(),
        );
    }
    if present().all(numeric) && present().next().is_some() {
        // Excel stores every number as a float; whole numbers come back as integers.
        let integral = present().all(|c| match c {
            Data::Float(f) => f.fract() == 0.0 && f.abs() < 9.0e15,
            _ => true,
        });
        return if integral {
            ColumnData::Int(
                cells
                    .map(|c| match c {
                        Data::Int(i) => Some(*i),
                        Data::Float(f) if !f.is_nan() => Some(*f as i64),
                        _ => None,
                    })
                    .collect(),
            )
        } else {
            ColumnData::Float(
                cells
                    .map(|c| match c {
                        Data::Int(i) => Some(*i as f64),
                        Data::Float(f) if !f.is_nan() => Some(*f),
                        _ => None,
                    })
                    .collect(),
            )
        };
    }
    // Mixed cells are text; a date cell among them is its date in ISO 8601, not its serial
    // number (what a date column with dates before 1900, which Excel keeps as text, holds).
    ColumnData::Str(
        cells
            .map(|c| match c {
                _ if is_missing(c) => None,
                Data::DateTime(d) => {
                    let t = micros(d.as_f64());
                    let format = match t % 86_400_000_000 {
                        0 => "%Y-%m-%d",
                        _ => "%Y-%m-%d %H:%M:%S%.f",
                    };
                    Some(crate::datetime::format(t, format))
                }
                _ => Some(c.to_string()),
            })
            .collect(),
    )
}

/// Excel's serial date of an instant (what [`micros`] reads back): days since 1899-12-30,
/// the time of day as a fraction.
pub(crate) fn excel_serial(micros: i64) -> f64 {
    EXCEL_UNIX_DAYS + micros as f64 / MICROS_PER_DAY
}

/// Microseconds since the Unix epoch of an Excel serial date. Excel keeps times to the
/// millisecond; a serial day's float carries noise below that (01:00 read as
/// 01:00:00.000001), so it is rounded there.
fn micros(serial: f64) -> i64 {
    let ms = ((serial - EXCEL_UNIX_DAYS) * MICROS_PER_DAY / 1e3).round();
    ms as i64 * 1_000
}
