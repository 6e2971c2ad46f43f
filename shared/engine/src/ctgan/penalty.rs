//! The WGAN-GP gradient penalty, λ·E[(‖∇ₓD(x̂)‖₂ − 1)²] on interpolates between real and fake
//! packs. The input gradient ∇ₓD is written as an explicit tensor expression (the critic's
//! backward pass by hand: Linear, LeakyReLU′ and the dropout masks), so that the penalty's
//! own `backward()` reaches every critic layer. Taking ∇ₓD from candle's `backward()` instead
//! would return a detached tensor, and the penalty would silently train the first layer only.

use candle_core::Tensor;
use candle_core::backprop::GradStore;

use super::critic::{Critic, LEAKY_SLOPE};
use crate::error::Result;
use crate::fused::{
    column_sums, fusable, gemm, matmul, penalty_norm, slope_mask, storage_slice, update_in_place,
    with_data,
};

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

/// The same penalty on f32 CPU tensors, with its gradient for every critic weight worked
/// out by hand and added into `grads` (which must come from the critic loss's `backward()`),
/// so that no autograd graph is built for it. Returns the penalty; `None` where the fused
/// kernels cannot run (then use [`gradient_penalty`]).
pub fn accumulate_penalty(
    critic: &Critic,
    real: &Tensor,
    fake: &Tensor,
    alpha: &Tensor,
    masks: &[Tensor],
    grads: &mut GradStore,
) -> Result<Option<f64>> {
    let weights: Vec<&Tensor> = critic
        .hidden
        .iter()
        .map(|l| l.weight.as_tensor())
        .chain([critic.out.weight.as_tensor()])
        .collect();
    let mut all = vec![real, fake, alpha];
    all.extend(masks);
    all.extend(&weights);
    if !fusable(&all) {
        return Ok(None);
    }
    let x = interpolate(real, fake, alpha)?;
    let pass = critic.pass(&x, masks, true)?;
    // How each hidden layer's activation scales a gradient flowing back through it.
    let scales: Vec<Vec<f32>> = pass
        .pre
        .iter()
        .zip(masks)
        .map(|(z, m)| {
            Ok(slope_mask(z, m, LEAKY_SLOPE)?
                .flatten_all()?
                .to_vec1::<f32>()?)
        })
        .collect::<Result<_>>()?;
    let widths = critic.hidden_widths();
    let packed = critic.pac * real.dims2()?.1;
    // The weights are read in place (parameters are contiguous), not copied every step.
    let guards: Vec<_> = weights.iter().map(|t| t.storage_and_layout()).collect();
    let w: Vec<&[f32]> = guards
        .iter()
        .map(|(s, l)| storage_slice(s, l))
        .collect::<candle_core::Result<_>>()?;
    let net = HandNet {
        packs: real.dims2()?.0 / critic.pac,
        inputs: std::iter::once(packed)
            .chain(widths.iter().copied())
            .collect(),
        widths,
        scales,
        w,
    };
    let (a, u) = net.input_gradient();
    let (penalty, du) = penalty_gradient(u, packed, net.packs);
    net.weight_gradients(&a, du, &weights, grads)?;
    Ok(Some(penalty))
}

/// x̂ = α·real + (1 − α)·fake, one α per row.
fn interpolate(real: &Tensor, fake: &Tensor, alpha: &Tensor) -> Result<Tensor> {
    let (rows, width) = real.dims2()?;
    let x = with_data(real, |r| {
        with_data(fake, |f| {
            with_data(alpha, |a| {
                let mut x = Vec::with_capacity(rows * width);
                for ((rr, fr), a) in r.chunks_exact(width).zip(f.chunks_exact(width)).zip(a) {
                    x.extend(rr.iter().zip(fr).map(|(r, f)| a * r + (1.0 - a) * f));
                }
                x
            })
        })
    })???;
    Ok(Tensor::from_vec(x, (rows, width), real.device())?)
}

/// The critic at the interpolates, as the hand-written gradient needs it: per layer its
/// input width, hidden width, activation scales and weights (the output layer's last).
struct HandNet<'a> {
    packs: usize,
    inputs: Vec<usize>,
    widths: Vec<usize>,
    scales: Vec<Vec<f32>>,
    w: Vec<&'a [f32]>,
}

impl HandNet<'_> {
    /// Forward: a_last = w_out ⊙ S_last per pack; u_i = a_i · W_i; a_{i−1} = u_i ⊙ S_{i−1};
    /// returns every a_i and the input gradient u_0.
    fn input_gradient(&self) -> (Vec<Vec<f32>>, Vec<f32>) {
        let (widths, inputs, packs) = (&self.widths, &self.inputs, self.packs);
        let depth = widths.len();
        let mut a: Vec<Vec<f32>> = vec![Vec::new(); depth];
        a[depth - 1] = self.scales[depth - 1]
            .chunks_exact(widths[depth - 1])
            .flat_map(|s| s.iter().zip(self.w[depth]).map(|(s, w)| s * w))
            .collect();
        let mut u = Vec::new();
        for i in (0..depth).rev() {
            u = vec![0f32; packs * inputs[i]];
            gemm(
                (packs, inputs[i], widths[i]),
                &mut u,
                false,
                &a[i],
                (widths[i], 1),
                self.w[i],
                (inputs[i], 1),
            );
            if i > 0 {
                a[i - 1] = u
                    .iter()
                    .zip(&self.scales[i - 1])
                    .map(|(u, s)| u * s)
                    .collect();
            }
        }
        (a, u)
    }

    /// Backward: dW_i += a_iᵀ · du_i; da_i = du_i · W_iᵀ; du_{i+1} = da_i ⊙ S_i;
    /// dw_out += Σ_packs da_last ⊙ S_last.
    fn weight_gradients(
        &self,
        a: &[Vec<f32>],
        mut du: Vec<f32>,
        weights: &[&Tensor],
        grads: &mut GradStore,
    ) -> Result<()> {
        let (widths, inputs, packs) = (&self.widths, &self.inputs, self.packs);
        let depth = widths.len();
        for i in 0..depth {
            let (h, n) = (widths[i], inputs[i]);
            let ai = &a[i];
            let du_i = &du;
            add_to_grad(grads, weights[i], |dw| {
                gemm((h, n, packs), dw, true, ai, (1, h), du_i, (n, 1))
            })?;
            let mut da = vec![0f32; packs * h];
            gemm(
                (packs, h, n),
                &mut da,
                false,
                &du,
                (n, 1),
                self.w[i],
                (1, n),
            );
            da.iter_mut()
                .zip(&self.scales[i])
                .for_each(|(d, s)| *d *= s);
            if i + 1 < depth {
                du = da;
            } else {
                let dw_out = column_sums(&da, h);
                add_to_grad(grads, weights[depth], |dw| {
                    dw.iter_mut().zip(&dw_out).for_each(|(d, v)| *d += v)
                })?;
            }
        }
        Ok(())
    }
}

/// The penalty of the input gradients `u` (one row of `packed` values per pack) and its
/// gradient at them: 2λ/P · (‖g‖ − 1)/‖g‖ · g per pack.
fn penalty_gradient(u: Vec<f32>, packed: usize, packs: usize) -> (f64, Vec<f32>) {
    let mut penalty = 0f64;
    let mut du = u;
    for g in du.chunks_exact_mut(packed) {
        let n = (g.iter().map(|v| (*v as f64).powi(2)).sum::<f64>() + 1e-12).sqrt();
        penalty += (n - 1.0).powi(2);
        let k = (2.0 * LAMBDA / packs as f64 * (n - 1.0) / n) as f32;
        g.iter_mut().for_each(|v| *v *= k);
    }
    penalty *= LAMBDA / packs as f64;
    (penalty, du)
}

/// Adds to the gradient of `param` in `grads` in place (starting from zero if it has none).
fn add_to_grad(grads: &mut GradStore, param: &Tensor, f: impl Fn(&mut [f32])) -> Result<()> {
    if grads.get(param).is_none() {
        grads.insert(param, param.zeros_like()?.detach());
    }
    let g = grads.get(param).expect("inserted above");
    Ok(update_in_place(g, f)?)
}

/// ∂(Σ scores)/∂(packed input), shape (rows / pac, pac · input_dim), built from the
/// parameters so that it carries their gradient.
pub(crate) fn input_gradient(critic: &Critic, x: &Tensor, masks: &[Tensor]) -> Result<Tensor> {
    // Only the pre-activations matter here, and only as constants (through LeakyReLU′).
    let pass = critic.pass(&x.detach(), masks, true)?;
    let packs = pass.score.dims()[0];
    let dtype = x.dtype();
    // ∂score/∂h_last = the output layer's weight row, for every pack.
    let mut g = matmul(
        &Tensor::ones((packs, 1), dtype, x.device())?,
        critic.out.weight.as_tensor(),
    )?;
    for ((layer, z), mask) in critic
        .hidden
        .iter()
        .zip(&pass.pre)
        .rev()
        .zip(masks.iter().rev())
    {
        // LeakyReLU′ is piecewise constant: a constant of the graph, with no gradient.
        g = matmul(
            &g.mul(&slope_mask(z, mask, LEAKY_SLOPE)?)?,
            layer.weight.as_tensor(),
        )?;
    }
    Ok(g)
}

#[cfg(test)]
mod tests {
    use super::super::critic::CriticConfig;
    use super::*;
    use crate::nn::{NamedVars, VarBuilder};
    use crate::random::EngineRng;
    use crate::random::{fill_normal, rng_for};
    use candle_core::{DType, Device, Var};

    /// A critic with weights drawn from `rng`, and its trained variables by name.
    fn critic_of(
        input_dim: usize,
        hidden: &[usize],
        pac: usize,
        dtype: DType,
        rng: &mut EngineRng,
    ) -> (Critic, NamedVars) {
        let config = CriticConfig {
            input_dim,
            hidden: hidden.to_vec(),
            pac,
        };
        let vb = VarBuilder::seeded(rng, dtype, &Device::Cpu);
        let critic = Critic::new(&config, vb.pp("critic")).unwrap();
        (critic, vb.vars().trained)
    }

    /// What a penalty is computed from: an f64 critic of 4 inputs (hidden 6 and 5, packs of
    /// 2) with its variables, dropout masks for 8 rows, real and fake rows drawn with
    /// `data_seeds`, a fixed interpolation weight per pack, and the rng after all that.
    struct Case {
        critic: Critic,
        vars: NamedVars,
        masks: Vec<Tensor>,
        real: Tensor,
        fake: Tensor,
        alpha: Tensor,
        rng: EngineRng,
    }

    fn case(seed: u64, data_seeds: (u64, u64)) -> Case {
        let mut rng = rng_for(seed, 0);
        let (critic, vars) = critic_of(4, &[6, 5], 2, DType::F64, &mut rng);
        let masks = critic
            .dropout_masks(8, DType::F64, &Device::Cpu, &mut rng)
            .unwrap();
        let alpha = Tensor::new(&[0.3f64, 0.3, 0.8, 0.8, 0.1, 0.1, 0.6, 0.6], &Device::Cpu)
            .unwrap()
            .reshape((8, 1))
            .unwrap();
        Case {
            critic,
            vars,
            masks,
            real: normal(8, 4, data_seeds.0),
            fake: normal(8, 4, data_seeds.1),
            alpha,
            rng,
        }
    }

    /// A tensor's values, flattened.
    fn values<T: candle_core::WithDType>(t: &Tensor) -> Vec<T> {
        t.flatten_all().unwrap().to_vec1::<T>().unwrap()
    }

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
        let (critic, _) = critic_of(3, &[5, 4], 2, DType::F64, &mut rng);
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

    /// The hand-written penalty gradient on f32 matches autodiff of the f64 expression for
    /// every critic weight, and leaves the biases alone.
    #[test]
    fn accumulated_penalty_gradient_matches_autodiff() {
        let Case {
            critic,
            vars: vars64,
            masks,
            real,
            fake,
            alpha,
            mut rng,
        } = case(8, (3, 4));
        let pen = gradient_penalty(&critic, &real, &fake, &alpha, &masks).unwrap();
        let want = pen.backward().unwrap();
        // The same critic in f32.
        let (f32c, vars32) = critic_of(4, &[6, 5], 2, DType::F32, &mut rng);
        for ((_, a), (_, b)) in vars32.iter().zip(&vars64) {
            a.set(&b.as_tensor().to_dtype(DType::F32).unwrap()).unwrap();
        }
        let f = |t: &Tensor| t.to_dtype(DType::F32).unwrap();
        let masks32: Vec<Tensor> = masks.iter().map(f).collect();
        // Start from an existing gradient for one weight, to check it is added to.
        let mut grads = (f32c.hidden[0].weight.as_tensor().sum_all().unwrap() * 0.0)
            .unwrap()
            .backward()
            .unwrap();
        let got = accumulate_penalty(
            &f32c,
            &f(&real),
            &f(&fake),
            &f(&alpha),
            &masks32,
            &mut grads,
        )
        .unwrap()
        .expect("f32 on the CPU is fusable");
        let want_pen = pen.to_scalar::<f64>().unwrap();
        assert!(
            (got - want_pen).abs() < 1e-4 * (1.0 + want_pen),
            "{got} vs {want_pen}"
        );
        for ((name, a), (_, b)) in vars32.iter().zip(&vars64) {
            let expected = want.get(b.as_tensor());
            let actual = grads.get(a.as_tensor());
            if name.ends_with("bias") {
                assert!(actual.is_none(), "{name} gets no penalty gradient");
                continue;
            }
            let (e, a) = (
                values::<f64>(expected.unwrap()),
                values::<f32>(&f(actual.unwrap())),
            );
            for (x, y) in a.iter().zip(&e) {
                assert!(
                    (*x as f64 - y).abs() < 1e-4 * (1.0 + y.abs()),
                    "{name}: {x} vs {y}"
                );
            }
        }
    }

    /// The penalty's gradient for every critic parameter matches central finite differences,
    /// and the deeper layers really receive one (the detach trap gives them none).
    #[test]
    fn penalty_gradient_reaches_every_layer_and_matches_finite_differences() {
        let dev = Device::Cpu;
        let Case {
            critic,
            vars,
            masks,
            real,
            fake,
            alpha,
            ..
        } = case(5, (1, 2));
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
        for (name, var) in vars {
            let g = grads.get(var.as_tensor()).map(values::<f64>);
            let base = values::<f64>(var.as_tensor());
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
