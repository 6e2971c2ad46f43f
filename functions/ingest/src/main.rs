//! The `ingest` Lambda: S3 ObjectCreated under `uploads/` → validate and profile the
//! dataset, write its canonical copy, and mark it ready or invalid.

use std::sync::Arc;

use aws_lambda_events::event::s3::S3Event;
use lambda_runtime::{LambdaEvent, service_fn};
use synth_analysis::TableAnalyzer;
use synth_core::datasets::Datasets;

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    let (settings, backends) = synth_function_common::start().await?;
    let datasets = Arc::new(
        Datasets::new(
            backends.records.clone(),
            backends.objects.clone(),
            &settings,
        )
        .with_topic(backends.topic.clone()),
    );
    let analyzer = Arc::new(TableAnalyzer::new(settings.max_file_bytes()));
    lambda_runtime::run(service_fn(move |event: LambdaEvent<S3Event>| {
        let (datasets, analyzer) = (datasets.clone(), analyzer.clone());
        async move {
            let n = fn_ingest::handle_s3_event(&datasets, analyzer, &event.payload).await?;
            tracing::info!(ingested = n, "S3 event handled");
            Ok::<_, lambda_runtime::Error>(())
        }
    }))
    .await
}
