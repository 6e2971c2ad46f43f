//! The WGAN-GP penalty on input gradients, λ · mean over rows of (‖row‖₂ − 1)², in one op.

use std::sync::Arc;

use candle_core::{CpuStorage, CustomOp1, DType, Layout, Result, Shape, Tensor};

use super::storage::{cpu_tensor, dims2, fusable, slice, with_data};

struct PenaltyNormOp {
    lambda: f64,
}

fn row_norms(g: &[f32], cols: usize) -> impl Iterator<Item = f64> + '_ {
    g.chunks_exact(cols)
        .map(|r| (r.iter().map(|v| (*v as f64) * (*v as f64)).sum::<f64>() + 1e-12).sqrt())
}

impl CustomOp1 for PenaltyNormOp {
    fn name(&self) -> &'static str {
        "fused-penalty-norm"
    }

    fn cpu_fwd(&self, s: &CpuStorage, l: &Layout) -> Result<(CpuStorage, Shape)> {
        let (rows, cols) = dims2(l)?;
        let g = slice(s, l)?;
        let sum: f64 = row_norms(g, cols).map(|n| (n - 1.0) * (n - 1.0)).sum();
        let p = (self.lambda * sum / rows.max(1) as f64) as f32;
        Ok((CpuStorage::F32(vec![p]), Shape::from(())))
    }

    fn bwd(&self, arg: &Tensor, _res: &Tensor, grad: &Tensor) -> Result<Option<Tensor>> {
        let (rows, cols) = arg.dims2()?;
        let scale = grad.to_dtype(DType::F32)?.to_scalar::<f32>()? as f64 * self.lambda
            / rows.max(1) as f64;
        let dg = with_data(arg, |g| {
            let mut d = Vec::with_capacity(g.len());
            for (r, n) in g.chunks_exact(cols).zip(row_norms(g, cols)) {
                let k = (scale * 2.0 * (n - 1.0) / n) as f32;
                d.extend(r.iter().map(|v| k * v));
            }
            d
        })?;
        Ok(Some(cpu_tensor(dg, (rows, cols))?))
    }
}

/// λ · mean over rows of (‖row‖₂ − 1)², the WGAN-GP penalty on input gradients.
pub fn penalty_norm(g: &Tensor, lambda: f64) -> Result<Tensor> {
    if fusable(&[g]) {
        return g
            .contiguous()?
            .apply_op1_arc(Arc::new(Box::new(PenaltyNormOp { lambda })));
    }
    let norm = (g.sqr()?.sum(1)? + 1e-12)?.sqrt()?;
    (norm - 1.0)?.sqr()?.mean_all()? * lambda
}

#[cfg(test)]
mod tests {
    use super::super::testing::{check, var};
    use super::*;

    #[test]
    fn penalty_norm_matches_the_composition() {
        check(
            &[var((5, 6), 11)],
            |t| penalty_norm(&t[0], 10.0).unwrap().reshape(1).unwrap(),
            1e-5,
        );
    }
}
