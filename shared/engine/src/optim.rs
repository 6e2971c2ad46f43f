//! Adam with L2 weight decay added to the gradient, as PyTorch's `Adam(weight_decay=…)`
//! does. The reference trains with it; candle only ships the decoupled variant (AdamW),
//! which is a different optimiser, so this one is hand-written and stays so — with its
//! update fused into one in-place pass on the CPU.

use std::cell::RefCell;

use candle_core::backprop::GradStore;
use candle_core::{CpuStorage, InplaceOp2, Layout, Tensor, Var};

use crate::error::Result;
use crate::fused::{add_in_place, fusable};

/// Adam hyperparameters.
#[derive(Debug, Clone, Copy)]
pub struct AdamConfig {
    pub lr: f64,
    pub beta1: f64,
    pub beta2: f64,
    pub eps: f64,
    pub weight_decay: f64,
}

/// The first and second moments of one parameter: host vectors updated in place by the
/// fused CPU kernel, or tensors on other devices.
enum Moments {
    Host(Vec<f32>, Vec<f32>),
    Device(Tensor, Tensor),
}

/// Adam state over a fixed set of parameters.
pub struct Adam {
    vars: Vec<Var>,
    moments: Vec<Moments>,
    config: AdamConfig,
    t: i32,
}

impl Adam {
    pub fn new(vars: Vec<Var>, config: AdamConfig) -> Result<Self> {
        let moments = vars
            .iter()
            .map(|v| {
                Ok(if fusable(&[v.as_tensor()]) {
                    let n = v.elem_count();
                    Moments::Host(vec![0.0; n], vec![0.0; n])
                } else {
                    Moments::Device(v.zeros_like()?, v.zeros_like()?)
                })
            })
            .collect::<Result<Vec<_>>>()?;
        Ok(Self {
            vars,
            moments,
            config,
            t: 0,
        })
    }

    /// Scales the learning rate by `factor` (a schedule's decay).
    pub fn scale_lr(&mut self, factor: f64) {
        self.config.lr *= factor;
    }

    /// One update from the gradients in `grads`; parameters without a gradient are left
    /// alone, as PyTorch skips parameters whose `.grad` is None.
    pub fn step(&mut self, grads: &GradStore) -> Result<()> {
        self.t += 1;
        let c = self.config;
        let bc1 = 1.0 - c.beta1.powi(self.t);
        let bc2 = 1.0 - c.beta2.powi(self.t);
        for (var, moments) in self.vars.iter().zip(&mut self.moments) {
            let Some(g) = grads.get(var.as_tensor()) else {
                continue;
            };
            let (m, v) = match moments {
                Moments::Host(m, v) => {
                    // One pass over parameter, moments and gradient, in place.
                    let kernel = AdamKernel {
                        config: c,
                        bc1,
                        bc2,
                        moments: RefCell::new((m, v)),
                    };
                    var.as_tensor()
                        .inplace_op2(&g.to_dtype(var.dtype())?.contiguous()?, &kernel)?;
                    continue;
                }
                Moments::Device(m, v) => (m, v),
            };
            // Everything here is detached: the parameter is a variable, so otherwise every
            // moment would carry a backprop graph linking it to the previous step's, and
            // memory would grow with every step.
            let p = var.as_tensor().detach();
            let g = g.detach();
            let g = if c.weight_decay != 0.0 {
                (g + p.affine(c.weight_decay, 0.0)?)?
            } else {
                g
            };
            *m = (m.affine(c.beta1, 0.0)? + g.affine(1.0 - c.beta1, 0.0)?)?;
            *v = (v.affine(c.beta2, 0.0)? + g.sqr()?.affine(1.0 - c.beta2, 0.0)?)?;
            let denom = v.sqrt()?.affine(1.0 / bc2.sqrt(), c.eps)?;
            let update = (&*m / denom)?.affine(c.lr / bc1, 0.0)?;
            var.set(&(p - update)?)?;
        }
        Ok(())
    }
}

/// Adds the gradients `more` holds for `params` into `grads`: in place where both are f32
/// CPU tensors (gradients fresh from `backward()`, which nothing else shares).
pub(crate) fn add_gradients(grads: &mut GradStore, more: &GradStore, params: &[Var]) -> Result<()> {
    for p in params.iter().map(Var::as_tensor) {
        let Some(g) = more.get(p) else {
            continue;
        };
        match grads.get(p) {
            Some(have) if fusable(&[have, g]) => add_in_place(have, g)?,
            Some(have) => {
                let sum = (have + g)?;
                grads.insert(p, sum);
            }
            None => {
                grads.insert(p, g.clone());
            }
        }
    }
    Ok(())
}

/// Adam's update of one f32 parameter on the CPU, in place, moments included.
struct AdamKernel<'a> {
    config: AdamConfig,
    bc1: f64,
    bc2: f64,
    moments: RefCell<(&'a mut Vec<f32>, &'a mut Vec<f32>)>,
}

impl InplaceOp2 for AdamKernel<'_> {
    fn name(&self) -> &'static str {
        "fused-adam"
    }

    fn cpu_fwd(
        &self,
        sp: &mut CpuStorage,
        lp: &Layout,
        sg: &CpuStorage,
        lg: &Layout,
    ) -> candle_core::Result<()> {
        let (CpuStorage::F32(p), Some((p0, p1))) = (sp, lp.contiguous_offsets()) else {
            candle_core::bail!("fused-adam: expected a contiguous f32 parameter")
        };
        let (CpuStorage::F32(g), Some((g0, g1))) = (sg, lg.contiguous_offsets()) else {
            candle_core::bail!("fused-adam: expected a contiguous f32 gradient")
        };
        let (p, g) = (&mut p[p0..p1], &g[g0..g1]);
        let mut moments = self.moments.borrow_mut();
        let (m, v) = &mut *moments;
        if g.len() != p.len() || m.len() != p.len() || v.len() != p.len() {
            candle_core::bail!("fused-adam: parameter, gradient and moments differ in size")
        }
        let c = self.config;
        let (b1, b2) = (c.beta1 as f32, c.beta2 as f32);
        let (wd, eps) = (c.weight_decay as f32, c.eps as f32);
        let step = (c.lr / self.bc1) as f32;
        let inv_sqrt_bc2 = (1.0 / self.bc2.sqrt()) as f32;
        for (((p, g), m), v) in p.iter_mut().zip(g).zip(m.iter_mut()).zip(v.iter_mut()) {
            let g = g + wd * *p;
            *m = b1 * *m + (1.0 - b1) * g;
            *v = b2 * *v + (1.0 - b2) * g * g;
            *p -= step * *m / (v.sqrt() * inv_sqrt_bc2 + eps);
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::{DType, Device, Tensor};

    #[test]
    fn gradients_of_two_passes_add_up() {
        // f32 on the CPU adds in place, f64 through a tensor op: the same sums either way.
        for dtype in [DType::F32, DType::F64] {
            let a = Var::from_tensor(&Tensor::new(&[1.0f32, 2.0], &Device::Cpu).unwrap()).unwrap();
            let b = Var::from_tensor(&Tensor::new(&[3.0f32], &Device::Cpu).unwrap()).unwrap();
            let (a, b) = (
                Var::from_tensor(&a.to_dtype(dtype).unwrap()).unwrap(),
                Var::from_tensor(&b.to_dtype(dtype).unwrap()).unwrap(),
            );
            // First pass: gradient 2 for each entry of a, none for b. Second pass: gradient
            // 3 for a and 5 for b.
            let first = (a.as_tensor() * 2.0).unwrap().sum_all().unwrap();
            let second = ((a.as_tensor() * 3.0).unwrap().sum_all().unwrap()
                + (b.as_tensor() * 5.0).unwrap().sum_all().unwrap())
            .unwrap();
            let mut grads = first.backward().unwrap();
            let more = second.backward().unwrap();
            add_gradients(&mut grads, &more, &[a.clone(), b.clone()]).unwrap();
            let read = |v: &Var| {
                grads
                    .get(v.as_tensor())
                    .unwrap()
                    .to_dtype(DType::F64)
                    .unwrap()
                    .to_vec1::<f64>()
                    .unwrap()
            };
            assert_eq!(read(&a), [5.0, 5.0], "{dtype:?}");
            assert_eq!(read(&b), [5.0], "{dtype:?}");
            // The second pass's own gradients are left as they were.
            let own = more
                .get(a.as_tensor())
                .unwrap()
                .to_dtype(DType::F64)
                .unwrap();
            assert_eq!(own.to_vec1::<f64>().unwrap(), [3.0, 3.0]);
        }
    }

    #[test]
    fn matches_pytorch_adam_with_weight_decay_by_hand() {
        // On f64 the update is composed of tensor ops, on f32 CPU it is the fused kernel:
        // both must follow PyTorch's Adam. One parameter, loss = p²/2 so the gradient is p;
        // two steps computed by hand.
        for (dtype, tol) in [(DType::F64, 1e-12), (DType::F32, 1e-6)] {
            let p = Var::from_tensor(
                &Tensor::new(&[1.0f64], &Device::Cpu)
                    .unwrap()
                    .to_dtype(dtype)
                    .unwrap(),
            )
            .unwrap();
            let config = AdamConfig {
                lr: 0.1,
                beta1: 0.5,
                beta2: 0.9,
                eps: 1e-8,
                weight_decay: 0.01,
            };
            let mut adam = Adam::new(vec![p.clone()], config).unwrap();
            let (mut m, mut v, mut x) = (0.0f64, 0.0f64, 1.0f64);
            for t in 1..=2 {
                let loss = (p.as_tensor().sqr().unwrap() * 0.5)
                    .unwrap()
                    .sum_all()
                    .unwrap();
                adam.step(&loss.backward().unwrap()).unwrap();
                let g = x + 0.01 * x;
                m = 0.5 * m + 0.5 * g;
                v = 0.9 * v + 0.1 * g * g;
                let denom = (v / (1.0 - 0.9f64.powi(t))).sqrt() + 1e-8;
                x -= 0.1 / (1.0 - 0.5f64.powi(t)) * m / denom;
                let got = p
                    .as_tensor()
                    .to_dtype(DType::F64)
                    .unwrap()
                    .to_vec1::<f64>()
                    .unwrap()[0];
                assert!((got - x).abs() < tol, "{dtype:?} step {t}: {got} vs {x}");
            }
            // The moments hold values, not graphs back to earlier steps (a leak per step).
            assert!(adam.moments.iter().all(|m| match m {
                Moments::Device(m, v) => !m.track_op() && !v.track_op(),
                Moments::Host(..) => true,
            }));
        }
    }
}
