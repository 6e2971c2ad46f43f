//! TVAE (Xu et al., NeurIPS 2019) as the reference implementation (SDV's `ctgan` package,
//! `TVAE`) trains it: a variational autoencoder on the [`DataTransformer`]'s encoding, with
//! a Gaussian reconstruction loss of learnable σ on α entries and cross-entropy on one-hot
//! spans.
//!
//! Sampling draws latent codes from N(0, I), decodes them, applies tanh to every output and
//! adds N(0, σ) noise to the α entries before the inverse transform, as the reference does.
//! TVAE has no conditional input, so [`Synthesizer::sample_conditional`] works by
//! rejection: see its documentation on [`Tvae`].

mod loss;
mod network;
mod params;

use std::path::Path;
use std::time::Instant;

use candle_core::backprop::GradStore;
use candle_core::{Device, Tensor, Var};
use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};
use serde::{Deserialize, Serialize};
use synth_table::{Metadata, Table};

use crate::device::EngineDevice;
use crate::error::{EngineError, Result};
use crate::fused::side_by_side;
use crate::nn::{load_weights, save_weights};
use crate::optim::{Adam, AdamConfig, add_gradients};
use crate::random::{EngineRng, fill_normal, rng_for};
use crate::rows::{condition_slots, sample_matching};
use crate::synthesizer::{EpochReport, FitControl, FitOptions, Synthesizer, check_saved_kind};
use crate::transformer::DataTransformer;
use loss::{Layout, loss};
use network::{Decoder, Encoder};
pub use params::TvaeParams;

const MODEL_NAME: &str = "tvae";
/// On the CPU each batch is split in two halves whose gradients are computed side by side
/// and summed. TVAE has no batch statistics, so the sum is exactly the batch's gradient;
/// the split is fixed, not taken from the machine, so that a seed trains the same model on
/// any CPU. A batch smaller than this runs in one piece: halves would not pay for a thread.
const MIN_SPLIT_ROWS: usize = 64;
const FORMAT_VERSION: u32 = 1;
pub use crate::rows::MAX_CONDITIONAL_BATCHES;

/// A fitted TVAE: the decoder, its σ and the transformer; nothing of the training data.
pub struct Tvae {
    params: TvaeParams,
    transformer: DataTransformer,
    layout: Layout,
    decoder: Decoder,
    device: Device,
    history: Vec<EpochReport>,
}

/// What `model.json` holds.
#[derive(Serialize, Deserialize)]
struct SavedModel {
    model: String,
    format_version: u32,
    params: TvaeParams,
    transformer: DataTransformer,
    loss_history: Vec<EpochReport>,
}

fn tensor(v: Vec<f32>, rows: usize, cols: usize, device: &Device) -> Result<Tensor> {
    Ok(Tensor::from_vec(v, (rows, cols), device)?)
}

/// What one training step reads: the networks, the encoded table and the loss settings.
struct Step<'a> {
    encoder: &'a Encoder,
    decoder: &'a Decoder,
    sigma: &'a Tensor,
    layout: &'a Layout,
    /// The encoded table, row-major, `width` values per row.
    data: &'a [f32],
    width: usize,
    embedding_dim: usize,
    loss_factor: f64,
    /// Every trained parameter.
    vars: &'a [Var],
    device: &'a Device,
}

impl Step<'_> {
    /// The total loss of the batch of table rows `batch` and its gradients. With two seeds
    /// (on the CPU) and enough rows, the batch's two halves are computed side by side,
    /// each drawing its latent noise from its own seed, and summed in order, so the result
    /// does not depend on which finishes first.
    fn gradients(&self, batch: &[usize], seeds: &[u64]) -> Result<(Tensor, GradStore)> {
        let b = batch.len();
        match seeds {
            &[first, second] if b >= MIN_SPLIT_ROWS => {
                let (head, tail) = batch.split_at(b.div_ceil(2));
                let (a, z) = side_by_side(
                    || self.shard(head, b, first),
                    || self.shard(tail, b, second),
                );
                let ((total, mut grads), (more_total, more)) = (a?, z?);
                add_gradients(&mut grads, &more, self.vars)?;
                Ok(((total + more_total)?, grads))
            }
            _ => self.shard(batch, b, seeds[0]),
        }
    }

    /// The loss of the table rows `rows`, part of a batch of `batch` rows, with the latent
    /// code's noise drawn from `seed`, and its gradients.
    fn shard(&self, rows: &[usize], batch: usize, seed: u64) -> Result<(Tensor, GradStore)> {
        let (w, e) = (self.width, self.embedding_dim);
        let mut x = Vec::with_capacity(rows.len() * w);
        for &i in rows {
            x.extend_from_slice(&self.data[i * w..(i + 1) * w]);
        }
        let x = tensor(x, rows.len(), w, self.device)?;
        let (mu, logvar) = self.encoder.forward(&x)?;
        let mut eps = vec![0f32; rows.len() * e];
        fill_normal(&mut EngineRng::seed_from_u64(seed), &mut eps);
        let eps = tensor(eps, rows.len(), e, self.device)?;
        let std = (&logvar * 0.5)?.exp()?;
        let z = ((eps * std)? + &mu)?;
        let recon = self.decoder.forward(&z)?;
        let total = loss(
            &recon,
            &x,
            self.sigma,
            &mu,
            &logvar,
            self.layout,
            self.loss_factor,
            batch as f64,
        )?
        .total()?;
        let grads = total.backward()?;
        Ok((total.detach(), grads))
    }
}

impl Tvae {
    /// Fits the transformer and trains TVAE on `table`.
    ///
    /// Each epoch visits every row once in a seeded random order, in batches of
    /// `batch_size` (the last one smaller), as the reference's data loader does. The loss
    /// history's `generator_loss` is the total loss (reconstruction · `loss_factor` / B +
    /// KL / B) of the epoch's last batch, as the reference records it; `critic_loss` is 0,
    /// since TVAE has no critic.
    pub fn fit(
        table: &Table,
        metadata: &Metadata,
        params: TvaeParams,
        mut options: FitOptions,
    ) -> Result<Self> {
        params.validate()?;
        let started = Instant::now();
        let seed = options.seed;
        let transformer = DataTransformer::fit(table, metadata, &options.transformer, seed)?;
        let data = transformer.transform(table)?;
        if data.width == 0 {
            return Err(EngineError::InvalidData(
                "no column can be modelled (only ids?)".into(),
            ));
        }
        if data.n_rows == 0 {
            return Err(EngineError::InvalidData("the table has no rows".into()));
        }
        let layout = Layout::new(&transformer.spans());
        let device = options.device.candle()?;
        let mut rng = rng_for(seed, 1);
        let w = data.width;
        let encoder = Encoder::new(
            w,
            &params.compress_dims,
            params.embedding_dim,
            &device,
            &mut rng,
        )?;
        let decoder = Decoder::new(
            params.embedding_dim,
            &params.decompress_dims,
            w,
            layout.alpha.len(),
            &device,
            &mut rng,
        )?;
        let vars: Vec<Var> = encoder
            .vars()
            .into_iter()
            .chain(decoder.vars())
            .map(|(_, v)| v)
            // σ is empty when no column has an α entry; nothing to optimise there.
            .filter(|v| v.elem_count() > 0)
            .collect();
        let mut opt = Adam::new(
            vars.clone(),
            AdamConfig {
                lr: params.learning_rate,
                beta1: 0.9,
                beta2: 0.999,
                eps: 1e-8,
                weight_decay: params.l2scale,
            },
        )?;
        let sigma_t = decoder.sigma.as_tensor().clone();
        // The model under training, trained in place, so checkpoints can sample from it.
        let mut model = Self {
            params: params.clone(),
            transformer,
            layout,
            decoder,
            device: device.clone(),
            history: Vec::new(),
        };
        let (layout, decoder) = (&model.layout, &model.decoder);
        let shards = if device.is_cpu() { 2 } else { 1 };
        let step = Step {
            encoder: &encoder,
            decoder,
            sigma: &sigma_t,
            layout,
            data: &data.data,
            width: w,
            embedding_dim: params.embedding_dim,
            loss_factor: params.loss_factor,
            vars: &vars,
            device: &device,
        };
        let mut order: Vec<usize> = (0..data.n_rows).collect();
        let mut history = Vec::with_capacity(params.epochs);
        'epochs: for epoch in 0..params.epochs {
            let epoch_start = Instant::now();
            order.shuffle(&mut rng);
            let mut last = None;
            for batch in order.chunks(params.batch_size) {
                if options.stopped() {
                    break 'epochs;
                }
                // Each shard's latent noise comes from its own seed, so the shards can
                // draw it on their own threads in any order.
                let seeds: Vec<u64> = (0..shards).map(|_| rng.random()).collect();
                let (total, grads) = step.gradients(batch, &seeds)?;
                opt.step(&grads)?;
                decoder.clamp_sigma()?;
                // Read back once per epoch, so the device is not synchronised every step.
                last = Some(total);
            }
            let last = match last {
                Some(t) => t.to_scalar::<f32>()? as f64,
                None => 0.0,
            };
            let report = EpochReport {
                epoch: epoch + 1,
                epochs: params.epochs,
                generator_loss: last,
                critic_loss: 0.0,
                epoch_seconds: epoch_start.elapsed().as_secs_f64(),
                elapsed_seconds: started.elapsed().as_secs_f64(),
            };
            if options.finish_epoch(report, &model, &mut history) == FitControl::Stop {
                break;
            }
        }
        model.history = history;
        Ok(model)
    }

    /// The fitted transformer (column order, spans) of this model.
    pub fn transformer(&self) -> &DataTransformer {
        &self.transformer
    }

    pub fn params(&self) -> &TvaeParams {
        &self.params
    }

    /// The current σ of every α entry, in span order.
    pub fn sigmas(&self) -> Result<Vec<f32>> {
        Ok(self.decoder.sigma.as_tensor().to_vec1::<f32>()?)
    }

    /// `n` rows of decoder output: latent codes from N(0, I), tanh on every output (argmax
    /// of one-hot spans is unchanged by it), then N(0, σ) noise on the α entries.
    fn generate(&self, n: usize, rng: &mut EngineRng) -> Result<Vec<f32>> {
        let (b, e) = (self.params.batch_size, self.params.embedding_dim);
        let w = self.transformer.output_width();
        let sigma = self.sigmas()?;
        let mut out = Vec::with_capacity(n * w);
        while out.len() < n * w {
            let rows = b.min(n - out.len() / w);
            let mut z = vec![0f32; rows * e];
            fill_normal(rng, &mut z);
            let fake = self
                .decoder
                .forward(&tensor(z, rows, e, &self.device)?)?
                .tanh()?;
            let mut fake = fake.flatten_all()?.to_vec1::<f32>()?;
            let mut noise = vec![0f32; rows * self.layout.alpha.len()];
            fill_normal(rng, &mut noise);
            let mut noise = noise.into_iter();
            for row in fake.chunks_exact_mut(w) {
                for (&j, s) in self.layout.alpha.iter().zip(&sigma) {
                    row[j as usize] += s * noise.next().expect("one draw per α entry");
                }
            }
            out.extend(fake);
        }
        Ok(out)
    }

    /// Loads a model saved by [`Synthesizer::save`] onto `device`.
    pub fn load(dir: &Path, device: EngineDevice) -> Result<Self> {
        let text = std::fs::read_to_string(dir.join(crate::MODEL_FILE))?;
        let saved: SavedModel = serde_json::from_str(&text)?;
        check_saved_kind(
            (&saved.model, saved.format_version),
            (MODEL_NAME, FORMAT_VERSION),
        )?;
        saved.params.validate()?;
        let device_c = device.candle()?;
        let layout = Layout::new(&saved.transformer.spans());
        // Initial values are overwritten by the saved ones; the shapes come from the params.
        let decoder = Decoder::new(
            saved.params.embedding_dim,
            &saved.params.decompress_dims,
            saved.transformer.output_width(),
            layout.alpha.len(),
            &device_c,
            &mut rng_for(0, 0),
        )?;
        load_weights(decoder.vars(), dir, &device_c)?;
        Ok(Self {
            params: saved.params,
            transformer: saved.transformer,
            layout,
            decoder,
            device: device_c,
            history: saved.loss_history,
        })
    }
}

impl Synthesizer for Tvae {
    fn model_name(&self) -> &'static str {
        MODEL_NAME
    }

    fn sample(&self, n: usize, seed: u64) -> Result<Table> {
        let data = self.generate(n, &mut rng_for(seed, 10))?;
        self.transformer.inverse(&data, n, seed)
    }

    /// Rejection sampling: TVAE takes no condition as input, so this samples batches
    /// unconditionally (at least `batch_size` rows each) and keeps the decoded rows that
    /// meet every condition, so the result honours them exactly. After
    /// [`MAX_CONDITIONAL_BATCHES`] batches without `n` matching rows it fails with
    /// [`EngineError::InvalidCondition`] saying the combination is too rare for this model;
    /// a condition whose rate in the model's samples is p needs about n / p rows drawn.
    fn sample_conditional(
        &self,
        n: usize,
        conditions: &[(String, String)],
        seed: u64,
    ) -> Result<Table> {
        if conditions.is_empty() {
            return self.sample(n, seed);
        }
        // Names an unknown column, a non-discrete column or an unknown category.
        condition_slots(&self.transformer, conditions)?;
        sample_matching(
            &self.transformer,
            n,
            self.params.batch_size,
            conditions,
            seed,
            |want, rng| self.generate(want, rng),
        )
    }

    /// Saves the decoder and σ (all sampling needs); the encoder is not kept.
    fn save(&self, dir: &Path) -> Result<()> {
        std::fs::create_dir_all(dir)?;
        save_weights(self.decoder.vars(), dir)?;
        let saved = SavedModel {
            model: MODEL_NAME.into(),
            format_version: FORMAT_VERSION,
            params: self.params.clone(),
            transformer: self.transformer.clone(),
            loss_history: self.history.clone(),
        };
        std::fs::write(dir.join(crate::MODEL_FILE), serde_json::to_vec(&saved)?)?;
        Ok(())
    }

    fn loss_history(&self) -> &[EpochReport] {
        &self.history
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::nn::NamedVars;
    use crate::test_support::table;
    use std::sync::{Arc, Mutex};
    use synth_table::{Column, ColumnData, ColumnMetadata, SdType};

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
        Tvae::fit(
            &t,
            &m,
            params,
            FitOptions {
                seed,
                ..Default::default()
            },
        )
        .unwrap()
    }

    fn fit(seed: u64) -> Tvae {
        fit_with(seed, small())
    }

    #[test]
    fn sigma_is_clamped_after_a_step() {
        let device = Device::Cpu;
        let decoder = Decoder::new(4, &[8], 5, 3, &device, &mut rng_for(0, 0)).unwrap();
        assert_eq!(
            decoder.sigma.as_tensor().to_vec1::<f32>().unwrap(),
            [0.1; 3]
        );
        let only_sigma = |d: &Decoder| -> Vec<candle_core::Var> {
            let v: NamedVars = d.vars();
            v.into_iter()
                .filter(|(n, _)| n == "decoder.sigma")
                .map(|(_, v)| v)
                .collect()
        };
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
        assert_eq!(s.len(), model.layout.alpha.len());
        assert!(
            !s.is_empty() && s.iter().all(|v| (0.01..=1.0).contains(v)),
            "{s:?}"
        );
    }

    #[test]
    fn same_seed_same_model_and_samples() {
        let (a, b) = (fit(3), fit(3));
        assert_eq!(a.sample(120, 9).unwrap(), b.sample(120, 9).unwrap());
        let losses = |m: &Tvae| {
            m.loss_history()
                .iter()
                .map(|r| (r.generator_loss, r.critic_loss))
                .collect::<Vec<_>>()
        };
        assert_eq!(losses(&a), losses(&b));
        assert!(losses(&a).iter().all(|(g, c)| g.is_finite() && *c == 0.0));
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
        let seen = Arc::new(Mutex::new(Vec::new()));
        let sink = seen.clone();
        let model = Tvae::fit(
            &t,
            &m,
            TvaeParams {
                epochs: 30,
                ..small()
            },
            FitOptions {
                seed: 1,
                on_epoch: Some(Box::new(move |r| sink.lock().unwrap().push(r.clone()))),
                ..Default::default()
            },
        )
        .unwrap();
        let seen = seen.lock().unwrap();
        assert_eq!(
            seen.iter().map(|r| r.epoch).collect::<Vec<_>>(),
            (1..=30).collect::<Vec<_>>()
        );
        assert_eq!(&seen[..], model.loss_history());
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
        let out = model
            .sample_conditional(
                60,
                &[("kind".into(), "b".into()), ("ok".into(), "false".into())],
                2,
            )
            .unwrap();
        assert_eq!(out.n_rows(), 60);
        let ColumnData::Str(kinds) = &out.column("kind").unwrap().data else {
            panic!("strings")
        };
        assert!(kinds.iter().all(|k| k.as_deref() == Some("b")));
        let ColumnData::Bool(oks) = &out.column("ok").unwrap().data else {
            panic!("bools")
        };
        assert!(oks.iter().all(|k| *k == Some(false)));
        for bad in [("kind", "zzz"), ("nope", "a"), ("size", "10")] {
            let err = model
                .sample_conditional(5, &[(bad.0.into(), bad.1.into())], 1)
                .unwrap_err();
            assert!(matches!(err, EngineError::InvalidCondition(_)), "{err}");
        }
        let clash = [("kind".into(), "a".into()), ("kind".into(), "b".into())];
        assert!(matches!(
            model.sample_conditional(5, &clash, 1),
            Err(EngineError::InvalidCondition(_))
        ));
        // A barely trained model almost never samples ok = true with kind = b (1 in 12 of
        // the real rows): the bounded tries run out with a clear "too rare" error.
        let err = fit(5)
            .sample_conditional(
                60,
                &[("kind".into(), "b".into()), ("ok".into(), "true".into())],
                2,
            )
            .unwrap_err();
        assert!(
            matches!(&err, EngineError::InvalidCondition(m) if m.contains("too rare")),
            "{err}"
        );
    }

    #[test]
    fn saved_model_samples_the_same_without_the_data() {
        let model = fit(7);
        let dir = tempfile::tempdir().unwrap();
        model.save(dir.path()).unwrap();
        let loaded = crate::load(dir.path(), EngineDevice::Cpu).unwrap();
        assert_eq!(loaded.model_name(), "tvae");
        assert_eq!(loaded.sample(77, 4).unwrap(), model.sample(77, 4).unwrap());
        assert_eq!(loaded.loss_history(), model.loss_history());
        assert!(Tvae::load(dir.path(), EngineDevice::Cpu).is_ok());
        assert!(crate::ctgan::Ctgan::load(dir.path(), EngineDevice::Cpu).is_err());
        std::fs::remove_file(dir.path().join(crate::WEIGHTS_FILE)).unwrap();
        assert!(crate::load(dir.path(), EngineDevice::Cpu).is_err());
    }

    #[test]
    fn a_table_without_alpha_entries_fits_saves_and_loads() {
        let t = Table::new(vec![Column {
            name: "kind".into(),
            data: ColumnData::Str(
                (0..100)
                    .map(|i| Some(["x", "y"][i % 2].to_owned()))
                    .collect(),
            ),
        }])
        .unwrap();
        let m = Metadata::new(vec![(
            "kind".into(),
            ColumnMetadata::new(SdType::Categorical),
        )]);
        let model = Tvae::fit(&t, &m, small(), FitOptions::default()).unwrap();
        assert!(model.sigmas().unwrap().is_empty());
        let dir = tempfile::tempdir().unwrap();
        model.save(dir.path()).unwrap();
        let loaded = crate::load(dir.path(), EngineDevice::Cpu).unwrap();
        assert_eq!(loaded.sample(30, 2).unwrap(), model.sample(30, 2).unwrap());
    }
}
