//! One saved-model format for every model: a folder holding [`crate::MODEL_FILE`] — the
//! model's name and format version, its parameters, the fitted transformer, what else the
//! model keeps ([`super::Model::State`], its fields inline), and the loss history — and
//! [`crate::WEIGHTS_FILE`], the sampling networks' weights and buffers by name
//! (safetensors). No training data.
//!
//! This is the layout CTGAN and TVAE each wrote as format 1 before they shared it: the same
//! fields in the same order (CTGAN's `cond` is its state), so the files of format 1 are
//! read, and written, exactly as before, and the version stays 1.

use std::collections::HashMap;
use std::path::Path;

use candle_core::{DType, Device, Tensor};
use serde::{Deserialize, Serialize};

use synth_models::Params;

use super::{Fitted, Model, Spec};
use crate::device::EngineDevice;
use crate::error::{EngineError, Result};
use crate::nn::{NamedVars, VarBuilder};
use crate::synthesizer::EpochReport;
use crate::transformer::DataTransformer;

/// What the model file holds; written from references, read into owned values.
#[derive(Serialize, Deserialize)]
struct SavedModel<P, T, S, H> {
    model: String,
    format_version: u32,
    params: P,
    transformer: T,
    #[serde(flatten)]
    state: S,
    loss_history: H,
}

/// A saved model as read, before its networks are built.
type Read<M> =
    SavedModel<<M as Model>::Params, DataTransformer, <M as Model>::State, Vec<EpochReport>>;

/// Writes `model` to `dir` (created if needed).
pub(super) fn save<M: Model>(model: &Fitted<M>, dir: &Path) -> Result<()> {
    std::fs::create_dir_all(dir)?;
    save_weights(model.vars.all(), dir)?;
    let saved = SavedModel {
        model: M::NAME.to_owned(),
        format_version: M::FORMAT_VERSION,
        params: &model.params,
        transformer: &model.transformer,
        state: &model.state,
        loss_history: &model.history[..],
    };
    std::fs::write(dir.join(crate::MODEL_FILE), serde_json::to_vec(&saved)?)?;
    Ok(())
}

impl<M: Model> Fitted<M> {
    /// Loads a model saved by [`crate::Synthesizer::save`] onto `device`; a folder that
    /// holds another model, another format, or weights that do not fit is an error.
    pub fn load(dir: &Path, device: EngineDevice) -> Result<Self> {
        let text = std::fs::read_to_string(dir.join(crate::MODEL_FILE))?;
        let saved: Read<M> = serde_json::from_str(&text)?;
        check_saved_kind(
            (&saved.model, saved.format_version),
            (M::NAME, M::FORMAT_VERSION),
        )?;
        saved.params.validate()?;
        let device = device.candle()?;
        let weights = candle_core::safetensors::load(dir.join(crate::WEIGHTS_FILE), &device)?;
        let vb = VarBuilder::from_saved(weights, DType::F32, &device);
        let spec = Spec {
            params: &saved.params,
            transformer: &saved.transformer,
            state: &saved.state,
            device: &device,
        };
        let net = M::build(&spec, vb.clone())?;
        device.synchronize()?;
        Ok(Self {
            params: saved.params,
            transformer: saved.transformer,
            state: saved.state,
            device,
            net,
            vars: vb.vars(),
            history: saved.loss_history,
        })
    }
}

/// Checks that a saved model file holds a `model` model of `format_version`, as the
/// loader reading it expects.
pub(crate) fn check_saved_kind(
    (found, found_version): (&str, u32),
    (model, format_version): (&str, u32),
) -> Result<()> {
    if found != model || found_version != format_version {
        return Err(EngineError::InvalidModel(format!(
            "expected a {model} model of format {format_version}, found {found} of format {found_version}"
        )));
    }
    Ok(())
}

/// Writes `vars` under their names to the saved model's weights file in `dir`.
pub(crate) fn save_weights(vars: NamedVars, dir: &Path) -> Result<()> {
    let weights: HashMap<String, Tensor> = vars
        .into_iter()
        .map(|(name, var)| Ok((name, var.as_tensor().to_device(&Device::Cpu)?)))
        .collect::<Result<_>>()?;
    candle_core::safetensors::save(&weights, dir.join(crate::WEIGHTS_FILE))?;
    Ok(())
}
