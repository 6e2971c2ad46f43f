//! The whole API served over real HTTP on a free loopback port, on either family.

use std::sync::Arc;

use serde_json::Value;
use synth_analysis::TableAnalyzer;
use synth_api::{AppState, ResourceGroup};
use synth_core::Settings;
use synth_core::notifications::Notifications;

use crate::{Family, Notice};

/// A running API server and a client for it.
pub struct TestServer {
    pub url: String,
    pub http: reqwest::Client,
    pub family: Family,
    pub state: AppState,
    /// Every topic message delivered to the notifications so far, in order.
    pub notices: Arc<std::sync::Mutex<Vec<Notice>>>,
    tasks: Vec<tokio::task::JoinHandle<()>>,
}

/// Hand one topic message to the notifications as the deployment does: `synth serve`'s
/// notify loop calls `Notifications::deliver`, the `notify` Lambda its SNS event handler.
/// Returns how many notifications it wrote.
pub async fn deliver(notifications: &Notifications, notice: &Notice) -> usize {
    match notice {
        Notice::Local(m) => {
            let done = notifications.deliver(&m.id, &m.message).await;
            done.expect("a topic message is delivered").written
        }
        Notice::Sns(event) => fn_notify::handle_sns_event(notifications, event)
            .await
            .expect("an SNS event is delivered"),
    }
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

    /// The reply, once its status is `status` (the body is in the failure message).
    #[track_caller]
    pub fn expect(self, status: u16) -> Self {
        assert_eq!(self.status, status, "{}", self.body);
        self
    }

    /// The reply, once it is a failure of `status` with the error `code`.
    #[track_caller]
    pub fn expect_error(self, status: u16, code: &str) -> Self {
        assert_eq!((self.status, self.code()), (status, code), "{}", self.body);
        self
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

    /// The `id` in the `data` of a success envelope.
    pub fn id(&self) -> String {
        let id = self.data()["id"].as_str().map(str::to_owned);
        id.unwrap_or_else(|| panic!("no id: {}", self.body))
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
    let notices = Arc::new(std::sync::Mutex::new(Vec::new()));
    if let Some(mut feed) = family.notices.take() {
        let (notifications, seen) = (state.notifications.clone(), notices.clone());
        tasks.push(tokio::spawn(async move {
            loop {
                if let Some(n) = feed.next(std::time::Duration::from_secs(3600)).await {
                    deliver(&notifications, &n).await;
                    seen.lock().unwrap().push(n);
                }
            }
        }));
    }
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
        notices,
        tasks,
    }
}

impl TestServer {
    /// Deliver every topic message delivered so far once more (SNS delivers at least
    /// once); returns how many notifications that wrote.
    pub async fn redeliver_notices(&self) -> usize {
        let seen = self.notices.lock().unwrap().clone();
        let mut written = 0;
        for n in &seen {
            written += deliver(&self.state.notifications, n).await;
        }
        written
    }

    /// Wait until at least `n` topic messages were delivered to the notifications.
    pub async fn notices_delivered(&self, n: usize) {
        let enough = crate::eventually(std::time::Duration::from_secs(30), || async {
            (self.notices.lock().unwrap().len() >= n).then_some(())
        })
        .await;
        assert!(enough.is_some(), "{n} topic messages were not delivered");
    }

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

    pub async fn put(&self, path: &str, token: Option<&str>, body: Value) -> Reply {
        self.call("PUT", path, token, Some(body)).await
    }

    /// `POST` without a body.
    pub async fn post_empty(&self, path: &str, token: Option<&str>) -> Reply {
        self.call("POST", path, token, None).await
    }

    pub async fn delete(&self, path: &str, token: Option<&str>) -> Reply {
        self.call("DELETE", path, token, None).await
    }

    /// A login attempt, as it is answered.
    pub async fn try_login(&self, email: &str, password: &str) -> Reply {
        let body = serde_json::json!({"email": email, "password": password});
        self.post("/auth/login", None, body).await
    }

    /// Log in (which must succeed): the access and refresh tokens.
    pub async fn login(&self, email: &str, password: &str) -> (String, String) {
        let r = self.try_login(email, password).await;
        assert_eq!(r.status, 200, "{:?}", r.body);
        let token = |name: &str| r.data()[name].as_str().unwrap().to_owned();
        (token("access_token"), token("refresh_token"))
    }
}

/// The password the tests' users sign up with.
pub const PASSWORD: &str = "a perfectly fine passphrase";

/// A quick generation request (TVAE, one epoch) of `rows` rows of `dataset`.
pub fn quick_request(dataset: &str, rows: u64) -> Value {
    serde_json::json!({"dataset_id": dataset, "sample_size": rows,
        "model_config": {"model_type": "tvae", "epochs": 1, "batch_size": 100}})
}

/// The test settings with quick training (one epoch is enough to check a flow).
pub fn quick_settings() -> Settings {
    let mut s = Settings::for_tests();
    s.min_epochs = 1;
    s
}

impl TestServer {
    /// An administrator made as the first one is (the command line's `synth admin`),
    /// signed in: their id and access token.
    pub async fn admin(&self, email: &str) -> (String, String) {
        let records = self.family.backends.records.clone();
        let ctx = synth_core::RequestContext {
            request_id: "test-setup".into(),
        };
        let u = synth_core::accounts::create_admin(records.as_ref(), email, PASSWORD, &ctx)
            .await
            .expect("create an administrator");
        (u.id, self.login(email, PASSWORD).await.0)
    }

    /// Ask for a generation with the request `body`, as it is answered.
    pub async fn start_generation(&self, token: &str, body: Value) -> Reply {
        self.post("/generation/start", Some(token), body).await
    }

    /// Ask for a generation, which must be accepted; the reply.
    pub async fn started_generation(&self, token: &str, body: Value) -> Reply {
        self.start_generation(token, body).await.expect(201)
    }

    /// Ask for a quick generation ([`quick_request`]) of `rows` rows of `dataset`; its id.
    pub async fn quick_generation(&self, token: &str, dataset: &str, rows: u64) -> String {
        let body = quick_request(dataset, rows);
        self.started_generation(token, body).await.id()
    }

    /// Sign a new user up and in: their id and access token.
    pub async fn register(&self, email: &str) -> (String, String) {
        let body = serde_json::json!({"email": email, "password": PASSWORD});
        let r = self.post("/auth/register", None, body).await;
        assert_eq!(r.status, 201, "{:?}", r.body);
        let id = r.id();
        (id, self.login(email, PASSWORD).await.0)
    }

    /// Upload a file as a multipart form.
    pub async fn upload(&self, token: &str, name: &str, body: Vec<u8>) -> Reply {
        let form = reqwest::multipart::Form::new().part(
            "file",
            reqwest::multipart::Part::bytes(body).file_name(name.to_owned()),
        );
        let req = self
            .http
            .post(format!("{}/upload/dataset", self.url))
            .bearer_auth(token)
            .multipart(form);
        Reply::of(req).await
    }

    /// Wait for an upload's ingestion to settle (embedded: its loop; AWS: the S3 event is
    /// delivered here); the dataset as it ended, ready or invalid.
    pub async fn ingested(&self, token: &str, owner: &str, id: &str, file: &str) -> Value {
        if self.family.name == "aws" {
            assert_eq!(
                self.s3_event(&format!("uploads/{owner}/{id}/{file}")).await,
                1
            );
        }
        crate::eventually(std::time::Duration::from_secs(60), || async {
            let r = self
                .get(&format!("/upload/datasets/{id}"), Some(token))
                .await;
            let status = r.data()["status"].as_str().unwrap().to_owned();
            (status == "ready" || status == "invalid").then(|| r.data().clone())
        })
        .await
        .expect("ingestion finishes")
    }

    /// Upload a file and wait until it is a ready dataset; its id.
    pub async fn ready_dataset(
        &self,
        token: &str,
        owner: &str,
        name: &str,
        body: Vec<u8>,
    ) -> String {
        let r = self.upload(token, name, body).await;
        assert_eq!(r.status, 201, "{}", r.body);
        let id = r.id();
        let d = self.ingested(token, owner, &id, name).await;
        assert_eq!(d["status"], "ready", "{d}");
        id
    }

    /// A new user with the shared penguins table uploaded and ready: the user's id, their
    /// token and the dataset's id.
    pub async fn penguins(&self, email: &str) -> (String, String, String) {
        let (owner, token) = self.register(email).await;
        let csv = std::fs::read(PENGUINS).expect("shared penguins dataset");
        let id = self
            .ready_dataset(&token, &owner, "penguins.csv", csv)
            .await;
        (owner, token, id)
    }

    /// Fetch a signed URL (`{"url", …}`) as a client would.
    pub async fn fetch(&self, link: &Value) -> Vec<u8> {
        let url = link["url"].as_str().expect("a signed URL");
        let res = self.http.get(url).send().await.expect("download");
        assert!(res.status().is_success(), "{url}: {}", res.status());
        res.bytes().await.unwrap().to_vec()
    }

    /// Play the runtime's part for queued jobs, as both deployments do: take each message
    /// off the queue, dispatch it (the `dispatch` function; `synth serve`'s consumer), and
    /// run the trainer on the job it submitted, as the Batch container (or `synth serve`'s
    /// worker) would with the job's command line. A duplicate delivery is dispatched and
    /// trains nothing. Returns each trained job's outcome.
    pub async fn run_queued_jobs(&self) -> Vec<synth_trainer::Outcome> {
        let b = &self.family.backends;
        let trainer = synth_trainer::Trainer::new(b.clone(), self.state.settings.clone());
        let mut outcomes = Vec::new();
        loop {
            let wait = std::time::Duration::from_secs(1);
            let messages = b
                .queue
                .receive(10, std::time::Duration::from_secs(60), wait)
                .await;
            let messages = messages.expect("receive from the queue");
            if messages.is_empty() {
                return outcomes;
            }
            for m in messages {
                let sent =
                    synth_core::dispatch::dispatch(b.records.as_ref(), b.jobs.as_ref(), &m.body)
                        .await
                        .expect("dispatch");
                if let synth_core::dispatch::Dispatched::Submitted { .. } = sent {
                    let request: synth_core::dispatch::JobRequest =
                        serde_json::from_str(&m.body).unwrap();
                    let args = synth_trainer::JobArgs::of(&request.job).expect("trainer args");
                    outcomes.push(
                        trainer
                            .run(&args)
                            .await
                            .expect("the trainer records an outcome"),
                    );
                }
                b.queue.ack(&m.receipt).await.expect("ack");
            }
        }
    }
}

/// The shared sample table of penguins (344 rows, 7 columns, nulls).
pub const PENGUINS: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../../shared/data/penguins.csv"
);

/// A downloaded result read back as a table of `format`.
pub fn read_table(bytes: &[u8], format: synth_data::FileFormat) -> synth_table::Table {
    let opts = synth_data::ReadOptions {
        format: Some(format),
        ..synth_data::ReadOptions::default()
    };
    synth_data::read_bytes(bytes, None, &opts)
        .expect("the result reads back")
        .table
}
