//! Measuring every routed request: its route's count, status and latency go into the
//! statistics' meter (`/stats/performance`), and a call slower than `SLOW_REQUEST_SECONDS`
//! alerts the administrators. A long poll's waiting is not its latency: a handler that
//! waits on purpose says how long in a [`Waited`] extension of its response.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::extract::{MatchedPath, Request, State};
use axum::middleware::Next;
use axum::response::Response;

use crate::middleware::REQUEST_ID;
use crate::state::AppState;

/// How long a handler waited on purpose (a long poll), left out of its latency.
#[derive(Debug, Clone, Copy, Default)]
pub struct Waited(pub Duration);

/// One slow-call alert per route per this long, per process, so a slow route does not
/// flood the administrators.
const ALERT_EVERY: Duration = Duration::from_secs(600);

/// When each route last raised a slow-call alert.
#[derive(Debug, Default, Clone)]
pub struct SlowAlerts(Arc<Mutex<HashMap<String, Instant>>>);

impl SlowAlerts {
    /// Whether `route` may alert now (and, if so, it is counted as alerting).
    fn claim(&self, route: &str) -> bool {
        let mut last = self
            .0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        match last.get(route) {
            Some(t) if t.elapsed() < ALERT_EVERY => false,
            _ => {
                last.insert(route.to_owned(), Instant::now());
                true
            }
        }
    }
}

/// The route layer: measure, record, and write the meter's measurements when they are due.
pub(crate) async fn measure(State(s): State<AppState>, req: Request, next: Next) -> Response {
    let Some(path) = req.extensions().get::<MatchedPath>() else {
        return next.run(req).await;
    };
    let route = format!("{} {}", req.method(), path.as_str());
    let request_id = req
        .headers()
        .get(&REQUEST_ID)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned();
    let started = Instant::now();
    let res = next.run(req).await;
    let waited = res
        .extensions()
        .get::<Waited>()
        .map_or(Duration::ZERO, |w| w.0);
    let took = started.elapsed().saturating_sub(waited);
    let status = res.status().as_u16();
    if s.stats.meter.record(&route, took, status) {
        let (meter, records) = (s.stats.meter.clone(), s.backends.records.clone());
        tokio::spawn(async move {
            meter.flush(records.as_ref()).await;
        });
    }
    if took.as_secs_f64() >= s.settings.slow_request_seconds && s.slow_alerts.claim(&route) {
        tracing::warn!(%route, ms = took.as_millis() as u64, status, "slow API call");
        let (method, path) = route.split_once(' ').unwrap_or(("", &route));
        let alert = serde_json::json!({
            "type": "admin.slow_request",
            "method": method,
            "route": path,
            "ms": took.as_millis() as u64,
            "status": status,
            "request_id": request_id,
            "at": chrono::Utc::now().to_rfc3339(),
        });
        let topic = s.backends.topic.clone();
        tokio::spawn(async move {
            if let Err(e) = topic
                .publish("admin.slow_request", &alert.to_string())
                .await
            {
                tracing::error!(error = %e, "could not publish a slow-call alert");
            }
        });
    }
    res
}
