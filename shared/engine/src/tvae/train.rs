//! How TVAE trains, as the reference's data loader and loop do: each epoch visits every
//! row once in a seeded random order, in batches of `batch_size` (the last one smaller);
//! each batch is one Adam step (β = 0.9, 0.999, L2 `l2scale`) on the total loss, then σ is
//! clamped. The report's `generator_loss` is the total loss (reconstruction ·
//! `loss_factor` / B + KL / B) of the epoch's last batch, as the reference records it;
//! `critic_loss` is absent, since TVAE has no critic.

use std::sync::Arc;

use candle_core::backprop::GradStore;
use candle_core::{Device, Tensor, Var};
use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};

use super::loss::{Layout, loss};
use super::network::{Decoder, Encoder, EncoderConfig};
use super::{NoState, TvaeNet, tensor};
use crate::error::Result;
use crate::fused::side_by_side;
use crate::model::{Losses, Start, Started, Trainer};
use crate::optim::{Adam, AdamConfig, add_gradients};
use crate::random::{EngineRng, fill_normal};
use crate::transformer::Encoded;

/// On the CPU each batch is split in two halves whose gradients are computed side by side
/// and summed. TVAE has no batch statistics, so the sum is exactly the batch's gradient;
/// the split is fixed, not taken from the machine, so that a seed trains the same model on
/// any CPU. A batch smaller than this runs in one piece: halves would not pay for a thread.
const MIN_SPLIT_ROWS: usize = 64;

/// Builds the encoder and then the decoder from the fit's generator, and their optimiser.
pub(super) fn start(mut start: Start<'_, TvaeNet>) -> Result<Started<TvaeNet>> {
    let (params, device, data) = (start.params, start.device, start.data.clone());
    let config = EncoderConfig {
        data_dim: data.width,
        hidden: params.compress_dims.clone(),
        embedding_dim: params.embedding_dim,
    };
    let (encoder, encoder_vars) = start.seeded(|vb| Encoder::new(&config, vb.pp("encoder")))?;
    let model = start.build(NoState {})?;
    let vars: Vec<Var> = encoder_vars
        .into_iter()
        .chain(model.vars.trained_vars())
        // σ is empty when no column has an α entry; nothing to optimise there.
        .filter(|v| v.elem_count() > 0)
        .collect();
    let opt = Adam::new(
        vars.clone(),
        AdamConfig {
            lr: params.learning_rate,
            beta1: 0.9,
            beta2: 0.999,
            eps: 1e-8,
            weight_decay: params.l2scale,
        },
    )?;
    let decoder = model.net.decoder.clone();
    let trainer = TvaeTrainer {
        order: (0..data.n_rows).collect(),
        step: Step {
            encoder,
            sigma: decoder.sigma.as_tensor().clone(),
            decoder,
            layout: model.net.layout.clone(),
            width: data.width,
            data,
            embedding_dim: params.embedding_dim,
            loss_factor: params.loss_factor,
            vars,
            device: device.clone(),
        },
        opt,
        rng: start.rng,
        shards: if device.is_cpu() { 2 } else { 1 },
        batch_size: params.batch_size,
        next: 0,
        last: None,
    };
    Ok(Started {
        model,
        trainer: Box::new(trainer),
    })
}

/// TVAE's trainer: one step per batch of the epoch's shuffled rows.
struct TvaeTrainer {
    step: Step,
    opt: Adam,
    rng: EngineRng,
    /// The epoch's order of the rows; its batches are the steps.
    order: Vec<usize>,
    batch_size: usize,
    /// Where the epoch's next batch starts in `order`.
    next: usize,
    /// Gradient shards per batch: two on the CPU, computed side by side.
    shards: usize,
    /// The total loss of the epoch's last batch, read back once per epoch so the device
    /// is not synchronised every step.
    last: Option<Tensor>,
}

impl Trainer for TvaeTrainer {
    fn begin_epoch(&mut self, _epoch: usize) -> Result<usize> {
        self.order.shuffle(&mut self.rng);
        self.next = 0;
        Ok(self.order.len().div_ceil(self.batch_size))
    }

    fn step(&mut self) -> Result<()> {
        let end = (self.next + self.batch_size).min(self.order.len());
        let batch = &self.order[self.next..end];
        self.next = end;
        // Each shard's latent noise comes from its own seed, so the shards can draw it on
        // their own threads in any order.
        let seeds: Vec<u64> = (0..self.shards).map(|_| self.rng.random()).collect();
        let (total, grads) = self.step.gradients(batch, &seeds)?;
        self.opt.step(&grads)?;
        self.step.decoder.clamp_sigma()?;
        self.last = Some(total);
        Ok(())
    }

    fn end_epoch(&mut self) -> Result<Losses> {
        let generator = match self.last.take() {
            Some(t) => t.to_scalar::<f32>()? as f64,
            None => 0.0,
        };
        Ok(Losses {
            generator,
            critic: None,
            validation: None,
        })
    }
}

/// What one training step reads: the networks, the encoded table and the loss settings.
struct Step {
    encoder: Encoder,
    /// The model's decoder (its variables shared), trained in place.
    decoder: Decoder,
    sigma: Tensor,
    layout: Layout,
    /// The encoded table, row-major, `width` values per row.
    data: Arc<Encoded>,
    width: usize,
    embedding_dim: usize,
    loss_factor: f64,
    /// Every trained parameter.
    vars: Vec<Var>,
    device: Device,
}

impl Step {
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
                add_gradients(&mut grads, &more, &self.vars)?;
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
            x.extend_from_slice(&self.data.data[i * w..(i + 1) * w]);
        }
        let x = tensor(x, rows.len(), w, &self.device)?;
        let (mu, logvar) = self.encoder.forward(&x)?;
        let mut eps = vec![0f32; rows.len() * e];
        fill_normal(&mut EngineRng::seed_from_u64(seed), &mut eps);
        let eps = tensor(eps, rows.len(), e, &self.device)?;
        let std = (&logvar * 0.5)?.exp()?;
        let z = ((eps * std)? + &mu)?;
        let recon = self.decoder.forward(&z)?;
        let total = loss(
            &recon,
            &x,
            &self.sigma,
            &mu,
            &logvar,
            &self.layout,
            self.loss_factor,
            batch as f64,
        )?
        .total()?;
        let grads = total.backward()?;
        Ok((total.detach(), grads))
    }
}
