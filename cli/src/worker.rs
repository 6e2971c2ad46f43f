//! `synth serve`'s trainer: the in-process job pool's handler runs the same
//! [`synth_trainer::Trainer`] that the AWS Batch container runs, on the embedded backends.
//!
//! The pool starts (and re-runs jobs a previous process left) as the data folder opens,
//! before the backends it hands out exist; so the handler waits for the trainer it is
//! given once they do.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use synth_core::JobSpec;
use synth_embedded::JobHandler;
use synth_trainer::{JobArgs, Outcome, Trainer};
use tokio::sync::SetOnce;

/// The embedded job handler; [`EmbeddedTrainer::set`] completes it.
#[derive(Default)]
pub struct EmbeddedTrainer {
    trainer: SetOnce<Trainer>,
}

impl EmbeddedTrainer {
    pub fn new() -> Arc<Self> {
        Arc::new(Self::default())
    }

    /// Hand over the trainer (once the backends exist); jobs waiting for it start.
    pub fn set(&self, trainer: Trainer) {
        if self.trainer.set(trainer).is_err() {
            tracing::warn!("the embedded trainer was set twice; keeping the first");
        }
    }

    /// Stop the runs in progress and give their requests back, so the next start takes them
    /// over at once (see [`Trainer::shut_down`]).
    pub async fn shut_down(&self, wait: Duration) {
        if let Some(trainer) = self.trainer.get() {
            trainer.shut_down(wait).await;
        }
    }
}

#[async_trait]
impl JobHandler for EmbeddedTrainer {
    async fn run(&self, spec: JobSpec) -> Result<(), String> {
        let args = JobArgs::of(&spec)?;
        let trainer = self.trainer.wait().await;
        match trainer.run(&args).await {
            Ok(Outcome::Failed(reason)) => Err(reason),
            // Handed back at shutdown: this job never ends, so the pool leaves it running
            // when the runtime stops, and the next start runs it again.
            Ok(Outcome::HandedBack) => std::future::pending().await,
            Ok(outcome) => {
                tracing::info!(request_id = %args.request, ?outcome, "training job done");
                Ok(())
            }
            // A store failed: the job fails here, and the request is taken over by the next
            // run of it (at the next start) once this run's lease has expired.
            Err(e) => Err(e.to_string()),
        }
    }
}
