//! The whole API served over real HTTP on a free loopback port, on either family.

use std::sync::Arc;

use serde_json::Value;
use synth_analysis::TableAnalyzer;
use synth_api::{AppState, ResourceGroup};
use synth_core::Settings;

use crate::Family;

/// A running API server and a client for it.
pub struct TestServer {
    pub url: String,
    pub http: reqwest::Client,
    pub family: Family,
    pub state: AppState,
    tasks: Vec<tokio::task::JoinHandle<()>>,
}

impl Drop for TestServer {
    fn drop(&mut self) {
        for t in &self.tasks {
            t.abort();
        }
    }
}

/// A response, decoded.
#[derive(Debug)]
pub struct Reply {
    pub status: u16,
    pub headers: reqwest::header::HeaderMap,
    pub body: Value,
}

impl Reply {
    /// Send `req` and read its answer (which must be JSON).
    pub async fn of(req: reqwest::RequestBuilder) -> Reply {
        let res = req.send().await.expect("request sent");
        let status = res.status().as_u16();
        let headers = res.headers().clone();
        let text = res.text().await.unwrap_or_default();
        let body =
            serde_json::from_str(&text).unwrap_or_else(|_| panic!("{status}: not JSON: {text}"));
        Reply {
            status,
            headers,
            body,
        }
    }

    /// The `data` of a success envelope.
    pub fn data(&self) -> &Value {
        assert_eq!(
            self.body["success"], true,
            "expected success, got {} {}",
            self.status, self.body
        );
        &self.body["data"]
    }

    /// The error code of a failure envelope.
    pub fn code(&self) -> &str {
        assert_eq!(
            self.body["success"], false,
            "expected failure, got {} {}",
            self.status, self.body
        );
        self.body["error"]["code"].as_str().unwrap_or_default()
    }
}

/// Serve the API (all groups) on the family's backends; on the embedded family the
/// ingest loop runs too, as in `synth serve`.
pub async fn serve(mut family: Family, settings: Settings) -> TestServer {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let url = format!("http://{}", listener.local_addr().unwrap());
    let state = AppState::new(settings, family.backends.clone(), family.name);
    let app = synth_api::app(state.clone(), &ResourceGroup::ALL, None);
    let mut tasks = vec![tokio::spawn(async move {
        let app = app.into_make_service_with_connect_info::<std::net::SocketAddr>();
        let _ = axum::serve(listener, app).await;
    })];
    if let Some(created) = family.objects_created.take() {
        let (stop, stopped) = tokio::sync::watch::channel(false);
        let analyzer = Arc::new(TableAnalyzer::new(state.settings.max_file_bytes()));
        let datasets = state.datasets.clone();
        tasks.push(tokio::spawn(async move {
            synth_embedded::triggers::run_ingest_loop(datasets, analyzer, created, stopped).await;
            drop(stop);
        }));
    }
    TestServer {
        url,
        http: reqwest::Client::new(),
        family,
        state,
        tasks,
    }
}

impl TestServer {
    /// Deliver the S3 notification of an object as the `ingest` function receives it
    /// (AWS family); returns how many datasets it ingested.
    pub async fn s3_event(&self, key: &str) -> usize {
        let meta = self
            .family
            .backends
            .objects
            .head(key)
            .await
            .unwrap()
            .expect("object exists");
        let encoded: String = key
            .split('/')
            .map(|s| s.replace(' ', "+"))
            .collect::<Vec<_>>()
            .join("/");
        let event = serde_json::json!({"Records": [{
            "eventVersion": "2.1", "eventSource": "aws:s3", "awsRegion": "us-east-1",
            "eventTime": chrono::Utc::now().to_rfc3339(), "eventName": "ObjectCreated:Put",
            "userIdentity": {"principalId": "AWS:EXAMPLE"},
            "requestParameters": {"sourceIPAddress": "127.0.0.1"},
            "responseElements": {"x-amz-request-id": "EXAMPLE", "x-amz-id-2": "EXAMPLE"},
            "s3": {"s3SchemaVersion": "1.0", "configurationId": "ingest",
                   "bucket": {"name": "synth-test", "ownerIdentity": {"principalId": "EXAMPLE"}, "arn": "arn:aws:s3:::synth-test"},
                   "object": {"key": encoded, "size": meta.size, "eTag": "0123456789abcdef", "sequencer": "0A1B2C3D4E5F678901"}}
        }]});
        let event: aws_lambda_events::event::s3::S3Event =
            serde_json::from_value(event).expect("a real S3 event");
        let analyzer = Arc::new(TableAnalyzer::new(self.state.settings.max_file_bytes()));
        fn_ingest::handle_s3_event(&self.state.datasets, analyzer, &event)
            .await
            .expect("ingest")
    }

    /// Send a request with an optional bearer token and JSON body.
    pub async fn call(
        &self,
        method: &str,
        path: &str,
        token: Option<&str>,
        body: Option<Value>,
    ) -> Reply {
        let method = reqwest::Method::from_bytes(method.as_bytes()).unwrap();
        let mut req = self.http.request(method, format!("{}{path}", self.url));
        if let Some(t) = token {
            req = req.bearer_auth(t);
        }
        if let Some(b) = body {
            req = req.json(&b);
        }
        Reply::of(req).await
    }

    pub async fn get(&self, path: &str, token: Option<&str>) -> Reply {
        self.call("GET", path, token, None).await
    }

    pub async fn post(&self, path: &str, token: Option<&str>, body: Value) -> Reply {
        self.call("POST", path, token, Some(body)).await
    }

    /// Log in (which must succeed): the access and refresh tokens.
    pub async fn login(&self, email: &str, password: &str) -> (String, String) {
        let body = serde_json::json!({"email": email, "password": password});
        let r = self.post("/auth/login", None, body).await;
        assert_eq!(r.status, 200, "{:?}", r.body);
        let token = |name: &str| r.data()[name].as_str().unwrap().to_owned();
        (token("access_token"), token("refresh_token"))
    }
}
