//! TVAE's two networks: the encoder (ReLU MLP → μ and log-variance of the latent code) and
//! the decoder (ReLU MLP → one output per encoded column, plus a learnable σ per α entry).

use candle_core::{DType, Device, Module, Tensor, Var};

use crate::error::Result;
use crate::nn::{Linear, NamedVars};
use crate::random::EngineRng;

/// σ of every α entry starts here, as in the reference.
pub const SIGMA_INIT: f64 = 0.1;
/// σ is clamped to this range after every optimiser step, as in the reference.
pub const SIGMA_MIN: f64 = 0.01;
pub const SIGMA_MAX: f64 = 1.0;

fn mlp(
    input_dim: usize,
    hidden: &[usize],
    device: &Device,
    rng: &mut EngineRng,
) -> Result<(Vec<Linear>, usize)> {
    let mut dim = input_dim;
    let mut layers = Vec::with_capacity(hidden.len());
    for &h in hidden {
        layers.push(Linear::new(dim, h, DType::F32, device, rng)?);
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

fn mlp_vars(layers: &[Linear], prefix: &str) -> NamedVars {
    layers
        .iter()
        .enumerate()
        .flat_map(|(i, l)| l.vars(&format!("{prefix}.{i}")))
        .collect()
}

/// The encoder: `x → (μ, log σ²)` of the latent code.
pub struct Encoder {
    hidden: Vec<Linear>,
    mu: Linear,
    logvar: Linear,
}

impl Encoder {
    pub fn new(
        data_dim: usize,
        hidden: &[usize],
        embedding_dim: usize,
        device: &Device,
        rng: &mut EngineRng,
    ) -> Result<Self> {
        let (hidden, dim) = mlp(data_dim, hidden, device, rng)?;
        Ok(Self {
            hidden,
            mu: Linear::new(dim, embedding_dim, DType::F32, device, rng)?,
            logvar: Linear::new(dim, embedding_dim, DType::F32, device, rng)?,
        })
    }

    /// `(μ, log-variance)`, each `batch × embedding_dim`.
    pub fn forward(&self, x: &Tensor) -> Result<(Tensor, Tensor)> {
        let h = mlp_forward(&self.hidden, x)?;
        Ok((self.mu.forward(&h)?, self.logvar.forward(&h)?))
    }

    pub fn vars(&self) -> NamedVars {
        let mut v = mlp_vars(&self.hidden, "encoder.hidden");
        v.extend(self.mu.vars("encoder.mu"));
        v.extend(self.logvar.vars("encoder.logvar"));
        v
    }
}

/// The decoder: latent code → pre-activation output, and σ of each α entry.
pub struct Decoder {
    hidden: Vec<Linear>,
    out: Linear,
    /// One σ per tanh (α) span, in span order.
    pub sigma: Var,
}

impl Decoder {
    pub fn new(
        embedding_dim: usize,
        hidden: &[usize],
        data_dim: usize,
        n_alpha: usize,
        device: &Device,
        rng: &mut EngineRng,
    ) -> Result<Self> {
        let (hidden, dim) = mlp(embedding_dim, hidden, device, rng)?;
        Ok(Self {
            hidden,
            out: Linear::new(dim, data_dim, DType::F32, device, rng)?,
            sigma: Var::from_tensor(&Tensor::full(SIGMA_INIT as f32, n_alpha, device)?)?,
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

    pub fn vars(&self) -> NamedVars {
        let mut v = mlp_vars(&self.hidden, "decoder.hidden");
        v.extend(self.out.vars("decoder.out"));
        v.push(("decoder.sigma".into(), self.sigma.clone()));
        v
    }
}
