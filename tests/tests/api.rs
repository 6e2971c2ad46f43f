//! The HTTP layer as a client sees it: envelopes, stable error codes, middleware headers,
//! the OpenAPI document and health — through the real router and middleware, in process.

use axum::Router;
use axum::body::Body;
use axum::http::{Request, StatusCode, header};
use axum::routing::post;
use http_body_util::BodyExt;
use serde_json::{Value, json};
use synth_api::extract::Json;
use synth_api::{AppState, ResourceGroup};
use synth_core::Settings;
use tower::ServiceExt;

async fn app_with(settings: Settings, extra: Option<Router>) -> (Router, synth_tests::Family) {
    let family = synth_tests::embedded::family().await;
    let state = AppState::new(settings, family.backends.clone(), "embedded");
    (synth_api::app(state, &ResourceGroup::ALL, extra), family)
}

async fn app() -> (Router, synth_tests::Family) {
    app_with(Settings::for_tests(), None).await
}

async fn call(app: &Router, req: Request<Body>) -> (StatusCode, axum::http::HeaderMap, Vec<u8>) {
    let res = app.clone().oneshot(req).await.unwrap();
    let status = res.status();
    let headers = res.headers().clone();
    let body = res.into_body().collect().await.unwrap().to_bytes().to_vec();
    (status, headers, body)
}

fn get(uri: &str) -> Request<Body> {
    Request::get(uri).body(Body::empty()).unwrap()
}

fn json_of(body: &[u8]) -> Value {
    serde_json::from_slice(body)
        .unwrap_or_else(|e| panic!("not JSON ({e}): {}", String::from_utf8_lossy(body)))
}

fn assert_error(status: StatusCode, body: &[u8], expected: StatusCode, code: &str) {
    assert_eq!(status, expected, "{}", String::from_utf8_lossy(body));
    let v = json_of(body);
    assert_eq!(v["success"], false);
    assert_eq!(v["error"]["code"], code);
    assert!(
        v["error"]["message"]
            .as_str()
            .is_some_and(|m| !m.is_empty())
    );
    assert!(v["timestamp"].is_string());
}

#[tokio::test]
async fn health_reports_every_store() {
    let (app, _f) = app().await;
    let (status, headers, body) = call(&app, get("/health")).await;
    assert_eq!(status, StatusCode::OK);
    let v = json_of(&body);
    assert_eq!(v["success"], true);
    assert_eq!(v["data"]["status"], "ok");
    assert_eq!(v["data"]["version"], synth_core::VERSION);
    assert_eq!(v["data"]["mode"], "embedded");
    for store in ["records", "objects", "queue", "topic", "jobs"] {
        assert_eq!(v["data"]["stores"][store]["ok"], true, "{store}");
    }
    assert_eq!(headers[header::CONTENT_TYPE], "application/json");
}

#[tokio::test]
async fn health_is_503_when_a_store_does_not_answer() {
    // AWS adapters pointed at a closed loopback port: every store is really unreachable.
    let settings = synth_aws::AwsSettings {
        table: "t".into(),
        bucket: "b".into(),
        queue_url: "http://127.0.0.1:9/000000000000/q.fifo".into(),
        topic_arn: "arn:aws:sns:us-east-1:000000000000:t".into(),
        job_queue: "q".into(),
        job_definition: "d".into(),
        push: synth_aws::PushApps::default(),
        endpoint_url: Some("http://127.0.0.1:9".into()),
    };
    let backends = synth_aws::backends(&settings).await;
    let state = AppState::new(Settings::for_tests(), backends, "aws");
    let app = synth_api::app(state, &ResourceGroup::ALL, None);
    let (status, _, body) = call(&app, get("/health")).await;
    assert_error(
        status,
        &body,
        StatusCode::SERVICE_UNAVAILABLE,
        "SERVICE_UNAVAILABLE",
    );
    let v = json_of(&body);
    assert_eq!(v["error"]["details"]["status"], "degraded");
    assert_eq!(v["error"]["details"]["stores"]["records"]["ok"], false);
}

#[tokio::test]
async fn openapi_is_valid_3_1_and_lists_every_route() {
    let (app, _f) = app().await;
    let (status, _, body) = call(&app, get("/openapi.json")).await;
    assert_eq!(status, StatusCode::OK);
    let text = String::from_utf8(body).unwrap();
    // Read back as an OpenAPI document (schemathesis, in scripts/test, checks it in depth).
    let spec: utoipa::openapi::OpenApi = serde_json::from_str(&text).expect("an OpenAPI document");
    let v: Value = serde_json::from_str(&text).unwrap();
    assert!(
        v["openapi"].as_str().unwrap().starts_with("3.1"),
        "{}",
        v["openapi"]
    );
    assert!(spec.paths.paths.contains_key("/health"));
    let doc = synth_api::openapi();
    assert_eq!(
        doc.paths.paths.len(),
        spec.paths.paths.len(),
        "the served document is the generated one"
    );
    assert!(v.pointer("/components/securitySchemes/bearer").is_some());

    let (status, headers, body) = call(&app, get("/docs")).await;
    assert_eq!(status, StatusCode::OK);
    assert!(
        headers[header::CONTENT_TYPE]
            .to_str()
            .unwrap()
            .starts_with("text/html")
    );
    let page = String::from_utf8(body).unwrap();
    assert!(page.contains("/health") && page.contains("/openapi.json"));
    let (status, _, _) = call(&app, get("/docs.css")).await;
    assert_eq!(status, StatusCode::OK);
}

#[tokio::test]
async fn unknown_routes_and_methods_are_envelopes() {
    let (app, _f) = app().await;
    let (status, _, body) = call(&app, get("/no/such/route")).await;
    assert_error(status, &body, StatusCode::NOT_FOUND, "NOT_FOUND");
    let (status, _, body) = call(&app, Request::post("/health").body(Body::empty()).unwrap()).await;
    assert_error(
        status,
        &body,
        StatusCode::METHOD_NOT_ALLOWED,
        "METHOD_NOT_ALLOWED",
    );
    // Groups whose endpoints are not built answer 404, never a fake success.
    let (status, _, body) = call(&app, get("/optimize/start")).await;
    assert_error(status, &body, StatusCode::NOT_FOUND, "NOT_FOUND");
}

#[tokio::test]
async fn every_response_has_security_headers_and_a_request_id() {
    let (app, _f) = app().await;
    for uri in ["/health", "/nowhere"] {
        let (_, h, _) = call(&app, get(uri)).await;
        assert_eq!(h["x-content-type-options"], "nosniff");
        assert_eq!(h["x-frame-options"], "DENY");
        assert!(
            h["strict-transport-security"]
                .to_str()
                .unwrap()
                .contains("max-age=")
        );
        assert!(
            h["content-security-policy"]
                .to_str()
                .unwrap()
                .contains("default-src 'self'")
        );
        assert_eq!(h["referrer-policy"], "no-referrer");
        let id = h["x-request-id"].to_str().unwrap();
        assert_eq!(uuid::Uuid::parse_str(id).unwrap().get_version_num(), 4);
    }
    let req = Request::get("/health")
        .header("x-request-id", "client-chosen-id")
        .body(Body::empty())
        .unwrap();
    let (_, h, _) = call(&app, req).await;
    assert_eq!(
        h["x-request-id"], "client-chosen-id",
        "a client's request id is kept"
    );
}

#[tokio::test]
async fn cors_allows_only_configured_origins() {
    let mut settings = Settings::for_tests();
    settings.cors_origins = vec!["https://app.example.com".into()];
    let (app, _f) = app_with(settings, None).await;
    let preflight = |origin: &str| {
        Request::builder()
            .method("OPTIONS")
            .uri("/health")
            .header("origin", origin)
            .header("access-control-request-method", "GET")
            .body(Body::empty())
            .unwrap()
    };
    let (_, h, _) = call(&app, preflight("https://app.example.com")).await;
    assert_eq!(h["access-control-allow-origin"], "https://app.example.com");
    let (_, h, _) = call(&app, preflight("https://evil.example.net")).await;
    assert!(h.get("access-control-allow-origin").is_none());
}

/// A JSON echo route mounted through the same middleware, to exercise the extractors.
fn echo() -> Router {
    Router::new()
        .route(
            "/echo",
            post(|Json(v): Json<Value>| async move {
                axum::Json(json!({"success": true, "data": v}))
            }),
        )
        .route(
            "/echo-optional",
            post(|v: Option<Json<Value>>| async move {
                axum::Json(json!({"success": true, "data": v.map(|Json(v)| v)}))
            }),
        )
}

#[tokio::test]
async fn an_optional_body_that_is_empty_is_absent_however_it_is_sent() {
    let (app, _f) = app_with(Settings::for_tests(), Some(echo())).await;
    let post = |ct: Option<&str>, body: Body| {
        let mut b = Request::post("/echo-optional");
        if let Some(ct) = ct {
            b = b.header(header::CONTENT_TYPE, ct);
        }
        b.body(body).unwrap()
    };
    let json = Some("application/json");
    // None, an empty one with a JSON type, and a chunked stream that ends with no bytes.
    let chunked = || Body::from_stream(futures::stream::empty::<Result<Vec<u8>, std::io::Error>>());
    for req in [
        post(None, Body::empty()),
        post(json, Body::empty()),
        post(json, chunked()),
    ] {
        let (status, _, body) = call(&app, req).await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(json_of(&body)["data"], Value::Null);
    }
    let (status, _, body) = call(&app, post(json, Body::from(r#"{"a":1}"#))).await;
    assert_eq!(
        (status, json_of(&body)["data"]["a"].clone()),
        (StatusCode::OK, json!(1))
    );
    let (status, _, _) = call(&app, post(None, Body::from(r#"{"a":1}"#))).await;
    assert_eq!(status, StatusCode::UNSUPPORTED_MEDIA_TYPE);
}

#[tokio::test]
async fn body_rejections_are_envelopes_with_stable_codes() {
    let mut settings = Settings::for_tests();
    settings.max_request_size_mb = 1;
    let (app, _f) = app_with(settings, Some(echo())).await;
    let post = |ct: Option<&str>, body: Vec<u8>| {
        let mut b = Request::post("/echo");
        if let Some(ct) = ct {
            b = b.header(header::CONTENT_TYPE, ct);
        }
        b.body(Body::from(body)).unwrap()
    };
    let (status, _, body) =
        call(&app, post(Some("application/json"), br#"{"a":1}"#.to_vec())).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(json_of(&body)["data"]["a"], 1);

    let (status, _, body) = call(&app, post(Some("application/json"), b"{not json".to_vec())).await;
    assert_error(status, &body, StatusCode::BAD_REQUEST, "VALIDATION_ERROR");
    let (status, _, body) = call(&app, post(None, br#"{"a":1}"#.to_vec())).await;
    assert_error(
        status,
        &body,
        StatusCode::UNSUPPORTED_MEDIA_TYPE,
        "UNSUPPORTED_MEDIA_TYPE",
    );
    let big = format!("{{\"a\":\"{}\"}}", "x".repeat(2 * 1024 * 1024)).into_bytes();
    let (status, _, body) = call(&app, post(Some("application/json"), big)).await;
    assert_error(
        status,
        &body,
        StatusCode::PAYLOAD_TOO_LARGE,
        "PAYLOAD_TOO_LARGE",
    );
}

#[test]
fn openapi_documents_every_route_with_schemas_and_security() {
    let doc: Value = serde_json::from_str(&synth_api::openapi().to_json().unwrap()).unwrap();
    let public = ["/health", "/auth/register", "/auth/login", "/auth/refresh"];
    let bodiless = [
        "/auth/logout",
        "/admin/users/{id}/toggle",
        "/admin/approve/{id}",
        "/optimization/stop/{id}",
        "/notifications/{id}/read",
    ];
    let mut routes = Vec::new();
    for (path, item) in doc["paths"].as_object().unwrap() {
        for (method, op) in item.as_object().unwrap() {
            routes.push(format!("{} {path}", method.to_uppercase()));
            let responses = op["responses"].as_object().unwrap();
            assert!(!responses.is_empty(), "{method} {path}: no responses");
            for (status, r) in responses {
                let schema = r.pointer("/content/application~1json/schema");
                assert!(
                    schema.is_some(),
                    "{method} {path} {status}: no response schema"
                );
            }
            let writes = ["post", "put", "patch"].contains(&method.as_str());
            if writes && !bodiless.contains(&path.as_str()) {
                let body = op
                    .pointer("/requestBody/content/application~1json/schema")
                    .or_else(|| op.pointer("/requestBody/content/multipart~1form-data/schema"));
                assert!(body.is_some(), "{method} {path}: no request schema");
            }
            let secured = op["security"]
                .as_array()
                .is_some_and(|s| s.iter().any(|r| r.get("bearer").is_some()));
            assert_eq!(
                secured,
                !public.contains(&path.as_str()),
                "{method} {path}: security requirement"
            );
        }
    }
    routes.sort();
    let expected = [
        "DELETE /generation/requests/{id}",
        "DELETE /notifications/{id}",
        "DELETE /upload/datasets/{id}",
        "DELETE /users/account",
        "GET /admin/logs",
        "GET /admin/requests",
        "GET /admin/users",
        "GET /auth/me",
        "GET /generation-v2/config",
        "GET /generation/download/{id}",
        "GET /generation/requests",
        "GET /generation/status/{id}",
        "GET /health",
        "GET /notifications",
        "GET /optimization/best/{id}",
        "GET /optimization/requests",
        "GET /optimization/trials/{id}",
        "GET /stats/dashboard",
        "GET /stats/performance",
        "GET /stats/system",
        "GET /stats/usage",
        "GET /upload/datasets",
        "GET /upload/datasets/{id}",
        "GET /upload/datasets/{id}/preview",
        "GET /users/export",
        "GET /users/profile",
        "POST /admin/approve/{id}",
        "POST /admin/reject/{id}",
        "POST /admin/users/{id}/toggle",
        "POST /auth/login",
        "POST /auth/logout",
        "POST /auth/refresh",
        "POST /auth/register",
        "POST /data/generate/{request_id}",
        "POST /data/requests",
        "POST /generation-v2/start",
        "POST /generation-v2/validate",
        "POST /generation/start",
        "POST /notifications/read",
        "POST /notifications/{id}/read",
        "POST /optimization/start",
        "POST /upload/dataset",
        "POST /upload/presign",
        "POST /users/push-token",
        "PUT /admin/users/{id}/role",
        "PUT /optimization/stop/{id}",
        "PUT /upload/datasets/{id}/constraints",
        "PUT /upload/datasets/{id}/metadata",
        "PUT /users/profile",
    ];
    assert_eq!(routes, expected);
}

/// API Gateway sends a path to a function by its first segment: every documented route's
/// prefix has its root and proxy routes in `template.yaml`, on the function serving the
/// resource group that holds the route.
#[test]
fn the_template_routes_every_documented_prefix_to_its_group() {
    let template =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../template.yaml")).unwrap();
    // (path, function) for each HttpApi event, in the template's own order.
    let mut routes = Vec::new();
    let mut function = String::new();
    for line in template.lines() {
        if let Some(name) = line
            .strip_prefix("  ")
            .and_then(|l| l.strip_suffix("Function:"))
            && !name.starts_with(' ')
        {
            function = name.to_ascii_lowercase();
        }
        if let Some(path) = line.trim().strip_prefix("Path: ") {
            routes.push((path.to_owned(), function.clone()));
        }
    }
    for group in ResourceGroup::ALL {
        for path in synth_api::group_paths(group) {
            let prefix = path.split('/').nth(1).unwrap();
            for wanted in [format!("/{prefix}"), format!("/{prefix}/{{proxy+}}")] {
                assert!(
                    routes.contains(&(wanted.clone(), group.name().to_owned())),
                    "{path}: template.yaml routes {wanted} not to the {} function",
                    group.name()
                );
            }
        }
    }
}

/// The embedded object URLs answer in the API's envelope (that crate does not link the API
/// and writes it by hand): every failure parses as `synth_api::Failure` with its code.
#[tokio::test]
async fn object_url_failures_are_the_api_envelope() {
    let dir = tempfile::tempdir().unwrap();
    let objects = std::sync::Arc::new(
        synth_embedded::FsObjects::new(
            dir.path().join("objects"),
            synth_embedded::UrlSigner::new("k"),
            String::new(),
        )
        .unwrap(),
    );
    let router = synth_embedded::object_router(objects, 1024);
    let cases = [
        (
            get("/objects/a/b.csv"),
            403,
            synth_api::ErrorCode::Forbidden,
        ),
        (
            Request::delete("/objects/a/b.csv")
                .body(Body::empty())
                .unwrap(),
            405,
            synth_api::ErrorCode::MethodNotAllowed,
        ),
    ];
    for (req, status, code) in cases {
        let (got, headers, body) = call(&router, req).await;
        assert_eq!(got.as_u16(), status);
        assert_eq!(headers[header::CONTENT_TYPE], "application/json");
        let failure: synth_api::Failure = serde_json::from_slice(&body).unwrap();
        assert_eq!(failure.error.code, code);
        assert_eq!(code.status(), status);
        assert!(!failure.success);
    }
}
