//! HTTP routes that serve presigned object URLs, as S3 serves its own.

use std::collections::HashMap;
use std::sync::Arc;

use axum::Router;
use axum::body::Body;
use axum::extract::rejection::{PathRejection, QueryRejection};
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use synth_core::{ObjectStore, PortError};
use tokio_util::io::ReaderStream;

use crate::objects::{FsObjects, UploadError};
use crate::signer::{SignatureError, SignedRequest};

struct RouteState {
    objects: Arc<FsObjects>,
    max_upload_bytes: u64,
}

/// `GET` and `PUT /objects/{*key}` for URLs issued by `presign_get`/`presign_put`.
///
/// Mount it at the root of the server whose address is the store's `public_base_url`.
/// Uploads stream to disk; anything larger than `max_upload_bytes` is refused with 413. A
/// PUT URL is signed for one length and creates its object: a body of another length is
/// refused (400), and so is any use once the object exists (409), so each URL works once.
pub fn object_router(objects: Arc<FsObjects>, max_upload_bytes: u64) -> Router {
    let state = Arc::new(RouteState {
        objects,
        max_upload_bytes,
    });
    Router::new()
        .route(
            "/objects/{*key}",
            get(download)
                .put(upload)
                .fallback(|| async { fail(METHOD_NOT_ALLOWED, "use GET or PUT") }),
        )
        .with_state(state)
}

/// An answer of these routes: its status and the API's error code for it.
type Code = (StatusCode, &'static str);

const VALIDATION_ERROR: Code = (StatusCode::BAD_REQUEST, "VALIDATION_ERROR");
const FORBIDDEN: Code = (StatusCode::FORBIDDEN, "FORBIDDEN");
const NOT_FOUND: Code = (StatusCode::NOT_FOUND, "NOT_FOUND");
const METHOD_NOT_ALLOWED: Code = (StatusCode::METHOD_NOT_ALLOWED, "METHOD_NOT_ALLOWED");
const CONFLICT: Code = (StatusCode::CONFLICT, "CONFLICT");
const PAYLOAD_TOO_LARGE: Code = (StatusCode::PAYLOAD_TOO_LARGE, "PAYLOAD_TOO_LARGE");
const UNSUPPORTED_MEDIA_TYPE: Code = (StatusCode::UNSUPPORTED_MEDIA_TYPE, "UNSUPPORTED_MEDIA_TYPE");
const SERVICE_UNAVAILABLE: Code = (StatusCode::SERVICE_UNAVAILABLE, "SERVICE_UNAVAILABLE");
const INTERNAL: Code = (StatusCode::INTERNAL_SERVER_ERROR, "INTERNAL");

/// A failure in the API's envelope (`synth_api::Failure`; this crate does not link the API,
/// and the cross-crate tests hold both to one shape).
fn fail((status, name): Code, message: impl Into<String>) -> Response {
    let body = serde_json::json!({
        "success": false,
        "error": {"code": name, "message": message.into(), "details": null},
        "timestamp": chrono::Utc::now(),
    });
    (
        status,
        [(header::CONTENT_TYPE, "application/json")],
        body.to_string(),
    )
        .into_response()
}

fn port_failure(e: PortError) -> Response {
    match e {
        PortError::NotFound(_) => fail(NOT_FOUND, "no such object"),
        PortError::Invalid(m) => fail(VALIDATION_ERROR, m),
        PortError::Unavailable(m) => {
            tracing::error!(error = %m, "object store unavailable");
            fail(SERVICE_UNAVAILABLE, "object storage is unavailable")
        }
        other => {
            tracing::error!(error = %other, "object store failed");
            fail(INTERNAL, "object storage failed")
        }
    }
}

/// Check the query's signature for `method` on `key`; returns the signed content type and
/// length (a PUT's), or why the request is forbidden.
fn authorise(
    state: &RouteState,
    method: &str,
    key: &str,
    params: &HashMap<String, String>,
) -> Result<(String, Option<u64>), String> {
    let (Some(signed_method), Some(expires), Some(sig)) = (
        params.get("method"),
        params.get("expires"),
        params.get("sig"),
    ) else {
        return Err("this URL is not signed".into());
    };
    if signed_method != method {
        return Err(format!(
            "this URL is signed for {signed_method}, not {method}"
        ));
    }
    let expires: i64 = expires.parse().map_err(|_| "invalid signature")?;
    let ct = params.get("ct").cloned().unwrap_or_default();
    let length = match params.get("len") {
        Some(n) => Some(n.parse::<u64>().map_err(|_| "invalid signature")?),
        None => None,
    };
    let now = chrono::Utc::now();
    let req = SignedRequest {
        method,
        key,
        expires,
        content_type: &ct,
        content_length: length,
    };
    match state.objects.signer().verify(&req, sig, now) {
        Ok(()) => Ok((ct, length)),
        Err(SignatureError::Invalid) => Err("invalid signature".into()),
        Err(SignatureError::Expired) => Err("this URL has expired".into()),
    }
}

async fn download(
    State(state): State<Arc<RouteState>>,
    key: Result<Path<String>, PathRejection>,
    params: Result<Query<HashMap<String, String>>, QueryRejection>,
) -> Response {
    // HEAD arrives here too: a GET URL allows it (as S3's do) and axum drops the body.
    let (key, params) = match (key, params) {
        (Ok(Path(k)), Ok(Query(p))) => (k, p),
        _ => return fail(FORBIDDEN, "malformed object URL"),
    };
    if let Err(why) = authorise(&state, "GET", &key, &params) {
        return fail(FORBIDDEN, why);
    }
    let body = match state.objects.get(&key).await {
        Ok(b) => b,
        Err(e) => return port_failure(e),
    };
    let ct = body
        .meta
        .content_type
        .clone()
        .unwrap_or_else(|| "application/octet-stream".into());
    let mut headers = HeaderMap::new();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_str(&ct).unwrap_or(HeaderValue::from_static("application/octet-stream")),
    );
    headers.insert(header::CONTENT_LENGTH, HeaderValue::from(body.meta.size));
    if let Some(t) = body.meta.last_modified
        && let Ok(v) = HeaderValue::from_str(&t.format("%a, %d %b %Y %H:%M:%S GMT").to_string())
    {
        headers.insert(header::LAST_MODIFIED, v);
    }
    (
        StatusCode::OK,
        headers,
        Body::from_stream(ReaderStream::new(body.reader)),
    )
        .into_response()
}

async fn upload(
    State(state): State<Arc<RouteState>>,
    key: Result<Path<String>, PathRejection>,
    params: Result<Query<HashMap<String, String>>, QueryRejection>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    let (key, params) = match (key, params) {
        (Ok(Path(k)), Ok(Query(p))) => (k, p),
        _ => return fail(FORBIDDEN, "malformed object URL"),
    };
    let (signed_ct, length) = match authorise(&state, "PUT", &key, &params) {
        Ok((ct, Some(length))) => (ct, length),
        Ok((_, None)) => return fail(FORBIDDEN, "this URL is not signed for uploads"),
        Err(why) => return fail(FORBIDDEN, why),
    };
    let sent_ct = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default();
    if sent_ct != signed_ct {
        return fail(
            UNSUPPORTED_MEDIA_TYPE,
            format!("this URL accepts content-type {signed_ct:?} only"),
        );
    }
    let declared = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    let too_large = || {
        fail(
            PAYLOAD_TOO_LARGE,
            format!("uploads are limited to {} bytes", state.max_upload_bytes),
        )
    };
    let used = || {
        fail(
            CONFLICT,
            "this upload URL has been used: the object exists, and a signed upload never replaces one",
        )
    };
    match state.objects.head(&key).await {
        Ok(Some(_)) => return used(),
        Ok(None) => {}
        Err(e) => return port_failure(e),
    }
    if length > state.max_upload_bytes || declared.is_some_and(|n| n > state.max_upload_bytes) {
        return too_large();
    }
    // As S3 does for a presigned PUT whose length is signed: the body must be that long.
    let wrong_length = |got: Option<u64>| {
        let got = got.map_or_else(|| "none".to_owned(), |n| n.to_string());
        fail(
            VALIDATION_ERROR,
            format!("this URL accepts an upload of exactly {length} bytes; got {got}"),
        )
    };
    if declared != Some(length) {
        return wrong_length(declared);
    }
    let stream = body.into_data_stream();
    match state
        .objects
        .create_from_stream(&key, &signed_ct, stream, length)
        .await
    {
        Ok((_, etag)) => {
            let etag = HeaderValue::from_str(&format!("\"{etag}\"")).expect("hex is a header");
            (StatusCode::OK, [(header::ETAG, etag)]).into_response()
        }
        Err(UploadError::WrongLength { got }) => wrong_length(Some(got)),
        Err(UploadError::Exists) => used(),
        Err(UploadError::Body(m)) => {
            fail(VALIDATION_ERROR, format!("the upload was interrupted: {m}"))
        }
        Err(UploadError::Port(e)) => port_failure(e),
    }
}
