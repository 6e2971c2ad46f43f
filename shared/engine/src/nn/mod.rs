//! The few layers the models are made of, written on candle-core the way candle-nn writes
//! them — `new(…, vb)` asking a [`VarBuilder`] for named variables, then `forward` — so that
//! their parameters are plain `Var`s we can name, save, and hand to our own optimiser, their
//! initialisation draws from our seeded generator (PyTorch's defaults: U(±1/√fan_in)), and
//! their forward passes run the fused kernels.

mod var_builder;

use candle_core::{DType, Module, Tensor, Var};

use crate::error::Result;
use crate::fused;
pub use var_builder::{VarBuilder, Vars};

/// A fully connected layer, `y = x Wᵀ + b` with W of shape (out, in) as in PyTorch.
#[derive(Clone)]
pub struct Linear {
    pub weight: Var,
    pub bias: Var,
}

impl Linear {
    /// `weight` and `bias` under `vb`, both U(±1/√in_dim) as PyTorch initialises them
    /// (the weight drawn first).
    pub fn new(in_dim: usize, out_dim: usize, vb: VarBuilder<'_>) -> Result<Self> {
        let bound = 1.0 / (in_dim as f64).sqrt();
        Ok(Self {
            weight: vb.uniform("weight", (out_dim, in_dim), bound)?,
            bias: vb.uniform("bias", out_dim, bound)?,
        })
    }

    /// ReLU of the layer's output, in one op.
    pub fn forward_relu(&self, x: &Tensor) -> candle_core::Result<Tensor> {
        fused::linear_relu(x, &self.weight, &self.bias)
    }

    /// The layer applied with its parameters held constant: the input still gets its
    /// gradient, the parameters get none (and none is computed).
    pub fn forward_frozen(&self, x: &Tensor) -> candle_core::Result<Tensor> {
        fused::linear(
            x,
            &self.weight.as_tensor().detach(),
            &self.bias.as_tensor().detach(),
        )
    }
}

impl Module for Linear {
    fn forward(&self, x: &Tensor) -> candle_core::Result<Tensor> {
        fused::linear(x, &self.weight, &self.bias)
    }
}

/// How batch normalisation normalises.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BatchNormMode {
    /// Batch statistics, and the running statistics are updated (training).
    Train,
    /// Batch statistics without updates: the reference samples this way.
    Batch,
    /// The running statistics (PyTorch's eval mode).
    Running,
}

/// Batch normalisation over the batch dimension with learnable scale and shift, keeping
/// running statistics as PyTorch does (momentum 0.1, unbiased variance).
#[derive(Clone)]
pub struct BatchNorm1d {
    pub gamma: Var,
    pub beta: Var,
    pub running_mean: Var,
    pub running_var: Var,
}

const BN_MOMENTUM: f64 = 0.1;

impl BatchNorm1d {
    /// Scale `gamma` = 1 and shift `beta` = 0 (trained), and the running statistics
    /// `running_mean` = 0 and `running_var` = 1 (buffers: saved, never optimised).
    pub fn new(dim: usize, vb: VarBuilder<'_>) -> Result<Self> {
        Ok(Self {
            gamma: vb.constant("gamma", dim, 1.0)?,
            beta: vb.constant("beta", dim, 0.0)?,
            running_mean: vb.buffer("running_mean", dim, 0.0)?,
            running_var: vb.buffer("running_var", dim, 1.0)?,
        })
    }

    /// ReLU(batch normalisation of `x`), as the generator's residual blocks apply it.
    pub fn forward_relu(&self, x: &Tensor, mode: BatchNormMode) -> candle_core::Result<Tensor> {
        match mode {
            BatchNormMode::Running => {
                let mean = self.running_mean.as_tensor().unsqueeze(0)?;
                let var = self.running_var.as_tensor().unsqueeze(0)?;
                x.broadcast_sub(&mean)?
                    .broadcast_div(&(var + fused::BN_EPS)?.sqrt()?)?
                    .broadcast_mul(&self.gamma)?
                    .broadcast_add(&self.beta)?
                    .relu()
            }
            BatchNormMode::Batch => fused::batch_norm_relu(x, &self.gamma, &self.beta, None),
            BatchNormMode::Train => {
                let (y, stats) = self.forward_relu_batch(x)?;
                self.update_running(stats)?;
                Ok(y)
            }
        }
    }

    /// ReLU(batch normalisation of `x`) with batch statistics, and those statistics, for
    /// [`Self::update_running`] to fold into the running ones (training, in two steps).
    pub fn forward_relu_batch(&self, x: &Tensor) -> candle_core::Result<(Tensor, BatchMoments)> {
        let stats = fused::BatchStats::default();
        let y = fused::batch_norm_relu(x, &self.gamma, &self.beta, Some(&stats))?;
        let (mean, var) = stats
            .lock()
            .expect("batch statistics lock")
            .take()
            .expect("a training pass reports its statistics");
        let rows = x.dims()[0];
        Ok((y, BatchMoments { mean, var, rows }))
    }

    /// Folds one batch's statistics into the running ones, as PyTorch does (momentum 0.1,
    /// the unbiased batch variance).
    pub fn update_running(&self, batch: BatchMoments) -> candle_core::Result<()> {
        let n = batch.rows as f64;
        let unbias = (n / (n - 1.0).max(1.0)) as f32;
        let m = BN_MOMENTUM as f32;
        let blend = |running: &Var, batch: Vec<f32>, k: f32| -> candle_core::Result<()> {
            let old = running.as_tensor().to_dtype(DType::F32)?.to_vec1::<f32>()?;
            let new: Vec<f32> = old
                .iter()
                .zip(&batch)
                .map(|(o, b)| (1.0 - m) * o + m * k * b)
                .collect();
            running.set(
                &Tensor::from_vec(new, old.len(), running.device())?.to_dtype(running.dtype())?,
            )
        };
        blend(&self.running_mean, batch.mean, 1.0)?;
        blend(&self.running_var, batch.var, unbias)
    }
}

/// The per-feature mean and (biased) variance of one training batch of `rows` rows.
pub struct BatchMoments {
    pub mean: Vec<f32>,
    pub var: Vec<f32>,
    pub rows: usize,
}

/// Every named parameter of a model, for the optimiser and for saving.
pub type NamedVars = Vec<(String, Var)>;
