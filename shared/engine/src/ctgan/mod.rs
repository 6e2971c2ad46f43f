//! CTGAN (Xu et al., NeurIPS 2019) as the reference implementation (SDV's `ctgan`) trains
//! it: a conditional generator and a PacGAN critic under the Wasserstein loss with gradient
//! penalty, trained by sampling conditions, on the [`DataTransformer`]'s encoding.
//!
//! On the model scaffold ([`crate::model`]): the generator is the sampling network, its
//! condition space the state a saved model keeps, and [`train`] the critic, the
//! optimisers and the step.
//!
//! [`DataTransformer`]: crate::transformer::DataTransformer

pub(crate) mod critic;
mod draws;
pub(crate) mod generator;
pub(crate) mod penalty;
mod train;

use candle_core::{Device, Tensor};
use serde::{Deserialize, Serialize};

use crate::error::Result;
use crate::model::{Fitted, Hyperparameters, Model, Request, Spec, Start, Started};
use crate::nn::{BatchNormMode, VarBuilder};
use crate::random::{fill_normal, gumbel_noise};
use crate::sampler::CondSpace;
use crate::transformer::Span;
use generator::{Generator, GeneratorConfig, activate};
pub use synth_models::CtganParams;

/// A fitted CTGAN: everything needed to sample, nothing of the training data.
pub type Ctgan = Fitted<CtganNet>;

/// What CTGAN samples with: the generator, and the activation of each of its output spans.
pub struct CtganNet {
    generator: Generator,
    spans: Vec<Span>,
}

/// What a saved CTGAN keeps besides its weights: the condition space, as `cond`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct CtganState {
    cond: CondSpace,
}

fn tensor(v: Vec<f32>, rows: usize, cols: usize, device: &Device) -> Result<Tensor> {
    Ok(Tensor::from_vec(v, (rows, cols), device)?)
}

fn cat_cond(x: &Tensor, cond: Option<&Tensor>) -> Result<Tensor> {
    Ok(match cond {
        Some(c) => Tensor::cat(&[x, c], 1)?,
        None => x.clone(),
    })
}

impl Hyperparameters for CtganParams {
    type Model = CtganNet;
}

impl Model for CtganNet {
    const TAKES_CONDITION: bool = true;
    type Params = CtganParams;
    type State = CtganState;

    /// The generator, `generator.*`: noise ⊕ condition in, one output per encoded value.
    fn build(spec: &Spec<'_, Self>, vb: VarBuilder<'_>) -> Result<Self> {
        let config = GeneratorConfig {
            input_dim: spec.params.embedding_dim + spec.state.cond.dim(),
            hidden: spec.params.generator_dim.clone(),
            data_dim: spec.transformer.output_width(),
        };
        Ok(Self {
            generator: Generator::new(&config, vb.pp("generator"))?,
            spans: spec.transformer.spans(),
        })
    }

    fn start(start: Start<'_, Self>) -> Result<Started<Self>> {
        train::start(start)
    }

    /// `n` activated rows from the generator, conditioned on real-frequency conditions or on
    /// one fixed (column, category).
    fn generate(&self, spec: &Spec<'_, Self>, request: Request<'_>) -> Result<Vec<f32>> {
        let (n, fixed, rng) = (request.rows, request.condition, request.rng);
        let (b, e) = (spec.params.batch_size, spec.params.embedding_dim);
        let (w, device) = (spec.transformer.output_width(), spec.device);
        let cond = &spec.state.cond;
        let cond_dim = cond.dim();
        let mut out = Vec::with_capacity(n.div_ceil(b) * b * w);
        while out.len() < n * w {
            let mut z = vec![0f32; b * e];
            fill_normal(rng, &mut z);
            let z = tensor(z, b, e, device)?;
            let input = if cond_dim > 0 {
                let c = match fixed {
                    Some((col, slot)) => cond.fixed(b, col, slot),
                    None => cond.sample_original(b, rng),
                };
                Tensor::cat(&[&z, &tensor(c, b, cond_dim, device)?], 1)?
            } else {
                z
            };
            // Unconditional sampling normalises with batch statistics, as the reference does.
            // A batch that shares one condition would have it normalised away, so fixed
            // conditions use the running statistics instead.
            let mode = if fixed.is_some() {
                BatchNormMode::Running
            } else {
                BatchNormMode::Batch
            };
            let logits = self.generator.forward(&input, mode)?;
            let g = tensor(gumbel_noise(b * w, rng), b, w, device)?;
            out.extend(
                activate(&logits, &self.spans, &g)?
                    .flatten_all()?
                    .to_vec1::<f32>()?,
            );
        }
        out.truncate(n * w);
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::random::rng_for;
    use crate::test_support::{
        assert_conditions_hold, assert_reloads, assert_reports_every_epoch, losses, table,
    };
    use crate::{FitOptions, Synthesizer};

    fn small() -> CtganParams {
        CtganParams {
            epochs: 2,
            batch_size: 40,
            generator_dim: vec![32, 32],
            discriminator_dim: vec![32, 32],
            embedding_dim: 16,
            ..Default::default()
        }
    }

    fn fit(seed: u64) -> Ctgan {
        let (t, m) = table(200);
        Ctgan::fit(&t, &m, small(), FitOptions::seeded(seed)).unwrap()
    }

    #[test]
    fn same_seed_same_model_and_samples() {
        let (a, b) = (fit(3), fit(3));
        assert_eq!(a.sample(120, 9).unwrap(), b.sample(120, 9).unwrap());
        assert_eq!(losses(&a), losses(&b));
        assert_ne!(a.sample(120, 9).unwrap(), a.sample(120, 10).unwrap());
        assert_ne!(a.sample(120, 9).unwrap(), fit(4).sample(120, 9).unwrap());
    }

    #[test]
    fn side_by_side_and_in_sequence_train_the_same_model() {
        let (t, m) = table(200);
        for discriminator_steps in [1, 2] {
            let params = CtganParams {
                discriminator_steps,
                ..small()
            };
            let fit = || {
                let options = FitOptions::seeded(5);
                Ctgan::fit(&t, &m, params.clone(), options).unwrap()
            };
            let (together, apart) = (fit(), crate::fused::in_sequence(fit));
            assert_eq!(
                together.sample(100, 1).unwrap(),
                apart.sample(100, 1).unwrap()
            );
            assert_eq!(together.loss_history().len(), 2);
            for (a, b) in together.loss_history().iter().zip(apart.loss_history()) {
                assert_eq!(
                    (a.generator_loss, a.critic_loss),
                    (b.generator_loss, b.critic_loss)
                );
            }
            // Fixed conditions sample with the running statistics, which both fold alike.
            let cond = [crate::Condition::equals("kind", "b")];
            assert_eq!(
                together.sample_conditional(50, &cond, 2).unwrap(),
                apart.sample_conditional(50, &cond, 2).unwrap()
            );
        }
    }

    #[test]
    fn reports_every_epoch_and_keeps_the_history() {
        let (t, m) = table(200);
        let params = CtganParams {
            epochs: 3,
            ..small()
        };
        let seen = assert_reports_every_epoch(3, |o| Ctgan::fit(&t, &m, params, o).unwrap());
        assert!(
            seen.iter()
                .all(|r| r.generator_loss.is_finite() && r.critic_loss.is_some_and(f64::is_finite))
        );
        assert!(seen[2].elapsed_seconds >= seen[1].elapsed_seconds);
    }

    #[test]
    fn conditional_sampling_honours_conditions_and_rejects_unknown_ones() {
        assert_conditions_hold(&fit(5), 90, true);
    }

    #[test]
    fn saved_model_samples_the_same_without_the_data() {
        assert_reloads(&fit(7), "ctgan");
    }

    #[test]
    fn training_teaches_the_generator_its_conditions() {
        // With the condition fixed in the input alone (no rejection), an untrained generator
        // hits "c" about a third of the time; the conditional loss should teach it to obey.
        let (t, m) = table(400);
        let hit_rate = |epochs| {
            let params = CtganParams {
                epochs,
                generator_lr: 2e-3,
                discriminator_lr: 2e-3,
                ..small()
            };
            let model = Ctgan::fit(&t, &m, params, FitOptions::seeded(2)).unwrap();
            let c = model
                .transformer
                .resolve(&crate::Condition::equals("kind", "c"))
                .unwrap();
            let raw = model.generate(400, c.slot, &mut rng_for(1, 0)).unwrap();
            let out = model
                .transformer
                .inverse(&raw, 400, 1, crate::transformer::Shares::AsDrawn)
                .unwrap();
            (0..400)
                .filter(|&i| model.transformer.meets(&out, &c, i))
                .count() as f64
                / 400.0
        };
        let (before, after) = (hit_rate(1), hit_rate(40));
        assert!(
            after > 0.9 && after > before + 0.2,
            "hit rate {before} after 1 epoch, {after} after 40"
        );
    }
}
