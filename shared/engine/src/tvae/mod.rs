//! TVAE (Xu et al., NeurIPS 2019) as the reference implementation (SDV's `ctgan` package,
//! `TVAE`) trains it: a variational autoencoder on the [`DataTransformer`]'s encoding, with
//! a Gaussian reconstruction loss of learnable σ on α entries and cross-entropy on one-hot
//! spans.
//!
//! Sampling draws latent codes from N(0, I), decodes them, applies tanh and adds N(0, σ)
//! noise to the α entries, as the reference does, and draws each one-hot span from the
//! decoder's distribution over it (where the reference takes the most likely entry).
//! TVAE has no conditional input, so [`crate::Synthesizer::sample_conditional`] works by
//! rejection alone: it samples batches unconditionally (at least `batch_size` rows each)
//! and keeps the decoded rows that meet every condition; after [`MAX_CONDITIONAL_BATCHES`]
//! batches without enough it fails, saying the combination is too rare for this model.
//!
//! On the model scaffold ([`crate::model`]): the decoder and σ are the sampling network
//! (all a saved model keeps; the encoder is not kept), and [`train`] the encoder, the
//! optimiser and the step.
//!
//! [`DataTransformer`]: crate::transformer::DataTransformer

mod loss;
mod network;
mod train;

use candle_core::{Device, Tensor};
use serde::{Deserialize, Serialize};

use crate::error::Result;
use crate::model::{Fitted, Hyperparameters, Model, Request, Spec, Start, Started};
use crate::nn::VarBuilder;
use crate::random::{fill_normal, gumbel_noise};
use loss::Layout;
use network::{Decoder, DecoderConfig};
pub use synth_models::tvae::TvaeParams;

pub use crate::rows::MAX_CONDITIONAL_BATCHES;

/// A fitted TVAE: the decoder, its σ and the transformer; nothing of the training data.
pub type Tvae = Fitted<TvaeNet>;

/// What TVAE samples with: the decoder and its σ, and where the α entries are.
pub struct TvaeNet {
    decoder: Decoder,
    layout: Layout,
}

/// TVAE keeps nothing in a saved model besides its parameters, transformer and weights.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct NoState {}

fn tensor(v: Vec<f32>, rows: usize, cols: usize, device: &Device) -> Result<Tensor> {
    Ok(Tensor::from_vec(v, (rows, cols), device)?)
}

impl TvaeNet {
    /// The current σ of every α entry, in span order.
    fn sigmas(&self) -> Result<Vec<f32>> {
        Ok(self.decoder.sigma.as_tensor().to_vec1::<f32>()?)
    }
}

impl Fitted<TvaeNet> {
    /// The current σ of every α entry, in span order.
    pub fn sigmas(&self) -> Result<Vec<f32>> {
        self.net.sigmas()
    }
}

impl Hyperparameters for TvaeParams {
    type Model = TvaeNet;
}

impl Model for TvaeNet {
    type Params = TvaeParams;
    type State = NoState;

    /// The decoder and σ, `decoder.*`: latent code in, one output per encoded value.
    fn build(spec: &Spec<'_, Self>, vb: VarBuilder<'_>) -> Result<Self> {
        let layout = Layout::new(&spec.transformer.spans());
        let config = DecoderConfig {
            embedding_dim: spec.params.embedding_dim,
            hidden: spec.params.decompress_dims.clone(),
            data_dim: spec.transformer.output_width(),
            n_alpha: layout.alpha.len(),
        };
        let decoder = Decoder::new(&config, vb.pp("decoder"))?;
        Ok(Self { decoder, layout })
    }

    fn start(start: Start<'_, Self>) -> Result<Started<Self>> {
        train::start(start)
    }

    /// `n` rows of decoder output: latent codes from N(0, I), tanh and N(0, σ) noise on the
    /// α entries, Gumbel noise on the logits of categories and null flags (modes keep theirs).
    /// TVAE takes no condition as input: conditional sampling is by rejection alone.
    fn generate(&self, spec: &Spec<'_, Self>, request: Request<'_>) -> Result<Vec<f32>> {
        let (n, rng) = (request.rows, request.rng);
        let (b, e) = (spec.params.batch_size, spec.params.embedding_dim);
        let w = spec.transformer.output_width();
        let sigma = self.sigmas()?;
        let drawn = self.layout.one_hot.iter().zip(&self.layout.mode);
        let one_hot: usize = drawn
            .filter(|(_, mode)| !**mode)
            .map(|(&(_, width), _)| width)
            .sum();
        let mut out = Vec::with_capacity(n * w);
        while out.len() < n * w {
            let rows = b.min(n - out.len() / w);
            let mut z = vec![0f32; rows * e];
            fill_normal(rng, &mut z);
            let raw = self.decoder.forward(&tensor(z, rows, e, spec.device)?)?;
            let mut fake = raw.flatten_all()?.to_vec1::<f32>()?;
            let mut noise = vec![0f32; rows * self.layout.alpha.len()];
            fill_normal(rng, &mut noise);
            let mut noise = noise.into_iter();
            // Each category drawn from the decoder's distribution over them, as the model is
            // trained (cross-entropy on the logits), rather than its most likely one: Gumbel
            // noise on the logits, whose argmax is that draw. The perturbed logits, not a
            // one-hot, are what decoding reads, so it can still tell how far a row leans to
            // each (point masses are given their real share by that). A mode is the most
            // likely one, as the reference takes it: drawn, each column's mode was picked
            // apart from the others', and two columns that move together came apart (a real
            // correlation of 0.995 came back as 0.55; SDMetrics quality over five tables rose
            // by 0.02 with modes taken, from 0.857 to 0.903 on that one).
            let mut gumbel = gumbel_noise(rows * one_hot, rng).into_iter();
            for row in fake.chunks_exact_mut(w) {
                for (&j, s) in self.layout.alpha.iter().zip(&sigma) {
                    let j = j as usize;
                    row[j] = row[j].tanh() + s * noise.next().expect("one draw per α entry");
                }
                let spans = self.layout.one_hot.iter().zip(&self.layout.mode);
                for (&(at, width), _) in spans.filter(|(_, mode)| !**mode) {
                    for l in &mut row[at..at + width] {
                        *l += gumbel.next().expect("one draw per drawn one-hot entry");
                    }
                }
            }
            out.extend(fake);
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::optim::{Adam, AdamConfig};
    use crate::random::rng_for;
    use crate::test_support::{
        assert_conditions_hold, assert_reloads, assert_reports_every_epoch, losses, table, table_of,
    };
    use crate::{Condition, EngineDevice, EngineError, FitOptions, Synthesizer};
    use candle_core::DType;
    use synth_table::{ColumnData, SdType};

    fn small() -> TvaeParams {
        TvaeParams {
            epochs: 3,
            batch_size: 64,
            embedding_dim: 16,
            compress_dims: vec![32, 32],
            decompress_dims: vec![32, 32],
            ..Default::default()
        }
    }

    fn fit_with(seed: u64, params: TvaeParams) -> Tvae {
        let (t, m) = table(200);
        Tvae::fit(&t, &m, params, FitOptions::seeded(seed)).unwrap()
    }

    fn fit(seed: u64) -> Tvae {
        fit_with(seed, small())
    }

    #[test]
    fn sigma_is_clamped_after_a_step() {
        let device = Device::Cpu;
        let config = DecoderConfig {
            embedding_dim: 4,
            hidden: vec![8],
            data_dim: 5,
            n_alpha: 3,
        };
        let mut rng = rng_for(0, 0);
        let vb = VarBuilder::seeded(&mut rng, DType::F32, &device);
        let decoder = Decoder::new(&config, vb.pp("decoder")).unwrap();
        let names: Vec<String> = vb.vars().trained.into_iter().map(|(n, _)| n).collect();
        assert_eq!(
            names,
            [
                "decoder.hidden.0.weight",
                "decoder.hidden.0.bias",
                "decoder.out.weight",
                "decoder.out.bias",
                "decoder.sigma"
            ]
        );
        assert_eq!(
            decoder.sigma.as_tensor().to_vec1::<f32>().unwrap(),
            [0.1; 3]
        );
        let only_sigma = |d: &Decoder| vec![d.sigma.clone()];
        let config = AdamConfig {
            lr: 5.0,
            beta1: 0.9,
            beta2: 0.999,
            eps: 1e-8,
            weight_decay: 0.0,
        };
        // A gradient of +1 on σ[0], −1 on σ[1], 0 on σ[2]: one big step pushes σ[0] below
        // zero and σ[1] above one; the clamp brings them back to the bounds.
        let weights = Tensor::new(&[1f32, -1.0, 0.0], &device).unwrap();
        let mut opt = Adam::new(only_sigma(&decoder), config).unwrap();
        let l = (decoder.sigma.as_tensor() * &weights)
            .unwrap()
            .sum_all()
            .unwrap();
        opt.step(&l.backward().unwrap()).unwrap();
        let raw = decoder.sigma.as_tensor().to_vec1::<f32>().unwrap();
        assert!(raw[0] < 0.0 && raw[1] > 1.0, "{raw:?}");
        decoder.clamp_sigma().unwrap();
        let s = decoder.sigma.as_tensor().to_vec1::<f32>().unwrap();
        assert_eq!(s, [0.01, 1.0, 0.1]);
        // And a fit leaves every σ inside the bounds.
        let model = fit(1);
        let s = model.sigmas().unwrap();
        assert_eq!(s.len(), model.net.layout.alpha.len());
        assert!(
            !s.is_empty() && s.iter().all(|v| (0.01..=1.0).contains(v)),
            "{s:?}"
        );
    }

    #[test]
    fn same_seed_same_model_and_samples() {
        let (a, b) = (fit(3), fit(3));
        assert_eq!(a.sample(120, 9).unwrap(), b.sample(120, 9).unwrap());
        assert_eq!(losses(&a), losses(&b));
        assert!(losses(&a).iter().all(|(g, c)| g.is_finite() && c.is_none()));
        assert_ne!(a.sample(120, 9).unwrap(), a.sample(120, 10).unwrap());
        assert_ne!(a.sample(120, 9).unwrap(), fit(4).sample(120, 9).unwrap());
    }

    #[test]
    fn halves_side_by_side_and_in_sequence_train_the_same_model() {
        // Batches of 64 and more are split in two halves.
        let params = TvaeParams {
            batch_size: 100,
            ..small()
        };
        let fit = || fit_with(6, params.clone());
        let (together, apart) = (fit(), crate::fused::in_sequence(fit));
        assert_eq!(
            together.sample(100, 1).unwrap(),
            apart.sample(100, 1).unwrap()
        );
        assert_eq!(together.loss_history().len(), 3);
        for (a, b) in together.loss_history().iter().zip(apart.loss_history()) {
            assert_eq!(a.generator_loss, b.generator_loss);
        }
    }

    #[test]
    fn reports_every_epoch_and_the_loss_falls() {
        let (t, m) = table(200);
        let params = TvaeParams {
            epochs: 30,
            ..small()
        };
        let seen = assert_reports_every_epoch(30, |o| Tvae::fit(&t, &m, params, o).unwrap());
        let (first, last) = (seen[0].generator_loss, seen[29].generator_loss);
        assert!(last < first, "loss {first} → {last}");
    }

    #[test]
    fn conditional_sampling_by_rejection() {
        // Trained enough to produce every category (an untrained decoder's argmax barely
        // moves with the latent code).
        let model = fit_with(
            5,
            TvaeParams {
                epochs: 40,
                ..small()
            },
        );
        let all = model.sample(600, 1).unwrap();
        let ColumnData::Str(kinds) = &all.column("kind").unwrap().data else {
            panic!("strings")
        };
        for k in ["a", "b", "c"] {
            let share = kinds.iter().filter(|v| v.as_deref() == Some(k)).count() as f64 / 600.0;
            assert!(share > 0.1, "{k}: {share}");
        }
        assert_conditions_hold(&model, 60, false);
        // Sizes beyond any real one never come back (decoded values stay in the real
        // range): the bounded tries run out with a clear "too rare" error giving each
        // condition's share of the real rows.
        let err = fit(5)
            .sample_conditional(
                60,
                &[
                    Condition::equals("ok", "true"),
                    Condition::parse("size>=1000").unwrap(),
                ],
                2,
            )
            .unwrap_err();
        assert!(
            matches!(&err, EngineError::InvalidCondition(m) if m.contains("too rare")
                && m.contains("ok=true in 25.0% of the real rows")
                && m.contains("size>=1000 in under 0.5% of the real rows")),
            "{err}"
        );
    }

    #[test]
    fn saved_model_samples_the_same_without_the_data() {
        let model = fit(7);
        let dir = assert_reloads(&model, "tvae");
        assert!(Tvae::load(dir.path(), EngineDevice::Cpu).is_ok());
        assert!(crate::ctgan::Ctgan::load(dir.path(), EngineDevice::Cpu).is_err());
    }

    #[test]
    fn a_table_without_alpha_entries_fits_saves_and_loads() {
        let kinds = (0..100).map(|i| Some(["x", "y"][i % 2].to_owned()));
        let (t, m) = table_of(vec![(
            "kind",
            SdType::Categorical,
            ColumnData::Str(kinds.collect()),
        )]);
        let model = Tvae::fit(&t, &m, small(), FitOptions::default()).unwrap();
        assert!(model.sigmas().unwrap().is_empty());
        let dir = tempfile::tempdir().unwrap();
        model.save(dir.path()).unwrap();
        let loaded = crate::load(dir.path(), EngineDevice::Cpu).unwrap();
        assert_eq!(loaded.sample(30, 2).unwrap(), model.sample(30, 2).unwrap());
    }
}
