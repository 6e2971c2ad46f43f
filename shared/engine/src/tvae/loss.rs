//! TVAE's objective, as the reference computes it: a Gaussian reconstruction term on α
//! entries with learnable σ, cross-entropy on every one-hot span, and the KL divergence of
//! the latent code from N(0, I).

use candle_core::Tensor;

use crate::error::Result;
use crate::fused::{CondSpan, conditional_loss};
use crate::transformer::{Span, SpanKind};

/// Where each span sits in an encoded row: α columns (tanh spans, one value each) and the
/// `(offset, width)` of every one-hot span.
#[derive(Debug, Clone)]
pub struct Layout {
    pub alpha: Vec<u32>,
    pub one_hot: Vec<(usize, usize)>,
    /// Per one-hot span, whether it is a continuous column's mode (the span right after its
    /// α): sampling takes a mode's most likely value, as the reference does, and draws the
    /// others (categories, null flags).
    pub mode: Vec<bool>,
}

impl Layout {
    pub fn new(spans: &[Span]) -> Self {
        let (mut alpha, mut one_hot, mut mode, mut offset) =
            (Vec::new(), Vec::new(), Vec::new(), 0);
        let mut after_alpha = false;
        for s in spans {
            match s.kind {
                SpanKind::Tanh => {
                    // A tanh span is one α value; wider ones would each be an α entry.
                    alpha.extend((offset..offset + s.width).map(|i| i as u32));
                }
                SpanKind::Softmax => {
                    one_hot.push((offset, s.width));
                    mode.push(after_alpha);
                }
            }
            after_alpha = s.kind == SpanKind::Tanh;
            offset += s.width;
        }
        Self {
            alpha,
            one_hot,
            mode,
        }
    }
}

/// The two parts of the loss, already divided by the batch size.
pub struct Losses {
    /// Σ_α [Σ_rows (x − tanh x̂)² / 2σ² + B·log σ] + Σ_one-hot cross-entropy, times
    /// `factor`, over B.
    pub reconstruction: Tensor,
    /// −½ Σ (1 + log σ² − μ² − σ²), over B.
    pub kl: Tensor,
}

impl Losses {
    pub fn total(&self) -> Result<Tensor> {
        Ok((&self.reconstruction + &self.kl)?)
    }
}

/// The loss of `x`, the encoded rows of one batch or of a shard of it: `recon` the decoder's
/// pre-activation output, `sigma` one σ per α entry, `mu`/`logvar` the encoder's output,
/// `batch` the size of the whole batch the terms are divided by. The losses of a batch's
/// shards add up to the loss of the batch.
#[allow(clippy::too_many_arguments)]
pub fn loss(
    recon: &Tensor,
    x: &Tensor,
    sigma: &Tensor,
    mu: &Tensor,
    logvar: &Tensor,
    layout: &Layout,
    factor: f64,
    batch: f64,
) -> Result<Losses> {
    let rows = x.dims()[0] as f64;
    let mut rec = Tensor::zeros((), x.dtype(), x.device())?;
    if !layout.alpha.is_empty() {
        let idx = Tensor::new(layout.alpha.as_slice(), x.device())?;
        let xa = x.index_select(&idx, 1)?;
        let ra = recon.index_select(&idx, 1)?.tanh()?;
        let two_var = (sigma.sqr()? * 2.0)?;
        let gauss = (xa - ra)?.sqr()?.broadcast_div(&two_var)?.sum_all()?;
        let log_sigma = (sigma.log()?.sum_all()? * rows)?;
        rec = (rec + gauss + log_sigma)?;
    }
    if !layout.one_hot.is_empty() {
        // Cross-entropy against the one-hot target (the reference's argmax of the span),
        // summed over rows and spans: one fused op whose target is the span of `x` itself.
        let spans: Vec<CondSpan> = layout
            .one_hot
            .iter()
            .map(|&(offset, width)| CondSpan {
                logit_offset: offset,
                cond_offset: offset,
                width,
            })
            .collect();
        let ce = (conditional_loss(recon, x, &spans)? * rows)?;
        rec = (rec + ce)?;
    }
    let kl = ((logvar.exp()? + mu.sqr()? - logvar)? - 1.0)?.sum_all()?;
    Ok(Losses {
        reconstruction: (rec * (factor / batch))?,
        kl: (kl * (0.5 / batch))?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::Device;

    fn t2(v: &[f32], r: usize, c: usize) -> Tensor {
        Tensor::from_vec(v.to_vec(), (r, c), &Device::Cpu).unwrap()
    }

    #[test]
    fn loss_terms_match_hand_computed_values() {
        // Row layout: α, one-hot of 2, α.
        let spans = [Span::tanh(1), Span::softmax(2), Span::tanh(1)];
        let layout = Layout::new(&spans);
        assert_eq!(layout.alpha, [0, 3]);
        assert_eq!(layout.one_hot, [(1, 2)]);
        assert_eq!(layout.mode, [true]);
        let categories = Layout::new(&[Span::softmax(3), Span::tanh(1), Span::softmax(2)]);
        assert_eq!(categories.mode, [false, true]);
        let x = t2(&[0.5, 1.0, 0.0, -0.2, -0.3, 0.0, 1.0, 0.4], 2, 4);
        let recon = t2(&[0.1, 2.0, -1.0, 0.0, 0.0, 0.5, 0.5, -0.7], 2, 4);
        let sigma = Tensor::new(&[0.1f32, 0.5], &Device::Cpu).unwrap();
        let mu = t2(&[0.3, -0.1, 0.0, 1.0], 2, 2);
        let logvar = t2(&[0.0, 0.2, -0.5, 0.1], 2, 2);
        let l = loss(&recon, &x, &sigma, &mu, &logvar, &layout, 2.0, 2.0).unwrap();

        let th = |v: f64| v.tanh();
        let (s0, s1) = (0.1f64, 0.5f64);
        let gauss = (0.5 - th(0.1)).powi(2) / (2.0 * s0 * s0)
            + (-0.3 - th(0.0)).powi(2) / (2.0 * s0 * s0)
            + (-0.2 - th(0.0)).powi(2) / (2.0 * s1 * s1)
            + (0.4 - th(-0.7)).powi(2) / (2.0 * s1 * s1);
        let log_sigma = 2.0 * (s0.ln() + s1.ln());
        // Row 0 targets class 0 of logits (2, −1); row 1 targets class 1 of (0.5, 0.5).
        let ce = -(2.0 - (2f64.exp() + (-1f64).exp()).ln()) + 2f64.ln();
        let rec = (gauss + log_sigma + ce) * 2.0 / 2.0;
        let kl_terms = [(0.3, 0.0), (-0.1, 0.2), (0.0, -0.5), (1.0, 0.1)];
        let kl = -0.5
            * kl_terms
                .iter()
                .map(|&(m, lv): &(f64, f64)| 1.0 + lv - m * m - lv.exp())
                .sum::<f64>()
            / 2.0;
        let got_rec = l.reconstruction.to_scalar::<f32>().unwrap() as f64;
        let got_kl = l.kl.to_scalar::<f32>().unwrap() as f64;
        assert!(
            (got_rec - rec).abs() < 1e-4 * rec.abs().max(1.0),
            "{got_rec} vs {rec}"
        );
        assert!((got_kl - kl).abs() < 1e-5, "{got_kl} vs {kl}");
        let total = l.total().unwrap().to_scalar::<f32>().unwrap() as f64;
        assert!((total - rec - kl).abs() < 1e-4 * rec.abs().max(1.0));

        // Each row as its own shard, divided by the whole batch: the shards' losses add up
        // to the batch's.
        let row = |t: &Tensor, i: usize| t.narrow(0, i, 1).unwrap();
        let (mut rec_sum, mut kl_sum) = (0.0, 0.0);
        for i in 0..2 {
            let s = loss(
                &row(&recon, i),
                &row(&x, i),
                &sigma,
                &row(&mu, i),
                &row(&logvar, i),
                &layout,
                2.0,
                2.0,
            )
            .unwrap();
            rec_sum += s.reconstruction.to_scalar::<f32>().unwrap() as f64;
            kl_sum += s.kl.to_scalar::<f32>().unwrap() as f64;
        }
        assert!(
            (rec_sum - rec).abs() < 1e-4 * rec.abs().max(1.0),
            "{rec_sum}"
        );
        assert!((kl_sum - kl).abs() < 1e-5, "{kl_sum} vs {kl}");
    }
}
