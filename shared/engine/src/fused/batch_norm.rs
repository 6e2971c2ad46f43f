//! Batch normalisation with the batch's statistics followed by ReLU, in one pass forward
//! and one backward, reporting the batch's mean and variance for the running statistics.

use std::sync::{Arc, Mutex};

use candle_core::{CpuStorage, CustomOp3, DType, Layout, Result, Shape, Tensor, bail};

use super::storage::{column_sums, cpu_tensor, dims2, fusable, slice, with_data};

/// Batch mean and biased variance per column, filled in by a training-mode forward pass.
pub type BatchStats = Arc<Mutex<Option<(Vec<f32>, Vec<f32>)>>>;

pub const BN_EPS: f64 = 1e-5;

/// Per-column mean and biased variance of a row-major (rows × cols) matrix.
fn mean_var(x: &[f32], cols: usize) -> (Vec<f32>, Vec<f32>) {
    let rows = x.len() / cols;
    let inv = 1.0 / rows.max(1) as f32;
    let mut mean = column_sums(x, cols);
    mean.iter_mut().for_each(|m| *m *= inv);
    let mut var = vec![0f32; cols];
    for row in x.chunks_exact(cols) {
        for ((v, x), m) in var.iter_mut().zip(row).zip(&mean) {
            let d = x - m;
            *v += d * d;
        }
    }
    var.iter_mut().for_each(|v| *v *= inv);
    (mean, var)
}

struct BatchNormReluOp {
    stats: Option<BatchStats>,
}

impl CustomOp3 for BatchNormReluOp {
    fn name(&self) -> &'static str {
        "fused-batch-norm-relu"
    }

    fn cpu_fwd(
        &self,
        sx: &CpuStorage,
        lx: &Layout,
        sg: &CpuStorage,
        lg: &Layout,
        sb: &CpuStorage,
        lb: &Layout,
    ) -> Result<(CpuStorage, Shape)> {
        let (rows, cols) = dims2(lx)?;
        let (x, gamma, beta) = (slice(sx, lx)?, slice(sg, lg)?, slice(sb, lb)?);
        if gamma.len() != cols || beta.len() != cols {
            bail!("fused-batch-norm-relu: scale and shift must have {cols} values")
        }
        let (mean, var) = mean_var(x, cols);
        // y = max(0, x·scale + shift) with the normalisation folded into scale and shift.
        let scale: Vec<f32> = var
            .iter()
            .zip(gamma)
            .map(|(v, g)| g / (v + BN_EPS as f32).sqrt())
            .collect();
        let shift: Vec<f32> = beta
            .iter()
            .zip(&mean)
            .zip(&scale)
            .map(|((b, m), s)| b - m * s)
            .collect();
        let mut y = vec![0f32; rows * cols];
        for (yr, xr) in y.chunks_exact_mut(cols).zip(x.chunks_exact(cols)) {
            for (((y, x), s), t) in yr.iter_mut().zip(xr).zip(&scale).zip(&shift) {
                *y = (x * s + t).max(0.0);
            }
        }
        if let Some(sink) = &self.stats {
            *sink.lock().expect("batch statistics lock") = Some((mean, var));
        }
        Ok((CpuStorage::F32(y), Shape::from((rows, cols))))
    }

    fn bwd(
        &self,
        x: &Tensor,
        gamma: &Tensor,
        beta: &Tensor,
        res: &Tensor,
        grad: &Tensor,
    ) -> Result<(Option<Tensor>, Option<Tensor>, Option<Tensor>)> {
        let (rows, cols) = x.dims2()?;
        let gamma_v = gamma.to_vec1::<f32>()?;
        let (dx, dgamma, dbeta) = with_data(x, |x| {
            with_data(res, |y| {
                with_data(grad, |g| {
                    let (mean, var) = mean_var(x, cols);
                    let invstd: Vec<f32> = var
                        .iter()
                        .map(|v| 1.0 / (v + BN_EPS as f32).sqrt())
                        .collect();
                    // Gradient at the batch norm's output (zero where ReLU cut it) and the
                    // normalised input, each in one simple pass that vectorises.
                    let gy: Vec<f32> = g
                        .iter()
                        .zip(y)
                        .map(|(g, y)| if *y > 0.0 { *g } else { 0.0 })
                        .collect();
                    let mut xhat = x.to_vec();
                    for row in xhat.chunks_exact_mut(cols) {
                        for ((v, m), s) in row.iter_mut().zip(&mean).zip(&invstd) {
                            *v = (*v - m) * s;
                        }
                    }
                    let dbeta = column_sums(&gy, cols);
                    let mut dgamma = vec![0f32; cols];
                    for (gr, hr) in gy.chunks_exact(cols).zip(xhat.chunks_exact(cols)) {
                        for ((d, g), h) in dgamma.iter_mut().zip(gr).zip(hr) {
                            *d += g * h;
                        }
                    }
                    let n = rows as f32;
                    let k: Vec<f32> = (0..cols).map(|j| gamma_v[j] * invstd[j] / n).collect();
                    // dx = k · (n·gy − dβ − x̂·dγ), written over x̂'s buffer.
                    let mut dx = xhat;
                    for (dr, gr) in dx.chunks_exact_mut(cols).zip(gy.chunks_exact(cols)) {
                        for ((((d, g), k), db), dg) in
                            dr.iter_mut().zip(gr).zip(&k).zip(&dbeta).zip(&dgamma)
                        {
                            *d = k * (n * g - db - *d * dg);
                        }
                    }
                    (dx, dgamma, dbeta)
                })
            })
        })???;
        Ok((
            Some(cpu_tensor(dx, (rows, cols))?),
            if gamma.track_op() {
                Some(cpu_tensor(dgamma, cols)?)
            } else {
                None
            },
            if beta.track_op() {
                Some(cpu_tensor(dbeta, cols)?)
            } else {
                None
            },
        ))
    }
}

/// ReLU of batch normalisation with the batch's statistics: `max(0, γ(x − μ)/√(σ² + ε) + β)`
/// with μ and the biased σ² per column. When `stats` is given, the batch's μ and σ² are
/// written to it (for the running statistics).
pub fn batch_norm_relu(
    x: &Tensor,
    gamma: &Tensor,
    beta: &Tensor,
    stats: Option<&BatchStats>,
) -> Result<Tensor> {
    if fusable(&[x, gamma, beta]) {
        return x.contiguous()?.apply_op3_arc(
            gamma,
            beta,
            Arc::new(Box::new(BatchNormReluOp {
                stats: stats.cloned(),
            })),
        );
    }
    let mean = x.mean_keepdim(0)?;
    let var = x.broadcast_sub(&mean)?.sqr()?.mean_keepdim(0)?;
    if let Some(sink) = stats {
        *sink.lock().expect("batch statistics lock") = Some((
            mean.flatten_all()?.to_dtype(DType::F32)?.to_vec1()?,
            var.flatten_all()?.to_dtype(DType::F32)?.to_vec1()?,
        ));
    }
    x.broadcast_sub(&mean)?
        .broadcast_div(&(var + BN_EPS)?.sqrt()?)?
        .broadcast_mul(gamma)?
        .broadcast_add(beta)?
        .relu()
}

#[cfg(test)]
mod tests {
    use super::super::testing::{check, normal, var, vec1};
    use super::*;

    #[test]
    fn batch_norm_relu_matches_the_composition_and_reports_statistics() {
        let stats: BatchStats = Default::default();
        check(
            &[var((9, 4), 4), var((1, 4), 5), var((1, 4), 6)],
            |t| {
                batch_norm_relu(
                    &t[0],
                    &t[1].flatten_all().unwrap(),
                    &t[2].flatten_all().unwrap(),
                    Some(&stats),
                )
                .unwrap()
            },
            1e-4,
        );
        let x = normal((9, 4), 4);
        let (mean, var) = stats.lock().unwrap().clone().unwrap();
        let want_mean = vec1(&x.mean(0).unwrap());
        for j in 0..4 {
            assert!((mean[j] - want_mean[j]).abs() < 1e-5);
        }
        assert!(var.iter().all(|v| *v > 0.0));
    }
}
