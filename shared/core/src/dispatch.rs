//! Turning queued training requests into running jobs, exactly once per request as far as
//! the stores allow. The `dispatch` Lambda (SQS → Batch) and the embedded server's queue
//! consumer (`synth_embedded::triggers`) both call [`dispatch`], so a message delivered twice
//! never starts two jobs.

use serde::{Deserialize, Serialize};

use crate::error::{PortError, PortResult};
use crate::ports::jobs::{JobRunner, JobSpec};
use crate::ports::records::{Condition, Item, Key, RecordStore};

/// A queued request to run a job, as it travels through the queue.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct JobRequest {
    /// The id of the platform request this job serves (a generation, an optimisation):
    /// also the queue's deduplication key.
    pub request_id: String,
    pub job: JobSpec,
}

/// What dispatching a message did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Dispatched {
    /// A job was started.
    Submitted { job_id: String },
    /// A job had already been started for this request; nothing was done.
    Duplicate { job_id: String },
}

impl Dispatched {
    pub fn job_id(&self) -> &str {
        match self {
            Dispatched::Submitted { job_id } | Dispatched::Duplicate { job_id } => job_id,
        }
    }
}

/// The record that remembers which job serves a request.
pub fn submission_key(request_id: &str) -> Key {
    Key::new(format!("JOBREQ#{request_id}"), "SUBMISSION")
}

/// Start the job of a queued message unless one was already started for its request.
///
/// The submission record is written with a not-exists condition after the job starts; a
/// crash between the two can start a second job on redelivery (at-least-once), but a
/// message delivered again after a completed dispatch never does.
pub async fn dispatch(
    records: &dyn RecordStore,
    jobs: &dyn JobRunner,
    body: &str,
) -> PortResult<Dispatched> {
    let req: JobRequest = serde_json::from_str(body)
        .map_err(|e| PortError::Invalid(format!("queue message is not a job request: {e}")))?;
    if req.request_id.is_empty() {
        return Err(PortError::Invalid("job request without request_id".into()));
    }
    let key = submission_key(&req.request_id);
    if let Some(existing) = records.get(&key).await? {
        return Ok(Dispatched::Duplicate {
            job_id: job_id_of(&existing)?,
        });
    }
    let job_id = jobs.submit(req.job).await?;
    let item = Item::new(&key)
        .with("request_id", req.request_id.as_str())
        .with("job_id", job_id.as_str())
        .with("submitted_at", chrono::Utc::now().to_rfc3339());
    match records.put(item, Some(Condition::NotExists)).await {
        Ok(()) => Ok(Dispatched::Submitted { job_id }),
        Err(PortError::ConditionFailed) => {
            // A concurrent delivery won the race; report its job.
            let existing = records.get(&key).await?.ok_or(PortError::ConditionFailed)?;
            Ok(Dispatched::Duplicate {
                job_id: job_id_of(&existing)?,
            })
        }
        Err(e) => Err(e),
    }
}

fn job_id_of(item: &Item) -> PortResult<String> {
    item.str("job_id")
        .map(str::to_owned)
        .ok_or_else(|| PortError::Backend("submission record without job_id".into()))
}
