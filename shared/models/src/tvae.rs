//! TVAE's hyperparameters, named as in the seed platform's JSON, with the reference
//! implementation's defaults.

use serde::{Deserialize, Serialize};
use serde_json::json;

use synth_search::{Dimension, ParamKind, SearchSpace, Tunable};

use crate::params::{Bound, Field, Params};

/// Hyperparameters of TVAE; `Default` is the reference's.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct TvaeParams {
    pub epochs: usize,
    pub batch_size: usize,
    /// Size of the latent code.
    pub embedding_dim: usize,
    /// Hidden widths of the encoder's ReLU MLP.
    pub compress_dims: Vec<usize>,
    /// Hidden widths of the decoder's ReLU MLP.
    pub decompress_dims: Vec<usize>,
    /// L2 penalty added to the gradient (PyTorch Adam's `weight_decay`).
    pub l2scale: f64,
    pub learning_rate: f64,
    /// Weight of the reconstruction term against the KL term.
    pub loss_factor: f64,
}

impl Default for TvaeParams {
    fn default() -> Self {
        Self {
            epochs: 300,
            batch_size: 500,
            embedding_dim: 128,
            compress_dims: vec![128, 128],
            decompress_dims: vec![128, 128],
            l2scale: 1e-5,
            learning_rate: 1e-3,
            loss_factor: 2.0,
        }
    }
}

impl Params for TvaeParams {
    const NAME: &'static str = "tvae";

    const FIELDS: &'static [Field] = &[
        Field::new("epochs", Bound::Count, "Passes over the training rows."),
        Field::new("batch_size", Bound::Count, "Rows per training step."),
        Field::new("embedding_dim", Bound::Size, "Size of the latent code."),
        Field::new(
            "compress_dims",
            Bound::Widths { required: false },
            "Hidden widths of the encoder.",
        ),
        Field::new(
            "decompress_dims",
            Bound::Widths { required: false },
            "Hidden widths of the decoder.",
        ),
        Field::new("learning_rate", Bound::Positive, "Adam's learning rate."),
        Field::new(
            "l2scale",
            Bound::NonNegative,
            "L2 penalty added to the gradient (weight decay).",
        ),
        Field::new(
            "loss_factor",
            Bound::NonNegative,
            "Weight of the reconstruction term against the KL term.",
        ),
    ];

    /// The parameters a search may change.
    const TUNABLE: &'static [Tunable] = &[
        ("epochs", ParamKind::Int),
        ("batch_size", ParamKind::Int),
        ("learning_rate", ParamKind::LogFloat),
        ("embedding_dim", ParamKind::Int),
        ("compress_dims", ParamKind::Choice),
        ("decompress_dims", ParamKind::Choice),
        ("l2scale", ParamKind::LogFloat),
        ("loss_factor", ParamKind::Float),
    ];

    fn epochs(&self) -> usize {
        self.epochs
    }

    fn batch_size(&self) -> usize {
        self.batch_size
    }

    /// The space searched when the user gives none: training length, batch, learning rate
    /// (log scale, around the reference's 1e-3), network sizes and the reconstruction weight.
    fn search_space() -> SearchSpace {
        let shapes = || vec![json!([64, 64]), json!([128, 128]), json!([256, 256])];
        SearchSpace::new(vec![
            Dimension::int("epochs", 50, 300),
            Dimension::int("batch_size", 100, 1000),
            Dimension::log_float("learning_rate", 1e-4, 1e-2),
            Dimension::choice("embedding_dim", vec![json!(64), json!(128), json!(256)]),
            Dimension::choice("compress_dims", shapes()),
            Dimension::choice("decompress_dims", shapes()),
            Dimension::float("loss_factor", 1.0, 4.0),
        ])
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::ParamError;

    #[test]
    fn defaults_are_the_reference_and_not_a_number_is_named() {
        let d = TvaeParams::default();
        d.validate().unwrap();
        assert_eq!((d.epochs, d.batch_size, d.embedding_dim), (300, 500, 128));
        // Not a number, which JSON cannot carry (the crate's table of bad values has the rest).
        let nan = TvaeParams {
            l2scale: f64::NAN,
            ..d
        };
        assert!(matches!(
            nan.validate(),
            Err(ParamError::Invalid {
                name: "l2scale",
                ..
            })
        ));
        let p: TvaeParams = serde_json::from_str(r#"{"epochs": 5, "loss_factor": 3}"#).unwrap();
        assert_eq!((p.epochs, p.loss_factor, p.batch_size), (5, 3.0, 500));
        assert!(serde_json::from_str::<TvaeParams>(r#"{"pac": 5}"#).is_err());
    }

    #[test]
    fn search_points_set_the_named_parameters() {
        let base = TvaeParams::default();
        let p = base
            .with_point(
                json!({"learning_rate": 3e-3, "compress_dims": [32], "epochs": 9})
                    .as_object()
                    .unwrap(),
            )
            .unwrap();
        assert_eq!((p.learning_rate, p.epochs, p.batch_size), (3e-3, 9, 500));
        assert_eq!(p.compress_dims, [32]);
        assert!(
            base.with_point(json!({"loss_factor": -1.0}).as_object().unwrap())
                .is_err()
        );
    }
}
