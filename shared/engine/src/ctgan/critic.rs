//! CTGAN's critic with PacGAN packing: `pac` rows are concatenated and judged together by
//! Linear → LeakyReLU(0.2) → Dropout(0.5) layers and a final Linear to one score.

#[cfg(test)]
use candle_core::{DType, Device};
use candle_core::{Module, Tensor};
use rand::Rng;

use crate::error::Result;
use crate::fused::leaky_relu_masked;
use crate::nn::{Linear, VarBuilder};
use crate::random::EngineRng;

pub const LEAKY_SLOPE: f64 = 0.2;
pub const DROPOUT: f64 = 0.5;

/// Dropout masks for `packs` packed rows, one (packs × width) mask per hidden layer: each
/// entry is 0 or 1/(1−p), as inverted dropout scales. Drawn from our generator for
/// reproducibility.
pub fn dropout_mask_values(packs: usize, widths: &[usize], rng: &mut EngineRng) -> Vec<Vec<f32>> {
    let keep = (1.0 / (1.0 - DROPOUT)) as f32;
    widths
        .iter()
        .map(|&w| {
            (0..packs * w)
                .map(|_| {
                    if rng.random::<f64>() < DROPOUT {
                        0.0
                    } else {
                        keep
                    }
                })
                .collect()
        })
        .collect()
}

/// The critic's shape.
#[derive(Debug, Clone, PartialEq)]
pub struct CriticConfig {
    /// Width of one (unpacked) input row: encoded row plus condition.
    pub input_dim: usize,
    pub hidden: Vec<usize>,
    /// Rows judged together.
    pub pac: usize,
}

/// The critic network.
pub struct Critic {
    pub(crate) hidden: Vec<Linear>,
    pub(crate) out: Linear,
    pub pac: usize,
    /// Width of one (unpacked) input row.
    pub input_dim: usize,
}

/// What a forward pass keeps for the hand-written input gradient.
pub(crate) struct CriticPass {
    pub score: Tensor,
    /// Pre-activations of each hidden layer.
    pub pre: Vec<Tensor>,
}

impl Critic {
    /// Hidden layers `hidden{i}` and the output layer `out`, under `vb`.
    pub fn new(config: &CriticConfig, vb: VarBuilder<'_>) -> Result<Self> {
        let mut dim = config.input_dim * config.pac;
        let mut layers = Vec::with_capacity(config.hidden.len());
        for (i, &h) in config.hidden.iter().enumerate() {
            layers.push(Linear::new(dim, h, vb.pp(format!("hidden{i}")))?);
            dim = h;
        }
        Ok(Self {
            hidden: layers,
            out: Linear::new(dim, 1, vb.pp("out"))?,
            pac: config.pac,
            input_dim: config.input_dim,
        })
    }

    /// Widths of the hidden layers, each of which has a dropout mask.
    pub fn hidden_widths(&self) -> Vec<usize> {
        self.hidden.iter().map(|l| l.bias.dims()[0]).collect()
    }

    /// Fresh dropout masks for a batch of `rows` (unpacked) rows, as tensors.
    #[cfg(test)]
    pub fn dropout_masks(
        &self,
        rows: usize,
        dtype: DType,
        device: &Device,
        rng: &mut EngineRng,
    ) -> Result<Vec<Tensor>> {
        let packs = rows / self.pac;
        dropout_mask_values(packs, &self.hidden_widths(), rng)
            .into_iter()
            .zip(self.hidden_widths())
            .map(|(m, w)| Ok(Tensor::from_vec(m, (packs, w), device)?.to_dtype(dtype)?))
            .collect()
    }

    /// Scores of packed groups of rows, shape (rows / pac, 1). A `frozen` pass treats the
    /// parameters as constants: gradients reach the input only.
    pub(crate) fn pass(&self, x: &Tensor, masks: &[Tensor], frozen: bool) -> Result<CriticPass> {
        let rows = x.dims()[0];
        let apply = |layer: &Linear, h: &Tensor| {
            if frozen {
                layer.forward_frozen(h)
            } else {
                layer.forward(h)
            }
        };
        let mut h = x.reshape((rows / self.pac, self.pac * self.input_dim))?;
        let mut pre = Vec::with_capacity(self.hidden.len());
        for (layer, mask) in self.hidden.iter().zip(masks) {
            let z = apply(layer, &h)?;
            h = leaky_relu_masked(&z, mask, LEAKY_SLOPE)?;
            pre.push(z);
        }
        Ok(CriticPass {
            score: apply(&self.out, &h)?,
            pre,
        })
    }

    pub fn forward(&self, x: &Tensor, masks: &[Tensor]) -> Result<Tensor> {
        Ok(self.pass(x, masks, false)?.score)
    }

    /// Scores with the parameters held constant (the generator's update).
    pub fn forward_frozen(&self, x: &Tensor, masks: &[Tensor]) -> Result<Tensor> {
        Ok(self.pass(x, masks, true)?.score)
    }
}
