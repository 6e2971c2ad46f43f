//! The one interface every fitted model offers, so the CLI, the trainer and the optimiser
//! choose a model by its parameters ([`crate::ModelParams`]) and never branch on it
//! afterwards; and how a fit is run and watched (options, per-epoch reports, callbacks).

use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use serde::{Deserialize, Serialize};
use synth_table::Table;

use crate::condition::Condition;
use crate::device::EngineDevice;
use crate::error::Result;
use crate::transformer::TransformerOptions;

/// Progress after one epoch, passed to the callback and kept in the loss history.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EpochReport {
    /// 1-based.
    pub epoch: usize,
    pub epochs: usize,
    /// The model's own training objective: CTGAN's generator, TVAE's decoder (last step),
    /// argn's cross-entropy per row (mean over the epoch).
    pub generator_loss: f64,
    /// Critic loss without the penalty, as the reference reports it; absent for models
    /// without a critic.
    pub critic_loss: Option<f64>,
    /// The loss on held-out rows, for models that stop early on it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub validation_loss: Option<f64>,
    pub epoch_seconds: f64,
    /// Seconds since fitting began, transformer fit included.
    pub elapsed_seconds: f64,
}

/// The per-epoch progress callback.
pub type EpochCallback = Box<dyn FnMut(&EpochReport) + Send>;

/// Whether training goes on after a checkpoint.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FitControl {
    Continue,
    /// End training here; the fit returns the model as trained so far.
    Stop,
}

/// Called after every epoch with the model as trained so far, so a caller can score it
/// mid-training (pruning) or end training early (NaN losses, deadlines).
pub type CheckpointCallback = Box<dyn FnMut(&EpochReport, &dyn Synthesizer) -> FitControl + Send>;

/// How to fit, as opposed to what model to fit.
#[derive(Default)]
pub struct FitOptions {
    pub seed: u64,
    pub device: EngineDevice,
    pub transformer: TransformerOptions,
    pub on_epoch: Option<EpochCallback>,
    /// Checked before every training step: once set, the fit returns the model trained so
    /// far (its loss history then holds only the finished epochs).
    pub stop: Option<Arc<AtomicBool>>,
    pub checkpoint: Option<CheckpointCallback>,
    /// A time budget: no epoch starts that would, at the last epoch's pace, end after it
    /// (seconds since fitting began; at least one epoch is trained).
    pub max_seconds: Option<f64>,
}

impl FitOptions {
    /// The defaults with this seed.
    pub fn seeded(seed: u64) -> Self {
        Self {
            seed,
            ..Self::default()
        }
    }

    /// Whether the stop flag is set.
    pub(crate) fn stopped(&self) -> bool {
        self.stop
            .as_ref()
            .is_some_and(|s| s.load(Ordering::Relaxed))
    }

    /// Hands a finished epoch's report to the callbacks (`model` is the model trained so
    /// far) and records it in `history`; returns whether the checkpoint asked to stop.
    pub(crate) fn finish_epoch(
        &mut self,
        report: EpochReport,
        model: &dyn Synthesizer,
        history: &mut Vec<EpochReport>,
    ) -> FitControl {
        if let Some(cb) = self.on_epoch.as_mut() {
            cb(&report);
        }
        let control = match self.checkpoint.as_mut() {
            Some(cb) => cb(&report, model),
            None => FitControl::Continue,
        };
        history.push(report);
        control
    }
}

/// A fitted model that samples synthetic tables.
pub trait Synthesizer: Send + Sync {
    /// Which model this is, as written in its saved `model.json`.
    fn model_name(&self) -> &'static str;

    /// `n` synthetic rows; the same seed gives the same table.
    fn sample(&self, n: usize, seed: u64) -> Result<Table>;

    /// `n` synthetic rows that all meet every condition: a category of a discrete column,
    /// or a value or range of a numerical or datetime one. An error names an unknown column
    /// or category, a range on a discrete column, or conditions too rare for the model (with
    /// how rare each was in the real data).
    fn sample_conditional(&self, n: usize, conditions: &[Condition], seed: u64) -> Result<Table>;

    /// Completes rows: every cell of `known` is kept, and every other cell — the columns
    /// `known` lacks, and with `fill_nulls` its null cells — is drawn given the row's known
    /// cells. `known` holds some of the model's columns, typed as it writes them. Seed
    /// rows to complete, the nulls of a table to impute, a column rebalanced to given
    /// shares (a table of that column alone) are all this.
    fn complete(&self, known: &Table, fill_nulls: bool, seed: u64) -> Result<Table> {
        let _ = (known, fill_nulls, seed);
        Err(crate::EngineError::Unsupported(format!(
            "{} cannot complete rows given any of their columns; the argn model can",
            self.model_name()
        )))
    }

    /// `n` rows whose discrete `column` has its categories in `shares` (normalised; the
    /// categories not named are left out), in random order.
    fn rebalance(
        &self,
        n: usize,
        column: &str,
        shares: &[(String, f64)],
        seed: u64,
    ) -> Result<Table> {
        let _ = (n, column, shares, seed);
        Err(crate::EngineError::Unsupported(format!(
            "{} cannot rebalance a column; the argn model can",
            self.model_name()
        )))
    }

    /// What the model never reproduces of the real table (rare categories, extreme
    /// values), column by column; nothing for models without such protection.
    fn protected(&self) -> Vec<crate::argn::Protected> {
        Vec::new()
    }

    /// Writes the model to `dir` (created if needed): weights as safetensors and a JSON
    /// file with the transformer, parameters and loss history. No training data.
    fn save(&self, dir: &Path) -> Result<()>;

    /// Losses per epoch of the fit.
    fn loss_history(&self) -> &[EpochReport];
}
