//! The models the engine offers, chosen by their parameters: [`ModelParams`] (from
//! `synth-models`) is one model's hyperparameters in the seed platform's JSON
//! (`{"model": "ctgan", …}`), [`fit`] trains the model it names and [`load`] whichever model
//! a folder holds. Adding a model is its parameters in `synth-models`, its arm in [`fit`]
//! and its line in [`LOADERS`]; everything else goes through the [`Model`] trait.

use std::path::Path;

use serde::Deserialize;
pub use synth_models::ModelParams;
use synth_models::Params;
use synth_table::{Metadata, Table};

use crate::argn::{Argn, ArgnParams};
use crate::ctgan::CtganNet;
use crate::device::EngineDevice;
use crate::error::{EngineError, Result};
use crate::model::{Fitted, Model};
use crate::synthesizer::{FitOptions, Synthesizer};
use crate::tvae::TvaeNet;

/// Fits the chosen model.
pub fn fit(
    table: &Table,
    metadata: &Metadata,
    params: &ModelParams,
    options: FitOptions,
) -> Result<Box<dyn Synthesizer>> {
    match params {
        ModelParams::Ctgan(p) => fit_as::<CtganNet>(table, metadata, p, options),
        ModelParams::Tvae(p) => fit_as::<TvaeNet>(table, metadata, p, options),
        ModelParams::Argn(p) => Ok(Box::new(Argn::fit(table, metadata, p.clone(), options)?)),
    }
}

fn fit_as<M: Model>(
    table: &Table,
    metadata: &Metadata,
    params: &M::Params,
    options: FitOptions,
) -> Result<Box<dyn Synthesizer>> {
    Ok(Box::new(Fitted::<M>::fit(
        table,
        metadata,
        params.clone(),
        options,
    )?))
}

/// Loads a saved model of one kind.
type Loader = fn(&Path, EngineDevice) -> Result<Box<dyn Synthesizer>>;

fn load_as<M: Model>(dir: &Path, device: EngineDevice) -> Result<Box<dyn Synthesizer>> {
    Ok(Box::new(Fitted::<M>::load(dir, device)?))
}

/// The loader of each model, by the name its saved models carry.
const LOADERS: &[(&str, Loader)] = &[
    (CtganNet::NAME, load_as::<CtganNet>),
    (TvaeNet::NAME, load_as::<TvaeNet>),
    (ArgnParams::NAME, |dir, device| {
        Ok(Box::new(Argn::load(dir, device)?))
    }),
];

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
    match LOADERS.iter().find(|(name, _)| *name == header.model) {
        Some((_, load)) => crate::constrained::Constrained::load_around(load(dir, device)?, dir),
        None => Err(EngineError::InvalidModel(format!(
            "unknown model {:?}",
            header.model
        ))),
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicBool, Ordering};

    use super::*;
    use crate::synthesizer::FitControl;
    use crate::test_support::table;
    use crate::{CtganParams, TvaeParams};

    fn both(epochs: usize) -> [ModelParams; 3] {
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
            ModelParams::Argn(ArgnParams {
                epochs,
                batch_size: 50,
                hidden_dims: vec![16],
                embedding_dim: Some(8),
                validation_share: 0.0,
                ..ArgnParams::default()
            }),
        ]
    }

    fn losses(model: &dyn Synthesizer) -> Vec<(f64, Option<f64>)> {
        model
            .loss_history()
            .iter()
            .map(|r| (r.generator_loss, r.critic_loss))
            .collect()
    }

    #[test]
    fn each_model_is_named_alike_in_its_parameters_and_its_saved_files() {
        for params in both(1) {
            let name = params.model_name();
            assert_eq!(serde_json::to_value(&params).unwrap()["model"], name);
            assert_eq!(LOADERS.iter().filter(|(n, _)| *n == name).count(), 1);
        }
        assert_eq!(LOADERS.len(), both(1).len());
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
            // Only a model with a critic reports a critic loss.
            let has_critic = matches!(params, ModelParams::Ctgan(_));
            assert!(
                plain
                    .loss_history()
                    .iter()
                    .all(|r| r.critic_loss.is_some() == has_critic),
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
            // Raised before: the fit ends while it learns the columns, with nothing to keep.
            let stop = Arc::new(AtomicBool::new(true));
            let options = FitOptions {
                stop: Some(stop),
                ..FitOptions::default()
            };
            let stopped = fit(&t, &m, &params, options);
            assert!(
                matches!(stopped, Err(EngineError::Stopped)),
                "{}",
                params.model_name()
            );
            let fit_with = |options| fit(&t, &m, &params, options).unwrap();
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
