//! CTGAN's conditional cross-entropy: each row's conditioned column logits against its
//! conditioned category, in one pass over the rows.

use std::sync::Arc;

use candle_core::{CpuStorage, CustomOp2, DType, Layout, Result, Shape, Tensor, bail};

use super::storage::{cpu_tensor, dims2, fusable, slice, with_data};

/// Where a discrete column sits in the logits and in the conditional vector.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CondSpan {
    pub logit_offset: usize,
    pub cond_offset: usize,
    pub width: usize,
}

struct CondLossOp {
    spans: Vec<CondSpan>,
}

/// Visits every (row, span) with the span's logits and condition values.
fn for_each_span(
    spans: &[CondSpan],
    x: &[f32],
    xw: usize,
    c: &[f32],
    cw: usize,
    mut f: impl FnMut(usize, &CondSpan, &[f32], &[f32]),
) {
    for (r, (xr, cr)) in x.chunks_exact(xw).zip(c.chunks_exact(cw)).enumerate() {
        for s in spans {
            f(
                r,
                s,
                &xr[s.logit_offset..s.logit_offset + s.width],
                &cr[s.cond_offset..s.cond_offset + s.width],
            );
        }
    }
}

impl CondLossOp {
    fn check(&self, xw: usize, cw: usize) -> Result<()> {
        for s in &self.spans {
            if s.logit_offset + s.width > xw || s.cond_offset + s.width > cw {
                bail!("fused-conditional-loss: span {s:?} is outside the inputs")
            }
        }
        Ok(())
    }
}

impl CustomOp2 for CondLossOp {
    fn name(&self) -> &'static str {
        "fused-conditional-loss"
    }

    fn cpu_fwd(
        &self,
        sx: &CpuStorage,
        lx: &Layout,
        sc: &CpuStorage,
        lc: &Layout,
    ) -> Result<(CpuStorage, Shape)> {
        let ((rows, xw), (_, cw)) = (dims2(lx)?, dims2(lc)?);
        self.check(xw, cw)?;
        let (x, c) = (slice(sx, lx)?, slice(sc, lc)?);
        let mut total = 0f64;
        for_each_span(&self.spans, x, xw, c, cw, |_, _, xs, cs| {
            let chosen: f32 = cs.iter().sum();
            if chosen == 0.0 {
                return;
            }
            let max = xs.iter().fold(f32::NEG_INFINITY, |a, b| a.max(*b));
            let lse = max + xs.iter().map(|v| (v - max).exp()).sum::<f32>().ln();
            let dot: f32 = xs.iter().zip(cs).map(|(x, c)| c * x).sum();
            total += (chosen * lse - dot) as f64;
        });
        let loss = (total / rows.max(1) as f64) as f32;
        Ok((CpuStorage::F32(vec![loss]), Shape::from(())))
    }

    fn bwd(
        &self,
        x: &Tensor,
        cond: &Tensor,
        _res: &Tensor,
        grad: &Tensor,
    ) -> Result<(Option<Tensor>, Option<Tensor>)> {
        let ((rows, xw), cw) = (x.dims2()?, cond.dims2()?.1);
        let scale = grad.to_dtype(DType::F32)?.to_scalar::<f32>()? / rows.max(1) as f32;
        let dx = with_data(x, |xv| {
            with_data(cond, |c| {
                let mut dx = vec![0f32; rows * xw];
                for_each_span(&self.spans, xv, xw, c, cw, |r, s, xs, cs| {
                    let chosen: f32 = cs.iter().sum();
                    if chosen == 0.0 {
                        return;
                    }
                    let max = xs.iter().fold(f32::NEG_INFINITY, |a, b| a.max(*b));
                    let sum: f32 = xs.iter().map(|v| (v - max).exp()).sum();
                    let d = &mut dx[r * xw + s.logit_offset..r * xw + s.logit_offset + s.width];
                    for ((d, x), c) in d.iter_mut().zip(xs).zip(cs) {
                        *d = scale * (chosen * (x - max).exp() / sum - c);
                    }
                });
                dx
            })
        })??;
        Ok((Some(cpu_tensor(dx, (rows, xw))?), None))
    }
}

/// Log-softmax over the last dimension of a 2-D tensor.
fn log_softmax(x: &Tensor) -> Result<Tensor> {
    let shifted = x.broadcast_sub(&x.max_keepdim(1)?)?;
    shifted.broadcast_sub(&shifted.exp()?.sum_keepdim(1)?.log()?)
}

/// Cross-entropy of each row's conditioned column logits against its conditioned category,
/// summed over the batch and divided by its size. The conditional vector is zero outside the
/// chosen column, so summing over every discrete span applies the chosen-column mask.
pub fn conditional_loss(logits: &Tensor, cond: &Tensor, spans: &[CondSpan]) -> Result<Tensor> {
    if fusable(&[logits, cond]) {
        return logits.contiguous()?.apply_op2_arc(
            &cond.contiguous()?,
            Arc::new(Box::new(CondLossOp {
                spans: spans.to_vec(),
            })),
        );
    }
    let b = logits.dims()[0];
    let mut total = Tensor::zeros((), logits.dtype(), logits.device())?;
    for s in spans {
        let lsm = log_softmax(&logits.narrow(1, s.logit_offset, s.width)?)?;
        let target = cond.narrow(1, s.cond_offset, s.width)?;
        total = (total + (lsm * target)?.sum_all()?)?;
    }
    total.neg()? / b as f64
}

#[cfg(test)]
mod tests {
    use super::super::testing::{check, var};
    use super::*;
    use candle_core::Device;

    #[test]
    fn conditional_loss_matches_the_composition() {
        // Rows conditioned on the first column, the second, or (last row) nothing at all.
        let cond = Tensor::new(
            &[
                [0f32, 1.0, 0.0, 0.0, 0.0],
                [0.0, 0.0, 0.0, 0.0, 1.0],
                [1.0, 0.0, 0.0, 0.0, 0.0],
                [0.0, 0.0, 0.0, 0.0, 0.0],
            ],
            &Device::Cpu,
        )
        .unwrap();
        let spans = [
            CondSpan {
                logit_offset: 1,
                cond_offset: 0,
                width: 3,
            },
            CondSpan {
                logit_offset: 5,
                cond_offset: 3,
                width: 2,
            },
        ];
        check(
            &[var((4, 7), 10)],
            |t| {
                conditional_loss(&t[0], &cond.to_dtype(t[0].dtype()).unwrap(), &spans)
                    .unwrap()
                    .reshape(1)
                    .unwrap()
            },
            1e-5,
        );
    }
}
