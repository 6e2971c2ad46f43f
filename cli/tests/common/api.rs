//! A user's JSON calls to a running `synth serve`, for the tests and the benches: register
//! or log in, then call the routes with the token.

use std::time::Duration;

use reqwest::multipart::{Form, Part};
use reqwest::{Client, Method, RequestBuilder, StatusCode};
use serde_json::{Value, json};

/// The status of the answer to `request`, and its JSON.
pub async fn answer(request: RequestBuilder) -> (StatusCode, Value) {
    let r = request.send().await.unwrap();
    let status = r.status();
    (status, r.json().await.unwrap())
}

/// The JSON a request is answered with.
pub async fn reply(request: RequestBuilder) -> Value {
    answer(request).await.1
}

/// A logged-in user of the server at `url`.
pub struct User {
    pub http: Client,
    pub url: String,
    pub token: String,
}

impl User {
    /// Logs `email` in with `password`, which must succeed.
    pub async fn login(http: &Client, url: &str, email: &str, password: &str) -> Self {
        let creds = json!({"email": email, "password": password});
        let (status, login) = answer(http.post(format!("{url}/auth/login")).json(&creds)).await;
        assert_eq!(status, 200, "{email} logs in: {login}");
        let token = login["data"]["access_token"]
            .as_str()
            .unwrap_or_else(|| panic!("{email} has a token: {login}"))
            .to_owned();
        Self {
            http: http.clone(),
            url: url.to_owned(),
            token,
        }
    }

    /// Registers `email` (201) with a long passphrase, then logs it in.
    pub async fn register(http: &Client, url: &str, email: &str) -> Self {
        let password = "a long passphrase";
        let creds = json!({"email": email, "password": password});
        let (status, body) = answer(http.post(format!("{url}/auth/register")).json(&creds)).await;
        assert_eq!(status, 201, "{email} registers: {body}");
        Self::login(http, url, email, password).await
    }

    /// `method path`, with the user's token.
    pub fn request(&self, method: Method, path: &str) -> RequestBuilder {
        self.http
            .request(method, format!("{}{path}", self.url))
            .bearer_auth(&self.token)
    }

    /// The JSON of `GET path`.
    pub async fn get(&self, path: &str) -> Value {
        reply(self.request(Method::GET, path)).await
    }

    /// `POST path` with a JSON `body`: the status and the JSON answer.
    pub async fn post(&self, path: &str, body: &Value) -> (StatusCode, Value) {
        answer(self.request(Method::POST, path).json(body)).await
    }

    /// Uploads `bytes` as the file `name`: the new dataset's id.
    pub async fn upload(&self, name: &str, bytes: Vec<u8>) -> String {
        let form = Form::new().part("file", Part::bytes(bytes).file_name(name.to_owned()));
        let up = reply(
            self.request(Method::POST, "/upload/dataset")
                .multipart(form),
        )
        .await;
        up["data"]["id"]
            .as_str()
            .unwrap_or_else(|| panic!("{name} stored: {up}"))
            .to_owned()
    }

    /// The dataset `id` as its owner sees it.
    pub async fn dataset(&self, id: &str) -> Value {
        self.get(&format!("/upload/datasets/{id}")).await["data"].clone()
    }

    /// The dataset `id` once its ingestion ended (it must within a minute).
    pub async fn ingested(&self, id: &str) -> Value {
        for _ in 0..600 {
            let d = self.dataset(id).await;
            if d["status"] != "validating" {
                return d;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        panic!("dataset {id} still validating after a minute")
    }
}
