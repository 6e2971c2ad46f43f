//! Adam with L2 weight decay added to the gradient, as PyTorch's `Adam(weight_decay=…)`
//! does. The reference trains with it; candle only ships the decoupled variant (AdamW),
//! which is a different optimiser.

use candle_core::Var;
use candle_core::backprop::GradStore;

use crate::error::Result;

/// Adam hyperparameters.
#[derive(Debug, Clone, Copy)]
pub struct AdamConfig {
    pub lr: f64,
    pub beta1: f64,
    pub beta2: f64,
    pub eps: f64,
    pub weight_decay: f64,
}

/// Adam state over a fixed set of parameters.
pub struct Adam {
    vars: Vec<Var>,
    m: Vec<candle_core::Tensor>,
    v: Vec<candle_core::Tensor>,
    config: AdamConfig,
    t: i32,
}

impl Adam {
    pub fn new(vars: Vec<Var>, config: AdamConfig) -> Result<Self> {
        let m = vars
            .iter()
            .map(|v| v.zeros_like())
            .collect::<candle_core::Result<Vec<_>>>()?;
        let v = m.clone();
        Ok(Self {
            vars,
            m,
            v,
            config,
            t: 0,
        })
    }

    /// One update from the gradients in `grads`; parameters without a gradient are left
    /// alone, as PyTorch skips parameters whose `.grad` is None.
    pub fn step(&mut self, grads: &GradStore) -> Result<()> {
        self.t += 1;
        let c = self.config;
        let bc1 = 1.0 - c.beta1.powi(self.t);
        let bc2 = 1.0 - c.beta2.powi(self.t);
        for ((var, m), v) in self.vars.iter().zip(&mut self.m).zip(&mut self.v) {
            let Some(g) = grads.get(var.as_tensor()) else {
                continue;
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

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::{Device, Tensor};

    #[test]
    fn matches_pytorch_adam_with_weight_decay_by_hand() {
        // One parameter, loss = p²/2 so the gradient is p; two steps computed by hand.
        let p = Var::from_tensor(&Tensor::new(&[1.0f64], &Device::Cpu).unwrap()).unwrap();
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
            let got = p.as_tensor().to_vec1::<f64>().unwrap()[0];
            assert!((got - x).abs() < 1e-12, "step {t}: {got} vs {x}");
        }
        // The moments hold values, not graphs back to earlier steps (a leak per step).
        assert!(adam.m.iter().chain(&adam.v).all(|t| !t.track_op()));
    }
}
