//! The whole API served over real HTTP on a free loopback port, on either family.

use serde_json::Value;
use synth_api::{AppState, ResourceGroup};
use synth_core::Settings;

use crate::Family;

/// A running API server and a client for it.
pub struct TestServer {
    pub url: String,
    pub http: reqwest::Client,
    pub family: Family,
    _server: tokio::task::JoinHandle<()>,
}

impl Drop for TestServer {
    fn drop(&mut self) {
        self._server.abort();
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

/// Serve the API (all groups) on the family's backends.
pub async fn serve(family: Family, settings: Settings) -> TestServer {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let url = format!("http://{}", listener.local_addr().unwrap());
    let state = AppState::new(settings, family.backends.clone(), family.name);
    let app = synth_api::app(state, &ResourceGroup::ALL, None);
    let server = tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    TestServer {
        url,
        http: reqwest::Client::new(),
        family,
        _server: server,
    }
}

impl TestServer {
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

    pub async fn get(&self, path: &str, token: Option<&str>) -> Reply {
        self.call("GET", path, token, None).await
    }

    pub async fn post(&self, path: &str, token: Option<&str>, body: Value) -> Reply {
        self.call("POST", path, token, Some(body)).await
    }
}
