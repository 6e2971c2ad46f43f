//! Access to the f32 contents of CPU tensors, which every kernel reads and some write in
//! place: checked slices of a storage, copies into new tensors, in-place updates of
//! gradients nothing else shares, and column sums.

use candle_core::{CpuStorage, DType, Layout, Result, Shape, Storage, Tensor, bail};

/// Whether the fused kernels can run on these tensors.
pub fn fusable(tensors: &[&Tensor]) -> bool {
    tensors
        .iter()
        .all(|t| t.device().is_cpu() && t.dtype() == DType::F32)
}

pub(super) fn slice<'a>(s: &'a CpuStorage, l: &Layout) -> Result<&'a [f32]> {
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

pub(super) fn cpu_tensor(v: Vec<f32>, shape: impl Into<Shape>) -> Result<Tensor> {
    Tensor::from_vec(v, shape.into(), &candle_core::Device::Cpu)
}

pub(super) fn dims2(l: &Layout) -> Result<(usize, usize)> {
    l.shape().dims2()
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
