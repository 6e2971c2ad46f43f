//! CTGAN's generator: noise ⊕ condition through residual blocks (Linear → BatchNorm1d →
//! ReLU, concatenated with the block's input) to one linear output per encoded column,
//! then tanh on α spans and a soft Gumbel-softmax on one-hot spans.

use candle_core::{Module, Tensor};

use crate::error::Result;
use crate::fused::{self, Activation};
use crate::nn::{BatchMoments, BatchNorm1d, BatchNormMode, Linear, VarBuilder};
use crate::transformer::{Span, SpanKind};

/// Temperature of the Gumbel-softmax on one-hot spans (the reference's τ).
pub const GUMBEL_TAU: f64 = 0.2;

#[derive(Clone)]
struct Residual {
    fc: Linear,
    bn: BatchNorm1d,
}

/// The generator's shape.
#[derive(Debug, Clone, PartialEq)]
pub struct GeneratorConfig {
    /// Noise plus condition.
    pub input_dim: usize,
    /// Width of each residual block.
    pub hidden: Vec<usize>,
    /// Width of the encoded table.
    pub data_dim: usize,
}

/// The generator network; clones share its variables.
#[derive(Clone)]
pub struct Generator {
    blocks: Vec<Residual>,
    out: Linear,
}

impl Generator {
    /// Blocks `block{i}` (`fc`, then `bn`) and the output layer `out`, under `vb`.
    pub fn new(config: &GeneratorConfig, vb: VarBuilder<'_>) -> Result<Self> {
        let mut dim = config.input_dim;
        let mut blocks = Vec::with_capacity(config.hidden.len());
        for (i, &h) in config.hidden.iter().enumerate() {
            let block = vb.pp(format!("block{i}"));
            blocks.push(Residual {
                fc: Linear::new(dim, h, block.pp("fc"))?,
                bn: BatchNorm1d::new(h, block.pp("bn"))?,
            });
            dim += h;
        }
        Ok(Self {
            blocks,
            out: Linear::new(dim, config.data_dim, vb.pp("out"))?,
        })
    }

    /// Pre-activation output (the logits the conditional loss is computed on).
    pub fn forward(&self, input: &Tensor, mode: BatchNormMode) -> Result<Tensor> {
        if mode == BatchNormMode::Train {
            let (logits, moments) = self.forward_train(input)?;
            self.update_running(moments)?;
            return Ok(logits);
        }
        let mut x = input.clone();
        for b in &self.blocks {
            let h = b.bn.forward_relu(&b.fc.forward(&x)?, mode)?;
            x = Tensor::cat(&[&h, &x], 1)?;
        }
        Ok(self.out.forward(&x)?)
    }

    /// A training pass that leaves the running statistics alone and returns each block's
    /// batch statistics instead, so that passes computed at the same time can fold theirs
    /// in a fixed order ([`Self::update_running`]).
    pub fn forward_train(&self, input: &Tensor) -> Result<(Tensor, Vec<BatchMoments>)> {
        let mut x = input.clone();
        let mut moments = Vec::with_capacity(self.blocks.len());
        for b in &self.blocks {
            let (h, m) = b.bn.forward_relu_batch(&b.fc.forward(&x)?)?;
            moments.push(m);
            x = Tensor::cat(&[&h, &x], 1)?;
        }
        Ok((self.out.forward(&x)?, moments))
    }

    /// Folds a training pass's batch statistics into the running ones.
    pub fn update_running(&self, moments: Vec<BatchMoments>) -> Result<()> {
        for (b, m) in self.blocks.iter().zip(moments) {
            b.bn.update_running(m)?;
        }
        Ok(())
    }
}

/// Applies tanh to α spans and a soft Gumbel-softmax, softmax((logits + g)/τ), to one-hot
/// spans. `gumbel` holds standard Gumbel noise of the same shape as `logits`; candle's own
/// `gumbel_softmax` returns hard indices, which would cut the generator's gradient.
pub fn activate(logits: &Tensor, spans: &[Span], gumbel: &Tensor) -> Result<Tensor> {
    Ok(fused::activate(logits, gumbel, &activations(spans))?)
}

/// The activation of each output span.
pub fn activations(spans: &[Span]) -> Vec<(Activation, usize)> {
    spans
        .iter()
        .map(|s| {
            let kind = match s.kind {
                SpanKind::Tanh => Activation::Tanh,
                SpanKind::Softmax => Activation::GumbelSoftmax {
                    tau: GUMBEL_TAU as f32,
                },
            };
            (kind, s.width)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::random::{gumbel_noise, rng_for};
    use candle_core::{DType, Device};

    #[test]
    fn activation_is_tanh_on_alpha_and_soft_one_hot_elsewhere() {
        let dev = Device::Cpu;
        let spans = [Span::tanh(1), Span::softmax(3)];
        let logits = Tensor::new(&[[3.0f32, 1.0, 2.0, 0.5], [-3.0, 0.0, 0.0, 0.0]], &dev).unwrap();
        let zero = Tensor::zeros((2, 4), DType::F32, &dev).unwrap();
        let out = activate(&logits, &spans, &zero)
            .unwrap()
            .to_vec2::<f32>()
            .unwrap();
        assert!((out[0][0] - 3f32.tanh()).abs() < 1e-6);
        // Without noise this is softmax(logits / 0.2): soft, summing to one, sharper than softmax.
        let e: Vec<f32> = [1.0f32, 2.0, 0.5].iter().map(|x| (x / 0.2).exp()).collect();
        let s: f32 = e.iter().sum();
        for k in 0..3 {
            assert!((out[0][1 + k] - e[k] / s).abs() < 1e-5);
        }
        assert!(
            (out[1][1..].iter().sum::<f32>() - 1.0).abs() < 1e-6
                && (out[1][1] - 1.0 / 3.0).abs() < 1e-6
        );
        // Gumbel noise has the standard Gumbel mean (Euler's γ).
        let g = gumbel_noise(20000, &mut rng_for(3, 0));
        let mean = g.iter().map(|x| *x as f64).sum::<f64>() / g.len() as f64;
        assert!((mean - 0.5772).abs() < 0.03, "{mean}");
    }
}
