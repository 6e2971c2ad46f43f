//! The embedded stand-ins for the AWS triggers, which `synth serve` starts beside the API:
//! the ingest loop (S3 ObjectCreated → the `ingest` Lambda) and the queue consumer (SQS → the
//! `dispatch` Lambda). On AWS these are event sources wired by the template; on one machine
//! they are these two tasks, each running until the server stops. The work they trigger is
//! the same code the Lambdas call (`Datasets::ingest`, `dispatch::dispatch`).

use std::sync::Arc;

use synth_core::datasets::{Analyzer, Datasets};
use synth_core::dispatch::{Dispatched, dispatch};
use synth_core::{Backends, ObjectMeta, PortError};
use tokio::sync::{Semaphore, broadcast, watch};

/// Uploads ingested at once (each is CPU-bound).
const INGEST_CONCURRENCY: usize = 2;

/// How long a message being dispatched stays hidden from other consumers.
const DISPATCH_VISIBILITY: std::time::Duration = std::time::Duration::from_secs(60);

/// Ingest every object created under `uploads/`, and first whatever a previous run left
/// half-ingested. Runs until `stop` turns true.
pub async fn run_ingest_loop(
    datasets: Datasets,
    analyzer: Arc<dyn Analyzer>,
    mut created: broadcast::Receiver<ObjectMeta>,
    mut stop: watch::Receiver<bool>,
) {
    match datasets.resume_validating(analyzer.clone()).await {
        Ok(0) => {}
        Ok(n) => tracing::info!(datasets = n, "resumed interrupted ingestions"),
        Err(e) => tracing::error!(error = %e, "resuming interrupted ingestions failed"),
    }
    let permits = Arc::new(Semaphore::new(INGEST_CONCURRENCY));
    loop {
        let meta = tokio::select! {
            _ = stop.changed() => break,
            m = created.recv() => m,
        };
        let meta = match meta {
            Ok(m) => m,
            Err(broadcast::error::RecvError::Lagged(n)) => {
                // Missed events: whatever is still validating is picked up again.
                tracing::warn!(missed = n, "ingest loop lagged; resuming from the records");
                let _ = datasets.resume_validating(analyzer.clone()).await;
                continue;
            }
            Err(broadcast::error::RecvError::Closed) => break,
        };
        if !meta.key.starts_with("uploads/") {
            continue;
        }
        let (datasets, analyzer, permits) = (datasets.clone(), analyzer.clone(), permits.clone());
        tokio::spawn(async move {
            let _permit = permits.acquire().await;
            if let Err(e) = datasets.ingest(analyzer, &meta.key).await {
                tracing::error!(key = %meta.key, error = %e, "ingestion failed; it resumes at the next start");
            }
        });
    }
}

/// Consume the job queue until `stop` turns true: dispatch each message, acknowledge it once
/// its job is started (or when it can never be dispatched), leave it for redelivery when a
/// store failed.
pub async fn run_queue_consumer(backends: Backends, mut stop: watch::Receiver<bool>) {
    let wait = std::time::Duration::from_secs(1);
    while !*stop.borrow() {
        let received = tokio::select! {
            _ = stop.changed() => break,
            r = backends.queue.receive(10, DISPATCH_VISIBILITY, wait) => r,
        };
        let messages = match received {
            Ok(m) => m,
            Err(e) => {
                tracing::error!(error = %e, "receiving from the job queue failed");
                tokio::time::sleep(wait).await;
                continue;
            }
        };
        for m in messages {
            match dispatch(backends.records.as_ref(), backends.jobs.as_ref(), &m.body).await {
                Ok(d) => {
                    tracing::info!(message_id = %m.id, job_id = d.job_id(), duplicate = matches!(d, Dispatched::Duplicate { .. }), "dispatched");
                    if let Err(e) = backends.queue.ack(&m.receipt).await {
                        tracing::warn!(error = %e, "acknowledging a dispatched message failed");
                    }
                }
                Err(PortError::Invalid(reason)) => {
                    tracing::error!(message_id = %m.id, %reason, "dropping a message that can never be dispatched");
                    let _ = backends.queue.ack(&m.receipt).await;
                }
                Err(e) => {
                    tracing::warn!(message_id = %m.id, error = %e, "dispatch failed; the message will be redelivered")
                }
            }
        }
    }
}
