//! Matrix products: gemm called directly on strided operands (no transposed copies, the
//! thread count chosen by the product's size), and `a · b` as a custom op with its
//! backward pass.

use std::sync::Arc;

use candle_core::{CpuStorage, CustomOp2, Layout, Result, Shape, Tensor, bail};

use super::storage::{cpu_tensor, dims2, fusable, slice, with_data};
use super::threads::gemm_threads;

/// dst (m×n) = [dst +] a (m×k) · b (k×n), each operand given by its row and column strides.
#[allow(clippy::too_many_arguments)]
pub(crate) fn gemm(
    (m, n, k): (usize, usize, usize),
    dst: &mut [f32],
    accumulate: bool,
    a: &[f32],
    (a_rs, a_cs): (usize, usize),
    b: &[f32],
    (b_rs, b_cs): (usize, usize),
) {
    assert!(dst.len() >= m * n);
    assert!(m == 0 || k == 0 || a.len() > (m - 1) * a_rs + (k - 1) * a_cs);
    assert!(k == 0 || n == 0 || b.len() > (k - 1) * b_rs + (n - 1) * b_cs);
    let threads = gemm_threads(m * n * k);
    let parallelism = if threads > 1 {
        gemm::Parallelism::Rayon(threads)
    } else {
        gemm::Parallelism::None
    };
    // SAFETY: the asserts above keep every index gemm reads or writes inside the slices.
    unsafe {
        gemm::gemm(
            m,
            n,
            k,
            dst.as_mut_ptr(),
            1,
            n as isize,
            accumulate,
            a.as_ptr(),
            a_cs as isize,
            a_rs as isize,
            b.as_ptr(),
            b_cs as isize,
            b_rs as isize,
            1.0,
            1.0,
            false,
            false,
            false,
            parallelism,
        );
    }
}

struct MatMulOp;

impl CustomOp2 for MatMulOp {
    fn name(&self) -> &'static str {
        "fused-matmul"
    }

    fn cpu_fwd(
        &self,
        sa: &CpuStorage,
        la: &Layout,
        sb: &CpuStorage,
        lb: &Layout,
    ) -> Result<(CpuStorage, Shape)> {
        let ((m, k), (k2, n)) = (dims2(la)?, dims2(lb)?);
        if k != k2 {
            bail!("fused-matmul: shapes {la:?} and {lb:?} do not fit")
        }
        let mut c = vec![0f32; m * n];
        gemm(
            (m, n, k),
            &mut c,
            false,
            slice(sa, la)?,
            (k, 1),
            slice(sb, lb)?,
            (n, 1),
        );
        Ok((CpuStorage::F32(c), Shape::from((m, n))))
    }

    fn bwd(
        &self,
        a: &Tensor,
        b: &Tensor,
        _res: &Tensor,
        grad: &Tensor,
    ) -> Result<(Option<Tensor>, Option<Tensor>)> {
        let ((m, k), n) = (a.dims2()?, b.dims2()?.1);
        with_data(grad, |g| -> Result<_> {
            let da = if a.track_op() {
                let mut da = vec![0f32; m * k];
                // dA = G · Bᵀ
                with_data(b, |b| gemm((m, k, n), &mut da, false, g, (n, 1), b, (1, n)))?;
                Some(cpu_tensor(da, (m, k))?)
            } else {
                None
            };
            let db = if b.track_op() {
                let mut db = vec![0f32; k * n];
                // dB = Aᵀ · G
                with_data(a, |a| gemm((k, n, m), &mut db, false, a, (1, k), g, (n, 1)))?;
                Some(cpu_tensor(db, (k, n))?)
            } else {
                None
            };
            Ok((da, db))
        })?
    }
}

/// The matrix product `a · b` of two 2-D tensors.
pub fn matmul(a: &Tensor, b: &Tensor) -> Result<Tensor> {
    if fusable(&[a, b]) {
        a.contiguous()?
            .apply_op2_arc(&b.contiguous()?, Arc::new(Box::new(MatMulOp)))
    } else {
        a.matmul(b)
    }
}

#[cfg(test)]
mod tests {
    use super::super::testing::{check, var};
    use super::*;

    #[test]
    fn matmul_matches_the_composition() {
        check(
            &[var((4, 6), 12), var((6, 3), 13)],
            |t| matmul(&t[0], &t[1]).unwrap(),
            1e-5,
        );
    }
}
