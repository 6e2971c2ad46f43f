//! The generator's output activation, span by span: tanh on α spans and a soft
//! Gumbel-softmax on one-hot spans, in one pass.

use std::sync::Arc;

use candle_core::{CpuStorage, CustomOp2, Layout, Result, Shape, Tensor, bail};

use super::storage::{cpu_tensor, dims2, fusable, slice, with_data};

/// How one span of the generator's output is activated.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Activation {
    Tanh,
    /// softmax((x + Gumbel noise) / τ)
    GumbelSoftmax {
        tau: f32,
    },
}

struct ActivateOp {
    spans: Vec<(Activation, usize)>,
}

impl ActivateOp {
    fn check(&self, cols: usize) -> Result<()> {
        let total: usize = self.spans.iter().map(|s| s.1).sum();
        if total != cols {
            bail!("fused-activate: spans cover {total} of {cols} columns")
        }
        Ok(())
    }
}

impl CustomOp2 for ActivateOp {
    fn name(&self) -> &'static str {
        "fused-activate"
    }

    fn cpu_fwd(
        &self,
        sx: &CpuStorage,
        lx: &Layout,
        sn: &CpuStorage,
        ln: &Layout,
    ) -> Result<(CpuStorage, Shape)> {
        let (rows, cols) = dims2(lx)?;
        self.check(cols)?;
        let (x, noise) = (slice(sx, lx)?, slice(sn, ln)?);
        if noise.len() != x.len() {
            bail!("fused-activate: noise shape differs")
        }
        let mut y = vec![0f32; rows * cols];
        for ((yr, xr), nr) in y
            .chunks_exact_mut(cols)
            .zip(x.chunks_exact(cols))
            .zip(noise.chunks_exact(cols))
        {
            let mut off = 0;
            for &(kind, width) in &self.spans {
                let (ys, xs, ns) = (
                    &mut yr[off..off + width],
                    &xr[off..off + width],
                    &nr[off..off + width],
                );
                match kind {
                    Activation::Tanh => {
                        for (y, x) in ys.iter_mut().zip(xs) {
                            *y = x.tanh();
                        }
                    }
                    Activation::GumbelSoftmax { tau } => {
                        let inv = 1.0 / tau;
                        let mut max = f32::NEG_INFINITY;
                        for ((y, x), n) in ys.iter_mut().zip(xs).zip(ns) {
                            *y = (x + n) * inv;
                            max = max.max(*y);
                        }
                        let mut sum = 0.0;
                        for y in ys.iter_mut() {
                            *y = (*y - max).exp();
                            sum += *y;
                        }
                        let inv_sum = 1.0 / sum;
                        ys.iter_mut().for_each(|y| *y *= inv_sum);
                    }
                }
                off += width;
            }
        }
        Ok((CpuStorage::F32(y), Shape::from((rows, cols))))
    }

    fn bwd(
        &self,
        x: &Tensor,
        _noise: &Tensor,
        res: &Tensor,
        grad: &Tensor,
    ) -> Result<(Option<Tensor>, Option<Tensor>)> {
        let (rows, cols) = x.dims2()?;
        let dx = with_data(res, |y| {
            with_data(grad, |g| {
                let mut dx = vec![0f32; rows * cols];
                for ((dr, yr), gr) in dx
                    .chunks_exact_mut(cols)
                    .zip(y.chunks_exact(cols))
                    .zip(g.chunks_exact(cols))
                {
                    let mut off = 0;
                    for &(kind, width) in &self.spans {
                        let r = off..off + width;
                        let (ds, ys, gs) = (&mut dr[r.clone()], &yr[r.clone()], &gr[r]);
                        match kind {
                            Activation::Tanh => {
                                for ((d, y), g) in ds.iter_mut().zip(ys).zip(gs) {
                                    *d = g * (1.0 - y * y);
                                }
                            }
                            Activation::GumbelSoftmax { tau } => {
                                let dot: f32 = ys.iter().zip(gs).map(|(y, g)| y * g).sum();
                                let inv = 1.0 / tau;
                                for ((d, y), g) in ds.iter_mut().zip(ys).zip(gs) {
                                    *d = inv * y * (g - dot);
                                }
                            }
                        }
                        off += width;
                    }
                }
                dx
            })
        })??;
        Ok((Some(cpu_tensor(dx, (rows, cols))?), None))
    }
}

/// Softmax over the last dimension of a 2-D tensor.
fn softmax(x: &Tensor) -> Result<Tensor> {
    let e = x.broadcast_sub(&x.max_keepdim(1)?)?.exp()?;
    e.broadcast_div(&e.sum_keepdim(1)?)
}

/// The generator's output activation, span by span: tanh, or softmax((x + noise)/τ) with
/// `noise` standard Gumbel noise of the same shape as `x` (its tanh columns are ignored).
pub fn activate(x: &Tensor, noise: &Tensor, spans: &[(Activation, usize)]) -> Result<Tensor> {
    if fusable(&[x, noise]) {
        return x.contiguous()?.apply_op2_arc(
            &noise.contiguous()?,
            Arc::new(Box::new(ActivateOp {
                spans: spans.to_vec(),
            })),
        );
    }
    let mut parts = Vec::with_capacity(spans.len());
    let mut off = 0;
    for &(kind, width) in spans {
        let xs = x.narrow(1, off, width)?;
        parts.push(match kind {
            Activation::Tanh => xs.tanh()?,
            Activation::GumbelSoftmax { tau } => {
                softmax(&((xs + noise.narrow(1, off, width)?)? / tau as f64)?)?
            }
        });
        off += width;
    }
    Tensor::cat(&parts, 1)
}

#[cfg(test)]
mod tests {
    use super::super::testing::{check, normal, var};
    use super::*;

    #[test]
    fn activation_matches_the_composition() {
        let noise = normal((6, 7), 8);
        let spans = [
            (Activation::Tanh, 1),
            (Activation::GumbelSoftmax { tau: 0.2 }, 3),
            (Activation::Tanh, 1),
            (Activation::GumbelSoftmax { tau: 0.2 }, 2),
        ];
        check(
            &[var((6, 7), 9)],
            |t| activate(&t[0], &noise.to_dtype(t[0].dtype()).unwrap(), &spans).unwrap(),
            1e-4,
        );
    }
}
