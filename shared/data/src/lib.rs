//! Synth's data crate: read the tables users upload (CSV, JSON, NDJSON, XLSX, Parquet), infer
//! what each column means (SDV sdtypes), apply metadata a user brings, profile the columns and
//! write tables back out. Built on polars (calamine and rust_xlsxwriter for Excel).
//!
//! The pipeline, read → infer → apply → profile, is one call: [`load`] reads a file
//! ([`read_path`]/[`read_bytes`]), infers its metadata ([`infer_metadata`]) unless given one,
//! types the columns by it ([`apply_metadata`]: dates parsed, numbers stored as text made
//! numbers) and, when asked, profiles them ([`profile`]). Every caller loads through it.

mod apply;
mod datetime;
mod error;
mod formula;
mod infer;
mod limits;
mod load;
mod number;
mod profile;
mod read;
mod write;

pub use apply::{apply_metadata, apply_metadata_noting, compatible_sdtypes};
pub use datetime::DEFAULT_DATETIME_FORMAT;
pub use error::DataError;
pub use formula::{is_formula, neutralise};
pub use infer::{ColumnInference, Inference, infer_metadata};
pub use limits::Limits;
pub use load::{LoadOptions, Loaded, Source, load};
pub use profile::{PREVIEW_ROWS, TOP_CATEGORIES, preview, profile};
pub use read::{Dataset, ReadOptions, read_bytes, read_path};
/// The file formats and the one table of accepted extensions (see [`FileFormat::EXTENSIONS`]).
pub use synth_table::FileFormat;
pub use write::{metadata_as_written, write_bytes, write_path};
