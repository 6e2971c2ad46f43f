//! Reading an uploaded file into a [`Table`]: detect the format, enforce the limits, parse
//! with polars (calamine for XLSX) and hand back raw columns. Typing columns by meaning
//! (dates in strings, categories) is inference's job, not the reader's.

mod csv;
mod json;
mod parquet;
mod xlsx;

pub(crate) use xlsx::excel_serial;

use std::borrow::Cow;
use std::path::Path;

use polars::prelude::*;
use rayon::prelude::*;
use synth_table::{Column, ColumnData, Table};

use crate::{DataError, FileFormat, Limits};

/// How to read a file; `Default` reads the first sheet, detects the format, default limits.
#[derive(Debug, Clone, Default)]
pub struct ReadOptions {
    /// XLSX sheet to read; the first sheet when `None`.
    pub sheet: Option<String>,
    pub limits: Limits,
    /// Read as this format whatever the content looks like.
    pub format: Option<FileFormat>,
}

/// A table as read, with the format it was read as and what the user should know about it.
#[derive(Debug, Clone)]
pub struct Dataset {
    pub table: Table,
    pub format: FileFormat,
    /// Non-fatal findings: extension/content mismatch, Latin-1 fallback, ...
    pub warnings: Vec<String>,
}

/// Strings that mean "missing" in the files users bring.
pub(crate) const NULL_TOKENS: &[&str] = &[
    "", "NA", "N/A", "n/a", "na", "NaN", "nan", "NAN", "null", "NULL", "Null", "None", "none",
    "NONE", "#N/A", "<NA>", "nil",
];

/// Whether a cell's text means a missing value.
pub(crate) fn is_null_token(s: &str) -> bool {
    s.len() <= 4 && NULL_TOKENS.contains(&s.trim())
}

/// Read a file from disk; the size limit is checked before a byte is read.
pub fn read_path(path: &Path, opts: &ReadOptions) -> Result<Dataset, DataError> {
    let size = std::fs::metadata(path)?.len();
    if size > opts.limits.max_bytes {
        return Err(DataError::FileTooLarge {
            size,
            limit: opts.limits.max_bytes,
        });
    }
    let bytes = std::fs::read(path)?;
    let name = path.file_name().and_then(|n| n.to_str());
    read_bytes(&bytes, name, opts)
}

/// Read a file held in memory; `filename` only serves to compare its extension with the content.
pub fn read_bytes(
    bytes: &[u8],
    filename: Option<&str>,
    opts: &ReadOptions,
) -> Result<Dataset, DataError> {
    let limits = &opts.limits;
    if bytes.len() as u64 > limits.max_bytes {
        return Err(DataError::FileTooLarge {
            size: bytes.len() as u64,
            limit: limits.max_bytes,
        });
    }
    let mut warnings = Vec::new();
    let bytes = &*from_utf16(bytes);
    let claimed = filename.and_then(FileFormat::from_extension);
    let mut misnamed = None;
    let format = match opts.format {
        Some(f) => f,
        None => {
            let content = FileFormat::from_content(bytes);
            let text = bytes.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(bytes);
            if content.is_none() && text.iter().all(|b| b.is_ascii_whitespace()) {
                return Err(DataError::Empty);
            }
            let format = content.ok_or(DataError::UnknownFormat)?;
            if let Some(c) = claimed
                && c != format
            {
                misnamed = Some((c, format));
                warnings.push(format!(
                    "the file name says {} but the content is {}; read as {}",
                    c.extension(),
                    format.extension(),
                    format.extension()
                ));
            }
            format
        }
    };
    let table = match format {
        FileFormat::Csv => csv::read(bytes, limits, &mut warnings),
        FileFormat::Json => json::read(bytes, JsonFormat::Json, limits),
        FileFormat::Ndjson => json::read(bytes, JsonFormat::JsonLines, limits),
        FileFormat::Parquet => parquet::read(bytes),
        FileFormat::Xlsx => xlsx::read(bytes, opts.sheet.as_deref(), limits),
    };
    // A file whose name and content disagree and whose content does not read: most likely
    // not the format either way, and the error says both.
    let table = table.map_err(|e| match (misnamed, &e) {
        (
            Some((claimed, read_as)),
            DataError::HeaderOnly
            | DataError::RaggedCsv { .. }
            | DataError::UnterminatedQuote { .. }
            | DataError::Malformed { .. }
            | DataError::InvalidTable(_),
        ) => DataError::Misnamed {
            claimed: claimed.extension(),
            read_as: read_as.extension(),
            source: Box::new(e),
        },
        _ => e,
    })?;
    // Header cells, not names a program wrote (a stored copy keeps the names it was given).
    let table = match format {
        FileFormat::Csv | FileFormat::Xlsx => name_blank_columns(table, &mut warnings)?,
        _ => table,
    };
    check_table(&table, limits)?;
    Ok(Dataset {
        table,
        format,
        warnings,
    })
}

/// A column the header leaves unnamed (a blank cell; polars calls a second one
/// `_duplicated_0`) is called `column_{n}` after its place, and a warning says so: a column
/// named "" could be neither shown, nor overridden, nor conditioned on.
fn name_blank_columns(table: Table, warnings: &mut Vec<String>) -> Result<Table, DataError> {
    let blank = |name: &str| {
        let base = name
            .rsplit_once("_duplicated_")
            .map_or(name, |(base, _)| base);
        base.trim().is_empty()
    };
    if !table.columns.iter().any(|c| blank(&c.name)) {
        return Ok(table);
    }
    let mut columns = table.columns;
    for i in 0..columns.len() {
        if !blank(&columns[i].name) {
            continue;
        }
        let mut name = format!("column_{}", i + 1);
        while columns.iter().any(|c| c.name == name) {
            name.push('_');
        }
        warnings.push(format!(
            "column {} has no name in the header; it is called {name:?}",
            i + 1
        ));
        columns[i].name = name;
    }
    Table::new(columns).map_err(DataError::InvalidTable)
}

/// Text with a UTF-16 byte order mark (Excel's "Unicode Text", Windows tools) as UTF-8;
/// anything else as it is.
fn from_utf16(bytes: &[u8]) -> Cow<'_, [u8]> {
    match encoding_rs::Encoding::for_bom(bytes) {
        Some((encoding, _)) if encoding != encoding_rs::UTF_8 => {
            let (text, _) = encoding.decode_with_bom_removal(bytes);
            Cow::Owned(text.into_owned().into_bytes())
        }
        _ => Cow::Borrowed(bytes),
    }
}

/// The limits that apply to every format once the table is in memory.
fn check_table(table: &Table, limits: &Limits) -> Result<(), DataError> {
    if table.columns.is_empty() {
        return Err(DataError::Empty);
    }
    if table.columns.len() > limits.max_columns {
        return Err(DataError::TooManyColumns {
            count: table.columns.len(),
            limit: limits.max_columns,
        });
    }
    if table.n_rows() == 0 {
        return Err(DataError::HeaderOnly);
    }
    if table.n_rows() > limits.max_rows {
        return Err(DataError::TooManyRows {
            limit: limits.max_rows,
        });
    }
    for col in &table.columns {
        if let ColumnData::Str(values) = &col.data {
            for (row, v) in values.iter().enumerate() {
                if let Some(v) = v
                    // Byte length bounds char count, so most cells skip the count.
                    && v.len() > limits.max_cell_chars
                {
                    let chars = v.chars().count();
                    if chars > limits.max_cell_chars {
                        return Err(DataError::CellTooLong {
                            column: col.name.clone(),
                            row: row + 1,
                            chars,
                            limit: limits.max_cell_chars,
                        });
                    }
                }
            }
        }
    }
    Ok(())
}

pub(crate) fn malformed(format: FileFormat, e: impl std::fmt::Display) -> DataError {
    DataError::Malformed {
        format,
        message: e.to_string(),
    }
}

/// Convert a polars frame into the workspace's [`Table`], mapping every null form to `None`.
pub(crate) fn frame_to_table(df: &DataFrame, format: FileFormat) -> Result<Table, DataError> {
    // Columns convert independently; doing them in parallel halves this step on two cores.
    let columns = df
        .columns()
        .par_iter()
        .map(|col| column_from_polars(col, format))
        .collect::<Result<Vec<_>, _>>()?;
    Table::new(columns).map_err(DataError::InvalidTable)
}

fn column_from_polars(
    col: &polars::prelude::Column,
    format: FileFormat,
) -> Result<Column, DataError> {
    let err = |e: PolarsError| malformed(format, e);
    let s = col.as_materialized_series();
    let name = s.name().to_string();
    let data = match s.dtype() {
        DataType::Boolean => ColumnData::Bool(s.bool().map_err(err)?.iter().collect()),
        DataType::Float32 | DataType::Float64 => {
            let s = s.cast(&DataType::Float64).map_err(err)?;
            ColumnData::Float(
                s.f64()
                    .map_err(err)?
                    .iter()
                    // NaN and ±inf are no value a model can learn or a profile sum.
                    .map(|v| v.filter(|x| x.is_finite()))
                    .collect(),
            )
        }
        dt if dt.is_integer() => {
            let s = s.cast(&DataType::Int64).map_err(err)?;
            ColumnData::Int(s.i64().map_err(err)?.iter().collect())
        }
        DataType::String => ColumnData::Str(
            s.str()
                .map_err(err)?
                .iter()
                .map(|v| v.filter(|x| !is_null_token(x)).map(str::to_owned))
                .collect(),
        ),
        DataType::Date => {
            let s = s.to_physical_repr().cast(&DataType::Int64).map_err(err)?;
            let day = 86_400_000_000i64;
            ColumnData::Datetime(
                s.i64()
                    .map_err(err)?
                    .iter()
                    .map(|v| v.map(|d| d * day))
                    .collect(),
            )
        }
        DataType::Datetime(unit, _) => {
            let unit = *unit;
            let s = s.to_physical_repr().cast(&DataType::Int64).map_err(err)?;
            ColumnData::Datetime(
                s.i64()
                    .map_err(err)?
                    .iter()
                    .map(|v| {
                        v.map(|t| match unit {
                            TimeUnit::Nanoseconds => t / 1000,
                            TimeUnit::Microseconds => t,
                            TimeUnit::Milliseconds => t * 1000,
                        })
                    })
                    .collect(),
            )
        }
        DataType::Null => ColumnData::Str(vec![None; s.len()]),
        other => {
            return Err(DataError::UnsupportedColumn {
                column: name,
                dtype: other.to_string(),
            });
        }
    };
    Ok(Column { name, data })
}
