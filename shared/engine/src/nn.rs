//! The few layers the models are made of, written on candle-core so that their parameters
//! are plain `Var`s we can name, save, and hand to our own optimiser, and so that their
//! initialisation draws from our seeded generator (PyTorch's defaults: U(±1/√fan_in)).

use candle_core::{DType, Device, Module, Tensor, Var};
use rand::Rng;

use crate::error::Result;
use crate::random::EngineRng;

/// A fully connected layer, `y = x Wᵀ + b` with W of shape (out, in) as in PyTorch.
pub struct Linear {
    pub weight: Var,
    pub bias: Var,
}

impl Linear {
    pub fn new(
        in_dim: usize,
        out_dim: usize,
        dtype: DType,
        device: &Device,
        rng: &mut EngineRng,
    ) -> Result<Self> {
        let bound = 1.0 / (in_dim as f64).sqrt();
        let mut draw =
            |n: usize| -> Vec<f64> { (0..n).map(|_| rng.random_range(-bound..bound)).collect() };
        let w =
            Tensor::from_vec(draw(in_dim * out_dim), (out_dim, in_dim), device)?.to_dtype(dtype)?;
        let b = Tensor::from_vec(draw(out_dim), out_dim, device)?.to_dtype(dtype)?;
        Ok(Self {
            weight: Var::from_tensor(&w)?,
            bias: Var::from_tensor(&b)?,
        })
    }

    pub fn vars(&self, prefix: &str) -> Vec<(String, Var)> {
        vec![
            (format!("{prefix}.weight"), self.weight.clone()),
            (format!("{prefix}.bias"), self.bias.clone()),
        ]
    }
}

impl Module for Linear {
    fn forward(&self, x: &Tensor) -> candle_core::Result<Tensor> {
        x.matmul(&self.weight.t()?)?.broadcast_add(&self.bias)
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
pub struct BatchNorm1d {
    pub gamma: Var,
    pub beta: Var,
    pub running_mean: Var,
    pub running_var: Var,
}

const BN_EPS: f64 = 1e-5;
const BN_MOMENTUM: f64 = 0.1;

impl BatchNorm1d {
    pub fn new(dim: usize, dtype: DType, device: &Device) -> Result<Self> {
        Ok(Self {
            gamma: Var::ones(dim, dtype, device)?,
            beta: Var::zeros(dim, dtype, device)?,
            running_mean: Var::zeros(dim, dtype, device)?,
            running_var: Var::ones(dim, dtype, device)?,
        })
    }

    /// The learnable parameters.
    pub fn vars(&self, prefix: &str) -> Vec<(String, Var)> {
        vec![
            (format!("{prefix}.gamma"), self.gamma.clone()),
            (format!("{prefix}.beta"), self.beta.clone()),
        ]
    }

    /// The running statistics: saved with the model, never optimised.
    pub fn buffers(&self, prefix: &str) -> Vec<(String, Var)> {
        vec![
            (format!("{prefix}.running_mean"), self.running_mean.clone()),
            (format!("{prefix}.running_var"), self.running_var.clone()),
        ]
    }

    pub fn forward(&self, x: &Tensor, mode: BatchNormMode) -> candle_core::Result<Tensor> {
        let (mean, var) = if mode == BatchNormMode::Running {
            (
                self.running_mean.as_tensor().unsqueeze(0)?,
                self.running_var.as_tensor().unsqueeze(0)?,
            )
        } else {
            let mean = x.mean_keepdim(0)?;
            // Biased variance, as PyTorch normalises with in training mode.
            let var = x.broadcast_sub(&mean)?.sqr()?.mean_keepdim(0)?;
            if mode == BatchNormMode::Train {
                let n = x.dims()[0] as f64;
                let unbiased = var
                    .detach()
                    .affine(n / (n - 1.0).max(1.0), 0.0)?
                    .squeeze(0)?;
                let m = mean.detach().squeeze(0)?;
                let rm = (self.running_mean.affine(1.0 - BN_MOMENTUM, 0.0)?
                    + m.affine(BN_MOMENTUM, 0.0)?)?;
                let rv = (self.running_var.affine(1.0 - BN_MOMENTUM, 0.0)?
                    + unbiased.affine(BN_MOMENTUM, 0.0)?)?;
                self.running_mean.set(&rm)?;
                self.running_var.set(&rv)?;
            }
            (mean, var)
        };
        x.broadcast_sub(&mean)?
            .broadcast_div(&(var + BN_EPS)?.sqrt()?)?
            .broadcast_mul(&self.gamma)?
            .broadcast_add(&self.beta)
    }
}

/// Softmax over the last dimension of a 2-D tensor.
pub fn softmax(x: &Tensor) -> candle_core::Result<Tensor> {
    let e = x.broadcast_sub(&x.max_keepdim(1)?)?.exp()?;
    e.broadcast_div(&e.sum_keepdim(1)?)
}

/// Log-softmax over the last dimension of a 2-D tensor.
pub fn log_softmax(x: &Tensor) -> candle_core::Result<Tensor> {
    let shifted = x.broadcast_sub(&x.max_keepdim(1)?)?;
    shifted.broadcast_sub(&shifted.exp()?.sum_keepdim(1)?.log()?)
}

/// Leaky ReLU as max(x, slope·x), valid for slopes below one.
pub fn leaky_relu(x: &Tensor, slope: f64) -> candle_core::Result<Tensor> {
    x.maximum(&x.affine(slope, 0.0)?)
}

/// Every named parameter of a model, for the optimiser and for saving.
pub type NamedVars = Vec<(String, Var)>;
