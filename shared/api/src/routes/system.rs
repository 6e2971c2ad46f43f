//! System routes: health.

use std::collections::BTreeMap;
use std::future::Future;
use std::time::{Duration, Instant};

use crate::envelope::{ErrorCode, Failure, Success};
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};
use synth_core::PortError;
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::error::envelope_response;
use crate::state::AppState;

pub(crate) fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(health))
}

/// How long a backing store may take to answer a health probe.
const PROBE_TIMEOUT: Duration = Duration::from_secs(5);

/// The state of one backing store.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct StoreHealth {
    pub ok: bool,
    pub latency_ms: u64,
    pub error: Option<String>,
}

/// The platform's health.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct Health {
    /// `ok` when every store answers, else `degraded`.
    pub status: String,
    pub version: String,
    /// `embedded` or `aws`.
    pub mode: String,
    /// records, objects, queue, topic, jobs.
    pub stores: BTreeMap<String, StoreHealth>,
}

async fn probe(fut: impl Future<Output = Result<(), PortError>>) -> StoreHealth {
    let start = Instant::now();
    let outcome = tokio::time::timeout(PROBE_TIMEOUT, fut).await;
    let latency_ms = start.elapsed().as_millis() as u64;
    match outcome {
        Ok(Ok(())) => StoreHealth {
            ok: true,
            latency_ms,
            error: None,
        },
        Ok(Err(e)) => StoreHealth {
            ok: false,
            latency_ms,
            error: Some(e.to_string()),
        },
        Err(_) => StoreHealth {
            ok: false,
            latency_ms,
            error: Some("timed out".into()),
        },
    }
}

/// Report the version and whether every backing store answers.
#[utoipa::path(
    get,
    path = "/health",
    tag = "system",
    responses(
        (status = 200, description = "Every backing store answers", body = Success<Health>),
        (status = 503, description = "A backing store does not answer; `details` holds the health report", body = Failure),
    )
)]
async fn health(State(state): State<AppState>) -> Response {
    let b = &state.backends;
    let (records, objects, queue, topic, jobs) = tokio::join!(
        probe(b.records.health()),
        probe(b.objects.health()),
        probe(b.queue.health()),
        probe(b.topic.health()),
        probe(b.jobs.health()),
    );
    let stores = BTreeMap::from([
        ("records".to_owned(), records),
        ("objects".to_owned(), objects),
        ("queue".to_owned(), queue),
        ("topic".to_owned(), topic),
        ("jobs".to_owned(), jobs),
    ]);
    let ok = stores.values().all(|s| s.ok);
    let report = Health {
        status: if ok { "ok" } else { "degraded" }.into(),
        version: synth_core::VERSION.into(),
        mode: state.mode.into(),
        stores,
    };
    if ok {
        (StatusCode::OK, axum::Json(Success::new(report))).into_response()
    } else {
        let details = serde_json::to_value(&report).unwrap_or_default();
        envelope_response(
            StatusCode::SERVICE_UNAVAILABLE,
            Failure::new(
                ErrorCode::ServiceUnavailable,
                "a backing store does not answer",
                details,
            ),
        )
    }
}
