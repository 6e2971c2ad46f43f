//! Synth's data crate: read the tables users upload (CSV, JSON, NDJSON, XLSX, Parquet), infer
//! what each column means (SDV sdtypes), apply metadata a user brings, profile the columns and
//! write tables back out. Built on polars (calamine and rust_xlsxwriter for Excel).
//!
//! The usual pipeline: [`read_path`]/[`read_bytes`] → [`infer_metadata`] → [`apply_metadata`]
//! (typed columns: dates parsed, numbers stored as text made numbers) → [`profile`].

mod apply;
mod datetime;
mod error;
mod format;
mod formula;
mod infer;
mod limits;
mod profile;
mod read;
mod write;

pub use apply::apply_metadata;
pub use datetime::DEFAULT_DATETIME_FORMAT;
pub use error::DataError;
pub use format::FileFormat;
pub use formula::{is_formula, neutralise};
pub use infer::{ColumnInference, Inference, infer_metadata};
pub use limits::Limits;
pub use profile::{PREVIEW_ROWS, TOP_CATEGORIES, profile};
pub use read::{Dataset, ReadOptions, read_bytes, read_path};
pub use write::{write_bytes, write_path};
