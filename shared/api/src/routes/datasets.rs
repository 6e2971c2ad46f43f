//! `/upload`: a user's datasets — upload (direct or presigned), list, inspect, preview,
//! metadata override, delete. Ingestion itself runs elsewhere (the `ingest` function, or
//! the embedded server's ingest loop): these handlers never parse a table.

use crate::envelope::{ErrorCode, Failure, Success};
use axum::extract::Multipart;
use axum::extract::multipart::MultipartRejection;
use axum::http::{HeaderMap, StatusCode, header};
use serde::{Deserialize, Serialize};
use synth_core::Paged;
use synth_core::PresignedRequest;
use synth_core::datasets::{ConstraintsChange, Dataset};
use synth_table::{Metadata, PreviewRow, Profile};
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;

use crate::auth::Caller;
use crate::error::ApiError;
use crate::extract::{Json, Path, Query};
use crate::routes::{Ack, DatasetId, PageParams, Reply, ok};
use crate::state::AppState;

pub(crate) fn router() -> OpenApiRouter<AppState> {
    handlers![
        upload,
        presign,
        list,
        [get_dataset, delete_dataset],
        preview,
        set_metadata,
        set_constraints
    ]
}

/// The multipart form of a direct upload.
#[derive(ToSchema)]
#[allow(dead_code)]
pub struct UploadForm {
    /// The table: CSV (or TSV), JSON/NDJSON, XLSX or Parquet.
    #[schema(value_type = String, format = Binary)]
    file: Vec<u8>,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PresignRequest {
    /// The file's name; its extension names the format (one of `FileFormat::EXTENSIONS`,
    /// any case: the pattern is checked against that table by a test).
    #[schema(
        max_length = 255,
        pattern = r"(^|[/\\])[^/\\]*[^./\\][^/\\]*\.([cC][sS][vV]|[tT][sS][vV]|[tT][aA][bB]|[pP][sS][vV]|[tT][xX][tT]|[jJ][sS][oO][nN]|[nN][dD][jJ][sS][oO][nN]|[jJ][sS][oO][nN][lL]|[xX][lL][sS][xX]|[xX][lL][sS][mM]|[pP][aA][rR][qQ][uU][eE][tT]|[pP][qQ])$"
    )]
    pub filename: String,
    /// Size of the file in bytes; the upload URL accepts exactly this many.
    #[schema(minimum = 1)]
    pub size: u64,
    #[schema(pattern = "^[ -~]{1,255}$")]
    pub content_type: Option<String>,
}

/// A dataset awaiting its file, and how to send it.
#[derive(Debug, Serialize, ToSchema)]
pub struct PresignedUpload {
    pub dataset: Dataset,
    /// PUT the file here, with these headers, before it expires.
    pub upload: PresignedRequest,
}

/// A dataset with its per-column profile (once ready).
#[derive(Debug, Serialize, ToSchema)]
pub struct DatasetDetail {
    #[serde(flatten)]
    pub dataset: Dataset,
    /// `null` until the dataset is ready.
    pub profile: Option<Profile>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct Preview {
    pub rows: Vec<PreviewRow>,
}

#[derive(Debug, Deserialize, IntoParams)]
pub struct PreviewParams {
    /// Rows to return, 1..=100 (default 20).
    #[param(minimum = 1, maximum = 100)]
    pub rows: Option<usize>,
}

/// Upload a small file (under the gateway's payload limit) in the form field `file`.
#[utoipa::path(post, path = "/upload/dataset",
    request_body(content = UploadForm, content_type = "multipart/form-data"),
    responses(
        (status = 201, description = "Stored; ingestion runs and moves it to ready or invalid", body = Success<Dataset>),
        (status = 400, description = "No file, empty file or unsupported type", body = Failure),
        (status = 413, description = "Larger than the request limit or MAX_FILE_SIZE_MB", body = Failure),
        (status = 415, description = "Not a multipart/form-data body", body = Failure),
    ))]
async fn upload(
    c: Caller,
    headers: HeaderMap,
    form: Result<Multipart, MultipartRejection>,
) -> Result<(StatusCode, axum::Json<Success<Dataset>>), ApiError> {
    const HOW: &str = "send the file as multipart/form-data, in a field named `file`";
    let is_form = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.to_ascii_lowercase().starts_with("multipart/form-data"));
    if !is_form {
        return Err(ApiError::new(
            ErrorCode::UnsupportedMediaType,
            format!("expected Content-Type: multipart/form-data; {HOW} (or use /upload/presign)"),
        ));
    }
    let mut form = form.map_err(|e| {
        ApiError::validation(format!("{}; {HOW}", e.body_text()))
            .with_details(serde_json::json!({"field": "file"}))
    })?;
    let mut file = None;
    while let Some(field) = form.next_field().await.map_err(multipart_error)? {
        if field.name() != Some("file") {
            continue;
        }
        if file.is_some() {
            return Err(ApiError::validation(
                "one file per upload: the form has more than one `file` field",
            )
            .with_details(serde_json::json!({"field": "file"})));
        }
        let filename = field.file_name().unwrap_or("dataset.csv").to_owned();
        let content_type = field
            .content_type()
            .unwrap_or("application/octet-stream")
            .to_owned();
        let bytes = field.bytes().await.map_err(multipart_error)?;
        file = Some((filename, content_type, bytes));
    }
    let Some((filename, content_type, bytes)) = file else {
        return Err(ApiError::validation("the form has no `file` field")
            .with_details(serde_json::json!({"field": "file"})));
    };
    let d = c
        .app
        .datasets
        .upload(c.id(), &filename, &content_type, bytes)
        .await?;
    Ok((
        StatusCode::CREATED,
        axum::Json(Success::with_message(d, "uploaded; validating")),
    ))
}

fn multipart_error(e: axum::extract::multipart::MultipartError) -> ApiError {
    if e.status() == StatusCode::PAYLOAD_TOO_LARGE {
        return ApiError::new(
            crate::envelope::ErrorCode::PayloadTooLarge,
            "upload too large for the API; use /upload/presign",
        );
    }
    ApiError::validation(format!("invalid multipart body: {}", e.body_text()))
}

/// Get a presigned URL to upload a large file directly to storage.
#[utoipa::path(post, path = "/upload/presign", request_body = PresignRequest,
    responses(
        (status = 201, description = "A dataset awaiting its file, and the upload URL", body = Success<PresignedUpload>),
        (status = 400, description = "Unsupported type, or a size of 0 or above MAX_FILE_SIZE_MB", body = Failure),
    ))]
async fn presign(
    c: Caller,
    Json(r): Json<PresignRequest>,
) -> Result<(StatusCode, axum::Json<Success<PresignedUpload>>), ApiError> {
    let ct = r
        .content_type
        .as_deref()
        .unwrap_or("application/octet-stream");
    let (dataset, upload) = c
        .app
        .datasets
        .presign(c.id(), &r.filename, r.size, ct)
        .await?;
    Ok((
        StatusCode::CREATED,
        axum::Json(Success::new(PresignedUpload { dataset, upload })),
    ))
}

/// The caller's datasets, newest first.
#[utoipa::path(get, path = "/upload/datasets", params(PageParams),
    responses((status = 200, description = "A page of datasets", body = Success<Paged<Dataset>>)))]
async fn list(c: Caller, Query(page): Query<PageParams>) -> Reply<Paged<Dataset>> {
    let (limit, cursor) = page.checked()?;
    ok(c.app.datasets.list(c.id(), limit, cursor).await?)
}

/// One dataset with its status, SDV metadata and per-column profile.
#[utoipa::path(get, path = "/upload/datasets/{id}", params(DatasetId),
    responses((status = 200, description = "The dataset", body = Success<DatasetDetail>), (status = 404, description = "No such dataset of the caller", body = Failure)))]
async fn get_dataset(c: Caller, Path(DatasetId { id }): Path<DatasetId>) -> Reply<DatasetDetail> {
    let dataset = c.app.datasets.get(c.id(), &id).await?;
    let profile = c.app.datasets.profile(&dataset).await?;
    ok(DatasetDetail { dataset, profile })
}

/// The first rows of a ready dataset.
#[utoipa::path(get, path = "/upload/datasets/{id}/preview", params(DatasetId, PreviewParams),
    responses(
        (status = 200, description = "Rows as objects", body = Success<Preview>),
        (status = 404, description = "No such dataset of the caller", body = Failure),
        (status = 409, description = "Not ready", body = Failure),
    ))]
async fn preview(
    c: Caller,
    Path(DatasetId { id }): Path<DatasetId>,
    Query(q): Query<PreviewParams>,
) -> Reply<Preview> {
    let rows = c
        .app
        .datasets
        .preview(c.id(), &id, q.rows.unwrap_or(20))
        .await?;
    ok(Preview { rows })
}

/// Override column sdtypes (SDV single-table metadata; listed columns only).
#[utoipa::path(put, path = "/upload/datasets/{id}/metadata", params(DatasetId), request_body = Metadata,
    responses(
        (status = 200, description = "The dataset with its new metadata", body = Success<Dataset>),
        (status = 400, description = "Unknown column, or an sdtype the values do not allow", body = Failure),
        (status = 404, description = "No such dataset of the caller", body = Failure),
        (status = 409, description = "Not ready", body = Failure),
    ))]
async fn set_metadata(
    c: Caller,
    Path(DatasetId { id }): Path<DatasetId>,
    Json(m): Json<Metadata>,
) -> Reply<Dataset> {
    ok(c.app.datasets.set_metadata(c.id(), &id, m).await?)
}

/// Set the constraints generation requests on this dataset keep unless they give their
/// own: `{"constraints": [...]}` in SDV's JSON, or `{"accept_suggested": true}` for the ones
/// found at ingestion (`false` clears them).
#[utoipa::path(put, path = "/upload/datasets/{id}/constraints", params(DatasetId), request_body = ConstraintsChange,
    responses(
        (status = 200, description = "The dataset with its constraints", body = Success<Dataset>),
        (status = 400, description = "A constraint names no column of the dataset or one of a type it does not take; `details.field` is `constraints`", body = Failure),
        (status = 404, description = "No such dataset of the caller", body = Failure),
        (status = 409, description = "Not ready", body = Failure),
    ))]
async fn set_constraints(
    c: Caller,
    Path(DatasetId { id }): Path<DatasetId>,
    Json(change): Json<ConstraintsChange>,
) -> Reply<Dataset> {
    ok(c.app.datasets.set_constraints(c.id(), &id, change).await?)
}

/// Delete a dataset and its files (refused while a generation on it runs).
#[utoipa::path(delete, path = "/upload/datasets/{id}", params(DatasetId),
    responses(
        (status = 200, description = "Deleted", body = Success<Ack>),
        (status = 404, description = "No such dataset of the caller", body = Failure),
        (status = 409, description = "A generation on it runs", body = Failure),
    ))]
async fn delete_dataset(c: Caller, Path(DatasetId { id }): Path<DatasetId>) -> Reply<Ack> {
    c.app.datasets.delete(c.id(), &id).await?;
    Ok(axum::Json(Success::with_message(
        Ack { ok: true },
        "dataset deleted",
    )))
}

#[cfg(test)]
mod tests {
    use super::*;
    use synth_table::FileFormat;

    /// The API document's filename pattern accepts exactly the extensions of the one table
    /// the upload check uses, in any case.
    #[test]
    fn the_filename_pattern_follows_the_extension_table() {
        let alternatives: Vec<String> = FileFormat::EXTENSIONS
            .iter()
            .map(|(ext, _)| {
                ext.chars()
                    .map(|c| format!("[{c}{}]", c.to_ascii_uppercase()))
                    .collect()
            })
            .collect();
        let want = format!(
            r"(^|[/\\])[^/\\]*[^./\\][^/\\]*\.({})$",
            alternatives.join("|")
        );
        let schema = serde_json::to_value(<PresignRequest as utoipa::PartialSchema>::schema())
            .expect("a schema");
        assert_eq!(schema["properties"]["filename"]["pattern"], want);
    }
}
