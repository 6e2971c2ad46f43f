//! The AWS Batch trainer container's command: `trainer --owner OWNER --request ID` runs one
//! generation request (the command line a queued job carries). It exits 0 whenever the
//! request's outcome is recorded (completed, failed with its reason, cancelled, or nothing
//! to do); it exits 1 only when a store failed before it could record one, so Batch tries
//! the job again and the next run takes the request over.

use std::process::ExitCode;
use std::sync::Arc;

use tracing::Instrument;

// Training allocates and frees the same large buffers every step (see the CLI's note).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[tokio::main]
async fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let job = match synth_trainer::JobArgs::parse(&args) {
        Ok(job) => job,
        Err(e) => {
            eprintln!("usage: trainer --owner OWNER --request ID ({e})");
            return ExitCode::from(2);
        }
    };
    let (settings, backends) = match synth_function_common::start().await {
        Ok(started) => started,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::FAILURE;
        }
    };
    let span = synth_telemetry::event_span("trainer", &job.request);
    let trainer = synth_trainer::Trainer::new(backends, Arc::new(settings));
    match trainer.run(&job).instrument(span).await {
        Ok(outcome) => {
            tracing::info!(?outcome, "trainer run ended");
            ExitCode::SUCCESS
        }
        Err(e) => {
            tracing::error!(error = %e, "trainer run could not record its outcome; exiting for a retry");
            ExitCode::FAILURE
        }
    }
}
