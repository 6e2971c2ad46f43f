//! How CTGAN trains: the reference's loop of `discriminator_steps` critic updates (the
//! Wasserstein loss plus the gradient penalty) and one generator update (the critic's score
//! plus the conditional cross-entropy) per step, each with Adam (β = 0.5, 0.9), on conditions
//! and rows drawn ahead by [`Draws`].

use std::sync::Arc;

use candle_core::backprop::GradStore;
use candle_core::{Device, Tensor, Var};

use super::critic::{Critic, CriticConfig};
use super::draws::{DrawShape, Draws, GeneratorDraw, Prefetch, StepDraws};
use super::generator::{Generator, activate};
use super::penalty::{accumulate_penalty, gradient_penalty};
use super::{CtganNet, CtganParams, CtganState, cat_cond, tensor};
use crate::error::Result;
use crate::fused::{self, CondSpan, fusable, side_by_side};
use crate::model::{Losses, Start, Started, Trainer};
use crate::nn::BatchMoments;
use crate::optim::{Adam, AdamConfig, add_gradients};
use crate::sampler::{CondSpace, TrainingSampler};
use crate::transformer::{Encoded, Span};

/// Builds the generator and then the critic from the fit's generator, their optimisers,
/// and the thread that draws every step's random inputs ahead.
pub(super) fn start(mut start: Start<'_, CtganNet>) -> Result<Started<CtganNet>> {
    let (params, device, data) = (start.params, start.device, start.data.clone());
    let sampler = Arc::new(TrainingSampler::new(
        &data,
        start.transformer.discrete_spans(),
        params.log_frequency,
    ));
    let model = start.build(CtganState {
        cond: sampler.space.clone(),
    })?;
    let config = CriticConfig {
        input_dim: data.width + sampler.space.dim(),
        hidden: params.discriminator_dim.clone(),
        pac: params.pac,
    };
    let (critic, critic_params) = start.seeded(|vb| Critic::new(&config, vb.pp("critic")))?;
    let adam = |lr, weight_decay| AdamConfig {
        lr,
        beta1: 0.5,
        beta2: 0.9,
        eps: 1e-8,
        weight_decay,
    };
    let steps = (data.n_rows / params.batch_size).max(1);
    let shape = DrawShape {
        batch: params.batch_size,
        embedding: params.embedding_dim,
        pac: params.pac,
        critic_widths: critic.hidden_widths(),
        discriminator_steps: params.discriminator_steps,
    };
    let draws = Draws::new(shape, data.clone(), sampler.clone(), start.rng);
    let training = Training {
        params: params.clone(),
        spans: model.net.spans.clone(),
        generator: model.net.generator.clone(),
        opt_g: Adam::new(
            model.vars.trained_vars(),
            adam(params.generator_lr, params.generator_decay),
        )?,
        opt_d: Adam::new(
            critic_params.clone(),
            adam(params.discriminator_lr, params.discriminator_decay),
        )?,
        critic_params,
        critic,
        data,
        sampler,
        device: device.clone(),
    };
    // The random inputs of each step are drawn ahead on a second thread; dropping the
    // trainer (at the end of the fit, or on an error) stops it.
    let trainer = CtganTrainer {
        draws: Prefetch::spawn(draws, params.epochs * steps)?,
        training,
        steps,
        losses: (0.0, 0.0),
    };
    Ok(Started {
        model,
        trainer: Box::new(trainer),
    })
}

/// CTGAN's trainer: `(n_rows / batch_size).max(1)` steps an epoch, reporting the last
/// step's losses.
struct CtganTrainer {
    training: Training,
    draws: Prefetch,
    steps: usize,
    /// The last step's (critic, generator) losses.
    losses: (f64, f64),
}

impl Trainer for CtganTrainer {
    fn begin_epoch(&mut self, _epoch: usize) -> Result<usize> {
        self.losses = (0.0, 0.0);
        Ok(self.steps)
    }

    fn step(&mut self) -> Result<()> {
        let draws = self.draws.next()?;
        self.losses = self.training.step(draws)?;
        Ok(())
    }

    fn end_epoch(&mut self) -> Result<Losses> {
        Ok(Losses {
            generator: self.losses.1,
            critic: Some(self.losses.0),
            validation: None,
        })
    }
}

/// The networks and optimisers of one training run.
struct Training {
    params: CtganParams,
    data: Arc<Encoded>,
    sampler: Arc<TrainingSampler>,
    spans: Vec<Span>,
    /// The model's generator (its variables shared), trained in place.
    generator: Generator,
    critic: Critic,
    opt_g: Adam,
    opt_d: Adam,
    /// The critic's parameters, whose gradients the loss and the penalty add up.
    critic_params: Vec<Var>,
    device: Device,
}

impl Training {
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
        let act = activate(&logits, &self.spans, &self.tensor(gumbel, self.data.width)?)?;
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
            let (noise, gumbel) = (draw.noise, draw.gumbel);
            let (c1, c2) = match draw.cond {
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
            let real = cat_cond(&self.tensor(draw.real, self.data.width)?, c2.as_ref())?;
            let penalty = (self.tensor(draw.alpha, 1)?, self.masks(draw.masks_penalty)?);
            let masks_scored = self.masks(draw.masks_scored)?;
            loss_d = self.critic_update(&fake, &real, masks_scored, penalty)?;
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
