//! Generation requests: a user asks for a synthetic table of one of their ready datasets,
//! with a model configuration; the request is queued, a trainer runs it, and the user
//! downloads the result with its quality report.
//!
//! Life of a request (every transition a conditional write, so a retried job or a message
//! delivered twice can never move it backwards or finish it twice):
//!
//! ```text
//! pending ─┬─────────────────────────────┬─> queued ─> running ─┬─> completed
//!          └─> awaiting_approval ─> approved ┘                  ├─> failed
//!                      └─> rejected             (any not final) ├─> cancelled
//!                                                  (a search)   └─> stopped
//! ```
//!
//! A request is a generation (a synthetic table; a hyperparameter search first when it has
//! an `optimization`) or an optimisation (the search is the point: its result is the best
//! trial's model, sampled). A search its owner stops ends `stopped`, with the best trial
//! so far kept and sampled; a cancelled one keeps nothing.
//!
//! Records (the one DynamoDB-shaped table):
//! - `USER#{owner}` / `GENREQ#{id}` — the request (ids are UUIDv7: the sort key is creation
//!   order); in gsi1 under `GENREQS#{status}` and in gsi2 under `GENREQS`, both sorted by
//!   id (so by creation time), for administrators, who also find a request by its id alone
//!   in gsi2.
//! - `USER#{owner}` / `GENACTIVE` — how many of the owner's requests are queued or running,
//!   changed in the same transaction as the status (`MAX_CONCURRENT_GENERATIONS`).
//! - `USER#{owner}` / `TRIAL#{id}#{n}` — trial `n` of request `id`'s search, written by
//!   the trainer as the trial ends; read back by querying that sort-key prefix, and
//!   erased and exported with the rest of the owner's records.
//!
//! Objects: everything a request produces lives under `users/{owner}/generations/{id}/`.
//!
//! The service is split by who calls it: [`Generations`] for users and administrators
//! (`requests`), [`Trainer`](lifecycle::TrainerRun) for the job that runs a request
//! (`lifecycle`), and the checks of a request against its dataset (`validate`).

pub mod lifecycle;
pub mod models;
mod requests;
mod search;
mod validate;

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use synth_constraints::{Constraint, OnViolation, Violation};

use crate::ports::records::Key;

pub use models::CheckedModel;
pub use requests::{GenerationInput, Generations, ResultLinks};
pub use search::{BestTrial, SearchBest, SearchInput, SearchTrials};
pub use synth_models::DEFAULT_MODEL;
pub use validate::{Problem, Validation};

/// Where a request is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum RequestStatus {
    /// Created, not started (the seed platform's two-step flow).
    Pending,
    /// Waiting for an administrator (`REQUIRE_APPROVAL`).
    AwaitingApproval,
    /// An administrator approved it; it starts as soon as the owner's limit allows.
    Approved,
    Rejected,
    /// Waiting for a trainer.
    Queued,
    Running,
    Completed,
    /// It could not be done; `error` says why.
    Failed,
    Cancelled,
    /// A search its owner stopped: the best trial so far was kept and sampled.
    Stopped,
}

impl RequestStatus {
    pub const ALL: [RequestStatus; 10] = [
        Self::Pending,
        Self::AwaitingApproval,
        Self::Approved,
        Self::Rejected,
        Self::Queued,
        Self::Running,
        Self::Completed,
        Self::Failed,
        Self::Cancelled,
        Self::Stopped,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Pending => "pending",
            Self::AwaitingApproval => "awaiting_approval",
            Self::Approved => "approved",
            Self::Rejected => "rejected",
            Self::Queued => "queued",
            Self::Running => "running",
            Self::Completed => "completed",
            Self::Failed => "failed",
            Self::Cancelled => "cancelled",
            Self::Stopped => "stopped",
        }
    }

    /// Nothing more happens to a request in this state.
    pub fn is_final(self) -> bool {
        matches!(
            self,
            Self::Rejected | Self::Completed | Self::Failed | Self::Cancelled | Self::Stopped
        )
    }

    /// It ended with a result (files to download).
    pub fn has_result(self) -> bool {
        matches!(self, Self::Completed | Self::Stopped)
    }

    /// Counted against the owner's `MAX_CONCURRENT_GENERATIONS`.
    pub fn is_active(self) -> bool {
        matches!(self, Self::Queued | Self::Running)
    }
}

impl std::str::FromStr for RequestStatus {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        Self::ALL
            .into_iter()
            .find(|st| st.as_str() == s)
            .ok_or_else(|| format!("unknown status {s:?}"))
    }
}

/// What a request is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum RequestKind {
    /// A synthetic table, after a hyperparameter search when `optimization` is set.
    #[default]
    Generation,
    /// A hyperparameter search (`/optimization`): its result is the best trial's model
    /// and a sample of it.
    Optimization,
}

impl RequestKind {
    /// The prefix of the topic's event names for such requests (`generation.completed`).
    pub fn event_prefix(self) -> &'static str {
        match self {
            Self::Generation => "generation",
            Self::Optimization => "optimization",
        }
    }
}

/// How one trial of a search ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum TrialState {
    Completed,
    /// It failed (out of memory, a loss that is not finite, parameters that do not fit);
    /// `reason` says why, and the search went on.
    Failed,
    /// Stopped early: its score along the way was far below the best trials'.
    Pruned,
    /// The search was stopped or timed out while it ran.
    Cancelled,
}

/// One trial of a request's search, as the trainer recorded it when it ended.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct SearchTrial {
    /// 1-based, in the order the search ran them.
    pub number: u64,
    /// The searched parameters of this trial.
    #[cfg_attr(feature = "openapi", schema(value_type = Object))]
    pub params: Value,
    pub status: TrialState,
    /// The search's metric on the holdout rows (completed trials).
    pub score: Option<f64>,
    pub reason: Option<String>,
    pub fit_seconds: f64,
    pub finished_at: DateTime<Utc>,
}

pub(crate) fn trial_key(owner: &str, id: &str, number: u64) -> Key {
    Key::new(
        format!("USER#{owner}"),
        format!("{}{number:05}", trials_prefix(id)),
    )
}

/// The sort-key prefix of a request's trials.
pub(crate) fn trials_prefix(id: &str) -> String {
    format!("TRIAL#{id}#")
}

/// What a search found, kept with the result.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct SearchSummary {
    /// The best completed trial's number, its score and its searched parameters.
    pub best_trial: u64,
    pub best_score: f64,
    #[cfg_attr(feature = "openapi", schema(value_type = Object))]
    pub best_params: Value,
    /// Trials run, and how many of them completed.
    pub trials: u64,
    pub completed: u64,
    /// Why the search ended before `n_trials`: `stopped` (by its owner), `timeout` or
    /// `exhausted` (a grid or finite space was covered).
    pub ended_early: Option<String>,
}

/// The file format of the synthetic table.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "lowercase")]
pub enum OutputFormat {
    #[default]
    Csv,
    Json,
    Parquet,
    Xlsx,
}

impl OutputFormat {
    pub fn extension(self) -> &'static str {
        match self {
            Self::Csv => "csv",
            Self::Json => "json",
            Self::Parquet => "parquet",
            Self::Xlsx => "xlsx",
        }
    }

    pub fn content_type(self) -> &'static str {
        match self {
            Self::Csv => "text/csv",
            Self::Json => "application/json",
            Self::Parquet => "application/vnd.apache.parquet",
            Self::Xlsx => "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
        }
    }
}

/// What a running request is doing, updated by its trainer at most every couple of seconds.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Progress {
    /// `preparing`, `optimizing`, `training`, `sampling`, `evaluating` or `writing`.
    pub phase: String,
    /// Within the phase: the trial (optimizing) or the epoch (training), 1-based.
    pub step: Option<u64>,
    pub steps: Option<u64>,
    /// The whole request's progress, 0 to 100.
    pub percent: f64,
    /// Seconds until the request should be done, once there is a pace to go by.
    pub eta_seconds: Option<f64>,
    /// The latest losses: the generator's (TVAE: the decoder's) and the critic's.
    pub generator_loss: Option<f64>,
    pub critic_loss: Option<f64>,
    /// E.g. "training epoch 3/10".
    pub message: String,
    pub updated_at: DateTime<Utc>,
}

/// A file a completed request produced.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ResultFile {
    /// `data`, `report_json`, `report_html`, `metadata` or `model`.
    pub kind: String,
    /// The file name a download gets.
    pub name: String,
    pub size_bytes: u64,
    #[serde(skip_serializing_if = "String::is_empty", default)]
    #[cfg_attr(feature = "openapi", schema(ignore))]
    pub(crate) key: String,
}

impl ResultFile {
    /// A file of `kind` stored under `key`, downloaded as `name`.
    pub fn new(kind: &str, name: String, size_bytes: u64, key: String) -> Self {
        Self {
            kind: kind.into(),
            name,
            size_bytes,
            key,
        }
    }
}

/// Seconds each phase took.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Timings {
    pub preparing: f64,
    pub optimizing: f64,
    pub training: f64,
    pub sampling: f64,
    pub evaluating: f64,
    pub writing: f64,
    pub total: f64,
}

/// What a completed request produced.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct GenerationResult {
    pub rows: u64,
    /// SDMetrics-equal overall quality of the synthetic table against the dataset (0..1).
    pub quality_score: Option<f64>,
    pub files: Vec<ResultFile>,
    pub timings: Timings,
    /// The parameters the final model was fitted with (the best trial's, after a search).
    #[cfg_attr(feature = "openapi", schema(value_type = Object))]
    pub parameters: Value,
    /// After a hyperparameter search: what it found.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub search: Option<SearchSummary>,
    /// With `on_violation: drop`: the constraints real rows broke, and how many rows were
    /// left out of training for each.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub left_out: Vec<Violation>,
    /// How the final model was fitted; absent when a search's best trial was kept as it was.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub training: Option<TrainingFacts>,
}

/// How a model was fitted: the throughput figures of `/stats/performance`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct TrainingFacts {
    /// Rows it trained on.
    pub rows: u64,
    /// Epochs it ran (early stopping may end before the `epochs` asked for).
    pub epochs: u64,
    pub seconds: f64,
    /// `cpu`, or `cuda:{ordinal}`.
    pub device: String,
}

/// An administrator's decision on a request that needed one.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Decision {
    pub approved: bool,
    pub by: String,
    pub at: DateTime<Utc>,
    pub reason: Option<String>,
}

/// A generation request as stored and as clients see it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct GenerationRequest {
    pub id: String,
    pub owner_id: String,
    #[serde(default)]
    pub kind: RequestKind,
    pub dataset_id: String,
    /// The dataset's file name when the request was made.
    pub dataset_name: String,
    /// `argn`, `ctgan` or `tvae`.
    pub model_type: String,
    /// Every parameter of the model, defaults filled in.
    #[cfg_attr(feature = "openapi", schema(value_type = Object))]
    pub parameters: Value,
    pub sample_size: u64,
    pub output_format: OutputFormat,
    /// Whether the SDV metadata and the quality report come with the result.
    pub include_metadata: bool,
    /// Column → the value every synthetic row has in it.
    #[cfg_attr(feature = "openapi", schema(value_type = Object))]
    pub conditions: BTreeMap<String, Value>,
    pub seed: Option<u64>,
    /// A hyperparameter search run before the final fit.
    #[cfg_attr(feature = "openapi", schema(value_type = Option<Object>))]
    pub optimization: Option<Value>,
    /// Rules every synthetic row keeps, in SDV's constraint JSON.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub constraints: Vec<Constraint>,
    /// What training does with real rows that break a constraint: `fail` (the request fails,
    /// naming them) or `drop` (they are left out, and the result says how many).
    #[serde(default)]
    pub on_violation: OnViolation,
    pub status: RequestStatus,
    /// Why it failed or was rejected.
    pub error: Option<String>,
    pub progress: Option<Progress>,
    /// Set when a running request is cancelled: its trainer stops at the next epoch.
    #[serde(default)]
    pub cancel_requested: bool,
    /// Set when a running search is stopped: it ends after the current trial's epoch and
    /// keeps the best trial so far.
    #[serde(default)]
    pub stop_requested: bool,
    /// Trainer runs that took this request on (a crashed one is retried).
    #[serde(default)]
    pub attempts: u32,
    pub result: Option<GenerationResult>,
    pub decision: Option<Decision>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    pub started_at: Option<DateTime<Utc>>,
    pub finished_at: Option<DateTime<Utc>>,
}

impl GenerationRequest {
    /// The parameters as a JSON object (they are always one).
    pub fn parameter_map(&self) -> Map<String, Value> {
        self.parameters.as_object().cloned().unwrap_or_default()
    }
}

pub(crate) fn request_key(owner: &str, id: &str) -> Key {
    Key::new(format!("USER#{owner}"), format!("GENREQ#{id}"))
}

pub(crate) fn active_key(owner: &str) -> Key {
    Key::new(format!("USER#{owner}"), "GENACTIVE")
}

/// Folder of everything a request produces.
pub fn result_prefix(owner: &str, id: &str) -> String {
    format!("users/{owner}/generations/{id}/")
}

/// The gsi1 partition of requests in one status.
pub(crate) fn status_partition(status: RequestStatus) -> String {
    format!("GENREQS#{}", status.as_str())
}

/// The gsi2 partition of every request.
pub(crate) const ALL_PARTITION: &str = "GENREQS";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statuses_round_trip_and_classify() {
        for s in RequestStatus::ALL {
            assert_eq!(s.as_str().parse::<RequestStatus>(), Ok(s));
            let json = serde_json::to_value(s).unwrap();
            assert_eq!(json, s.as_str());
            assert!(!(s.is_final() && s.is_active()));
        }
        assert!("done".parse::<RequestStatus>().is_err());
        let finals: Vec<_> = RequestStatus::ALL
            .into_iter()
            .filter(|s| s.is_final())
            .collect();
        assert_eq!(finals.len(), 5);
        assert!(
            RequestStatus::ALL
                .iter()
                .all(|s| !s.has_result() || s.is_final())
        );
    }
}
