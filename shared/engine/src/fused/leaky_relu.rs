//! The critic's activation: LeakyReLU times its (inverted) dropout mask, and the same
//! slope as a constant of the graph for the hand-written input gradient.

use std::sync::Arc;

use candle_core::{CpuStorage, CustomOp2, Layout, Result, Shape, Tensor, bail};

use super::storage::{fusable, slice};

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

#[cfg(test)]
mod tests {
    use super::super::testing::{check, var};
    use super::*;
    use candle_core::Device;

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
}
