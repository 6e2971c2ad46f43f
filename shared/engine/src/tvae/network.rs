//! TVAE's two networks: the encoder (ReLU MLP → μ and log-variance of the latent code) and
//! the decoder (ReLU MLP → one output per encoded column, plus a learnable σ per α entry).

use candle_core::{Module, Tensor, Var};

use crate::error::Result;
use crate::nn::{Linear, VarBuilder};

/// σ of every α entry starts here, as in the reference.
pub const SIGMA_INIT: f64 = 0.1;
/// σ is clamped to this range after every optimiser step, as in the reference.
pub const SIGMA_MIN: f64 = 0.01;
pub const SIGMA_MAX: f64 = 1.0;

/// ReLU layers `{i}` under `vb`, from `input_dim`; returns them and the last width.
fn mlp(input_dim: usize, hidden: &[usize], vb: VarBuilder<'_>) -> Result<(Vec<Linear>, usize)> {
    let mut dim = input_dim;
    let mut layers = Vec::with_capacity(hidden.len());
    for (i, &h) in hidden.iter().enumerate() {
        layers.push(Linear::new(dim, h, vb.pp(i))?);
        dim = h;
    }
    Ok((layers, dim))
}

fn mlp_forward(layers: &[Linear], x: &Tensor) -> Result<Tensor> {
    let mut x = x.clone();
    for l in layers {
        x = l.forward_relu(&x)?;
    }
    Ok(x)
}

/// The encoder's shape.
#[derive(Debug, Clone, PartialEq)]
pub struct EncoderConfig {
    /// Width of the encoded table.
    pub data_dim: usize,
    pub hidden: Vec<usize>,
    /// Size of the latent code.
    pub embedding_dim: usize,
}

/// The encoder: `x → (μ, log σ²)` of the latent code.
pub struct Encoder {
    hidden: Vec<Linear>,
    mu: Linear,
    logvar: Linear,
}

impl Encoder {
    /// Layers `hidden.{i}`, then `mu` and `logvar`, under `vb`.
    pub fn new(config: &EncoderConfig, vb: VarBuilder<'_>) -> Result<Self> {
        let (hidden, dim) = mlp(config.data_dim, &config.hidden, vb.pp("hidden"))?;
        Ok(Self {
            hidden,
            mu: Linear::new(dim, config.embedding_dim, vb.pp("mu"))?,
            logvar: Linear::new(dim, config.embedding_dim, vb.pp("logvar"))?,
        })
    }

    /// `(μ, log-variance)`, each `batch × embedding_dim`.
    pub fn forward(&self, x: &Tensor) -> Result<(Tensor, Tensor)> {
        let h = mlp_forward(&self.hidden, x)?;
        Ok((self.mu.forward(&h)?, self.logvar.forward(&h)?))
    }
}

/// The decoder's shape.
#[derive(Debug, Clone, PartialEq)]
pub struct DecoderConfig {
    /// Size of the latent code.
    pub embedding_dim: usize,
    pub hidden: Vec<usize>,
    /// Width of the encoded table.
    pub data_dim: usize,
    /// α entries, each with its σ.
    pub n_alpha: usize,
}

/// The decoder: latent code → pre-activation output, and σ of each α entry; clones share
/// its variables.
#[derive(Clone)]
pub struct Decoder {
    hidden: Vec<Linear>,
    out: Linear,
    /// One σ per tanh (α) span, in span order.
    pub sigma: Var,
}

impl Decoder {
    /// Layers `hidden.{i}`, then `out`, and `sigma` (all [`SIGMA_INIT`]), under `vb`.
    pub fn new(config: &DecoderConfig, vb: VarBuilder<'_>) -> Result<Self> {
        let (hidden, dim) = mlp(config.embedding_dim, &config.hidden, vb.pp("hidden"))?;
        Ok(Self {
            hidden,
            out: Linear::new(dim, config.data_dim, vb.pp("out"))?,
            sigma: vb.constant("sigma", config.n_alpha, SIGMA_INIT as f32)?,
        })
    }

    /// Pre-activation output, `batch × data_dim` (no dropout or batch norm, so training
    /// and evaluation modes are the same network).
    pub fn forward(&self, z: &Tensor) -> Result<Tensor> {
        Ok(self.out.forward(&mlp_forward(&self.hidden, z)?)?)
    }

    /// Clamps σ to [`SIGMA_MIN`], [`SIGMA_MAX`] (after every optimiser step).
    pub fn clamp_sigma(&self) -> Result<()> {
        if self.sigma.elem_count() == 0 {
            return Ok(());
        }
        let s = self
            .sigma
            .as_tensor()
            .detach()
            .clamp(SIGMA_MIN, SIGMA_MAX)?;
        self.sigma.set(&s)?;
        Ok(())
    }
}
