//! What can go wrong reading, checking or writing a table; each limit and malformed case has
//! its own variant so callers (the API, the CLI) can show the user exactly what to fix.

use crate::FileFormat;

/// An error of the data crate; messages name the limit, column or line at fault.
#[derive(Debug, thiserror::Error)]
pub enum DataError {
    #[error("file is {size} bytes, over the limit of {limit} bytes (MAX_FILE_SIZE_MB)")]
    FileTooLarge { size: u64, limit: u64 },
    #[error("file has more than {limit} rows (row limit)")]
    TooManyRows { limit: usize },
    #[error("file has {count} columns, over the limit of {limit} columns")]
    TooManyColumns { count: usize, limit: usize },
    #[error(
        "cell in column {column:?} at row {row} is {chars} characters long, over the limit of {limit} characters"
    )]
    CellTooLong {
        column: String,
        row: usize,
        chars: usize,
        limit: usize,
    },
    #[error(
        "xlsx would decompress to {uncompressed} bytes, over the limit of {limit} bytes (zip bomb?)"
    )]
    XlsxTooLarge { uncompressed: u64, limit: u64 },
    #[error("xlsx compression ratio is {ratio:.0}:1, over the limit of {limit:.0}:1 (zip bomb?)")]
    XlsxRatio { ratio: f64, limit: f64 },
    #[error("JSON nested more than {limit} levels deep; a table needs 2 (an array of row objects)")]
    TooDeep { limit: usize },
    #[error("file is empty")]
    Empty,
    #[error("file has a header but no data rows")]
    HeaderOnly,
    #[error("CSV line {line} has {found} fields, the header has {expected}")]
    RaggedCsv {
        line: usize,
        expected: usize,
        found: usize,
    },
    #[error("CSV line {line} has an unterminated quoted field")]
    UnterminatedQuote { line: usize },
    #[error("not valid {}: {message}", format.name())]
    Malformed { format: FileFormat, message: String },
    #[error("the file name says {claimed} but the content is not; read as {read_as}: {source}")]
    Misnamed {
        claimed: &'static str,
        read_as: &'static str,
        source: Box<DataError>,
    },
    #[error("unrecognised file format (not CSV, JSON, NDJSON, XLSX or Parquet)")]
    UnknownFormat,
    #[error("sheet {sheet:?} not found; the workbook has {available:?}")]
    SheetNotFound {
        sheet: String,
        available: Vec<String>,
    },
    #[error("column {column:?} has type {dtype}, which cannot be used as a table column")]
    UnsupportedColumn { column: String, dtype: String },
    #[error("the table is malformed: {0}")]
    InvalidTable(String),
    #[error("metadata names column {column:?}, which is not in the data")]
    UnknownColumn { column: String },
    #[error("column {column:?} cannot be {sdtype}: row {row} holds {value:?} ({why})")]
    Contradiction {
        column: String,
        sdtype: String,
        row: usize,
        value: String,
        why: String,
    },
    #[error("primary key {column:?}: {why}")]
    PrimaryKey { column: String, why: String },
    #[error("unsupported output format for {0:?}")]
    UnsupportedOutput(String),
    #[error("i/o error: {0}")]
    Io(#[from] std::io::Error),
    #[error("could not write {}: {message}", format.name())]
    Write { format: FileFormat, message: String },
}
