//! The skeleton every model is built on, so that a model supplies only what is its own:
//!
//! - its **networks**: [`Model::build`] makes the sampling networks from a [`VarBuilder`]
//!   (seeded for a fit, the saved weights for a load), each network a `Config` and a
//!   `new(&config, vb)` with a `forward`, as candle-nn writes them; the parameters, the
//!   transformer, the model's saved state and the device come with every call in a
//!   [`Spec`], so the model's value holds networks only;
//! - its **training**: [`Model::start`] builds what only training needs (a critic, an
//!   encoder, optimisers) and returns a [`Trainer`], whose [`Trainer::step`] is one step;
//! - its **sampler**: [`Model::generate`] turns noise into encoded rows, optionally with
//!   one discrete column fixed to one category;
//! - its **hyperparameters**: a [`Hyperparameters`] type (defaults, validation, search
//!   space).
//!
//! The scaffold does the rest, once for every model: the fit's preamble (transformer fit
//! and transform, seeding, device), the epoch loop with its [`EpochReport`]s, the stop
//! flag, progress and checkpoint callbacks and an early-stopping hook ([`fit`]); sampling
//! and conditional sampling by rejection; and one saved-model format ([`saved`]). A fitted
//! model is a [`Fitted<M>`]; [`crate::Ctgan`] and [`crate::Tvae`] are two of them.

pub mod fit;
pub mod params;
pub mod saved;
#[cfg(test)]
mod tests;

use std::path::Path;
use std::sync::Arc;

use candle_core::{DType, Device, Var};
use serde::Serialize;
use serde::de::DeserializeOwned;
use synth_models::Params;
use synth_table::Table;

use crate::condition::Condition;
use crate::error::Result;
use crate::nn::{VarBuilder, Vars};
use crate::random::{EngineRng, rng_for};
use crate::rows::{model_input, resolve_all, sample_matching};
use crate::synthesizer::{EpochReport, FitControl, Synthesizer};
use crate::transformer::{DataTransformer, Encoded, Shares};
pub use fit::{EarlyStopping, Losses};
pub use params::Hyperparameters;

/// A model: its sampling networks (the value), and how it is trained and sampled.
pub trait Model: Sized + Send + Sync + 'static {
    /// Its name, as in the parameters' `"model"` field and in saved models.
    const NAME: &'static str = <Self::Params as synth_models::Params>::NAME;
    /// The version of what the model keeps in a saved model (its state and weight names);
    /// a loader reads only its own version. Bump it when either changes.
    const FORMAT_VERSION: u32 = 1;
    /// Whether [`Request::condition`] shapes the rows it generates (CTGAN's conditional
    /// vector); a model that ignores it draws every row as it draws the whole table.
    const TAKES_CONDITION: bool = false;
    type Params: Hyperparameters<Model = Self>;
    /// What a saved model keeps of it besides its parameters, transformer, loss history
    /// and weights (CTGAN: its condition space), as fields of `model.json`.
    type State: Serialize + DeserializeOwned + Send + Sync;

    /// The sampling networks, their variables from `vb`.
    fn build(spec: &Spec<'_, Self>, vb: VarBuilder<'_>) -> Result<Self>;

    /// Starts a fit: the sampling networks ([`Start::build`]) and whatever else training
    /// needs ([`Start::seeded`]), drawn from the fit's generator in a fixed order, and the
    /// trainer.
    fn start(start: Start<'_, Self>) -> Result<Started<Self>>;

    /// Rows of activated model output, as the transformer decodes them.
    fn generate(&self, spec: &Spec<'_, Self>, request: Request<'_>) -> Result<Vec<f32>>;
}

/// What [`Model::generate`] is asked for.
pub struct Request<'a> {
    /// How many rows.
    pub rows: usize,
    /// A (discrete column, category) a conditional model asks its rows to have; any model
    /// may ignore it, as conditional sampling keeps only the rows that match.
    pub condition: Option<(usize, usize)>,
    /// Where the sampler's randomness comes from.
    pub rng: &'a mut EngineRng,
}

/// One training run, driven by the scaffold's epoch loop ([`fit::run_epochs`]).
pub trait Trainer {
    /// Prepares epoch `epoch` (0-based; e.g. shuffles the rows) and says how many steps it
    /// has.
    fn begin_epoch(&mut self, epoch: usize) -> Result<usize>;

    /// One training step. The stop flag is checked before each.
    fn step(&mut self) -> Result<()>;

    /// The losses the epoch's report shows, once its steps are done.
    fn end_epoch(&mut self) -> Result<Losses>;

    /// After each epoch's report: whether the model wants to stop here (early stopping,
    /// e.g. on a validation loss with an [`EarlyStopping`]). Training goes on by default.
    fn early_stop(&mut self, _report: &EpochReport) -> Result<FitControl> {
        Ok(FitControl::Continue)
    }

    /// Once training has ended, however it ended (e.g. puts back the weights of the best
    /// epoch). Nothing by default.
    fn finish(&mut self) -> Result<()> {
        Ok(())
    }
}

/// What a model's networks are shaped by and sample with, besides their weights.
pub struct Spec<'a, M: Model> {
    pub params: &'a M::Params,
    pub transformer: &'a DataTransformer,
    pub state: &'a M::State,
    pub device: &'a Device,
}

/// What a model starts a fit from, after the scaffold's preamble.
pub struct Start<'a, M: Model> {
    pub params: &'a M::Params,
    pub transformer: &'a DataTransformer,
    /// The encoded table (at least one row and one column).
    pub data: Arc<Encoded>,
    pub device: &'a Device,
    /// Stream 1 of the fit's seed: networks first, then training's own draws.
    pub rng: EngineRng,
}

impl<M: Model> Start<'_, M> {
    /// The sampling networks for `state`, their initial weights drawn next from `rng`.
    pub fn build(&mut self, state: M::State) -> Result<Built<M>> {
        let (params, transformer, device) = (self.params, self.transformer, self.device);
        let vb = VarBuilder::seeded(&mut self.rng, DType::F32, device);
        let spec = Spec {
            params,
            transformer,
            state: &state,
            device,
        };
        let net = M::build(&spec, vb.clone())?;
        Ok(Built {
            net,
            state,
            vars: vb.vars(),
        })
    }

    /// Networks only training needs (a critic, an encoder), made by `make` with initial
    /// weights drawn next from `rng`, and their trained variables.
    pub fn seeded<T>(
        &mut self,
        make: impl FnOnce(VarBuilder<'_>) -> Result<T>,
    ) -> Result<(T, Vec<Var>)> {
        let vb = VarBuilder::seeded(&mut self.rng, DType::F32, self.device);
        let made = make(vb.clone())?;
        Ok((made, vb.vars().trained_vars()))
    }
}

/// A model's sampling networks, the state they were built for and the variables they were
/// built with (those are saved).
pub struct Built<M: Model> {
    pub net: M,
    pub state: M::State,
    pub vars: Vars,
}

/// A started fit: the model to train (trained in place, so checkpoints sample from it as
/// it is) and its trainer.
pub struct Started<M: Model> {
    pub model: Built<M>,
    pub trainer: Box<dyn Trainer>,
}

/// A fitted model: everything needed to sample, nothing of the training data.
pub struct Fitted<M: Model> {
    pub(crate) params: M::Params,
    pub(crate) transformer: DataTransformer,
    pub(crate) state: M::State,
    pub(crate) device: Device,
    pub(crate) net: M,
    /// The sampling networks' variables, saved with the model.
    pub(crate) vars: Vars,
    pub(crate) history: Vec<EpochReport>,
}

impl<M: Model> Fitted<M> {
    /// The fitted transformer (column order, spans) of this model.
    pub fn transformer(&self) -> &DataTransformer {
        &self.transformer
    }

    pub fn params(&self) -> &M::Params {
        &self.params
    }

    /// What the networks sample with.
    pub(crate) fn spec(&self) -> Spec<'_, M> {
        Spec {
            params: &self.params,
            transformer: &self.transformer,
            state: &self.state,
            device: &self.device,
        }
    }

    /// `n` rows of model output; see [`Model::generate`].
    pub(crate) fn generate(
        &self,
        n: usize,
        condition: Option<(usize, usize)>,
        rng: &mut EngineRng,
    ) -> Result<Vec<f32>> {
        let request = Request {
            rows: n,
            condition,
            rng,
        };
        self.net.generate(&self.spec(), request)
    }
}

impl<M: Model> Synthesizer for Fitted<M> {
    fn model_name(&self) -> &'static str {
        M::NAME
    }

    fn sample(&self, n: usize, seed: u64) -> Result<Table> {
        let data = self.generate(n, None, &mut rng_for(seed, 10))?;
        self.transformer.inverse(&data, n, seed, Shares::Real)
    }

    /// Asks the model for the first category condition [`model_input`] names (CTGAN's
    /// conditional vector) and keeps only the decoded rows that meet all
    /// conditions, on any column (rejection), so the result honours them exactly. Batches
    /// of at least `batch_size` rows, sized by the rate met so far, are drawn until `n`
    /// rows match; after [`crate::rows::MAX_CONDITIONAL_BATCHES`] batches (or that many
    /// times `n` rows) it fails with [`crate::EngineError::InvalidCondition`] saying the
    /// combination is too rare for this model. Conditions not asked of the model need about
    /// n / p rows for a condition its samples meet at rate p.
    fn sample_conditional(&self, n: usize, conditions: &[Condition], seed: u64) -> Result<Table> {
        if conditions.is_empty() {
            return self.sample(n, seed);
        }
        // Names an unknown column or category, a range on a discrete column, an id.
        let resolved = resolve_all(&self.transformer, conditions)?;
        let slot = model_input(&resolved, n);
        let shares = match slot {
            Some(_) if M::TAKES_CONDITION => Shares::AsDrawn,
            _ => Shares::Real,
        };
        sample_matching(
            &self.transformer,
            n,
            self.params.batch_size(),
            &resolved,
            seed,
            shares,
            |want, rng| self.generate(want, slot, rng),
        )
    }

    fn save(&self, dir: &Path) -> Result<()> {
        saved::save(self, dir)
    }

    fn loss_history(&self) -> &[EpochReport] {
        &self.history
    }
}
