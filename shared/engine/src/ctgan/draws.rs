//! Everything random a training step needs — noise, conditions, the real rows shown to the
//! critic, Gumbel noise, dropout masks, the penalty's interpolation weights — drawn one
//! step ahead on a thread of its own. None of it depends on the networks, so drawing it
//! beside the main thread's arithmetic takes it off the step's critical path, and since one
//! seeded generator draws it in a fixed order, training stays reproducible.

use std::sync::Arc;
use std::sync::mpsc::{Receiver, SyncSender, sync_channel};
use std::thread::JoinHandle;

use rand::Rng;
use rand::seq::SliceRandom;

use super::critic::dropout_mask_values;
use crate::error::{EngineError, Result};
use crate::random::{EngineRng, fill_normal, gumbel_noise};
use crate::sampler::TrainingSampler;
use crate::transformer::Encoded;

/// Draws buffered ahead of the step that consumes them.
const AHEAD: usize = 2;

/// The random inputs of one critic update.
pub struct CriticDraw {
    pub noise: Vec<f32>,
    /// The conditions given to the generator, and the same conditions in the permuted order
    /// of the real rows (none without discrete columns).
    pub cond: Option<(Vec<f32>, Vec<f32>)>,
    pub real: Vec<f32>,
    pub gumbel: Vec<f32>,
    /// Dropout masks for the fake packs followed by the real ones (2 · packs rows).
    pub masks_scored: Vec<Vec<f32>>,
    /// Dropout masks for the interpolated packs.
    pub masks_penalty: Vec<Vec<f32>>,
    /// One interpolation weight per row, equal within a pack.
    pub alpha: Vec<f32>,
}

/// The random inputs of one generator update.
pub struct GeneratorDraw {
    pub noise: Vec<f32>,
    pub cond: Option<Vec<f32>>,
    pub gumbel: Vec<f32>,
    pub masks: Vec<Vec<f32>>,
}

/// What the draws are shaped by.
pub struct DrawShape {
    pub batch: usize,
    pub embedding: usize,
    pub pac: usize,
    pub critic_widths: Vec<usize>,
    pub discriminator_steps: usize,
}

/// Draws for every step, in the order training consumes them: per step,
/// `discriminator_steps` critic draws, then one generator draw.
pub struct Draws {
    shape: DrawShape,
    data: Arc<Encoded>,
    sampler: Arc<TrainingSampler>,
    rng: EngineRng,
}

impl Draws {
    pub fn new(
        shape: DrawShape,
        data: Arc<Encoded>,
        sampler: Arc<TrainingSampler>,
        rng: EngineRng,
    ) -> Self {
        Self {
            shape,
            data,
            sampler,
            rng,
        }
    }

    fn noise(&mut self) -> Vec<f32> {
        let mut z = vec![0f32; self.shape.batch * self.shape.embedding];
        fill_normal(&mut self.rng, &mut z);
        z
    }

    fn masks(&mut self, batches: usize) -> Vec<Vec<f32>> {
        let packs = batches * self.shape.batch / self.shape.pac;
        dropout_mask_values(packs, &self.shape.critic_widths, &mut self.rng)
    }

    pub fn critic(&mut self) -> CriticDraw {
        let b = self.shape.batch;
        let noise = self.noise();
        let cond_dim = self.sampler.space.dim();
        let (cond, real) = match self.sampler.sample_cond(b, &mut self.rng) {
            Some(cb) => {
                // The real rows are drawn for a permutation of the conditions, as the
                // reference does, so the critic cannot match fake and real by position.
                let mut perm: Vec<usize> = (0..b).collect();
                perm.shuffle(&mut self.rng);
                let cols: Vec<usize> = perm.iter().map(|&i| cb.columns[i]).collect();
                let cats: Vec<usize> = perm.iter().map(|&i| cb.categories[i]).collect();
                let real =
                    self.sampler
                        .sample_rows(&self.data, Some((&cols, &cats)), b, &mut self.rng);
                let permuted: Vec<f32> = perm
                    .iter()
                    .flat_map(|&i| cb.cond[i * cond_dim..(i + 1) * cond_dim].iter().copied())
                    .collect();
                (Some((cb.cond, permuted)), real)
            }
            None => (
                None,
                self.sampler.sample_rows(&self.data, None, b, &mut self.rng),
            ),
        };
        let gumbel = gumbel_noise(b * self.data.width, &mut self.rng);
        let masks_scored = self.masks(2);
        let masks_penalty = self.masks(1);
        let pac = self.shape.pac;
        let alpha = (0..b / pac)
            .flat_map(|_| std::iter::repeat_n(self.rng.random::<f32>(), pac))
            .collect();
        CriticDraw {
            noise,
            cond,
            real,
            gumbel,
            masks_scored,
            masks_penalty,
            alpha,
        }
    }

    pub fn generator(&mut self) -> GeneratorDraw {
        let b = self.shape.batch;
        let noise = self.noise();
        let cond = self.sampler.sample_cond(b, &mut self.rng).map(|cb| cb.cond);
        let gumbel = gumbel_noise(b * self.data.width, &mut self.rng);
        GeneratorDraw {
            noise,
            cond,
            gumbel,
            masks: self.masks(1),
        }
    }

    /// Draws for `steps` training steps on the calling thread, into `tx`; stops early when
    /// the receiver is gone.
    pub fn produce(mut self, steps: usize, tx: SyncSender<StepDraws>) {
        for _ in 0..steps {
            let critic = (0..self.shape.discriminator_steps)
                .map(|_| self.critic())
                .collect();
            let generator = self.generator();
            if tx.send(StepDraws { critic, generator }).is_err() {
                return;
            }
        }
    }
}

/// The draws of one training step.
pub struct StepDraws {
    pub critic: Vec<CriticDraw>,
    pub generator: GeneratorDraw,
}

/// The draws of every step, produced ahead on a thread of their own.
pub struct Prefetch {
    rx: Option<Receiver<StepDraws>>,
    thread: Option<JoinHandle<()>>,
}

impl Prefetch {
    /// Starts drawing `steps` steps' inputs on a new thread.
    pub fn spawn(draws: Draws, steps: usize) -> Result<Self> {
        let (tx, rx) = sync_channel(AHEAD);
        let thread = std::thread::Builder::new()
            .name("ctgan-draws".into())
            .spawn(move || draws.produce(steps, tx))?;
        Ok(Self {
            rx: Some(rx),
            thread: Some(thread),
        })
    }

    /// The next step's draws.
    pub fn next(&self) -> Result<StepDraws> {
        self.rx
            .as_ref()
            .and_then(|rx| rx.recv().ok())
            .ok_or_else(|| EngineError::InvalidData("the training draws stopped early".into()))
    }
}

impl Drop for Prefetch {
    /// Dropping the receiver stops the thread at its next send; then it is joined.
    fn drop(&mut self) {
        drop(self.rx.take());
        if let Some(thread) = self.thread.take() {
            // A panic there has already shown as draws that stopped early.
            let _ = thread.join();
        }
    }
}
