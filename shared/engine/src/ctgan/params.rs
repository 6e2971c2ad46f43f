//! CTGAN's hyperparameters, named as in the seed platform's JSON, with the reference
//! implementation's defaults.

use serde::{Deserialize, Serialize};

use crate::error::{EngineError, Result};

/// Hyperparameters of CTGAN; `Default` is the reference's.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct CtganParams {
    pub epochs: usize,
    pub batch_size: usize,
    pub generator_dim: Vec<usize>,
    pub discriminator_dim: Vec<usize>,
    pub generator_lr: f64,
    pub discriminator_lr: f64,
    pub discriminator_steps: usize,
    /// Draw training conditions ∝ log(count + 1) rather than ∝ count.
    pub log_frequency: bool,
    /// Rows the critic judges together (PacGAN), against mode collapse.
    pub pac: usize,
    /// Size of the generator's noise vector.
    pub embedding_dim: usize,
    pub generator_decay: f64,
    pub discriminator_decay: f64,
}

impl Default for CtganParams {
    fn default() -> Self {
        Self {
            epochs: 300,
            batch_size: 500,
            generator_dim: vec![256, 256],
            discriminator_dim: vec![256, 256],
            generator_lr: 2e-4,
            discriminator_lr: 2e-4,
            discriminator_steps: 1,
            log_frequency: true,
            pac: 10,
            embedding_dim: 128,
            generator_decay: 1e-6,
            discriminator_decay: 1e-6,
        }
    }
}

impl CtganParams {
    /// Checks every parameter, naming the first one that is wrong.
    pub fn validate(&self) -> Result<()> {
        let positive = |name: &'static str, v: usize| {
            if v == 0 {
                Err(EngineError::param(name, "must be at least 1"))
            } else {
                Ok(())
            }
        };
        positive("epochs", self.epochs)?;
        positive("batch_size", self.batch_size)?;
        positive("discriminator_steps", self.discriminator_steps)?;
        positive("pac", self.pac)?;
        positive("embedding_dim", self.embedding_dim)?;
        if !self.batch_size.is_multiple_of(self.pac) {
            return Err(EngineError::param(
                "batch_size",
                format!("{} is not divisible by pac = {}", self.batch_size, self.pac),
            ));
        }
        for (name, dims) in [
            ("generator_dim", &self.generator_dim),
            ("discriminator_dim", &self.discriminator_dim),
        ] {
            if dims.is_empty() || dims.contains(&0) {
                return Err(EngineError::param(
                    name,
                    "must list one or more positive layer widths",
                ));
            }
        }
        for (name, lr) in [
            ("generator_lr", self.generator_lr),
            ("discriminator_lr", self.discriminator_lr),
        ] {
            if !(lr.is_finite() && lr > 0.0) {
                return Err(EngineError::param(
                    name,
                    format!("{lr} is not a positive number"),
                ));
            }
        }
        for (name, d) in [
            ("generator_decay", self.generator_decay),
            ("discriminator_decay", self.discriminator_decay),
        ] {
            if !(d.is_finite() && d >= 0.0) {
                return Err(EngineError::param(
                    name,
                    format!("{d} is not a non-negative number"),
                ));
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_valid_and_bad_values_are_named() {
        CtganParams::default().validate().unwrap();
        let bad = |p: CtganParams| match p.validate() {
            Err(EngineError::InvalidParameter { name, .. }) => name,
            other => panic!("expected an invalid parameter, got {other:?}"),
        };
        assert_eq!(
            bad(CtganParams {
                batch_size: 505,
                ..Default::default()
            }),
            "batch_size"
        );
        assert_eq!(
            bad(CtganParams {
                generator_dim: vec![],
                ..Default::default()
            }),
            "generator_dim"
        );
        assert_eq!(
            bad(CtganParams {
                discriminator_dim: vec![256, 0],
                ..Default::default()
            }),
            "discriminator_dim"
        );
        assert_eq!(
            bad(CtganParams {
                epochs: 0,
                ..Default::default()
            }),
            "epochs"
        );
        assert_eq!(
            bad(CtganParams {
                generator_lr: -1.0,
                ..Default::default()
            }),
            "generator_lr"
        );
        assert_eq!(
            bad(CtganParams {
                pac: 0,
                ..Default::default()
            }),
            "pac"
        );
        // The seed platform's JSON, partially given, fills in the rest.
        let p: CtganParams = serde_json::from_str(r#"{"epochs": 5, "batch_size": 100}"#).unwrap();
        assert_eq!((p.epochs, p.batch_size, p.pac), (5, 100, 10));
        assert!(serde_json::from_str::<CtganParams>(r#"{"epoch": 5}"#).is_err());
    }
}
