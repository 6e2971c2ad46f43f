//! The job runner port on AWS Batch: one job queue and one job definition (the trainer
//! container); each job overrides the container's command and environment.

use async_trait::async_trait;
use aws_sdk_batch::Client;
use aws_sdk_batch::types::{ContainerOverrides, JobDetail, JobStatus as BatchStatus, KeyValuePair};
use synth_core::error::PortResult;
use synth_core::ports::jobs::validate_job_name;
use synth_core::{JobRunner, JobSpec, JobState, JobStatus, PortError};

use crate::error::port_error;

/// A [`JobRunner`] submitting to an AWS Batch job queue.
#[derive(Debug, Clone)]
pub struct BatchJobs {
    client: Client,
    job_queue: String,
    job_definition: String,
}

impl BatchJobs {
    /// Wrap a client, the job queue and the job definition (name, `name:revision` or ARN).
    pub fn new(
        client: Client,
        job_queue: impl Into<String>,
        job_definition: impl Into<String>,
    ) -> Self {
        Self {
            client,
            job_queue: job_queue.into(),
            job_definition: job_definition.into(),
        }
    }
}

/// Batch's seven states folded onto the port's four.
pub(crate) fn job_state(s: &BatchStatus) -> Option<JobState> {
    Some(match s {
        BatchStatus::Submitted
        | BatchStatus::Pending
        | BatchStatus::Runnable
        | BatchStatus::Starting => JobState::Queued,
        BatchStatus::Running => JobState::Running,
        BatchStatus::Succeeded => JobState::Succeeded,
        BatchStatus::Failed => JobState::Failed,
        _ => return None,
    })
}

/// A described job as the port's status; a failed one says why (Batch's status reason, or
/// the container's, e.g. its exit).
pub(crate) fn job_status(id: &str, job: &JobDetail) -> PortResult<JobStatus> {
    let status = job
        .status()
        .ok_or_else(|| PortError::Backend(format!("job {id} has no status")))?;
    let state = job_state(status)
        .ok_or_else(|| PortError::Backend(format!("job {id}: unknown status {status}")))?;
    let reason = (state == JobState::Failed).then(|| {
        job.status_reason()
            .or_else(|| job.container().and_then(|c| c.reason()))
            .unwrap_or("failed")
            .to_owned()
    });
    Ok(JobStatus {
        id: id.to_owned(),
        state,
        reason,
    })
}

#[async_trait]
impl JobRunner for BatchJobs {
    async fn submit(&self, spec: JobSpec) -> PortResult<String> {
        validate_job_name(&spec.name)?;
        let env = spec
            .env
            .into_iter()
            .map(|(name, value)| KeyValuePair::builder().name(name).value(value).build())
            .collect();
        let overrides = ContainerOverrides::builder()
            .set_command(Some(spec.args))
            .set_environment(Some(env))
            .build();
        let out = self
            .client
            .submit_job()
            .job_name(spec.name)
            .job_queue(&self.job_queue)
            .job_definition(&self.job_definition)
            .container_overrides(overrides)
            .send()
            .await
            .map_err(|e| port_error("SubmitJob", e))?;
        out.job_id
            .ok_or_else(|| PortError::Backend("SubmitJob returned no job id".into()))
    }

    async fn status(&self, id: &str) -> PortResult<JobStatus> {
        let out = match self.client.describe_jobs().jobs(id).send().await {
            Ok(out) => out,
            // Batch answers a malformed id with a ClientException: for the caller it is
            // just a job that does not exist.
            Err(e)
                if e.as_service_error()
                    .is_some_and(|s| s.is_client_exception()) =>
            {
                return Err(PortError::NotFound(format!("job {id}")));
            }
            Err(e) => return Err(port_error("DescribeJobs", e)),
        };
        let job = out
            .jobs()
            .iter()
            .find(|j| j.job_id() == Some(id))
            .ok_or_else(|| PortError::NotFound(format!("job {id}")))?;
        job_status(id, job)
    }

    async fn health(&self) -> PortResult<()> {
        let out = self
            .client
            .describe_job_queues()
            .job_queues(&self.job_queue)
            .send()
            .await
            .map_err(|e| port_error("DescribeJobQueues", e))?;
        if out.job_queues().is_empty() {
            return Err(PortError::Backend(format!(
                "job queue {} does not exist",
                self.job_queue
            )));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use aws_sdk_batch::types::ContainerDetail;

    #[test]
    fn batch_states_fold_onto_four() {
        for s in ["SUBMITTED", "PENDING", "RUNNABLE", "STARTING"] {
            assert_eq!(job_state(&BatchStatus::from(s)), Some(JobState::Queued));
        }
        assert_eq!(
            job_state(&BatchStatus::from("RUNNING")),
            Some(JobState::Running)
        );
        assert_eq!(
            job_state(&BatchStatus::from("SUCCEEDED")),
            Some(JobState::Succeeded)
        );
        assert_eq!(
            job_state(&BatchStatus::from("FAILED")),
            Some(JobState::Failed)
        );
        assert_eq!(job_state(&BatchStatus::from("EXPLODED")), None);
    }

    #[test]
    fn failed_jobs_say_why() {
        let job = |status: &str| {
            JobDetail::builder()
                .job_id("j1")
                .status(BatchStatus::from(status))
        };
        let failed = |j: aws_sdk_batch::types::builders::JobDetailBuilder| {
            job_status("j1", &j.build()).unwrap()
        };
        let by_batch = failed(job("FAILED").status_reason("Essential container exited"));
        assert_eq!(by_batch.state, JobState::Failed);
        assert_eq!(
            by_batch.reason.as_deref(),
            Some("Essential container exited")
        );
        let container = ContainerDetail::builder()
            .reason("OutOfMemoryError")
            .build();
        let by_container = failed(job("FAILED").container(container));
        assert_eq!(by_container.reason.as_deref(), Some("OutOfMemoryError"));
        assert_eq!(failed(job("FAILED")).reason.as_deref(), Some("failed"));
        let done = failed(job("SUCCEEDED").status_reason("Essential container exited"));
        assert_eq!((done.state, done.reason), (JobState::Succeeded, None));
        let unknown = JobDetail::builder().job_id("j1").build();
        assert!(matches!(
            job_status("j1", &unknown),
            Err(PortError::Backend(_))
        ));
    }
}
