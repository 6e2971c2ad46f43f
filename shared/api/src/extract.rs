//! Extractors whose rejections are envelopes with stable codes rather than axum's
//! plain-text bodies.

use crate::envelope::ErrorCode;
use axum::body::{Bytes, HttpBody};
use axum::extract::rejection::{JsonRejection, PathRejection};
use axum::extract::{FromRequest, FromRequestParts, OptionalFromRequest, Request};
use axum::http::request::Parts;
use axum::http::{StatusCode, header};
use serde::de::DeserializeOwned;
use serde_json::json;
use synth_table::json::{MAX_DOCUMENT_DEPTH, check_depth};

use crate::error::ApiError;

/// JSON body; bad JSON is 400, a missing JSON content type 415, too large 413, and nesting
/// deeper than [`MAX_DOCUMENT_DEPTH`] 400 before the body is parsed. A body that does not
/// fit its type is 400 with `details.field` naming the field at fault.
#[derive(Debug, Clone, Copy, Default)]
pub struct Json<T>(pub T);

impl<T: DeserializeOwned, S: Send + Sync> FromRequest<S> for Json<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, ApiError> {
        if !is_json(&req) {
            return Err(not_json());
        }
        parse(&read_body(req, state).await?)
    }
}

fn not_json() -> ApiError {
    ApiError::new(
        ErrorCode::UnsupportedMediaType,
        "expected a request with Content-Type: application/json",
    )
}

/// Whether the request says its body is JSON (`application/json` or `application/…+json`).
fn is_json(req: &Request) -> bool {
    req.headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .map(|mime| {
            let mime = mime.trim().to_ascii_lowercase();
            mime == "application/json"
                || (mime.starts_with("application/") && mime.ends_with("+json"))
        })
        .unwrap_or(false)
}

/// The whole body, within the size limit.
async fn read_body<S: Send + Sync>(req: Request, state: &S) -> Result<Bytes, ApiError> {
    Bytes::from_request(req, state).await.map_err(|r| {
        if r.status() == StatusCode::PAYLOAD_TOO_LARGE {
            ApiError::new(ErrorCode::PayloadTooLarge, "request body too large")
        } else {
            ApiError::validation("could not read the request body")
                .with_details(json!({ "reason": r.body_text() }))
        }
    })
}

/// A JSON body read as a `T`: its depth first, then its fields.
fn parse<T: DeserializeOwned>(bytes: &[u8]) -> Result<Json<T>, ApiError> {
    if let Err(e) = check_depth(bytes, MAX_DOCUMENT_DEPTH) {
        return Err(
            ApiError::validation("invalid JSON body").with_details(json!({
                "reason": e.to_string(),
                "max_depth": MAX_DOCUMENT_DEPTH,
            })),
        );
    }
    let mut value: serde_json::Value = serde_json::from_slice(bytes).map_err(|e| {
        ApiError::validation("invalid JSON body").with_details(json!({ "reason": e.to_string() }))
    })?;
    integral_floats_as_integers(&mut value);
    body(&value).map(Json)
}

/// `value` as a `T`, or a 400 naming the field at fault.
fn body<T: DeserializeOwned>(value: &serde_json::Value) -> Result<T, ApiError> {
    serde_path_to_error::deserialize(value).map_err(|e| {
        let reason = e.inner().to_string();
        let field = field_at_fault(&e.path().to_string(), &reason)
            .or_else(|| flattened_field_at_fault::<T>(value));
        let details = match field {
            Some(field) => json!({ "field": field, "reason": reason }),
            None => json!({ "reason": reason }),
        };
        ApiError::validation("invalid JSON body").with_details(details)
    })
}

/// A field of a `#[serde(flatten)]` part of a body, where serde loses the path: the one
/// top-level field without which the body reads. `None` when no one field is to blame.
fn flattened_field_at_fault<T: DeserializeOwned>(value: &serde_json::Value) -> Option<String> {
    let fields = value.as_object()?;
    fields
        .keys()
        .find(|k| {
            let mut rest = fields.clone();
            rest.remove(*k);
            T::deserialize(&serde_json::Value::Object(rest)).is_ok()
        })
        .cloned()
}

/// The field a body that does not fit its type is refused for (`a.b[0]`): where
/// deserialising stopped (an unknown field's own name), and for a missing field, which
/// serde reports at the object that lacks it, that field's name. `None` when it is the
/// body itself.
fn field_at_fault(path: &str, reason: &str) -> Option<String> {
    let missing = reason
        .strip_prefix("missing field `")
        .and_then(|rest| rest.split('`').next());
    match (path, missing) {
        (".", None) => None,
        (".", Some(name)) => Some(name.to_owned()),
        (path, None) => Some(path.to_owned()),
        (path, Some(name)) => Some(format!("{path}.{name}")),
    }
}

/// An optional JSON body: none when the request has no body (whatever its content type:
/// many clients send theirs on every request, and a chunked body may turn out empty); any
/// body there is is read as [`Json`] reads it.
impl<T: DeserializeOwned, S: Send + Sync> OptionalFromRequest<S> for Json<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Option<Self>, ApiError> {
        if req.body().is_end_stream() {
            return Ok(None);
        }
        let is_json = is_json(&req);
        let bytes = read_body(req, state).await?;
        match (bytes.is_empty(), is_json) {
            (true, _) => Ok(None),
            (false, false) => Err(not_json()),
            (false, true) => parse(&bytes).map(Some),
        }
    }
}

/// JSON has one number type, and `2.0` is as much an integer as `2` (JSON Schema agrees);
/// serde would refuse it for an integer field. Within ±2^53, where a float is exact.
fn integral_floats_as_integers(value: &mut serde_json::Value) {
    use serde_json::Value;
    match value {
        Value::Number(n) => {
            if let Some(f) = n.as_f64().filter(|_| n.is_f64())
                && f.fract() == 0.0
                && f.abs() <= 9_007_199_254_740_992.0
            {
                *value = Value::from(f as i64);
            }
        }
        Value::Array(items) => items.iter_mut().for_each(integral_floats_as_integers),
        Value::Object(fields) => fields.values_mut().for_each(integral_floats_as_integers),
        _ => {}
    }
}

/// Query string parameters; an invalid one is 400 with `details.field` naming it.
#[derive(Debug, Clone, Copy, Default)]
pub struct Query<T>(pub T);

impl<T: DeserializeOwned, S: Send + Sync> FromRequestParts<S> for Query<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, ApiError> {
        let query = parts.uri.query().unwrap_or_default();
        let pairs = serde_urlencoded::Deserializer::new(form_urlencoded::parse(query.as_bytes()));
        serde_path_to_error::deserialize(pairs)
            .map(Query)
            .map_err(|e| {
                let reason = e.inner().to_string();
                let field = e.path().to_string();
                if field == "." {
                    return ApiError::validation(format!("invalid query parameters: {reason}"))
                        .with_details(json!({ "reason": reason }));
                }
                ApiError::validation(format!("{field}: {reason}"))
                    .with_details(json!({ "field": field, "reason": reason }))
            })
    }
}

/// Path parameters; invalid ones are 400.
#[derive(Debug, Clone, Copy, Default, FromRequestParts)]
#[from_request(via(axum::extract::Path), rejection(ApiError))]
pub struct Path<T>(pub T);

impl From<JsonRejection> for ApiError {
    fn from(r: JsonRejection) -> Self {
        let code = match r.status() {
            StatusCode::UNSUPPORTED_MEDIA_TYPE => ErrorCode::UnsupportedMediaType,
            StatusCode::PAYLOAD_TOO_LARGE => ErrorCode::PayloadTooLarge,
            _ => ErrorCode::ValidationError,
        };
        let message = match code {
            ErrorCode::UnsupportedMediaType => {
                "expected a request with Content-Type: application/json".into()
            }
            ErrorCode::PayloadTooLarge => "request body too large".into(),
            _ => "invalid JSON body".to_string(),
        };
        ApiError::new(code, message).with_details(json!({ "reason": r.body_text() }))
    }
}

impl From<PathRejection> for ApiError {
    fn from(r: PathRejection) -> Self {
        ApiError::validation("invalid path parameters")
            .with_details(json!({ "reason": r.body_text() }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn integral_floats_become_integers_and_others_stay() {
        let mut v = json!({"size": 259.0, "r": 0.5, "big": 1e300, "n": [2.0, -3.0, 4], "s": "1.0"});
        integral_floats_as_integers(&mut v);
        assert_eq!(
            v,
            json!({"size": 259, "r": 0.5, "big": 1e300, "n": [2, -3, 4], "s": "1.0"})
        );
        assert!(v["size"].is_u64() && v["n"][1].is_i64());
    }

    #[derive(Debug, serde::Deserialize)]
    #[serde(deny_unknown_fields)]
    #[allow(dead_code)]
    struct Body {
        name: String,
        items: Vec<Item>,
    }

    #[derive(Debug, serde::Deserialize)]
    #[serde(deny_unknown_fields)]
    #[allow(dead_code)]
    struct Item {
        size: u32,
    }

    #[test]
    fn the_field_at_fault_is_named_whether_wrong_missing_or_unknown() {
        let fault = |body: serde_json::Value| {
            let e = serde_path_to_error::deserialize::<_, Body>(body).unwrap_err();
            field_at_fault(&e.path().to_string(), &e.inner().to_string())
        };
        let field = |f: &str| Some(f.to_owned());
        let cases = [
            (json!({"name": 1, "items": []}), field("name")),
            (
                json!({"name": "a", "items": [{"size": "big"}]}),
                field("items[0].size"),
            ),
            (json!({"items": []}), field("name")),
            (json!({"name": "a", "items": [{}]}), field("items[0].size")),
            (
                json!({"name": "a", "items": [], "colour": 1}),
                field("colour"),
            ),
            (
                json!({"name": "a", "items": [{"size": 1, "w": 2}]}),
                field("items[0].w"),
            ),
            (json!("a body"), None),
        ];
        for (body, expected) in cases {
            assert_eq!(fault(body.clone()), expected, "{body}");
        }
    }

    #[derive(Debug, serde::Deserialize)]
    #[allow(dead_code)]
    struct Outer {
        name: String,
        #[serde(flatten)]
        output: Output,
    }

    #[derive(Debug, serde::Deserialize)]
    #[allow(dead_code)]
    struct Output {
        rows: Option<u64>,
        seed: Option<u64>,
    }

    #[test]
    fn a_field_of_a_flattened_part_is_named_too() {
        let field = |v: serde_json::Value| {
            let e = body::<Outer>(&v).unwrap_err();
            e.details["field"].as_str().map(str::to_owned)
        };
        assert_eq!(
            field(json!({"name": "a", "rows": -5})).as_deref(),
            Some("rows")
        );
        assert_eq!(
            field(json!({"name": "a", "seed": "x"})).as_deref(),
            Some("seed")
        );
        assert_eq!(
            field(json!({"name": 1, "seed": 2})).as_deref(),
            Some("name")
        );
        // Two fields wrong: no single one is named.
        assert_eq!(field(json!({"name": "a", "rows": -5, "seed": "x"})), None);
        assert!(body::<Outer>(&json!({"name": "a", "rows": 5})).is_ok());
    }
}
