//! The few layers the models are made of, written on candle-core so that their parameters
//! are plain `Var`s we can name, save, and hand to our own optimiser, and so that their
//! initialisation draws from our seeded generator (PyTorch's defaults: U(±1/√fan_in)).

use candle_core::{DType, Device, Module, Tensor, Var};
use rand::Rng;

use crate::error::{EngineError, Result};
use crate::fused;
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

impl Linear {
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
pub struct BatchNorm1d {
    pub gamma: Var,
    pub beta: Var,
    pub running_mean: Var,
    pub running_var: Var,
}

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

/// Every named parameter of a model, for the optimiser and for saving.
pub type NamedVars = Vec<(String, Var)>;

/// Writes `vars` under their names to the saved model's weights file in `dir`.
pub fn save_weights(vars: NamedVars, dir: &std::path::Path) -> Result<()> {
    let weights: std::collections::HashMap<String, Tensor> = vars
        .into_iter()
        .map(|(name, var)| (name, var.as_tensor().clone()))
        .collect();
    candle_core::safetensors::save(&weights, dir.join(crate::WEIGHTS_FILE))?;
    Ok(())
}

/// Sets each of `vars` from the weight of its name in the saved model's weights file in
/// `dir`, loaded onto `device`; a missing weight or one of another shape is an error.
pub fn load_weights(vars: NamedVars, dir: &std::path::Path, device: &Device) -> Result<()> {
    let weights = candle_core::safetensors::load(dir.join(crate::WEIGHTS_FILE), device)?;
    for (name, var) in vars {
        let w = weights
            .get(&name)
            .ok_or_else(|| EngineError::InvalidModel(format!("weights lack {name}")))?;
        if w.dims() != var.dims() {
            return Err(EngineError::InvalidModel(format!(
                "{name} has shape {:?}, expected {:?}",
                w.dims(),
                var.dims()
            )));
        }
        var.set(&w.to_dtype(var.dtype())?)?;
    }
    Ok(())
}
