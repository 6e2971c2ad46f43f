//! Synth's table: the in-memory table, its SDV metadata, its profile and its file formats
//! (with the one table of accepted extensions) — the types that the data crate (which reads,
//! infers, profiles and writes files), the engine (which learns and samples) and evaluation
//! share, and that the platform stores and serves. No web, auth or runtime crates: the
//! engine links this and nothing of the platform. With the `openapi` feature (the API's),
//! the types carry their OpenAPI schemas.

pub mod datetime;
mod format;
pub mod json;
mod profile;
mod table;

pub use format::FileFormat;
pub use profile::{
    CategoryCount, ColumnProfile, DatetimeQuantile, DatetimeSummary, NumericSummary, PreviewRow,
    Profile, Quantile,
};
pub use table::{
    Column, ColumnData, ColumnMetadata, METADATA_SPEC_VERSION, Metadata, SdType, Table,
};
