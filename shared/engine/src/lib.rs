//! Synth's engine: learns a table with a deep generative model and samples synthetic rows
//! that keep its statistics. It takes and returns [`synth_table::Table`]s, knows
//! nothing of files, AWS or HTTP, and runs on candle (CPU by default; the `cuda` feature
//! adds the GPU).
//!
//! - [`transformer`]: tables ⇄ the `f32` matrix models learn from (mode-specific
//!   normalisation with a Dirichlet-process Gaussian mixture, one-hot, nulls, ids,
//!   high-cardinality columns).
//! - [`model`]: the scaffold every model is built on — the fit's preamble, the epoch loop,
//!   callbacks, early stopping, sampling and one saved-model format — so that a model
//!   supplies only its networks, its training step and its sampler ([`model::Model`]).
//! - [`ctgan`]: CTGAN with the reference implementation's defaults.
//! - [`tvae`]: TVAE with the reference implementation's defaults.
//! - [`argn`]: the autoregressive model: columns as tokens, one regressor per column,
//!   trained in random column orders, so it samples any columns given any others exactly.
//! - [`constrained`]: any model under constraints (`synth-constraints`): the model learns
//!   the table as the constraints' plan changes it, and no sampled row breaks one.
//! - [`optimize`]: hyperparameter search (grid, random, Bayesian; the `synth-search`
//!   crate) of a model, scored on a holdout.
//! - [`Synthesizer`]: the interface every fitted model offers; [`fit`] and [`load`] choose
//!   the model from its parameters ([`ModelParams`]) or its saved files.

pub mod argn;
pub mod condition;
pub mod constrained;
pub mod ctgan;
pub mod device;
pub mod error;
pub(crate) mod fused;
pub mod model;
pub mod models;
pub mod nn;
pub(crate) mod optim;
pub mod optimize;
pub(crate) mod random;
pub(crate) mod rows;
pub(crate) mod sampler;
pub mod synthesizer;
#[cfg(test)]
mod test_support;
pub mod transformer;
pub mod tvae;

pub use argn::{Argn, ArgnParams, Protected};
pub use condition::{Bound, Condition, Test};
pub use constrained::{CONSTRAINTS_FILE, fit_constrained};
pub use ctgan::{Ctgan, CtganParams};
pub use device::EngineDevice;
pub use error::{EngineError, Result};
pub use model::{EarlyStopping, Fitted, Hyperparameters, Losses, Model, Trainer};
pub use models::{ModelParams, fit, load};
pub use optimize::{Optimization, OptimizeOptions, OptimizeRequest, optimize};
pub use synthesizer::{
    CheckpointCallback, EpochCallback, EpochReport, FitControl, FitOptions, Synthesizer,
};
pub use transformer::{DataTransformer, Encoded, Span, SpanKind, TransformerOptions};
pub use tvae::{Tvae, TvaeParams};

/// The JSON file of a saved model (kind, parameters, transformer, loss history).
pub const MODEL_FILE: &str = "model.json";
/// The safetensors file of a saved model's weights.
pub const WEIGHTS_FILE: &str = "weights.safetensors";
