//! Fitting, the same for every model: the preamble (parameters checked, the transformer
//! fitted and the table encoded, the device chosen, the generator seeded), then the epoch
//! loop — steps until the stop flag is raised, a report per epoch to the progress and
//! checkpoint callbacks and into the loss history, and the model's own early stopping.

use std::sync::Arc;
use std::time::Instant;

use synth_table::{Metadata, Table};

use synth_models::Params;

use super::{Fitted, Model, Start, Started, Trainer};
use crate::error::{EngineError, Result};
use crate::random::rng_for;
use crate::synthesizer::{EpochReport, FitControl, FitOptions, Synthesizer};
use crate::transformer::{DataTransformer, Encoded};

/// The losses an epoch's report shows.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct Losses {
    /// The model's own objective for the generator (decoder for TVAE), last step.
    pub generator: f64,
    /// The critic's loss; `None` for models without one.
    pub critic: Option<f64>,
    /// The loss on held-out rows, for models that stop early on it.
    pub validation: Option<f64>,
}

impl<M: Model> Fitted<M> {
    /// Fits the transformer and trains the model on `table`.
    pub fn fit(
        table: &Table,
        metadata: &Metadata,
        params: M::Params,
        mut options: FitOptions,
    ) -> Result<Self> {
        params.validate()?;
        let started = Instant::now();
        let transformer = DataTransformer::fit_until(
            table,
            metadata,
            &options.transformer,
            options.seed,
            options.stop.as_deref(),
        )?;
        let data = encode(&transformer, table)?;
        let device = options.device.candle()?;
        let Started { model, mut trainer } = M::start(Start {
            params: &params,
            transformer: &transformer,
            data: Arc::new(data),
            device: &device,
            rng: rng_for(options.seed, 1),
        })?;
        let mut fitted = Self {
            params,
            transformer,
            state: model.state,
            device,
            net: model.net,
            vars: model.vars,
            history: Vec::new(),
        };
        let epochs = fitted.params.epochs();
        fitted.history = run_epochs(epochs, started, &mut options, &fitted, &mut *trainer)?;
        // A GPU runs the last step's updates after the call that queued them returns; the
        // model may be sampled or saved from another thread next.
        fitted.device.synchronize()?;
        Ok(fitted)
    }
}

/// The table as the model learns it; an error when nothing can be learnt.
fn encode(transformer: &DataTransformer, table: &Table) -> Result<Encoded> {
    let data = transformer.transform(table)?;
    if data.width == 0 {
        return Err(EngineError::InvalidData(
            "no column can be modelled (only ids?)".into(),
        ));
    }
    if data.n_rows == 0 {
        return Err(EngineError::InvalidData("the table has no rows".into()));
    }
    Ok(data)
}

/// Trains `epochs` epochs of `trainer`, handing each epoch's report and `model` (trained
/// in place by the trainer) to the callbacks, and returns the reports of the finished
/// epochs. The stop flag is checked before every step: once raised, training ends without
/// reporting the unfinished epoch. A checkpoint, the trainer's early stopping or the time
/// budget ends it after the epoch just reported. The trainer's [`Trainer::finish`] runs
/// whichever way training ends.
pub fn run_epochs(
    epochs: usize,
    started: Instant,
    options: &mut FitOptions,
    model: &dyn Synthesizer,
    trainer: &mut dyn Trainer,
) -> Result<Vec<EpochReport>> {
    let mut history = Vec::with_capacity(epochs);
    'epochs: for epoch in 0..epochs {
        let epoch_start = Instant::now();
        let steps = trainer.begin_epoch(epoch)?;
        for _ in 0..steps {
            if options.stopped() {
                break 'epochs;
            }
            trainer.step()?;
        }
        let losses = trainer.end_epoch()?;
        let report = EpochReport {
            epoch: epoch + 1,
            epochs,
            generator_loss: losses.generator,
            critic_loss: losses.critic,
            validation_loss: losses.validation,
            epoch_seconds: epoch_start.elapsed().as_secs_f64(),
            elapsed_seconds: started.elapsed().as_secs_f64(),
        };
        let out_of_time = options
            .max_seconds
            .is_some_and(|budget| report.elapsed_seconds + report.epoch_seconds > budget);
        let early = trainer.early_stop(&report)?;
        if options.finish_epoch(report, model, &mut history) == FitControl::Stop
            || early == FitControl::Stop
            || out_of_time
        {
            break;
        }
    }
    trainer.finish()?;
    Ok(history)
}

/// Early stopping on a loss a model monitors (a validation loss, say): stop once it has
/// gone `patience` epochs in a row without beating its best by more than `min_delta`.
#[derive(Debug, Clone)]
pub struct EarlyStopping {
    patience: usize,
    min_delta: f64,
    best: f64,
    stale: usize,
}

impl EarlyStopping {
    pub fn new(patience: usize, min_delta: f64) -> Self {
        Self {
            patience,
            min_delta,
            best: f64::INFINITY,
            stale: 0,
        }
    }

    /// Records this epoch's loss (lower is better; NaN never improves) and says whether to
    /// go on.
    pub fn observe(&mut self, loss: f64) -> FitControl {
        if loss < self.best - self.min_delta {
            self.best = loss;
            self.stale = 0;
        } else {
            self.stale += 1;
        }
        if self.stale >= self.patience.max(1) {
            FitControl::Stop
        } else {
            FitControl::Continue
        }
    }

    /// The best loss seen so far.
    pub fn best(&self) -> f64 {
        self.best
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::sync::{Arc, Mutex};

    use super::*;

    /// Scripted losses, three steps an epoch, stopping early on its "validation" loss.
    struct Scripted {
        losses: Vec<f64>,
        epoch: usize,
        steps: Arc<Mutex<usize>>,
        early: Option<EarlyStopping>,
    }

    impl Trainer for Scripted {
        fn begin_epoch(&mut self, epoch: usize) -> Result<usize> {
            self.epoch = epoch;
            Ok(3)
        }

        fn step(&mut self) -> Result<()> {
            *self.steps.lock().unwrap() += 1;
            Ok(())
        }

        fn end_epoch(&mut self) -> Result<Losses> {
            Ok(Losses {
                generator: self.losses[self.epoch],
                critic: Some(-1.0),
                validation: None,
            })
        }

        fn early_stop(&mut self, report: &EpochReport) -> Result<FitControl> {
            Ok(match self.early.as_mut() {
                Some(e) => e.observe(report.generator_loss),
                None => FitControl::Continue,
            })
        }
    }

    /// Stands in for the model under training; the loop only hands it to checkpoints.
    struct Nothing;

    impl Synthesizer for Nothing {
        fn model_name(&self) -> &'static str {
            "nothing"
        }
        fn sample(&self, _: usize, _: u64) -> Result<Table> {
            Ok(Table::default())
        }
        fn sample_conditional(&self, _: usize, _: &[crate::Condition], _: u64) -> Result<Table> {
            Ok(Table::default())
        }
        fn save(&self, _: &std::path::Path) -> Result<()> {
            Ok(())
        }
        fn loss_history(&self) -> &[EpochReport] {
            &[]
        }
    }

    fn scripted(losses: &[f64], early: Option<EarlyStopping>) -> (Scripted, Arc<Mutex<usize>>) {
        let steps = Arc::new(Mutex::new(0));
        let trainer = Scripted {
            losses: losses.to_vec(),
            epoch: 0,
            steps: steps.clone(),
            early,
        };
        (trainer, steps)
    }

    fn run(trainer: &mut Scripted, options: &mut FitOptions) -> Vec<EpochReport> {
        run_epochs(
            trainer.losses.len(),
            Instant::now(),
            options,
            &Nothing,
            trainer,
        )
        .unwrap()
    }

    #[test]
    fn every_epoch_is_reported_in_order_with_its_losses() {
        let (mut trainer, steps) = scripted(&[3.0, 2.0, 1.0], None);
        let (seen, on_epoch) = crate::test_support::epoch_sink();
        let mut options = FitOptions {
            on_epoch: Some(on_epoch),
            ..FitOptions::default()
        };
        let history = run(&mut trainer, &mut options);
        assert_eq!(*steps.lock().unwrap(), 9);
        assert_eq!(*seen.lock().unwrap(), history);
        let got: Vec<_> = history
            .iter()
            .map(|r| (r.epoch, r.epochs, r.generator_loss, r.critic_loss))
            .collect();
        assert_eq!(
            got,
            [
                (1, 3, 3.0, Some(-1.0)),
                (2, 3, 2.0, Some(-1.0)),
                (3, 3, 1.0, Some(-1.0))
            ]
        );
        assert!(history[2].elapsed_seconds >= history[0].elapsed_seconds);
    }

    #[test]
    fn early_stopping_ends_training_after_patience_epochs_without_improvement() {
        let losses = [5.0, 4.0, 4.05, 3.99, 4.2, 1.0, 0.5];
        let (mut trainer, steps) = scripted(&losses, Some(EarlyStopping::new(2, 0.1)));
        let history = run(&mut trainer, &mut FitOptions::default());
        // 4.05 and 3.99 do not beat 4.0 by more than 0.1: two stale epochs, stop after the
        // fourth, which is still reported.
        assert_eq!(history.len(), 4);
        assert_eq!(*steps.lock().unwrap(), 12);
        assert_eq!(trainer.early.as_ref().unwrap().best(), 4.0);
        let mut e = EarlyStopping::new(1, 0.0);
        assert_eq!(e.observe(f64::NAN), FitControl::Stop);
    }

    #[test]
    fn the_stop_flag_ends_training_before_the_next_step_without_a_report() {
        let stop = Arc::new(AtomicBool::new(false));
        let flag = stop.clone();
        let (mut trainer, steps) = scripted(&[1.0; 5], None);
        let mut options = FitOptions {
            stop: Some(stop),
            checkpoint: Some(Box::new(move |r, _| {
                if r.epoch == 2 {
                    flag.store(true, Ordering::Relaxed);
                }
                FitControl::Continue
            })),
            ..FitOptions::default()
        };
        let history = run(&mut trainer, &mut options);
        assert_eq!(history.len(), 2);
        assert_eq!(*steps.lock().unwrap(), 6);
        // A checkpoint that says stop ends training after the epoch it saw.
        let (mut trainer, _) = scripted(&[1.0; 5], None);
        let stop_at_3 = |r: &EpochReport, _: &dyn Synthesizer| match r.epoch {
            3 => FitControl::Stop,
            _ => FitControl::Continue,
        };
        let mut options = FitOptions {
            checkpoint: Some(Box::new(stop_at_3)),
            ..FitOptions::default()
        };
        assert_eq!(run(&mut trainer, &mut options).len(), 3);
    }
}
