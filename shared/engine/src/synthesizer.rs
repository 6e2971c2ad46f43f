//! The one interface every model implements, so the CLI, the trainer and the optimiser
//! choose a model by its parameters and never branch on it afterwards.

use std::path::Path;

use serde::{Deserialize, Serialize};
use synth_core::table::{Metadata, Table};

use crate::ctgan::{Ctgan, CtganParams};
use crate::device::EngineDevice;
use crate::error::{EngineError, Result};
use crate::transformer::TransformerOptions;
use crate::tvae::{Tvae, TvaeParams};

/// Progress after one epoch, passed to the callback and kept in the loss history.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EpochReport {
    /// 1-based.
    pub epoch: usize,
    pub epochs: usize,
    /// The model's own training objective for the generator (decoder for TVAE), last step.
    pub generator_loss: f64,
    /// Critic loss without the penalty, as the reference reports it (0 for models without one).
    pub critic_loss: f64,
    pub epoch_seconds: f64,
    /// Seconds since fitting began, transformer fit included.
    pub elapsed_seconds: f64,
}

/// The per-epoch progress callback.
pub type EpochCallback = Box<dyn FnMut(&EpochReport) + Send>;

/// How to fit, as opposed to what model to fit.
#[derive(Default)]
pub struct FitOptions {
    pub seed: u64,
    pub device: EngineDevice,
    pub transformer: TransformerOptions,
    pub on_epoch: Option<EpochCallback>,
}

/// A fitted model that samples synthetic tables.
pub trait Synthesizer: Send + Sync {
    /// Which model this is, as written in its saved `model.json`.
    fn model_name(&self) -> &'static str;

    /// `n` synthetic rows; the same seed gives the same table.
    fn sample(&self, n: usize, seed: u64) -> Result<Table>;

    /// `n` synthetic rows that all satisfy every `column = value` condition (discrete
    /// columns only); an error names an unknown column or category, or a condition too rare.
    fn sample_conditional(
        &self,
        n: usize,
        conditions: &[(String, String)],
        seed: u64,
    ) -> Result<Table>;

    /// Writes the model to `dir` (created if needed): weights as safetensors and a JSON
    /// file with the transformer, parameters and loss history. No training data.
    fn save(&self, dir: &Path) -> Result<()>;

    /// Losses per epoch of the fit.
    fn loss_history(&self) -> &[EpochReport];
}

/// A model choice with its hyperparameters, in the seed platform's JSON:
/// `{"model": "ctgan", "epochs": 300, …}`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "model", rename_all = "lowercase")]
pub enum ModelParams {
    Ctgan(CtganParams),
    Tvae(TvaeParams),
}

impl ModelParams {
    /// The epochs the model will train for, so callers can size progress bars without
    /// matching on the model.
    pub fn epochs(&self) -> usize {
        match self {
            ModelParams::Ctgan(p) => p.epochs,
            ModelParams::Tvae(p) => p.epochs,
        }
    }

    /// The model's name, as in the JSON's `"model"` field and in saved models.
    pub fn model_name(&self) -> &'static str {
        match self {
            ModelParams::Ctgan(_) => "ctgan",
            ModelParams::Tvae(_) => "tvae",
        }
    }

    /// Checks the hyperparameters, naming the first one that is wrong.
    pub fn validate(&self) -> Result<()> {
        match self {
            ModelParams::Ctgan(p) => p.validate(),
            ModelParams::Tvae(p) => p.validate(),
        }
    }
}

/// Fits the chosen model.
pub fn fit(
    table: &Table,
    metadata: &Metadata,
    params: &ModelParams,
    options: FitOptions,
) -> Result<Box<dyn Synthesizer>> {
    Ok(match params {
        ModelParams::Ctgan(p) => Box::new(Ctgan::fit(table, metadata, p.clone(), options)?),
        ModelParams::Tvae(p) => Box::new(Tvae::fit(table, metadata, p.clone(), options)?),
    })
}

/// Loads whichever model was saved in `dir`, onto `device`.
pub fn load(dir: &Path, device: EngineDevice) -> Result<Box<dyn Synthesizer>> {
    #[derive(Deserialize)]
    struct Header {
        model: String,
    }
    let text = std::fs::read_to_string(dir.join(crate::MODEL_FILE)).map_err(|e| {
        EngineError::InvalidModel(format!("{}: {e}", dir.join(crate::MODEL_FILE).display()))
    })?;
    let header: Header = serde_json::from_str(&text)?;
    match header.model.as_str() {
        "ctgan" => Ok(Box::new(Ctgan::load(dir, device)?)),
        "tvae" => Ok(Box::new(Tvae::load(dir, device)?)),
        other => Err(EngineError::InvalidModel(format!(
            "unknown model {other:?}"
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn model_params_read_the_seed_platform_json() {
        let p: ModelParams =
            serde_json::from_str(r#"{"model": "ctgan", "epochs": 5, "pac": 5}"#).unwrap();
        let ModelParams::Ctgan(c) = &p else {
            panic!("ctgan")
        };
        assert_eq!((c.epochs, c.pac, c.batch_size), (5, 5, 500));
        let back: ModelParams = serde_json::from_str(&serde_json::to_string(&p).unwrap()).unwrap();
        assert_eq!(back, p);
        assert!(serde_json::from_str::<ModelParams>(r#"{"model": "gpt", "epochs": 5}"#).is_err());
        assert!(serde_json::from_str::<ModelParams>(r#"{"model": "ctgan", "epoch": 5}"#).is_err());
        let p: ModelParams = serde_json::from_str(
            r#"{"model": "tvae", "epochs": 7, "compress_dims": [64, 64], "loss_factor": 2}"#,
        )
        .unwrap();
        let ModelParams::Tvae(t) = &p else {
            panic!("tvae")
        };
        assert_eq!((t.epochs, t.batch_size), (7, 500));
        assert_eq!((p.epochs(), p.model_name()), (7, "tvae"));
        p.validate().unwrap();
        assert_eq!(t.compress_dims, [64, 64]);
        let back: ModelParams = serde_json::from_str(&serde_json::to_string(&p).unwrap()).unwrap();
        assert_eq!(back, p);
        assert!(serde_json::from_str::<ModelParams>(r#"{"model": "tvae", "pac": 5}"#).is_err());
    }
}
