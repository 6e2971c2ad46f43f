//! CTGAN (Xu et al., NeurIPS 2019) as the reference implementation (SDV's `ctgan`) trains
//! it: a conditional generator and a PacGAN critic under the Wasserstein loss with gradient
//! penalty, trained by sampling conditions, on the [`DataTransformer`]'s encoding.

pub(crate) mod critic;
mod draws;
pub(crate) mod generator;
mod params;
pub(crate) mod penalty;

use std::path::Path;
use std::time::Instant;

use candle_core::backprop::GradStore;
use candle_core::{DType, Device, Tensor, Var};
use serde::{Deserialize, Serialize};
use synth_table::{Metadata, Table};

use crate::device::EngineDevice;
use crate::error::{EngineError, Result};
use crate::fused::{self, CondSpan};
use crate::fused::{fusable, side_by_side};
use crate::nn::{BatchMoments, BatchNormMode};
use crate::nn::{load_weights, save_weights};
use crate::optim::{Adam, AdamConfig, add_gradients};
use crate::random::{EngineRng, fill_normal, rng_for};
use crate::rows::{condition_slots, sample_matching};
use crate::sampler::{CondSpace, TrainingSampler};
use crate::synthesizer::{EpochReport, FitControl, FitOptions, Synthesizer, check_saved_kind};
use crate::transformer::{DataTransformer, Encoded, Span};
use critic::Critic;
use draws::{CriticDraw, DrawShape, Draws, GeneratorDraw, StepDraws};
use generator::{Generator, activate, gumbel_noise};
pub use params::CtganParams;
use penalty::{accumulate_penalty, gradient_penalty};

const MODEL_NAME: &str = "ctgan";
const FORMAT_VERSION: u32 = 1;

/// A fitted CTGAN: everything needed to sample, nothing of the training data.
pub struct Ctgan {
    params: CtganParams,
    transformer: DataTransformer,
    cond: CondSpace,
    spans: Vec<Span>,
    generator: Generator,
    device: Device,
    history: Vec<EpochReport>,
}

/// What `model.json` holds.
#[derive(Serialize, Deserialize)]
struct SavedModel {
    model: String,
    format_version: u32,
    params: CtganParams,
    transformer: DataTransformer,
    cond: CondSpace,
    loss_history: Vec<EpochReport>,
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

/// The state of one training run.
struct Training<'a> {
    params: &'a CtganParams,
    data: &'a Encoded,
    sampler: &'a TrainingSampler,
    spans: &'a [Span],
    generator: &'a Generator,
    critic: Critic,
    opt_g: Adam,
    opt_d: Adam,
    /// The critic's parameters, whose gradients the loss and the penalty add up.
    critic_params: Vec<Var>,
    device: Device,
}

impl Training<'_> {
    fn tensor(&self, v: Vec<f32>, cols: usize) -> Result<Tensor> {
        let rows = v.len() / cols.max(1);
        tensor(v, rows, cols, &self.device)
    }

    fn masks(&self, masks: Vec<Vec<f32>>) -> Result<Vec<Tensor>> {
        masks
            .into_iter()
            .zip(self.critic.hidden_widths())
            .map(|(m, w)| self.tensor(m, w))
            .collect()
    }

    fn cond(&self, cond: Option<Vec<f32>>) -> Result<Option<Tensor>> {
        cond.map(|c| self.tensor(c, self.sampler.space.dim()))
            .transpose()
    }

    /// The generator's training pass over `noise` ⊕ `cond`. Its batch statistics are
    /// returned for the caller to fold into the running ones, in step order.
    fn fake(&self, noise: Vec<f32>, cond: Option<&Tensor>, gumbel: Vec<f32>) -> Result<FakePass> {
        let z = self.tensor(noise, self.params.embedding_dim)?;
        let (logits, moments) = self.generator.forward_train(&cat_cond(&z, cond)?)?;
        let act = activate(&logits, self.spans, &self.tensor(gumbel, self.data.width)?)?;
        Ok(FakePass {
            act,
            logits,
            moments,
        })
    }

    /// One training step: `discriminator_steps` critic updates, then one generator update.
    /// Returns the last critic update's Wasserstein loss and the generator's loss.
    ///
    /// The generator's weights change only in its own update, so its pass for that update
    /// uses the same weights as the last critic update's fake rows: on the CPU the two
    /// passes run side by side. Batch statistics are folded into the running ones in the
    /// order a sequential step computes them, so the result is the same either way.
    fn step(&mut self, draws: StepDraws) -> Result<(f64, f64)> {
        let StepDraws { critic, generator } = draws;
        let GeneratorDraw {
            noise,
            cond,
            gumbel,
            masks,
        } = generator;
        let g_cond = self.cond(cond)?;
        let mut g_inputs = Some((noise, gumbel));
        let mut g_pass = None;
        let mut loss_d = 0.0;
        let updates = critic.len();
        for (i, draw) in critic.into_iter().enumerate() {
            let CriticDraw {
                noise,
                cond,
                real,
                gumbel,
                masks_scored,
                masks_penalty,
                alpha,
            } = draw;
            let (c1, c2) = match cond {
                Some((c1, c2)) => (self.cond(Some(c1))?, self.cond(Some(c2))?),
                None => (None, None),
            };
            let d_pass = match g_inputs.take() {
                Some((g_noise, g_gumbel)) if i + 1 == updates && self.device.is_cpu() => {
                    let this = &*self;
                    let (d, g) = side_by_side(
                        || this.fake(noise, c1.as_ref(), gumbel),
                        || this.fake(g_noise, g_cond.as_ref(), g_gumbel),
                    );
                    g_pass = Some(g?);
                    d?
                }
                other => {
                    g_inputs = other;
                    self.fake(noise, c1.as_ref(), gumbel)?
                }
            };
            self.generator.update_running(d_pass.moments)?;
            let fake = cat_cond(&d_pass.act.detach(), c1.as_ref())?;
            let real = cat_cond(&self.tensor(real, self.data.width)?, c2.as_ref())?;
            let penalty = (self.tensor(alpha, 1)?, self.masks(masks_penalty)?);
            loss_d = self.critic_update(&fake, &real, self.masks(masks_scored)?, penalty)?;
        }
        let g_pass = match (g_pass, g_inputs) {
            (Some(pass), _) => pass,
            (None, Some((noise, gumbel))) => self.fake(noise, g_cond.as_ref(), gumbel)?,
            (None, None) => unreachable!("the generator's inputs are used once"),
        };
        let masks = self.masks(masks)?;
        let loss_g = self.generator_update(g_pass, g_cond.as_ref(), &masks)?;
        Ok((loss_d, loss_g))
    }

    /// One critic update on `fake` and `real` packs (conditions appended), with dropout
    /// masks for both, and the penalty's interpolation weights and masks; returns the
    /// Wasserstein loss.
    fn critic_update(
        &mut self,
        fake: &Tensor,
        real: &Tensor,
        masks_scored: Vec<Tensor>,
        (alpha, masks): (Tensor, Vec<Tensor>),
    ) -> Result<f64> {
        let packs = self.params.batch_size / self.params.pac;
        let critic = &self.critic;
        // The Wasserstein loss and the penalty are independent given the packs: on the CPU
        // they are computed side by side, each with its own gradients, then summed.
        let scored = || -> Result<(Tensor, GradStore)> {
            // Fake and real packs go through the critic together, as one batch.
            let scores = critic.forward(&Tensor::cat(&[fake, real], 0)?, &masks_scored)?;
            let loss = (scores.narrow(0, 0, packs)?.mean_all()?
                - scores.narrow(0, packs, packs)?.mean_all()?)?;
            let grads = loss.backward()?;
            Ok((loss, grads))
        };
        let penalised = || -> Result<Option<GradStore>> {
            let mut grads = GradStore::default();
            let pen = accumulate_penalty(critic, real, fake, &alpha, &masks, &mut grads)?;
            Ok(pen.map(|_| grads))
        };
        let (scored, penalised) = if fusable(&[fake]) {
            side_by_side(scored, penalised)
        } else {
            (scored(), Ok(None))
        };
        let (loss, mut grads) = scored?;
        let more = match penalised? {
            Some(grads) => grads,
            // Elsewhere (CUDA, f64): the composed penalty, differentiated by autograd.
            None => gradient_penalty(critic, real, fake, &alpha, &masks)?.backward()?,
        };
        add_gradients(&mut grads, &more, &self.critic_params)?;
        self.opt_d.step(&grads)?;
        Ok(loss.to_scalar::<f32>()? as f64)
    }

    /// One generator update from its training pass; returns its loss (−critic score +
    /// conditional cross-entropy).
    fn generator_update(
        &mut self,
        pass: FakePass,
        cond: Option<&Tensor>,
        masks: &[Tensor],
    ) -> Result<f64> {
        self.generator.update_running(pass.moments)?;
        let y_fake = self
            .critic
            .forward_frozen(&cat_cond(&pass.act, cond)?, masks)?;
        let mut loss = y_fake.mean_all()?.neg()?;
        if let Some(c1) = cond {
            let ce = conditional_loss(&pass.logits, c1, &self.sampler.space)?;
            loss = (loss + ce)?;
        }
        let grads = loss.backward()?;
        self.opt_g.step(&grads)?;
        Ok(loss.to_scalar::<f32>()? as f64)
    }
}

/// One training pass of the generator: activated rows, their logits, and the batch
/// statistics still to be folded into the running ones.
struct FakePass {
    act: Tensor,
    logits: Tensor,
    moments: Vec<BatchMoments>,
}

/// Cross-entropy of each row's conditioned column logits against its conditioned category,
/// summed over the batch and divided by its size.
fn conditional_loss(logits: &Tensor, cond: &Tensor, space: &CondSpace) -> Result<Tensor> {
    let spans: Vec<CondSpan> = space
        .spans
        .iter()
        .enumerate()
        .map(|(i, s)| CondSpan {
            logit_offset: s.offset,
            cond_offset: space.cond_offset(i),
            width: s.width,
        })
        .collect();
    Ok(fused::conditional_loss(logits, cond, &spans)?)
}

impl Ctgan {
    /// Fits the transformer and trains CTGAN on `table`.
    pub fn fit(
        table: &Table,
        metadata: &Metadata,
        params: CtganParams,
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
        let spans = transformer.spans();
        let sampler =
            TrainingSampler::new(&data, transformer.discrete_spans(), params.log_frequency);
        let cond_dim = sampler.space.dim();
        let device = options.device.candle()?;
        let mut rng = rng_for(seed, 1);
        let generator = Generator::new(
            params.embedding_dim + cond_dim,
            &params.generator_dim,
            data.width,
            &device,
            &mut rng,
        )?;
        let critic = Critic::new(
            data.width + cond_dim,
            &params.discriminator_dim,
            params.pac,
            DType::F32,
            &device,
            &mut rng,
        )?;
        let adam = |lr, weight_decay| AdamConfig {
            lr,
            beta1: 0.5,
            beta2: 0.9,
            eps: 1e-8,
            weight_decay,
        };
        let var_list = |v: Vec<(String, Var)>| v.into_iter().map(|(_, v)| v).collect::<Vec<_>>();
        // The model under training, trained in place, so checkpoints can sample from it.
        let mut model = Self {
            cond: sampler.space.clone(),
            params: params.clone(),
            transformer,
            spans,
            generator,
            device: device.clone(),
            history: Vec::new(),
        };
        let (spans, generator) = (&model.spans, &model.generator);
        let draw_shape = DrawShape {
            batch: params.batch_size,
            embedding: params.embedding_dim,
            pac: params.pac,
            critic_widths: critic.hidden_widths(),
            discriminator_steps: params.discriminator_steps,
        };
        let mut training = Training {
            params: &params,
            data: &data,
            sampler: &sampler,
            spans,
            generator,
            opt_g: Adam::new(
                var_list(generator.vars()),
                adam(params.generator_lr, params.generator_decay),
            )?,
            opt_d: Adam::new(
                var_list(critic.vars()),
                adam(params.discriminator_lr, params.discriminator_decay),
            )?,
            critic_params: var_list(critic.vars()),
            critic,
            device: device.clone(),
        };
        let steps = (data.n_rows / params.batch_size).max(1);
        let mut history = Vec::with_capacity(params.epochs);
        // The random inputs of each step are drawn ahead on a second thread; dropping the
        // receiver (on return, error included) stops it.
        let (tx, rx) = draws::channel();
        let producer = Draws::new(draw_shape, &data, &sampler, rng);
        std::thread::scope(|scope| -> Result<()> {
            std::thread::Builder::new()
                .name("ctgan-draws".into())
                .spawn_scoped(scope, move || producer.produce(params.epochs * steps, tx))?;
            'epochs: for epoch in 0..params.epochs {
                let epoch_start = Instant::now();
                let (mut loss_d, mut loss_g) = (0.0, 0.0);
                for _ in 0..steps {
                    if options.stopped() {
                        break 'epochs;
                    }
                    let step = rx.recv().map_err(|_| {
                        EngineError::InvalidData("the training draws stopped early".into())
                    })?;
                    (loss_d, loss_g) = training.step(step)?;
                }
                let report = EpochReport {
                    epoch: epoch + 1,
                    epochs: params.epochs,
                    generator_loss: loss_g,
                    critic_loss: loss_d,
                    epoch_seconds: epoch_start.elapsed().as_secs_f64(),
                    elapsed_seconds: started.elapsed().as_secs_f64(),
                };
                if options.finish_epoch(report, &model, &mut history) == FitControl::Stop {
                    break;
                }
            }
            drop(rx);
            Ok(())
        })?;
        model.history = history;
        Ok(model)
    }

    /// The fitted transformer (column order, spans) of this model.
    pub fn transformer(&self) -> &DataTransformer {
        &self.transformer
    }

    pub fn params(&self) -> &CtganParams {
        &self.params
    }

    /// `n` activated rows from the generator, conditioned on real-frequency conditions or on
    /// one fixed (column, category).
    fn generate(
        &self,
        n: usize,
        fixed: Option<(usize, usize)>,
        rng: &mut EngineRng,
    ) -> Result<Vec<f32>> {
        let b = self.params.batch_size;
        let (e, w) = (self.params.embedding_dim, self.transformer.output_width());
        let cond_dim = self.cond.dim();
        let mut out = Vec::with_capacity(n.div_ceil(b) * b * w);
        while out.len() < n * w {
            let mut z = vec![0f32; b * e];
            fill_normal(rng, &mut z);
            let z = tensor(z, b, e, &self.device)?;
            let input = if cond_dim > 0 {
                let c = match fixed {
                    Some((col, slot)) => self.cond.fixed(b, col, slot),
                    None => self.cond.sample_original(b, rng),
                };
                Tensor::cat(&[&z, &tensor(c, b, cond_dim, &self.device)?], 1)?
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
            let g = tensor(gumbel_noise(b * w, rng), b, w, &self.device)?;
            out.extend(
                activate(&logits, &self.spans, &g)?
                    .flatten_all()?
                    .to_vec1::<f32>()?,
            );
        }
        out.truncate(n * w);
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
        let data_dim = saved.transformer.output_width();
        // Initial values are overwritten by the saved ones; the shapes come from the params.
        let generator = Generator::new(
            saved.params.embedding_dim + saved.cond.dim(),
            &saved.params.generator_dim,
            data_dim,
            &device_c,
            &mut rng_for(0, 0),
        )?;
        load_weights(
            generator
                .vars()
                .into_iter()
                .chain(generator.buffers())
                .collect(),
            dir,
            &device_c,
        )?;
        Ok(Self {
            spans: saved.transformer.spans(),
            params: saved.params,
            transformer: saved.transformer,
            cond: saved.cond,
            generator,
            device: device_c,
            history: saved.loss_history,
        })
    }
}

impl Synthesizer for Ctgan {
    fn model_name(&self) -> &'static str {
        MODEL_NAME
    }

    fn sample(&self, n: usize, seed: u64) -> Result<Table> {
        let data = self.generate(n, None, &mut rng_for(seed, 10))?;
        self.transformer.inverse(&data, n, seed)
    }

    /// Conditions the generator on the first condition and keeps only the decoded rows that
    /// meet all conditions (rejection), so the result honours them exactly.
    fn sample_conditional(
        &self,
        n: usize,
        conditions: &[(String, String)],
        seed: u64,
    ) -> Result<Table> {
        if conditions.is_empty() {
            return self.sample(n, seed);
        }
        let slots = condition_slots(&self.transformer, conditions)?;
        sample_matching(
            &self.transformer,
            n,
            self.params.batch_size,
            conditions,
            seed,
            |want, rng| self.generate(want, Some(slots[0]), rng),
        )
    }

    fn save(&self, dir: &Path) -> Result<()> {
        std::fs::create_dir_all(dir)?;
        let vars = self.generator.vars().into_iter();
        save_weights(vars.chain(self.generator.buffers()).collect(), dir)?;
        let saved = SavedModel {
            model: MODEL_NAME.into(),
            format_version: FORMAT_VERSION,
            params: self.params.clone(),
            transformer: self.transformer.clone(),
            cond: self.cond.clone(),
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
    use crate::test_support::table;
    use std::sync::{Arc, Mutex};
    use synth_table::ColumnData;

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
        Ctgan::fit(
            &t,
            &m,
            small(),
            FitOptions {
                seed,
                ..Default::default()
            },
        )
        .unwrap()
    }

    #[test]
    fn same_seed_same_model_and_samples() {
        let (a, b) = (fit(3), fit(3));
        assert_eq!(a.sample(120, 9).unwrap(), b.sample(120, 9).unwrap());
        assert_eq!(
            a.loss_history()
                .iter()
                .map(|r| (r.generator_loss, r.critic_loss))
                .collect::<Vec<_>>(),
            b.loss_history()
                .iter()
                .map(|r| (r.generator_loss, r.critic_loss))
                .collect::<Vec<_>>()
        );
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
                let options = FitOptions {
                    seed: 5,
                    ..Default::default()
                };
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
            let cond = [("kind".to_owned(), "b".to_owned())];
            assert_eq!(
                together.sample_conditional(50, &cond, 2).unwrap(),
                apart.sample_conditional(50, &cond, 2).unwrap()
            );
        }
    }

    #[test]
    fn reports_every_epoch_and_keeps_the_history() {
        let (t, m) = table(200);
        let seen = Arc::new(Mutex::new(Vec::new()));
        let sink = seen.clone();
        let model = Ctgan::fit(
            &t,
            &m,
            CtganParams {
                epochs: 3,
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
        assert_eq!(seen.iter().map(|r| r.epoch).collect::<Vec<_>>(), [1, 2, 3]);
        assert_eq!(&seen[..], model.loss_history());
        assert!(
            seen.iter()
                .all(|r| r.generator_loss.is_finite() && r.critic_loss.is_finite())
        );
        assert!(seen[2].elapsed_seconds >= seen[1].elapsed_seconds);
    }

    #[test]
    fn conditional_sampling_honours_conditions_and_rejects_unknown_ones() {
        let model = fit(5);
        let out = model
            .sample_conditional(
                90,
                &[("kind".into(), "b".into()), ("ok".into(), "true".into())],
                2,
            )
            .unwrap();
        assert_eq!(out.n_rows(), 90);
        let ColumnData::Str(kinds) = &out.column("kind").unwrap().data else {
            panic!("strings")
        };
        assert!(kinds.iter().all(|k| k.as_deref() == Some("b")));
        let ColumnData::Bool(oks) = &out.column("ok").unwrap().data else {
            panic!("bools")
        };
        assert!(oks.iter().all(|k| *k == Some(true)));
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
    }

    #[test]
    fn saved_model_samples_the_same_without_the_data() {
        let model = fit(7);
        let dir = tempfile::tempdir().unwrap();
        model.save(dir.path()).unwrap();
        let loaded = crate::load(dir.path(), EngineDevice::Cpu).unwrap();
        assert_eq!(loaded.model_name(), "ctgan");
        assert_eq!(loaded.sample(77, 4).unwrap(), model.sample(77, 4).unwrap());
        assert_eq!(loaded.loss_history(), model.loss_history());
        std::fs::remove_file(dir.path().join(crate::WEIGHTS_FILE)).unwrap();
        assert!(crate::load(dir.path(), EngineDevice::Cpu).is_err());
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
            let model = Ctgan::fit(
                &t,
                &m,
                params,
                FitOptions {
                    seed: 2,
                    ..Default::default()
                },
            )
            .unwrap();
            let slot = model.transformer.condition_slot("kind", "c").unwrap();
            let raw = model.generate(400, Some(slot), &mut rng_for(1, 0)).unwrap();
            let out = model.transformer.inverse(&raw, 400, 1).unwrap();
            let col = out.column("kind").unwrap();
            (0..400)
                .filter(|&i| model.transformer.matches(col, i, "c"))
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
