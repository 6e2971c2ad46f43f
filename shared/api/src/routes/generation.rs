//! `/generation`, `/generation-v2` and `/data`: asking for a synthetic table of a ready
//! dataset, following it, downloading it, cancelling it. The seed platform's three shapes of
//! the same request all become one [`GenerationInput`]; the trainer does the work elsewhere
//! (an AWS Batch job, or `synth serve`'s workers).

use std::collections::BTreeMap;

use axum::http::StatusCode;
use serde::Deserialize;
use serde_json::{Map, Value};
use synth_core::generation::{
    GenerationInput, GenerationRequest, RequestKind, RequestStatus, ResultLinks, Validation,
};
use synth_core::ports::Paged;
use synth_core::service::ServiceError;
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;

use crate::auth::{Admin, Caller, Ctx};
use crate::envelope::{Failure, Success};
use crate::error::ApiError;
use crate::extract::{Json, Path, Query};
use crate::routes::{PageParams, Reply, RequestId, ok};
use crate::state::AppState;

pub(crate) fn router() -> OpenApiRouter<AppState> {
    handlers![
        start,
        list,
        status,
        download,
        cancel_or_delete,
        start_v2,
        config,
        validate,
        create_data_request,
        generate_data_request
    ]
}

/// A model and its parameters: `model_type` and any of that model's parameters beside it
/// (those left out take their defaults; see `GET /generation-v2/config`); and beside them
/// `constraints` (SDV's constraint JSON; the dataset's accepted ones when absent) and
/// `on_violation` (`fail` or `drop`: real rows that break a constraint).
#[derive(Debug, Deserialize, ToSchema)]
pub struct ModelConfig {
    /// `argn` (the default), `ctgan` or `tvae`.
    #[serde(default = "default_model")]
    #[schema(default = default_model)]
    pub model_type: String,
    #[serde(flatten)]
    #[schema(value_type = Object)]
    pub parameters: Map<String, Value>,
}

/// The model of a request that names none.
fn default_model() -> String {
    synth_core::generation::DEFAULT_MODEL.to_owned()
}

impl Default for ModelConfig {
    fn default() -> Self {
        Self {
            model_type: default_model(),
            parameters: Map::new(),
        }
    }
}

/// What every shape of a request shares besides the model.
#[derive(Debug, Default, Deserialize, ToSchema)]
pub struct Output {
    /// Rows to generate, MIN_SAMPLE_SIZE..=MAX_SAMPLE_SIZE (default DEFAULT_SAMPLE_SIZE).
    #[schema(minimum = 1)]
    pub sample_size: Option<u64>,
    /// `csv` (default), `json`, `parquet` or `xlsx`.
    pub output_format: Option<String>,
    /// The SDV metadata and the quality report come with the result.
    #[serde(default)]
    pub include_metadata: bool,
    /// Column → what every generated row has in it: a value (any column), or for a
    /// numerical or datetime column a range, `{">=": 10, "<": 20}` (dates as the data
    /// writes them).
    #[serde(default)]
    #[schema(value_type = Object)]
    pub conditions: BTreeMap<String, Value>,
    /// Same seed, same data, same result.
    pub seed: Option<u64>,
    /// A hyperparameter search before the final fit: `{enabled, method, n_trials, metric,
    /// search_space, acquisition_function, random_state}`.
    #[schema(value_type = Option<Object>)]
    pub optimization_config: Option<Value>,
    /// Any other top-level field, refused by name rather than ignored.
    #[serde(flatten)]
    #[schema(ignore)]
    pub unknown: Map<String, Value>,
}

/// `POST /generation/start`.
#[derive(Debug, Deserialize, ToSchema)]
pub struct StartRequest {
    pub dataset_id: String,
    /// The default model with its defaults when absent.
    #[serde(default)]
    pub model_config: ModelConfig,
    #[serde(flatten)]
    pub output: Output,
}

/// `POST /generation-v2/start` and `/generation-v2/validate`: the model's parameters in an
/// object of their own.
#[derive(Debug, Deserialize, ToSchema)]
pub struct StartRequestV2 {
    pub dataset_id: String,
    /// `argn` (the default), `ctgan` or `tvae`.
    #[serde(default = "default_model")]
    #[schema(default = default_model)]
    pub model_type: String,
    #[serde(default)]
    #[schema(value_type = Object)]
    pub parameters: Map<String, Value>,
    /// `/generation/start`'s shape sent here: refused rather than ignored, since ignoring it
    /// would train the default model instead of the one asked for.
    #[serde(default)]
    #[schema(ignore)]
    pub model_config: Option<serde::de::IgnoredAny>,
    #[serde(flatten)]
    pub output: Output,
}

impl StartRequestV2 {
    /// The request as the service takes it.
    fn into_input(self) -> Result<GenerationInput, ApiError> {
        if self.model_config.is_some() {
            return Err(ServiceError::field(
                "model_config",
                "this route takes the model as `model_type` and `parameters` at the top level \
                 (`model_config` is /generation/start's)",
            )
            .into());
        }
        Ok(input(
            self.dataset_id,
            self.model_type,
            self.parameters,
            self.output,
        ))
    }
}

/// `POST /data/requests` (the seed platform's first step): which dataset, and the
/// parameters (`model_type`, the model's parameters, `optimization_enabled`,
/// `optimization_search_type`, `optimization_n_trials`, and any of `sample_size`,
/// `output_format`, `include_metadata`, `conditions`, `seed`).
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct DataRequest {
    pub request: DatasetRef,
    pub params: DataParams,
}

/// The seed platform's `params`: the model, and beside it the model's parameters, the
/// output settings and `optimization_*`.
#[derive(Debug, Deserialize, ToSchema)]
pub struct DataParams {
    /// `argn` (the default), `ctgan` or `tvae`.
    #[serde(default = "default_model")]
    #[schema(default = default_model)]
    pub model_type: String,
    #[serde(flatten)]
    #[schema(value_type = Object)]
    pub rest: Map<String, Value>,
}

/// A dataset of the caller, by id or by its file name (the newest ready one of that name).
#[derive(Debug, Deserialize, ToSchema)]
#[serde(
    untagged,
    expecting = "one of {\"dataset_id\": …} or {\"dataset_name\": …}"
)]
pub enum DatasetRef {
    Id { dataset_id: String },
    Name { dataset_name: String },
}

/// `POST /data/generate/{request_id}`: optionally, another search before it starts.
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct GenerateOverride {
    pub optimization_enabled: Option<bool>,
    /// `grid`, `random` or `bayesian`.
    pub optimization_search_type: Option<String>,
    pub optimization_n_trials: Option<u64>,
}

#[derive(Debug, Deserialize, IntoParams)]
pub struct StatusFilter {
    /// Only requests in this status.
    pub status: Option<RequestStatus>,
}

fn input(
    dataset_id: String,
    model_type: String,
    parameters: Map<String, Value>,
    o: Output,
) -> GenerationInput {
    GenerationInput {
        kind: RequestKind::Generation,
        dataset_id,
        model_type,
        parameters,
        sample_size: o.sample_size,
        output_format: o.output_format,
        include_metadata: o.include_metadata,
        conditions: o.conditions,
        seed: o.seed,
        optimization: o.optimization_config,
        unknown_fields: o.unknown.into_iter().map(|(k, _)| k).collect(),
    }
}

pub(crate) type Created = (StatusCode, axum::Json<Success<GenerationRequest>>);

pub(crate) fn created(r: GenerationRequest) -> Created {
    let message = match r.status {
        RequestStatus::AwaitingApproval => "waiting for an administrator's approval",
        RequestStatus::Queued => "queued",
        _ => "created",
    };
    (
        StatusCode::CREATED,
        axum::Json(Success::with_message(r, message)),
    )
}

/// Ask for a synthetic table of one of the caller's ready datasets.
#[utoipa::path(post, path = "/generation/start", request_body = StartRequest,
    responses(
        (status = 201, description = "Queued (or waiting for approval with REQUIRE_APPROVAL)", body = Success<GenerationRequest>),
        (status = 400, description = "A field is wrong; `details.field` names it and `details.errors` lists every problem", body = Failure),
        (status = 404, description = "No such dataset of the caller", body = Failure),
        (status = 409, description = "The dataset is not ready", body = Failure),
        (status = 429, description = "MAX_CONCURRENT_GENERATIONS requests of the caller are queued or running", body = Failure),
    ))]
async fn start(c: Caller, Json(r): Json<StartRequest>) -> Result<Created, ApiError> {
    let i = input(
        r.dataset_id,
        r.model_config.model_type,
        r.model_config.parameters,
        r.output,
    );
    let r = c.app.generations.create(c.id(), &i, true).await;
    let r = r.map_err(|e| ApiError::from(e).renaming_fields(in_model_config));
    Ok(created(r?))
}

/// A field as `/generation/start` places it: the model and its parameters are in
/// `model_config`.
fn in_model_config(field: &str) -> String {
    match field.strip_prefix("parameters") {
        Some(rest) if rest.is_empty() || rest.starts_with('.') => format!("model_config{rest}"),
        _ => field.to_owned(),
    }
}

/// The same, with the model's parameters in their own object.
#[utoipa::path(post, path = "/generation-v2/start", request_body = StartRequestV2,
    responses(
        (status = 201, description = "Queued (or waiting for approval with REQUIRE_APPROVAL)", body = Success<GenerationRequest>),
        (status = 400, description = "A field is wrong; `details.field` names it and `details.errors` lists every problem", body = Failure),
        (status = 404, description = "No such dataset of the caller", body = Failure),
        (status = 429, description = "MAX_CONCURRENT_GENERATIONS requests of the caller are queued or running", body = Failure),
    ))]
async fn start_v2(c: Caller, Json(r): Json<StartRequestV2>) -> Result<Created, ApiError> {
    let i = r.into_input()?;
    Ok(created(c.app.generations.create(c.id(), &i, true).await?))
}

/// Check a request against its dataset without starting anything: errors and warnings.
#[utoipa::path(post, path = "/generation-v2/validate", request_body = StartRequestV2,
    responses(
        (status = 200, description = "`valid`, with every error and warning", body = Success<Validation>),
        (status = 404, description = "No such dataset of the caller", body = Failure),
    ))]
async fn validate(c: Caller, Json(r): Json<StartRequestV2>) -> Reply<Validation> {
    let i = r.into_input()?;
    ok(c.app.generations.validate(c.id(), &i).await?)
}

/// Every model with each parameter's default, bounds and description.
#[utoipa::path(get, path = "/generation-v2/config",
    responses((status = 200, description = "The models and their parameters", body = Success<Object>)))]
async fn config(c: Caller) -> axum::Json<Success<Value>> {
    axum::Json(Success::new(c.app.generations.models()))
}

/// The caller's requests, newest first.
#[utoipa::path(get, path = "/generation/requests", params(StatusFilter, PageParams),
    responses((status = 200, description = "A page of requests (with a status filter, pages may hold fewer than `limit`: follow `next_cursor`)", body = Success<Paged<GenerationRequest>>)))]
async fn list(
    c: Caller,
    Query(q): Query<StatusFilter>,
    Query(page): Query<PageParams>,
) -> Reply<Paged<GenerationRequest>> {
    let (limit, cursor) = page.checked()?;
    let page = c
        .app
        .generations
        .list(c.id(), q.status, limit, cursor)
        .await?;
    ok(page)
}

/// One request: its status, progress (phase, percent, ETA, latest losses) and result.
#[utoipa::path(get, path = "/generation/status/{id}", params(RequestId),
    responses((status = 200, description = "The request", body = Success<GenerationRequest>)))]
async fn status(c: Caller, Path(RequestId { id }): Path<RequestId>) -> Reply<GenerationRequest> {
    ok(c.app.generations.get(c.id(), &id).await?)
}

/// Expiring links to a completed request's synthetic table (and, with `include_metadata`,
/// its report and metadata).
#[utoipa::path(get, path = "/generation/download/{id}", params(RequestId),
    responses(
        (status = 200, description = "Download links", body = Success<ResultLinks>),
        (status = 409, description = "The request is not completed", body = Failure),
    ))]
async fn download(c: Caller, Path(RequestId { id }): Path<RequestId>) -> Reply<ResultLinks> {
    ok(c.app.generations.download(c.id(), &id).await?)
}

/// Cancel a request that has not finished (a running one stops at its next epoch), or
/// delete a finished one and everything it produced.
#[utoipa::path(delete, path = "/generation/requests/{id}", params(RequestId),
    responses(
        (status = 200, description = "Cancelled (the request as it is now) or deleted (`data` null)", body = Success<Option<GenerationRequest>>),
        (status = 409, description = "It changed meanwhile (e.g. finished): read it and try again", body = Failure),
    ))]
async fn cancel_or_delete(
    c: Caller,
    Path(RequestId { id }): Path<RequestId>,
) -> Reply<Option<GenerationRequest>> {
    let r = c.app.generations.cancel_or_delete(c.id(), &id).await?;
    let message = match &r {
        None => "deleted",
        Some(r) if r.status == RequestStatus::Running => "cancelling: it stops at its next epoch",
        Some(_) => "cancelled",
    };
    Ok(axum::Json(Success::with_message(r, message)))
}

/// The seed platform's keys for a search inside `params`.
fn seed_optimization(params: &mut Map<String, Value>) -> Option<Value> {
    let enabled = params.remove("optimization_enabled");
    let method = params.remove("optimization_search_type");
    let trials = params.remove("optimization_n_trials");
    let nested = params.remove("optimization_config");
    if let Some(n) = nested {
        return Some(n);
    }
    if enabled.as_ref().and_then(Value::as_bool) != Some(true) {
        return None;
    }
    let mut config = Map::new();
    config.insert("enabled".into(), Value::Bool(true));
    if let Some(m) = method {
        config.insert("method".into(), m);
    }
    if let Some(t) = trials {
        config.insert("n_trials".into(), t);
    }
    Some(Value::Object(config))
}

/// The parts of `params` that are not the model's own.
fn seed_input(
    dataset_id: String,
    model_type: String,
    mut params: Map<String, Value>,
) -> Result<GenerationInput, ApiError> {
    let optimization = seed_optimization(&mut params);
    let mut output = Map::new();
    for key in [
        "sample_size",
        "output_format",
        "include_metadata",
        "conditions",
        "seed",
    ] {
        if let Some(v) = params.remove(key) {
            output.insert(key.into(), v);
        }
    }
    let output: Output = serde_json::from_value(Value::Object(output)).map_err(|e| {
        ApiError::validation(format!("params: {e}"))
            .with_details(serde_json::json!({"field": "params", "reason": e.to_string()}))
    })?;
    let mut i = input(dataset_id, model_type, params, output);
    i.optimization = optimization;
    Ok(i)
}

/// Create a pending request from the seed platform's body; `POST /data/generate/{id}`
/// starts it.
#[utoipa::path(post, path = "/data/requests", request_body = DataRequest,
    responses(
        (status = 201, description = "Created, pending", body = Success<GenerationRequest>),
        (status = 400, description = "A field is wrong; `details.field` names it", body = Failure),
        (status = 404, description = "No such dataset of the caller", body = Failure),
    ))]
async fn create_data_request(c: Caller, Json(r): Json<DataRequest>) -> Result<Created, ApiError> {
    // An unknown dataset is not found before anything else is looked at.
    let dataset_id = match r.request {
        DatasetRef::Id { dataset_id } => c.app.datasets.get(c.id(), &dataset_id).await?.id,
        DatasetRef::Name { dataset_name } => {
            c.app
                .datasets
                .find_ready_by_name(c.id(), &dataset_name)
                .await?
                .id
        }
    };
    let i = seed_input(dataset_id, r.params.model_type, r.params.rest)?;
    Ok(created(c.app.generations.create(c.id(), &i, false).await?))
}

/// Start a pending request (with another search first, if given).
#[utoipa::path(post, path = "/data/generate/{request_id}",
    params(("request_id" = String, Path, description = "Request id")), request_body(content = Option<GenerateOverride>),
    responses(
        (status = 200, description = "Queued (or waiting for approval)", body = Success<GenerationRequest>),
        (status = 409, description = "The request is not pending", body = Failure),
        (status = 429, description = "MAX_CONCURRENT_GENERATIONS requests of the caller are queued or running", body = Failure),
    ))]
async fn generate_data_request(
    c: Caller,
    Path(id): Path<String>,
    body: Option<Json<Option<GenerateOverride>>>,
) -> Reply<GenerationRequest> {
    if let Some(Json(Some(o))) = body {
        let mut params = Map::new();
        if let Some(e) = o.optimization_enabled {
            params.insert("optimization_enabled".into(), Value::Bool(e));
        }
        if let Some(m) = o.optimization_search_type {
            params.insert("optimization_search_type".into(), Value::String(m));
        }
        if let Some(n) = o.optimization_n_trials {
            params.insert("optimization_n_trials".into(), n.into());
        }
        let optimization = seed_optimization(&mut params);
        c.app
            .generations
            .set_optimization(c.id(), &id, optimization)
            .await?;
    }
    ok(c.app.generations.start(c.id(), &id).await?)
}

/// The administrators' routes over every user's requests (the admin resource group).
pub(crate) fn admin_router() -> OpenApiRouter<AppState> {
    handlers![admin_list, approve, reject]
}

/// Why a request is rejected; its owner is told.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RejectRequest {
    #[schema(min_length = 1, max_length = 1000, pattern = r"\S")]
    pub reason: String,
}

/// Every user's requests, newest first, optionally in one status.
#[utoipa::path(get, path = "/admin/requests", params(StatusFilter, PageParams),
    responses(
        (status = 200, description = "A page of requests", body = Success<Paged<GenerationRequest>>),
    ))]
async fn admin_list(
    a: Admin,
    Query(q): Query<StatusFilter>,
    Query(page): Query<PageParams>,
) -> Reply<Paged<GenerationRequest>> {
    let (limit, cursor) = page.checked()?;
    let page = a.app.generations.list_all(q.status, limit, cursor).await?;
    ok(page)
}

/// Approve a request awaiting approval; it starts when its owner's limit allows. Audited.
#[utoipa::path(post, path = "/admin/approve/{id}", params(RequestId),
    responses(
        (status = 200, description = "Approved (queued, or approved until its owner's limit allows)", body = Success<GenerationRequest>),
        (status = 409, description = "The request is not awaiting approval", body = Failure),
    ))]
async fn approve(
    a: Admin,
    Ctx(ctx): Ctx,
    Path(RequestId { id }): Path<RequestId>,
) -> Reply<GenerationRequest> {
    ok(a.app.generations.approve(&a.principal, &id, &ctx).await?)
}

/// Reject a request awaiting approval, with the reason its owner is told. Audited.
#[utoipa::path(post, path = "/admin/reject/{id}", params(RequestId), request_body = RejectRequest,
    responses(
        (status = 200, description = "Rejected", body = Success<GenerationRequest>),
        (status = 409, description = "The request is not awaiting approval", body = Failure),
    ))]
async fn reject(
    a: Admin,
    Ctx(ctx): Ctx,
    Path(RequestId { id }): Path<RequestId>,
    Json(r): Json<RejectRequest>,
) -> Reply<GenerationRequest> {
    ok(a.app
        .generations
        .reject(&a.principal, &id, &r.reason, &ctx)
        .await?)
}
