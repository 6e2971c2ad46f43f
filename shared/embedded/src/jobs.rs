//! The job runner port as an in-process worker pool with its state in the embedded database.

use std::any::Any;
use std::future::Future;
use std::sync::Arc;

use async_trait::async_trait;
use rusqlite::{OptionalExtension, TransactionBehavior, params};
use synth_core::error::PortResult;
use synth_core::ports::jobs::validate_job_name;
use synth_core::{JobRunner, JobSpec, JobState, JobStatus, PortError};
use tokio::runtime::Handle;
use tokio::sync::Semaphore;

use crate::db::{Database, now_ms, sql_error};

/// What runs a job: the trainer's entry point, called in-process here and by the AWS Batch
/// container's `main` in production.
#[async_trait]
pub trait JobHandler: Send + Sync {
    /// Run one job to completion; `Err` is the failure reason shown to users.
    async fn run(&self, spec: JobSpec) -> Result<(), String>;
}

/// Any `async` closure over a spec is a handler (handy in tests and small tools).
#[async_trait]
impl<F, Fut> JobHandler for F
where
    F: Fn(JobSpec) -> Fut + Send + Sync,
    Fut: Future<Output = Result<(), String>> + Send,
{
    async fn run(&self, spec: JobSpec) -> Result<(), String> {
        self(spec).await
    }
}

/// A `JobRunner` that runs jobs on this process's tokio runtime, at most `concurrency` at
/// a time, and records their state in the embedded database.
///
/// Delivery is **at least once**: a job that was queued or running when the process died
/// is run again from the start by the next `LocalJobs::new` on the same database, so a
/// handler must tolerate a repeat (the platform's conditional status writes make it so).
#[derive(Clone)]
pub struct LocalJobs {
    inner: Arc<Inner>,
}

struct Inner {
    db: Database,
    handler: Arc<dyn JobHandler>,
    permits: Arc<Semaphore>,
    runtime: Handle,
}

impl std::fmt::Debug for LocalJobs {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LocalJobs")
            .field("db", &self.inner.db)
            .finish_non_exhaustive()
    }
}

fn state_name(s: JobState) -> &'static str {
    match s {
        JobState::Queued => "queued",
        JobState::Running => "running",
        JobState::Succeeded => "succeeded",
        JobState::Failed => "failed",
    }
}

fn parse_state(s: &str) -> PortResult<JobState> {
    Ok(match s {
        "queued" => JobState::Queued,
        "running" => JobState::Running,
        "succeeded" => JobState::Succeeded,
        "failed" => JobState::Failed,
        other => return Err(PortError::Backend(format!("unknown job state {other:?}"))),
    })
}

impl LocalJobs {
    /// Start the pool on the current tokio runtime (an error outside one) and re-run, in
    /// submission order, every job a previous process left queued or running.
    pub fn new(
        db: Database,
        handler: Arc<dyn JobHandler>,
        concurrency: usize,
    ) -> PortResult<LocalJobs> {
        let runtime = Handle::try_current().map_err(|_| {
            PortError::Invalid("LocalJobs must be started inside a tokio runtime".into())
        })?;
        // Done here, before any submission, so a new job can never be mistaken for an
        // orphan. A short start-up query, run on the caller's thread.
        let orphans: Vec<(String, String)> = db.call_blocking(|c| {
            let tx = c
                .transaction_with_behavior(TransactionBehavior::Immediate)
                .map_err(sql_error)?;
            tx.execute(
                "UPDATE jobs SET state = 'queued', updated_at = ?1 WHERE state = 'running'",
                params![now_ms()],
            )
            .map_err(sql_error)?;
            let rows = tx
                .prepare("SELECT id, spec FROM jobs WHERE state = 'queued' ORDER BY seq")
                .map_err(sql_error)?
                .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
                .map_err(sql_error)?
                .collect::<Result<Vec<_>, _>>()
                .map_err(sql_error)?;
            tx.commit().map_err(sql_error)?;
            Ok(rows)
        })?;
        let jobs = LocalJobs {
            inner: Arc::new(Inner {
                db,
                handler,
                permits: Arc::new(Semaphore::new(concurrency.max(1))),
                runtime,
            }),
        };
        if !orphans.is_empty() {
            tracing::warn!(count = orphans.len(), "re-running jobs left unfinished");
        }
        for (id, spec) in orphans {
            match serde_json::from_str::<JobSpec>(&spec) {
                Ok(spec) => jobs.spawn(id, spec),
                Err(e) => tracing::error!(job = %id, error = %e, "stored job spec does not decode"),
            }
        }
        Ok(jobs)
    }

    fn spawn(&self, id: String, spec: JobSpec) {
        let inner = self.inner.clone();
        self.inner.runtime.spawn(run_job(inner, id, spec));
    }
}

async fn run_job(inner: Arc<Inner>, id: String, spec: JobSpec) {
    let Ok(_permit) = inner.permits.clone().acquire_owned().await else {
        return; // The semaphore is never closed.
    };
    let job = id.clone();
    let started = inner
        .db
        .call(move |c| {
            c.execute(
                "UPDATE jobs SET state = 'running', attempts = attempts + 1, updated_at = ?1
                 WHERE id = ?2 AND state = 'queued'",
                params![now_ms(), job],
            )
            .map_err(sql_error)
        })
        .await;
    match started {
        Ok(1) => {}
        // Taken by another runner on the same database.
        Ok(_) => return,
        Err(e) => {
            // Left queued: the next start-up runs it.
            tracing::error!(job = %id, error = %e, "could not start job");
            return;
        }
    }
    let clock = std::time::Instant::now();
    tracing::info!(job = %id, name = %spec.name, "job started");
    // Its own task, so that a panic is caught as a JoinError instead of killing this worker.
    let handler = inner.handler.clone();
    let outcome = tokio::spawn(async move { handler.run(spec).await }).await;
    let (state, reason) = match outcome {
        Ok(Ok(())) => (JobState::Succeeded, None),
        Ok(Err(reason)) => (JobState::Failed, Some(reason)),
        Err(e) if e.is_panic() => (
            JobState::Failed,
            Some(format!(
                "the job panicked: {}",
                panic_message(e.into_panic())
            )),
        ),
        // The runtime is shutting down: leave it running so the next start-up re-runs it.
        Err(_) => return,
    };
    let secs = clock.elapsed().as_secs_f64();
    match &reason {
        None => tracing::info!(job = %id, secs, "job succeeded"),
        Some(r) => tracing::warn!(job = %id, secs, reason = %r, "job failed"),
    }
    let job = id.clone();
    let finished = inner
        .db
        .call(move |c| {
            c.execute(
                "UPDATE jobs SET state = ?1, reason = ?2, updated_at = ?3
                 WHERE id = ?4 AND state = 'running'",
                params![state_name(state), reason, now_ms(), job],
            )
            .map_err(sql_error)
        })
        .await;
    if let Err(e) = finished {
        tracing::error!(job = %id, error = %e, "could not record the job's outcome");
    }
}

fn panic_message(payload: Box<dyn Any + Send>) -> String {
    if let Some(s) = payload.downcast_ref::<&str>() {
        (*s).to_owned()
    } else if let Some(s) = payload.downcast_ref::<String>() {
        s.clone()
    } else {
        "(no message)".to_owned()
    }
}

#[async_trait]
impl JobRunner for LocalJobs {
    async fn submit(&self, spec: JobSpec) -> PortResult<String> {
        validate_job_name(&spec.name)?;
        let id = uuid::Uuid::new_v4().to_string();
        let doc = serde_json::to_string(&spec).map_err(|e| PortError::Invalid(e.to_string()))?;
        let (row_id, name) = (id.clone(), spec.name.clone());
        self.inner
            .db
            .call(move |c| {
                let now = now_ms();
                c.execute(
                    "INSERT INTO jobs (id, name, spec, state, created_at, updated_at)
                     VALUES (?1, ?2, ?3, 'queued', ?4, ?4)",
                    params![row_id, name, doc, now],
                )
                .map_err(sql_error)?;
                Ok(())
            })
            .await?;
        self.spawn(id.clone(), spec);
        Ok(id)
    }

    async fn status(&self, id: &str) -> PortResult<JobStatus> {
        let job = id.to_owned();
        let row: Option<(String, Option<String>)> = self
            .inner
            .db
            .call(move |c| {
                c.query_row(
                    "SELECT state, reason FROM jobs WHERE id = ?1",
                    params![job],
                    |r| Ok((r.get(0)?, r.get(1)?)),
                )
                .optional()
                .map_err(sql_error)
            })
            .await?;
        let (state, reason) = row.ok_or_else(|| PortError::NotFound(format!("job {id}")))?;
        Ok(JobStatus {
            id: id.to_owned(),
            state: parse_state(&state)?,
            reason,
        })
    }

    async fn health(&self) -> PortResult<()> {
        self.inner.db.health().await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::time::Duration;

    fn spec(name: &str) -> JobSpec {
        JobSpec {
            name: name.into(),
            args: vec!["--epochs".into(), "1".into()],
            env: vec![],
        }
    }

    async fn wait_final(jobs: &LocalJobs, id: &str) -> JobStatus {
        for _ in 0..500 {
            let s = jobs.status(id).await.unwrap();
            if s.state.is_final() {
                return s;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        panic!("job {id} did not finish");
    }

    #[tokio::test]
    async fn outcomes_are_recorded_and_a_panic_is_a_failed_job() {
        let dir = tempfile::tempdir().unwrap();
        let db = Database::open(&dir.path().join("j.db")).unwrap();
        let handler = |spec: JobSpec| async move {
            match spec.name.as_str() {
                "ok" => Ok(()),
                "boom" => panic!("out of memory in layer 3"),
                _ => Err("bad column".to_owned()),
            }
        };
        let jobs = LocalJobs::new(db, Arc::new(handler), 1).unwrap();
        let boom = jobs.submit(spec("boom")).await.unwrap();
        let ok = jobs.submit(spec("ok")).await.unwrap();
        let bad = jobs.submit(spec("bad")).await.unwrap();
        let s = wait_final(&jobs, &boom).await;
        assert_eq!(s.state, JobState::Failed);
        assert!(s.reason.unwrap().contains("out of memory in layer 3"));
        // The single worker survived the panic and ran the rest.
        assert_eq!(wait_final(&jobs, &ok).await.state, JobState::Succeeded);
        let s = wait_final(&jobs, &bad).await;
        assert_eq!(
            (s.state, s.reason.as_deref()),
            (JobState::Failed, Some("bad column"))
        );
        assert!(matches!(
            jobs.status("nope").await,
            Err(PortError::NotFound(_))
        ));
        assert!(matches!(
            jobs.submit(spec("bad name!")).await,
            Err(PortError::Invalid(_))
        ));
    }

    #[tokio::test]
    async fn concurrency_is_bounded() {
        let dir = tempfile::tempdir().unwrap();
        let db = Database::open(&dir.path().join("j.db")).unwrap();
        let running = Arc::new(AtomicUsize::new(0));
        let peak = Arc::new(AtomicUsize::new(0));
        let (r, p) = (running.clone(), peak.clone());
        let handler = move |_spec: JobSpec| {
            let (r, p) = (r.clone(), p.clone());
            async move {
                let now = r.fetch_add(1, Ordering::SeqCst) + 1;
                p.fetch_max(now, Ordering::SeqCst);
                tokio::time::sleep(Duration::from_millis(50)).await;
                r.fetch_sub(1, Ordering::SeqCst);
                Ok(())
            }
        };
        let jobs = LocalJobs::new(db, Arc::new(handler), 2).unwrap();
        let mut ids = Vec::new();
        for i in 0..6 {
            ids.push(jobs.submit(spec(&format!("j{i}"))).await.unwrap());
        }
        for id in ids {
            assert_eq!(wait_final(&jobs, &id).await.state, JobState::Succeeded);
        }
        assert_eq!(peak.load(Ordering::SeqCst), 2);
    }

    #[test]
    fn needs_a_runtime() {
        let dir = tempfile::tempdir().unwrap();
        let db = Database::open(&dir.path().join("j.db")).unwrap();
        let handler = |_: JobSpec| async { Ok(()) };
        assert!(LocalJobs::new(db, Arc::new(handler), 1).is_err());
    }
}
