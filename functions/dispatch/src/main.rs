//! The `dispatch` Lambda: SQS (training requests) → AWS Batch jobs. Messages whose job was
//! started, or that can never be dispatched, are acknowledged; a store failure reports the
//! message as failed so SQS redelivers it (and moves it to the DLQ after repeated failures).

use aws_lambda_events::event::sqs::{BatchItemFailure, SqsBatchResponse, SqsEvent};
use lambda_runtime::{LambdaEvent, service_fn};
use synth_core::dispatch::{Dispatched, dispatch};
use synth_core::{Backends, PortError};
use tracing::Instrument;

async fn handle(backends: &Backends, event: SqsEvent) -> SqsBatchResponse {
    let mut failures = Vec::new();
    for record in event.records {
        let id = record.message_id.unwrap_or_default();
        let body = record.body.unwrap_or_default();
        let span = synth_telemetry::event_span("sqs", &id);
        let outcome = dispatch(backends.records.as_ref(), backends.jobs.as_ref(), &body)
            .instrument(span.clone())
            .await;
        let _in_span = span.enter();
        match outcome {
            Ok(d) => tracing::info!(
                message_id = %id,
                job_id = d.job_id(),
                duplicate = matches!(d, Dispatched::Duplicate { .. }),
                "dispatched"
            ),
            Err(PortError::Invalid(reason)) => {
                tracing::error!(message_id = %id, %reason, "dropping a message that can never be dispatched")
            }
            Err(e) => {
                tracing::warn!(message_id = %id, error = %e, "dispatch failed; SQS will redeliver");
                let mut failure = BatchItemFailure::default();
                failure.item_identifier = id;
                failures.push(failure);
            }
        }
    }
    let mut response = SqsBatchResponse::default();
    response.batch_item_failures = failures;
    response
}

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    let (_settings, backends) = synth_function_common::start().await?;
    let backends = std::sync::Arc::new(backends);
    lambda_runtime::run(service_fn(move |event: LambdaEvent<SqsEvent>| {
        let backends = backends.clone();
        async move { Ok::<_, lambda_runtime::Error>(handle(&backends, event.payload).await) }
    }))
    .await
}
