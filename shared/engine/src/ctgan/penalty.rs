//! The WGAN-GP gradient penalty, λ·E[(‖∇ₓD(x̂)‖₂ − 1)²] on interpolates between real and fake
//! packs. The input gradient ∇ₓD is written as an explicit tensor expression (the critic's
//! backward pass by hand: Linear, LeakyReLU′ and the dropout masks), so that the penalty's
//! own `backward()` reaches every critic layer. Taking ∇ₓD from candle's `backward()` instead
//! would return a detached tensor, and the penalty would silently train the first layer only.

use candle_core::Tensor;

use super::critic::{Critic, LEAKY_SLOPE};
use crate::error::Result;
use crate::fused::{penalty_norm, slope_mask};

/// Weight of the penalty (the reference's λ).
pub const LAMBDA: f64 = 10.0;

/// Interpolates `real` and `fake` with one α per pack (`alpha` has one value per row, equal
/// within a pack) and returns the penalty, differentiable in every critic parameter.
pub fn gradient_penalty(
    critic: &Critic,
    real: &Tensor,
    fake: &Tensor,
    alpha: &Tensor,
    masks: &[Tensor],
) -> Result<Tensor> {
    let interpolates =
        (real.broadcast_mul(alpha)? + fake.broadcast_mul(&alpha.affine(-1.0, 1.0)?)?)?;
    let grad = input_gradient(critic, &interpolates, masks)?;
    Ok(penalty_norm(&grad, LAMBDA)?)
}

/// ∂(Σ scores)/∂(packed input), shape (rows / pac, pac · input_dim), built from the
/// parameters so that it carries their gradient.
pub(crate) fn input_gradient(critic: &Critic, x: &Tensor, masks: &[Tensor]) -> Result<Tensor> {
    // Only the pre-activations matter here, and only as constants (through LeakyReLU′).
    let pass = critic.pass(&x.detach(), masks, true)?;
    let packs = pass.score.dims()[0];
    let dtype = x.dtype();
    // ∂score/∂h_last = the output layer's weight row, for every pack.
    let mut g =
        Tensor::ones((packs, 1), dtype, x.device())?.matmul(critic.out.weight.as_tensor())?;
    for ((layer, z), mask) in critic
        .hidden
        .iter()
        .zip(&pass.pre)
        .rev()
        .zip(masks.iter().rev())
    {
        // LeakyReLU′ is piecewise constant: a constant of the graph, with no gradient.
        g = g
            .mul(&slope_mask(z, mask, LEAKY_SLOPE)?)?
            .matmul(layer.weight.as_tensor())?;
    }
    Ok(g)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::random::{fill_normal, rng_for};
    use candle_core::{DType, Device, Var};

    fn normal(rows: usize, cols: usize, seed: u64) -> Tensor {
        let mut v = vec![0f32; rows * cols];
        fill_normal(&mut rng_for(seed, 0), &mut v);
        Tensor::from_vec(v, (rows, cols), &Device::Cpu)
            .unwrap()
            .to_dtype(DType::F64)
            .unwrap()
    }

    /// The critic's input gradient matches candle's autodiff of the score.
    #[test]
    fn hand_written_input_gradient_matches_autodiff() {
        let dev = Device::Cpu;
        let mut rng = rng_for(11, 0);
        let critic = Critic::new(3, &[5, 4], 2, DType::F64, &dev, &mut rng).unwrap();
        let masks = critic.dropout_masks(6, DType::F64, &dev, &mut rng).unwrap();
        let x = Var::from_tensor(&normal(6, 3, 2)).unwrap();
        let score = critic
            .forward(x.as_tensor(), &masks)
            .unwrap()
            .sum_all()
            .unwrap();
        let auto = score
            .backward()
            .unwrap()
            .get(x.as_tensor())
            .unwrap()
            .reshape((3, 6))
            .unwrap();
        let hand = input_gradient(&critic, x.as_tensor(), &masks).unwrap();
        let diff = (auto - hand)
            .unwrap()
            .abs()
            .unwrap()
            .max_all()
            .unwrap()
            .to_scalar::<f64>()
            .unwrap();
        assert!(diff < 1e-12, "{diff}");
    }

    /// The penalty's gradient for every critic parameter matches central finite differences,
    /// and the deeper layers really receive one (the detach trap gives them none).
    #[test]
    fn penalty_gradient_reaches_every_layer_and_matches_finite_differences() {
        let dev = Device::Cpu;
        let mut rng = rng_for(5, 0);
        let critic = Critic::new(4, &[6, 5], 2, DType::F64, &dev, &mut rng).unwrap();
        let masks = critic.dropout_masks(8, DType::F64, &dev, &mut rng).unwrap();
        let (real, fake) = (normal(8, 4, 1), normal(8, 4, 2));
        let alpha = Tensor::new(&[0.3f64, 0.3, 0.8, 0.8, 0.1, 0.1, 0.6, 0.6], &dev)
            .unwrap()
            .reshape((8, 1))
            .unwrap();
        let penalty = |c: &Critic| {
            gradient_penalty(c, &real, &fake, &alpha, &masks)
                .unwrap()
                .to_scalar::<f64>()
                .unwrap()
        };
        let grads = gradient_penalty(&critic, &real, &fake, &alpha, &masks)
            .unwrap()
            .backward()
            .unwrap();
        let h = 1e-6;
        for (name, var) in critic.vars() {
            let g = grads
                .get(var.as_tensor())
                .map(|g| g.flatten_all().unwrap().to_vec1::<f64>().unwrap());
            let base = var
                .as_tensor()
                .flatten_all()
                .unwrap()
                .to_vec1::<f64>()
                .unwrap();
            let mut numeric = vec![0.0; base.len()];
            for (i, n) in numeric.iter_mut().enumerate() {
                let mut p = base.clone();
                p[i] += h;
                var.set(&Tensor::from_vec(p.clone(), var.shape(), &dev).unwrap())
                    .unwrap();
                let up = penalty(&critic);
                p[i] -= 2.0 * h;
                var.set(&Tensor::from_vec(p, var.shape(), &dev).unwrap())
                    .unwrap();
                let down = penalty(&critic);
                *n = (up - down) / (2.0 * h);
            }
            var.set(&Tensor::from_vec(base, var.shape(), &dev).unwrap())
                .unwrap();
            let analytic = g.unwrap_or_else(|| vec![0.0; numeric.len()]);
            let scale = numeric.iter().map(|x| x.abs()).fold(1e-3, f64::max);
            for (a, n) in analytic.iter().zip(&numeric) {
                assert!(
                    (a - n).abs() < 1e-6 * scale,
                    "{name}: autodiff {a} vs finite difference {n}"
                );
            }
            // Weights shape the input gradient; biases only move LeakyReLU kinks (zero a.e.).
            if name.ends_with("weight") {
                assert!(
                    numeric.iter().any(|x| x.abs() > 1e-4),
                    "{name} should influence the penalty"
                );
            }
        }
    }
}
