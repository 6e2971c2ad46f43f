//! Fused CPU kernels for the training hot path, as candle custom ops with their own
//! backward passes.
//!
//! Built from candle's primitive ops, one training step of CTGAN is hundreds of small
//! operations: each allocates, makes a pass over memory, and adds a node whose gradient
//! candle's backward accumulates into a freshly zeroed tensor. At the shapes CTGAN trains
//! on (a batch of 500 by a few hundred) that overhead, not arithmetic, dominates. The
//! kernels here do each layer's work in one or two passes and one graph node: a linear
//! layer with its bias (gemm called directly, so no transposed copies and the thread count
//! is chosen by the size of the product), batch normalisation with ReLU, the critic's
//! LeakyReLU with its dropout mask, the generator's output activation (tanh and Gumbel-
//! softmax per span), the conditional cross-entropy, the gradient-penalty norm, and Adam's
//! update in place.
//!
//! They run on CPU tensors of f32. Every public function here falls back to the same
//! computation written with candle's primitive ops on other devices and dtypes, so the
//! CUDA path keeps working, and the tests check each fused kernel against that
//! composition, forward and backward.

use std::cell::Cell;
use std::sync::{Arc, Mutex};

use crate::nn::{log_softmax, softmax};
use candle_core::{
    CpuStorage, CustomOp1, CustomOp2, CustomOp3, DType, Layout, Result, Shape, Storage, Tensor,
    bail,
};

/// Whether the fused kernels can run on these tensors.
pub fn fusable(tensors: &[&Tensor]) -> bool {
    tensors
        .iter()
        .all(|t| t.device().is_cpu() && t.dtype() == DType::F32)
}

fn slice<'a>(s: &'a CpuStorage, l: &Layout) -> Result<&'a [f32]> {
    let CpuStorage::F32(v) = s else {
        bail!("fused kernels take f32 tensors")
    };
    match l.contiguous_offsets() {
        Some((a, b)) => Ok(&v[a..b]),
        None => bail!("fused kernels take contiguous tensors"),
    }
}

/// The f32 contents of a contiguous CPU storage, as `Tensor::storage_and_layout` gives it.
pub(crate) fn storage_slice<'a>(s: &'a Storage, l: &Layout) -> Result<&'a [f32]> {
    match s {
        Storage::Cpu(c) => slice(c, l),
        _ => bail!("fused kernels run on the CPU"),
    }
}

/// Runs `f` on the f32 contents of a (contiguous) CPU tensor.
pub(crate) fn with_data<R>(t: &Tensor, f: impl FnOnce(&[f32]) -> R) -> Result<R> {
    let t = t.contiguous()?;
    let (s, l) = t.storage_and_layout();
    Ok(f(storage_slice(&s, l)?))
}

fn cpu_tensor(v: Vec<f32>, shape: impl Into<Shape>) -> Result<Tensor> {
    Tensor::from_vec(v, shape.into(), &candle_core::Device::Cpu)
}

fn dims2(l: &Layout) -> Result<(usize, usize)> {
    l.shape().dims2()
}

/// Products smaller than this many multiply-adds run on one thread: below it, waking
/// other threads costs more than they save.
const PARALLEL_GEMM_MIN: usize = 1 << 24;

thread_local! {
    /// Set while this thread runs one of [`side_by_side`]'s halves: the other core is busy
    /// with the other half, so matrix products stay on this thread.
    static SERIAL_GEMM: Cell<bool> = const { Cell::new(false) };
}

#[cfg(test)]
thread_local! {
    /// Set by [`in_sequence`]: [`side_by_side`] runs its halves one after the other.
    static IN_SEQUENCE: Cell<bool> = const { Cell::new(false) };
}

/// Runs `f` with every [`side_by_side`] it calls on this thread running its halves one
/// after the other, so tests can check that running them at once changes nothing.
#[cfg(test)]
pub(crate) fn in_sequence<T>(f: impl FnOnce() -> T) -> T {
    IN_SEQUENCE.set(true);
    let out = f();
    IN_SEQUENCE.set(false);
    out
}

fn gemm_threads(macs: usize) -> usize {
    if macs < PARALLEL_GEMM_MIN || SERIAL_GEMM.get() {
        return 1;
    }
    candle_core::utils::get_num_threads()
}

/// Whether two independent products of `macs` multiply-adds each are worth running side
/// by side: where one of them alone would be split over threads, and this thread is not
/// already one half of a pair.
fn split_pays(macs: usize) -> bool {
    gemm_threads(macs) > 1
}

/// Runs two independent computations at once on rayon's pool, each keeping its matrix
/// products on its own thread (two coarse tasks use two cores better than one task whose
/// products are split finely). The results come back in argument order, whichever
/// finishes first.
pub(crate) fn side_by_side<A: Send, B: Send>(
    a: impl FnOnce() -> A + Send,
    b: impl FnOnce() -> B + Send,
) -> (A, B) {
    /// Puts the thread's setting back when the half ends, even by unwinding.
    struct Restore(bool);
    impl Drop for Restore {
        fn drop(&mut self) {
            SERIAL_GEMM.set(self.0);
        }
    }
    fn serial<T>(f: impl FnOnce() -> T) -> T {
        let _restore = Restore(SERIAL_GEMM.replace(true));
        f()
    }
    #[cfg(test)]
    if IN_SEQUENCE.get() {
        return (a(), b());
    }
    rayon::join(|| serial(a), || serial(b))
}

/// Adds the f32 contents of `src` into `dst` in place (same shape; `dst` a gradient that
/// nothing else shares, as [`update_in_place`] requires).
pub(crate) fn add_in_place(dst: &Tensor, src: &Tensor) -> Result<()> {
    if dst.dims() != src.dims() {
        bail!("add-in-place: shapes {:?} and {:?}", dst.dims(), src.dims())
    }
    let src = src.contiguous()?;
    let (storage, layout) = src.storage_and_layout();
    let s = storage_slice(&storage, layout)?;
    update_in_place(dst, |d| d.iter_mut().zip(s).for_each(|(d, s)| *d += s))
}

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

/// Runs `f` on the f32 contents of a contiguous CPU tensor, in place. Only for tensors
/// whose storage nothing else shares (such as gradients fresh from `backward()`).
pub(crate) fn update_in_place(t: &Tensor, f: impl Fn(&mut [f32])) -> Result<()> {
    struct Update<F>(F);
    impl<F: Fn(&mut [f32])> candle_core::InplaceOp1 for Update<F> {
        fn name(&self) -> &'static str {
            "fused-update"
        }
        fn cpu_fwd(&self, s: &mut CpuStorage, l: &Layout) -> Result<()> {
            match (s, l.contiguous_offsets()) {
                (CpuStorage::F32(v), Some((a, b))) => {
                    (self.0)(&mut v[a..b]);
                    Ok(())
                }
                _ => bail!("fused-update: expected a contiguous f32 tensor"),
            }
        }
    }
    t.inplace_op1(&Update(f))
}

/// Column sums of a row-major (rows × cols) matrix.
pub(crate) fn column_sums(x: &[f32], cols: usize) -> Vec<f32> {
    let mut s = vec![0f32; cols];
    for row in x.chunks_exact(cols) {
        for (a, v) in s.iter_mut().zip(row) {
            *a += v;
        }
    }
    s
}

// ---------------------------------------------------------------------------------------
// Linear layer

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
        // Through ReLU, the gradient survives only where the output is positive.
        let masked = if self.relu {
            Some(with_data(res, |y| {
                with_data(grad, |g| {
                    g.iter()
                        .zip(y)
                        .map(|(g, y)| if *y > 0.0 { *g } else { 0.0 })
                        .collect::<Vec<f32>>()
                })
            })??)
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

// ---------------------------------------------------------------------------------------
// Matrix product

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

// ---------------------------------------------------------------------------------------
// Batch normalisation followed by ReLU

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

// ---------------------------------------------------------------------------------------
// LeakyReLU with a dropout mask

/// `mask · LeakyReLU(z)`, or with `derivative` its slope `mask · LeakyReLU′(z)`.
struct LeakyMaskOp {
    slope: f32,
    derivative: bool,
}

impl CustomOp2 for LeakyMaskOp {
    fn name(&self) -> &'static str {
        if self.derivative {
            "fused-leaky-relu-derivative"
        } else {
            "fused-leaky-relu-dropout"
        }
    }

    fn cpu_fwd(
        &self,
        sz: &CpuStorage,
        lz: &Layout,
        sm: &CpuStorage,
        lm: &Layout,
    ) -> Result<(CpuStorage, Shape)> {
        let (z, m) = (slice(sz, lz)?, slice(sm, lm)?);
        if z.len() != m.len() {
            bail!("{}: mask shape differs", self.name())
        }
        let s = self.slope;
        let y = z
            .iter()
            .zip(m)
            .map(|(z, m)| {
                let k = if *z >= 0.0 { *m } else { s * m };
                if self.derivative { k } else { z * k }
            })
            .collect();
        Ok((CpuStorage::F32(y), lz.shape().clone()))
    }

    fn bwd(
        &self,
        z: &Tensor,
        mask: &Tensor,
        _res: &Tensor,
        grad: &Tensor,
    ) -> Result<(Option<Tensor>, Option<Tensor>)> {
        let dz = slope_mask(z, mask, self.slope as f64)?.mul(grad)?;
        Ok((Some(dz), None))
    }
}

/// `mask · LeakyReLU(z)`: a critic layer's activation with its (inverted) dropout mask.
pub fn leaky_relu_masked(z: &Tensor, mask: &Tensor, slope: f64) -> Result<Tensor> {
    if fusable(&[z, mask]) {
        z.contiguous()?.apply_op2_arc(
            &mask.contiguous()?,
            Arc::new(Box::new(LeakyMaskOp {
                slope: slope as f32,
                derivative: false,
            })),
        )
    } else {
        z.maximum(&z.affine(slope, 0.0)?)?.mul(mask)
    }
}

/// `mask · LeakyReLU′(z)`, a constant of the graph: how the activation scales a gradient.
pub fn slope_mask(z: &Tensor, mask: &Tensor, slope: f64) -> Result<Tensor> {
    if fusable(&[z, mask]) {
        z.detach().contiguous()?.apply_op2_no_bwd(
            &mask.detach().contiguous()?,
            &LeakyMaskOp {
                slope: slope as f32,
                derivative: true,
            },
        )
    } else {
        Ok(z.ge(0.0)?
            .to_dtype(z.dtype())?
            .affine(1.0 - slope, slope)?
            .mul(mask)?
            .detach())
    }
}

// ---------------------------------------------------------------------------------------
// Output activation: tanh and Gumbel-softmax per span

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

// ---------------------------------------------------------------------------------------
// Conditional cross-entropy

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

// ---------------------------------------------------------------------------------------
// Gradient-penalty norm

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
    use super::*;
    use crate::random::{fill_normal, rng_for};
    use candle_core::{Device, Var};

    #[test]
    fn side_by_side_keeps_each_half_on_its_thread_and_returns_in_order() {
        let half = |v: u32| move || (SERIAL_GEMM.get(), gemm_threads(usize::MAX), v);
        let (a, b) = side_by_side(half(1), half(2));
        assert_eq!((a, b), ((true, 1, 1), (true, 1, 2)));
        // The caller's own setting is untouched.
        assert!(!SERIAL_GEMM.get());
        assert_eq!(
            gemm_threads(usize::MAX),
            candle_core::utils::get_num_threads()
        );
    }

    fn normal(shape: (usize, usize), seed: u64) -> Tensor {
        let mut v = vec![0f32; shape.0 * shape.1];
        fill_normal(&mut rng_for(seed, 0), &mut v);
        Tensor::from_vec(v, shape, &Device::Cpu).unwrap()
    }

    fn var(shape: (usize, usize), seed: u64) -> Var {
        Var::from_tensor(&normal(shape, seed)).unwrap()
    }

    fn vec1(t: &Tensor) -> Vec<f32> {
        t.flatten_all().unwrap().to_vec1().unwrap()
    }

    fn close(a: &Tensor, b: &Tensor, tol: f32, what: &str) {
        let (a, b) = (vec1(a), vec1(b));
        assert_eq!(a.len(), b.len(), "{what}");
        for (i, (x, y)) in a.iter().zip(&b).enumerate() {
            assert!(
                (x - y).abs() <= tol * (1.0 + y.abs()),
                "{what}[{i}]: fused {x} vs composed {y}"
            );
        }
    }

    /// Runs `f` once fused (f32 CPU) and once composed (as f64, then compared in f32), and
    /// compares the outputs and the gradients of `loss = Σ output · weights` for every input.
    fn check(inputs: &[Var], f: impl Fn(&[Tensor]) -> Tensor, tol: f32) {
        let wts = {
            let out = f(&inputs
                .iter()
                .map(|v| v.as_tensor().clone())
                .collect::<Vec<_>>());
            normal((1, out.elem_count()), 99)
                .reshape(out.shape())
                .unwrap()
        };
        let run = |dtype: DType| {
            let vars: Vec<Var> = inputs
                .iter()
                .map(|v| Var::from_tensor(&v.as_tensor().to_dtype(dtype).unwrap()).unwrap())
                .collect();
            let out = f(&vars
                .iter()
                .map(|v| v.as_tensor().clone())
                .collect::<Vec<_>>());
            let loss = (out.clone() * wts.to_dtype(dtype).unwrap())
                .unwrap()
                .sum_all()
                .unwrap();
            let grads = loss.backward().unwrap();
            let g: Vec<Option<Tensor>> = vars
                .iter()
                .map(|v| {
                    grads
                        .get(v.as_tensor())
                        .map(|g| g.to_dtype(DType::F32).unwrap())
                })
                .collect();
            (out.to_dtype(DType::F32).unwrap(), g)
        };
        let (fused_out, fused_g) = run(DType::F32);
        let (ref_out, ref_g) = run(DType::F64);
        close(&fused_out, &ref_out, tol, "output");
        for (i, (a, b)) in fused_g.iter().zip(&ref_g).enumerate() {
            match (a, b) {
                (Some(a), Some(b)) => close(a, b, tol, &format!("gradient {i}")),
                (None, None) => {}
                _ => panic!("gradient {i}: present in one path only"),
            }
        }
    }

    #[test]
    fn linear_matches_matmul_plus_bias() {
        check(
            &[var((7, 5), 1), var((3, 5), 2), var((1, 3), 3)],
            |t| linear(&t[0], &t[1], &t[2].flatten_all().unwrap()).unwrap(),
            1e-5,
        );
    }

    #[test]
    fn matmul_matches_the_composition() {
        check(
            &[var((4, 6), 12), var((6, 3), 13)],
            |t| matmul(&t[0], &t[1]).unwrap(),
            1e-5,
        );
    }

    #[test]
    fn linear_relu_matches_the_composition() {
        check(
            &[var((7, 5), 14), var((3, 5), 15), var((1, 3), 16)],
            |t| linear_relu(&t[0], &t[1], &t[2].flatten_all().unwrap()).unwrap(),
            1e-5,
        );
    }

    #[test]
    fn linear_backward_with_its_products_side_by_side_matches_the_composition() {
        // 256³ multiply-adds per product: where there are two cores, the input and weight
        // gradients are computed side by side.
        const { assert!(PARALLEL_GEMM_MIN <= 256 * 256 * 256) };
        for f in [linear, linear_relu] {
            check(
                &[var((256, 256), 17), var((256, 256), 18), var((1, 256), 19)],
                |t| f(&t[0], &t[1], &t[2].flatten_all().unwrap()).unwrap(),
                1e-4,
            );
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

    #[test]
    fn leaky_relu_masked_matches_the_composition() {
        let mask = Tensor::new(&[[0f32, 2.0, 2.0], [2.0, 0.0, 2.0]], &Device::Cpu).unwrap();
        check(
            &[var((2, 3), 7)],
            |t| leaky_relu_masked(&t[0], &mask.to_dtype(t[0].dtype()).unwrap(), 0.2).unwrap(),
            1e-6,
        );
        let z = Tensor::new(&[[-1f32, 1.0, -2.0], [3.0, -1.0, 0.5]], &Device::Cpu).unwrap();
        assert_eq!(
            slope_mask(&z, &mask, 0.2)
                .unwrap()
                .to_vec2::<f32>()
                .unwrap(),
            [[0.0, 2.0, 0.4], [2.0, 0.0, 2.0]]
        );
    }

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

    #[test]
    fn penalty_norm_matches_the_composition() {
        check(
            &[var((5, 6), 11)],
            |t| penalty_norm(&t[0], 10.0).unwrap().reshape(1).unwrap(),
            1e-5,
        );
    }
}
