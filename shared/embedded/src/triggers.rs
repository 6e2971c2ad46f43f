//! The embedded stand-ins for the AWS triggers, which `synth serve` starts beside the API:
//! the ingest loop (S3 ObjectCreated → the `ingest` Lambda), the queue consumer (SQS → the
//! `dispatch` Lambda), the topic subscriber (SNS → the `notify` Lambda) and the purge of
//! expired records (DynamoDB's time-to-live). On AWS these are event sources wired by the
//! template; on one machine they are these tasks, each running until the server stops. The
//! work they trigger is the same code the Lambdas call (`Datasets::ingest`,
//! `dispatch::dispatch`, `Notifications::deliver`).

use std::sync::Arc;

use synth_core::datasets::{Analyzer, Datasets};
use synth_core::dispatch::{Dispatched, dispatch};
use synth_core::notifications::Notifications;
use synth_core::stats::Meter;
use synth_core::{Backends, ObjectMeta, PortError, RecordStore};
use tokio::sync::{Semaphore, broadcast, mpsc, watch};

use crate::{SqliteRecords, TopicMessage};

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

/// Tries of one topic message before it is given up (with an error in the log).
const NOTIFY_TRIES: u32 = 3;

/// Deliver every message published on the topic to the notifications, as the `notify`
/// Lambda does for SNS; a store failure is retried with a growing pause. Runs until `stop`
/// turns true or the topic is gone.
pub async fn run_notify_loop(
    notifications: Notifications,
    mut messages: mpsc::UnboundedReceiver<TopicMessage>,
    mut stop: watch::Receiver<bool>,
) {
    loop {
        let m = tokio::select! {
            _ = stop.changed() => {
                // What was published before the stop is still delivered.
                while let Ok(m) = messages.try_recv() {
                    deliver(&notifications, &m).await;
                }
                break;
            }
            m = messages.recv() => match m {
                Some(m) => m,
                None => break,
            },
        };
        deliver(&notifications, &m).await;
    }
}

/// Deliver one message, trying again after a store failure.
async fn deliver(notifications: &Notifications, m: &TopicMessage) {
    for attempt in 1..=NOTIFY_TRIES {
        match notifications.deliver(&m.id, &m.message).await {
            Ok(done) => {
                tracing::debug!(message_id = %m.id, written = done.written, pushed = done.pushed, "topic message delivered");
                return;
            }
            Err(e) if attempt < NOTIFY_TRIES => {
                tracing::warn!(message_id = %m.id, error = %e, attempt, "delivering a topic message failed; retrying");
                tokio::time::sleep(std::time::Duration::from_millis(500 * u64::from(attempt)))
                    .await;
            }
            Err(e) => {
                tracing::error!(message_id = %m.id, subject = %m.subject, error = %e, "a topic message could not be delivered");
            }
        }
    }
}

/// Write the API's measurements ([`Meter`]) every `every`, and once more when `stop` turns
/// true, so the last seconds before a shutdown are kept too.
pub async fn run_meter_flush(
    meter: Arc<Meter>,
    records: Arc<dyn RecordStore>,
    every: std::time::Duration,
    mut stop: watch::Receiver<bool>,
) {
    loop {
        let stopping = tokio::select! {
            _ = stop.changed() => true,
            _ = tokio::time::sleep(every) => false,
        };
        meter.flush(records.as_ref()).await;
        if stopping {
            break;
        }
    }
}

/// Delete expired records (read notifications past their retention, ended sessions) every
/// `every`, and once at start: DynamoDB's time-to-live, on one machine.
pub async fn run_purge_loop(
    records: SqliteRecords,
    every: std::time::Duration,
    mut stop: watch::Receiver<bool>,
) {
    loop {
        match records.purge_expired(chrono::Utc::now().timestamp()).await {
            Ok(0) => {}
            Ok(n) => tracing::info!(records = n, "expired records purged"),
            Err(e) => tracing::warn!(error = %e, "purging expired records failed"),
        }
        tokio::select! {
            _ = stop.changed() => break,
            _ = tokio::time::sleep(every) => {}
        }
    }
}
