//! The job runner port: run a training job somewhere (AWS Batch, or an in-process worker
//! pool) and ask how it is doing.

use async_trait::async_trait;
use serde::{Deserialize, Serialize};

use crate::error::PortResult;

/// What to run: the trainer's arguments and environment.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct JobSpec {
    /// A name for people and consoles (letters, digits, `-`, `_`; at most 128).
    pub name: String,
    /// Arguments passed to the trainer.
    pub args: Vec<String>,
    /// Extra environment for the trainer.
    pub env: Vec<(String, String)>,
}

/// Where a job is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum JobState {
    Queued,
    Running,
    Succeeded,
    Failed,
}

impl JobState {
    pub fn is_final(self) -> bool {
        matches!(self, JobState::Succeeded | JobState::Failed)
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct JobStatus {
    pub id: String,
    pub state: JobState,
    /// Why it failed, when it did.
    pub reason: Option<String>,
}

#[async_trait]
pub trait JobRunner: Send + Sync {
    /// Start a job; returns its id.
    async fn submit(&self, spec: JobSpec) -> PortResult<String>;
    /// The job's current state; `NotFound` for an unknown id.
    async fn status(&self, id: &str) -> PortResult<JobStatus>;
    /// Whether the runner answers.
    async fn health(&self) -> PortResult<()>;
}

/// Check a job name the way AWS Batch does, so both families accept the same names.
pub fn validate_job_name(name: &str) -> PortResult<()> {
    let ok = !name.is_empty()
        && name.len() <= 128
        && name
            .chars()
            .next()
            .is_some_and(|c| c.is_ascii_alphanumeric())
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_');
    if ok {
        Ok(())
    } else {
        Err(crate::PortError::Invalid(format!("bad job name {name:?}")))
    }
}
