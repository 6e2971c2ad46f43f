//! What the kernels' tests share: seeded inputs, and the check that a fused kernel gives
//! the outputs and gradients of its composition from candle's primitive ops.

use candle_core::{DType, Device, Tensor, Var};

use crate::random::{fill_normal, rng_for};

pub(super) fn normal(shape: (usize, usize), seed: u64) -> Tensor {
    let mut v = vec![0f32; shape.0 * shape.1];
    fill_normal(&mut rng_for(seed, 0), &mut v);
    Tensor::from_vec(v, shape, &Device::Cpu).unwrap()
}

pub(super) fn var(shape: (usize, usize), seed: u64) -> Var {
    Var::from_tensor(&normal(shape, seed)).unwrap()
}

pub(super) fn vec1(t: &Tensor) -> Vec<f32> {
    t.flatten_all().unwrap().to_vec1().unwrap()
}

pub(super) fn close(a: &Tensor, b: &Tensor, tol: f32, what: &str) {
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
pub(super) fn check(inputs: &[Var], f: impl Fn(&[Tensor]) -> Tensor, tol: f32) {
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
