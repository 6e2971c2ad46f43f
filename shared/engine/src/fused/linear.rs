//! A linear layer with its bias, optionally followed by ReLU, in one op: the bias written
//! first and the product accumulated onto it, and in the backward pass the input and weight
//! gradients computed side by side when both are large enough to be split.

use std::sync::Arc;

use candle_core::{CpuStorage, CustomOp3, Layout, Result, Shape, Tensor, bail};

use super::matmul::gemm;
use super::storage::{column_sums, cpu_tensor, dims2, fusable, slice, with_data};
use super::threads::{side_by_side, split_pays};

struct LinearOp {
    /// ReLU applied to the output (and its mask to the incoming gradient).
    relu: bool,
}

impl CustomOp3 for LinearOp {
    fn name(&self) -> &'static str {
        "fused-linear"
    }

    fn cpu_fwd(
        &self,
        sx: &CpuStorage,
        lx: &Layout,
        sw: &CpuStorage,
        lw: &Layout,
        sb: &CpuStorage,
        lb: &Layout,
    ) -> Result<(CpuStorage, Shape)> {
        let (rows, input) = dims2(lx)?;
        let (out, w_in) = dims2(lw)?;
        if w_in != input || lb.shape().elem_count() != out {
            bail!("fused-linear: shapes {lx:?} {lw:?} {lb:?} do not fit")
        }
        let (x, w, b) = (slice(sx, lx)?, slice(sw, lw)?, slice(sb, lb)?);
        let mut y = Vec::with_capacity(rows * out);
        for _ in 0..rows {
            y.extend_from_slice(b);
        }
        // y += x · Wᵀ, Wᵀ read through W's strides.
        gemm(
            (rows, out, input),
            &mut y,
            true,
            x,
            (input, 1),
            w,
            (1, input),
        );
        if self.relu {
            y.iter_mut().for_each(|v| *v = v.max(0.0));
        }
        Ok((CpuStorage::F32(y), Shape::from((rows, out))))
    }

    fn bwd(
        &self,
        x: &Tensor,
        w: &Tensor,
        b: &Tensor,
        res: &Tensor,
        grad: &Tensor,
    ) -> Result<(Option<Tensor>, Option<Tensor>, Option<Tensor>)> {
        let (rows, input) = x.dims2()?;
        let out = w.dims2()?.0;
        let masked = if self.relu {
            Some(through_relu(res, grad)?)
        } else {
            None
        };
        let backward = |g: &[f32]| -> Result<_> {
            let dx = || -> Result<Option<Tensor>> {
                if !x.track_op() {
                    return Ok(None);
                }
                let mut dx = vec![0f32; rows * input];
                with_data(w, |w| {
                    gemm(
                        (rows, input, out),
                        &mut dx,
                        false,
                        g,
                        (out, 1),
                        w,
                        (input, 1),
                    )
                })?;
                Ok(Some(cpu_tensor(dx, (rows, input))?))
            };
            let dw_db = || -> Result<(Option<Tensor>, Option<Tensor>)> {
                let dw = if w.track_op() {
                    let mut dw = vec![0f32; out * input];
                    // dW = gᵀ · x, gᵀ read through g's strides.
                    with_data(x, |x| {
                        gemm(
                            (out, input, rows),
                            &mut dw,
                            false,
                            g,
                            (1, out),
                            x,
                            (input, 1),
                        )
                    })?;
                    Some(cpu_tensor(dw, (out, input))?)
                } else {
                    None
                };
                let db = if b.track_op() {
                    Some(cpu_tensor(column_sums(g, out), out)?)
                } else {
                    None
                };
                Ok((dw, db))
            };
            // Two products big enough to be split are better done side by side, whole.
            let (dx, dw_db) = if x.track_op() && w.track_op() && split_pays(rows * input * out) {
                side_by_side(dx, dw_db)
            } else {
                (dx(), dw_db())
            };
            let (dw, db) = dw_db?;
            Ok((dx?, dw, db))
        };
        match &masked {
            Some(g) => backward(g),
            None => with_data(grad, backward)?,
        }
    }
}

/// The gradient at the pre-activation of a ReLU whose output is `res`: through ReLU, the
/// gradient survives only where the output is positive.
fn through_relu(res: &Tensor, grad: &Tensor) -> Result<Vec<f32>> {
    with_data(res, |y| {
        with_data(grad, |g| {
            g.iter()
                .zip(y)
                .map(|(g, y)| if *y > 0.0 { *g } else { 0.0 })
                .collect::<Vec<f32>>()
        })
    })?
}

/// `x Wᵀ + b` with W of shape (out, in).
pub fn linear(x: &Tensor, w: &Tensor, b: &Tensor) -> Result<Tensor> {
    if fusable(&[x, w, b]) {
        x.contiguous()?
            .apply_op3_arc(w, b, Arc::new(Box::new(LinearOp { relu: false })))
    } else {
        x.matmul(&w.t()?)?.broadcast_add(b)
    }
}

/// `ReLU(x Wᵀ + b)`: a hidden layer of a ReLU network, in one op.
pub fn linear_relu(x: &Tensor, w: &Tensor, b: &Tensor) -> Result<Tensor> {
    if fusable(&[x, w, b]) {
        x.contiguous()?
            .apply_op3_arc(w, b, Arc::new(Box::new(LinearOp { relu: true })))
    } else {
        x.matmul(&w.t()?)?.broadcast_add(b)?.relu()
    }
}

#[cfg(test)]
mod tests {
    use super::super::testing::{check, normal, var};
    use super::super::threads::PARALLEL_GEMM_MIN;
    use super::*;

    type Layer = fn(&Tensor, &Tensor, &Tensor) -> Result<Tensor>;

    /// `layer` against its composition on x (rows × input), W (out × input) and b (out),
    /// drawn from seeds `seed`, `seed + 1` and `seed + 2`.
    fn check_layer(layer: Layer, (rows, input, out): (usize, usize, usize), seed: u64, tol: f32) {
        check(
            &[
                var((rows, input), seed),
                var((out, input), seed + 1),
                var((1, out), seed + 2),
            ],
            |t| layer(&t[0], &t[1], &t[2].flatten_all().unwrap()).unwrap(),
            tol,
        );
    }

    #[test]
    fn linear_matches_matmul_plus_bias() {
        check_layer(linear, (7, 5, 3), 1, 1e-5);
    }

    #[test]
    fn linear_relu_matches_the_composition() {
        check_layer(linear_relu, (7, 5, 3), 14, 1e-5);
    }

    #[test]
    fn linear_backward_with_its_products_side_by_side_matches_the_composition() {
        // 256³ multiply-adds per product: where there are two cores, the input and weight
        // gradients are computed side by side.
        const { assert!(PARALLEL_GEMM_MIN <= 256 * 256 * 256) };
        for layer in [linear, linear_relu] {
            check_layer(layer, (256, 256, 256), 17, 1e-4);
        }
    }

    #[test]
    fn linear_skips_gradients_of_constants() {
        let x = normal((4, 3), 1);
        let w = var((2, 3), 2);
        let b = normal((1, 2), 3).flatten_all().unwrap();
        let grads = linear(&x, w.as_tensor(), &b)
            .unwrap()
            .sum_all()
            .unwrap()
            .backward()
            .unwrap();
        assert!(grads.get(&x).is_none() && grads.get(&b).is_none());
        assert!(grads.get(w.as_tensor()).is_some());
    }
}
