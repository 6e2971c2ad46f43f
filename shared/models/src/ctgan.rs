//! CTGAN's hyperparameters, named as in the seed platform's JSON, with the reference
//! implementation's defaults.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};

use synth_search::{Dimension, ParamKind, SearchSpace, Tunable};

use crate::error::{ParamError, Result};
use crate::params::{Bound, Field, Params};

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

impl Params for CtganParams {
    const NAME: &'static str = "ctgan";

    const FIELDS: &'static [Field] = &[
        Field::new("epochs", Bound::Count, "Passes over the training rows."),
        Field::new(
            "batch_size",
            Bound::Count,
            "Rows per training step; a multiple of pac.",
        ),
        Field::new(
            "discriminator_steps",
            Bound::Count,
            "Critic updates per generator update.",
        ),
        Field::new(
            "pac",
            Bound::Count,
            "Rows the critic judges together (PacGAN), against mode collapse.",
        ),
        Field::new(
            "embedding_dim",
            Bound::Size,
            "Size of the generator's noise vector.",
        ),
        Field::new(
            "generator_dim",
            Bound::Widths { required: true },
            "Widths of the generator's residual layers.",
        ),
        Field::new(
            "discriminator_dim",
            Bound::Widths { required: true },
            "Widths of the critic's hidden layers.",
        ),
        Field::new(
            "generator_lr",
            Bound::Positive,
            "The generator's Adam learning rate.",
        ),
        Field::new(
            "discriminator_lr",
            Bound::Positive,
            "The critic's Adam learning rate.",
        ),
        Field::new(
            "generator_decay",
            Bound::NonNegative,
            "The generator's weight decay.",
        ),
        Field::new(
            "discriminator_decay",
            Bound::NonNegative,
            "The critic's weight decay.",
        ),
        Field::new(
            "log_frequency",
            Bound::Flag,
            "Draw training conditions by log frequency, so rare categories are seen more.",
        ),
    ];

    /// The parameters a search may change; `learning_rate` sets both learning rates.
    const TUNABLE: &'static [Tunable] = &[
        ("epochs", ParamKind::Int),
        ("batch_size", ParamKind::Int),
        ("learning_rate", ParamKind::LogFloat),
        ("generator_lr", ParamKind::LogFloat),
        ("discriminator_lr", ParamKind::LogFloat),
        ("generator_dim", ParamKind::Choice),
        ("discriminator_dim", ParamKind::Choice),
        ("discriminator_steps", ParamKind::Int),
        ("embedding_dim", ParamKind::Int),
        ("pac", ParamKind::Int),
        ("log_frequency", ParamKind::Choice),
        ("generator_decay", ParamKind::LogFloat),
        ("discriminator_decay", ParamKind::LogFloat),
    ];

    fn epochs(&self) -> usize {
        self.epochs
    }

    fn batch_size(&self) -> usize {
        self.batch_size
    }

    /// The space searched when the user gives none: training length, batch, one learning
    /// rate for both networks (log scale, around the reference's 2e-4), and network sizes.
    fn search_space() -> SearchSpace {
        let shapes = || vec![json!([128, 128]), json!([256, 256]), json!([256, 256, 256])];
        SearchSpace::new(vec![
            Dimension::int("epochs", 50, 300),
            Dimension::int("batch_size", 100, 1000),
            Dimension::log_float("learning_rate", 5e-5, 2e-3),
            Dimension::choice("generator_dim", shapes()),
            Dimension::choice("discriminator_dim", shapes()),
            Dimension::choice("embedding_dim", vec![json!(64), json!(128), json!(256)]),
        ])
    }

    /// Moves a search point onto values CTGAN accepts: `batch_size` to the nearest positive
    /// multiple of `pac` (the point's or these parameters').
    fn normalise_point(&self, point: &mut Map<String, Value>) {
        let pac = point
            .get("pac")
            .and_then(Value::as_u64)
            .map_or(self.pac, |p| p as usize)
            .max(1);
        if let Some(b) = point.get("batch_size").and_then(Value::as_f64) {
            let packs = ((b / pac as f64).round() as usize).max(1);
            point.insert("batch_size".into(), json!(packs * pac));
        }
    }

    /// A searched `learning_rate` sets both learning rates.
    fn point_fields(&self, point: &Map<String, Value>) -> Map<String, Value> {
        let mut point = point.clone();
        if let Some(lr) = point.remove("learning_rate") {
            point.insert("generator_lr".into(), lr.clone());
            point.insert("discriminator_lr".into(), lr);
        }
        point
    }

    /// `batch_size` must split into packs of `pac` rows for the critic.
    fn check_together(&self) -> Result<()> {
        if !self.batch_size.is_multiple_of(self.pac) {
            return Err(ParamError::param(
                "batch_size",
                format!("{} is not divisible by pac = {}", self.batch_size, self.pac),
            ));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_valid_and_the_json_fills_in_the_rest() {
        CtganParams::default().validate().unwrap();
        // The seed platform's JSON, partially given, fills in the rest.
        let p: CtganParams = serde_json::from_str(r#"{"epochs": 5, "batch_size": 100}"#).unwrap();
        assert_eq!((p.epochs, p.batch_size, p.pac), (5, 100, 10));
        assert!(serde_json::from_str::<CtganParams>(r#"{"epoch": 5}"#).is_err());
    }

    #[test]
    fn search_points_set_both_learning_rates_and_round_the_batch_to_pac() {
        let base = CtganParams::default();
        let point = json!({"learning_rate": 1e-3, "batch_size": 537, "epochs": 12,
                           "generator_dim": [64, 32]});
        let p = base.with_point(point.as_object().unwrap()).unwrap();
        assert_eq!((p.generator_lr, p.discriminator_lr), (1e-3, 1e-3));
        assert_eq!((p.batch_size, p.epochs, p.pac), (540, 12, 10));
        assert_eq!(p.generator_dim, [64, 32]);
        // Never below one pack, and with the point's own pac.
        let p = base
            .with_point(json!({"batch_size": 3, "pac": 4}).as_object().unwrap())
            .unwrap();
        assert_eq!((p.batch_size, p.pac), (4, 4));
        let mut m = json!({"batch_size": 996}).as_object().unwrap().clone();
        base.normalise_point(&mut m);
        assert_eq!(m["batch_size"], json!(1000));
        // Values of the wrong type or out of range are errors naming the parameter.
        let err = base
            .with_point(json!({"generator_dim": "big"}).as_object().unwrap())
            .unwrap_err()
            .to_string();
        assert!(err.contains("generator_dim"), "{err}");
        assert!(
            base.with_point(json!({"epochs": 0}).as_object().unwrap())
                .is_err()
        );
    }
}
