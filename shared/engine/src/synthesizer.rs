//! The one interface every model implements, so the CLI, the trainer and the optimiser
//! choose a model by its parameters and never branch on it afterwards.

use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use synth_table::{Metadata, Table};

use crate::ctgan::{Ctgan, CtganParams};
use crate::device::EngineDevice;
use crate::error::{EngineError, Result};
use crate::optimize::space::{Domain, SearchSpace, Tunable};
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
}

impl FitOptions {
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

/// Checks that a saved `model.json` holds a `model` model of `format_version`, as the
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

    /// The parameters a search may change, with their types.
    pub fn tunable(&self) -> &'static [Tunable] {
        match self {
            ModelParams::Ctgan(_) => CtganParams::TUNABLE,
            ModelParams::Tvae(_) => TvaeParams::TUNABLE,
        }
    }

    /// The model's default search space.
    pub fn search_space(&self) -> SearchSpace {
        match self {
            ModelParams::Ctgan(_) => CtganParams::search_space(),
            ModelParams::Tvae(_) => TvaeParams::search_space(),
        }
    }

    /// A user's search space in the seed platform's JSON, checked against this model: known
    /// names, types, ranges, and choices these parameters accept.
    pub fn parse_search_space(&self, json: &Value) -> Result<SearchSpace> {
        let space = SearchSpace::parse(json, self.model_name(), self.tunable())?;
        for d in &space.dims {
            if let Domain::Choice { values } = &d.domain {
                for v in values {
                    let point = Map::from_iter([(d.name.clone(), v.clone())]);
                    self.with_point(&point).map_err(|e| {
                        EngineError::InvalidSearch(format!(
                            "{}: choice {v} is not valid: {e}",
                            d.name
                        ))
                    })?;
                }
            }
        }
        Ok(space)
    }

    /// Moves a search point onto values the model accepts (CTGAN: a batch size that is a
    /// multiple of pac).
    pub fn normalise_point(&self, point: &mut Map<String, Value>) {
        if let ModelParams::Ctgan(p) = self {
            p.normalise_point(point);
        }
    }

    /// These parameters with a search point's values, checked.
    pub fn with_point(&self, point: &Map<String, Value>) -> Result<Self> {
        Ok(match self {
            ModelParams::Ctgan(p) => ModelParams::Ctgan(p.with_point(point)?),
            ModelParams::Tvae(p) => ModelParams::Tvae(p.with_point(point)?),
        })
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
    use crate::test_support::table;

    fn both(epochs: usize) -> [ModelParams; 2] {
        [
            ModelParams::Ctgan(CtganParams {
                epochs,
                batch_size: 50,
                pac: 5,
                generator_dim: vec![16],
                discriminator_dim: vec![16],
                embedding_dim: 8,
                ..CtganParams::default()
            }),
            ModelParams::Tvae(TvaeParams {
                epochs,
                batch_size: 50,
                compress_dims: vec![16],
                decompress_dims: vec![16],
                embedding_dim: 8,
                ..TvaeParams::default()
            }),
        ]
    }

    fn losses(model: &dyn Synthesizer) -> Vec<(f64, f64)> {
        model
            .loss_history()
            .iter()
            .map(|r| (r.generator_loss, r.critic_loss))
            .collect()
    }

    #[test]
    fn default_search_spaces_name_tunable_parameters_and_draw_valid_ones() {
        let mut rng = <rand_chacha::ChaCha8Rng as rand::SeedableRng>::seed_from_u64(1);
        for base in both(5) {
            let space = base.search_space();
            for _ in 0..50 {
                let mut point = space.to_map(&space.sample(&mut rng));
                let tunable = |k: &String| base.tunable().iter().any(|(n, _)| n == k);
                assert!(point.keys().all(tunable), "{point:?}");
                let params = base.with_point(&point).unwrap();
                // What is recorded of a point is what is trained.
                base.normalise_point(&mut point);
                let json = serde_json::to_value(&params).unwrap();
                let batch = point["batch_size"].as_u64().unwrap();
                assert_eq!(json["batch_size"].as_u64(), Some(batch));
                assert!((100..=1000).contains(&batch));
                if let ModelParams::Ctgan(p) = &params {
                    assert_eq!(p.batch_size % p.pac, 0);
                    assert_eq!(json["generator_lr"], point["learning_rate"]);
                }
            }
        }
    }

    #[test]
    fn a_checkpoint_sees_the_model_so_far_and_can_end_training() {
        let (t, m) = table(150);
        for params in both(5) {
            let fit_with = |options| fit(&t, &m, &params, options).unwrap();
            let plain = fit_with(FitOptions::default());
            // Sampling the model at every epoch leaves training as it was.
            let seen = Arc::new(std::sync::Mutex::new(Vec::new()));
            let sink = seen.clone();
            let watched = fit_with(FitOptions {
                checkpoint: Some(Box::new(move |r, model| {
                    let sample = model.sample(30, 1).expect("samples mid-training");
                    sink.lock().unwrap().push((r.epoch, sample.n_rows()));
                    FitControl::Continue
                })),
                ..FitOptions::default()
            });
            assert_eq!(
                losses(&*watched),
                losses(&*plain),
                "{}",
                params.model_name()
            );
            assert_eq!(
                *seen.lock().unwrap(),
                (1..=5).map(|e| (e, 30)).collect::<Vec<_>>()
            );
            // Stop after the second epoch: the model trained so far comes back.
            let stopped = fit_with(FitOptions {
                checkpoint: Some(Box::new(|r, _| {
                    if r.epoch == 2 {
                        FitControl::Stop
                    } else {
                        FitControl::Continue
                    }
                })),
                ..FitOptions::default()
            });
            assert_eq!(losses(&*stopped), losses(&*plain)[..2]);
            stopped.sample(10, 0).unwrap();
        }
    }

    #[test]
    fn the_stop_flag_ends_training_at_the_next_step() {
        let (t, m) = table(150);
        for params in both(50) {
            let fit_with = |options| fit(&t, &m, &params, options).unwrap();
            let stop = Arc::new(AtomicBool::new(true));
            let model = fit_with(FitOptions {
                stop: Some(stop),
                ..FitOptions::default()
            });
            assert!(model.loss_history().is_empty(), "{}", params.model_name());
            // Raised during the third epoch: that epoch is not finished.
            let stop = Arc::new(AtomicBool::new(false));
            let flag = stop.clone();
            let model = fit_with(FitOptions {
                stop: Some(stop),
                on_epoch: Some(Box::new(move |r| {
                    if r.epoch == 2 {
                        flag.store(true, Ordering::Relaxed);
                    }
                })),
                ..FitOptions::default()
            });
            assert_eq!(model.loss_history().len(), 2, "{}", params.model_name());
        }
    }

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
