//! `/optimization`: hyperparameter searches as platform jobs. A search is started with the
//! seed platform's body, runs in the trainer like any request (its trials recorded as they
//! end), can be stopped with its best trial kept, and hands back the best parameters with
//! a ready-made body for `POST /generation/start`.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use synth_core::generation::{GenerationRequest, SearchBest, SearchInput, SearchTrials};
use synth_core::ports::Paged;
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;

use crate::auth::Caller;
use crate::envelope::{Failure, Success};
use crate::error::ApiError;
use crate::extract::{Json, Path, Query};
use crate::routes::generation::{Created, StatusFilter, created};
use crate::routes::{PageParams, Reply, RequestId, ok};
use crate::state::AppState;

pub(crate) fn router() -> OpenApiRouter<AppState> {
    handlers![start, trials, best, stop, list]
}

/// `POST /optimization/start`: the seed platform's search body.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct StartSearch {
    pub dataset_id: String,
    /// `argn`, `ctgan` or `tvae`.
    pub model_type: String,
    /// `grid`, `random` or `bayesian` (default).
    pub optimization_method: Option<String>,
    /// Trials to run, 1..=MAX_OPTIMIZATION_TRIALS (default 10).
    #[schema(minimum = 1)]
    pub n_trials: Option<u64>,
    /// `quality_score` (default), `column_shapes`, `column_pair_trends` or `ml_efficacy`
    /// (with `target`); or a weighted mix of them that every trial's sample must also keep
    /// a privacy floor for: `{"weights": {"quality_score": 0.7, "ml_efficacy": 0.3},
    /// "privacy_floor": 0.8}` (privacy is `min(1, 2 × (1 − DCR share))`, 1 while the sample
    /// is no nearer the training rows than the held-out ones).
    pub optimization_metric: Option<SearchMetric>,
    /// The column `ml_efficacy` predicts.
    pub target: Option<String>,
    /// `{name: [low, high] | [choice, …]}` over the model's parameters; the model's default
    /// space when absent (see `GET /generation-v2/config`).
    #[schema(value_type = Option<Object>)]
    pub search_space: Option<Value>,
    /// Values of the parameters that are not searched (e.g. `{"pac": 5}`).
    #[serde(default)]
    #[schema(value_type = Object)]
    pub parameters: Map<String, Value>,
    /// `EI` (default), `PI` or `UCB` (Bayesian search).
    pub acquisition_function: Option<String>,
    /// Same seed, same space: the same trials in the same order.
    pub random_state: Option<u64>,
    /// No trial starts after this many seconds, and the running one stops.
    #[schema(exclusive_minimum = 0)]
    pub timeout_seconds: Option<f64>,
    /// Stop trials far behind the best ones early: `true` for the default rule, or
    /// `{"every", "margin", "min_step"}`.
    #[schema(value_type = Option<Object>)]
    pub prune: Option<Value>,
    /// Rows sampled from the best model (default DEFAULT_SAMPLE_SIZE).
    #[schema(minimum = 1)]
    pub sample_size: Option<u64>,
    /// `csv` (default), `json`, `parquet` or `xlsx`.
    pub output_format: Option<String>,
}

/// A metric by name, or a weighted mix of metrics with a privacy floor.
#[derive(Debug, Deserialize, Serialize, ToSchema)]
#[serde(untagged)]
pub enum SearchMetric {
    Name(String),
    Mix {
        /// Metric name → its weight (positive).
        #[schema(value_type = Object)]
        weights: Map<String, Value>,
        /// The least privacy (0..1) a trial's sample may keep.
        privacy_floor: Option<f64>,
    },
}

impl From<StartSearch> for SearchInput {
    fn from(b: StartSearch) -> Self {
        SearchInput {
            dataset_id: b.dataset_id,
            model_type: b.model_type,
            parameters: b.parameters,
            method: b.optimization_method,
            n_trials: b.n_trials,
            metric: b
                .optimization_metric
                .map(|m| serde_json::to_value(m).expect("a metric serialises")),
            target: b.target,
            search_space: b.search_space,
            acquisition_function: b.acquisition_function,
            random_state: b.random_state,
            timeout_seconds: b.timeout_seconds,
            prune: b.prune,
            sample_size: b.sample_size,
            output_format: b.output_format,
        }
    }
}

/// Start a hyperparameter search of one of the caller's ready datasets.
#[utoipa::path(post, path = "/optimization/start", request_body = StartSearch,
    responses(
        (status = 201, description = "Queued (or waiting for approval with REQUIRE_APPROVAL)", body = Success<GenerationRequest>),
        (status = 400, description = "A field is wrong (unknown parameter, a range with low > high, n_trials out of range, unknown metric, ml_efficacy without a target); `details.field` names it", body = Failure),
        (status = 404, description = "No such dataset of the caller", body = Failure),
        (status = 409, description = "The dataset is not ready", body = Failure),
        (status = 429, description = "MAX_CONCURRENT_GENERATIONS requests of the caller are queued or running", body = Failure),
    ))]
async fn start(c: Caller, Json(b): Json<StartSearch>) -> Result<Created, ApiError> {
    let r = c.app.generations.start_search(c.id(), b.into()).await;
    let r = r.map_err(|e| ApiError::from(e).renaming_fields(in_search_body));
    Ok(created(r?))
}

/// A field of the search the service checks, as this route's body names it.
fn in_search_body(field: &str) -> String {
    let Some(name) = field.strip_prefix("optimization_config.") else {
        return field.to_owned();
    };
    match name.split(['.', '[']).next().unwrap_or(name) {
        "method" => "optimization_method".into(),
        "timeout" => "timeout_seconds".into(),
        "pruning" => "prune".into(),
        "params" => format!("parameters{}", &name["params".len()..]),
        _ => name.to_owned(),
    }
}

/// Every trial so far (parameters, status, score, fit seconds), the best so far, and the
/// search's phase, progress and ETA; readable while it runs.
#[utoipa::path(get, path = "/optimization/trials/{id}", params(RequestId),
    responses(
        (status = 200, description = "The trials", body = Success<SearchTrials>),
        (status = 404, description = "No such request of the caller, or it runs no search", body = Failure),
    ))]
async fn trials(c: Caller, Path(RequestId { id }): Path<RequestId>) -> Reply<SearchTrials> {
    ok(c.app.generations.trials(c.id(), &id).await?)
}

/// The best parameters and score so far, a body for `POST /generation/start` that trains
/// them, and once the search is completed or stopped, links to the best model's sample and
/// report.
#[utoipa::path(get, path = "/optimization/best/{id}", params(RequestId),
    responses(
        (status = 200, description = "The best trial", body = Success<SearchBest>),
        (status = 404, description = "No such request of the caller, or it runs no search", body = Failure),
    ))]
async fn best(c: Caller, Path(RequestId { id }): Path<RequestId>) -> Reply<SearchBest> {
    ok(c.app.generations.best(c.id(), &id).await?)
}

/// Stop a search after the current epoch: the best completed trial is kept and its model
/// sampled (`stopped`). A search that has not started yet is cancelled.
#[utoipa::path(put, path = "/optimization/stop/{id}", params(RequestId),
    responses(
        (status = 200, description = "The search as it is now (`stop_requested` while it winds down)", body = Success<GenerationRequest>),
        (status = 404, description = "No such request of the caller", body = Failure),
        (status = 409, description = "It is finished, or it is a generation request (cancel those)", body = Failure),
    ))]
async fn stop(c: Caller, Path(RequestId { id }): Path<RequestId>) -> Reply<GenerationRequest> {
    ok(c.app.generations.stop(c.id(), &id).await?)
}

/// The caller's searches, newest first.
#[utoipa::path(get, path = "/optimization/requests", params(StatusFilter, PageParams),
    responses((status = 200, description = "A page of searches (pages may hold fewer than `limit`: follow `next_cursor`)", body = Success<Paged<GenerationRequest>>)))]
async fn list(
    c: Caller,
    Query(q): Query<StatusFilter>,
    Query(page): Query<PageParams>,
) -> Reply<Paged<GenerationRequest>> {
    let (limit, cursor) = page.checked()?;
    ok(c.app
        .generations
        .list_searches(c.id(), q.status, limit, cursor)
        .await?)
}
