//! Evaluation of a synthetic table against the real one it imitates: SDMetrics' quality
//! and diagnostic reports (same definitions, so the numbers compare), privacy by distance
//! to closest record, and machine-learning efficacy. Depends only on synth-core, so the
//! CLI and the platform can evaluate without the training engine.
//!
//! [`evaluate`] runs everything and returns one serialisable [`EvaluationReport`]; each part
//! is also a function of its own ([`quality_report`], [`diagnostic_report`],
//! [`privacy_report`], [`ml_efficacy`]); [`render_html`] turns a report into a page.

pub mod diagnostic;
pub mod efficacy;
pub mod privacy;
pub mod quality;
pub mod report;
mod values;

use rand::SeedableRng;
use rand::seq::SliceRandom;
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};
use synth_table::{Metadata, Table};

pub use diagnostic::{ColumnValidity, DiagnosticReport, diagnostic_report};
pub use efficacy::{EfficacyOptions, EfficacyScores, MlEfficacyReport, ml_efficacy};
pub use privacy::{PrivacyOptions, PrivacyReport, privacy_report};
pub use quality::{ColumnPairTrend, ColumnShape, PairOptions, QualityReport, quality_report};
pub use report::render_html;

/// Why an evaluation could not run.
#[derive(Debug, thiserror::Error, PartialEq)]
pub enum EvaluateError {
    #[error("column {column:?} is in the metadata but not in the {side} table")]
    MissingColumn { column: String, side: &'static str },
    #[error("the {0} table has no rows")]
    Empty(&'static str),
    #[error("invalid option: {0}")]
    Invalid(String),
    #[error("efficacy model failed: {0}")]
    Model(String),
}

/// What to evaluate and how; everything random is drawn from `seed`.
#[derive(Debug, Clone)]
pub struct EvaluateOptions<'a> {
    pub seed: u64,
    /// Column to predict for ML efficacy; none skips it.
    pub target: Option<String>,
    /// Real rows the synthesizer never saw. Without them privacy has no DCR share, and
    /// efficacy tests on `holdout_fraction` of the real rows (flagged in its report).
    pub holdout: Option<&'a Table>,
    pub holdout_fraction: f64,
    /// Rows per table sampled for the distance measures.
    pub privacy_max_rows: usize,
    pub efficacy: EfficacyOptions,
}

impl Default for EvaluateOptions<'_> {
    fn default() -> Self {
        Self {
            seed: 0,
            target: None,
            holdout: None,
            holdout_fraction: 0.3,
            privacy_max_rows: PrivacyOptions::default().max_rows,
            efficacy: EfficacyOptions::default(),
        }
    }
}

/// The whole evaluation, shaped as `synth evaluate --json` prints it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EvaluationReport {
    pub quality: QualityReport,
    pub diagnostic: DiagnosticReport,
    pub privacy: PrivacyReport,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ml_efficacy: Option<MlEfficacyReport>,
    /// With a holdout: what the holdout rows themselves score against the training rows,
    /// the yardstick of a generator that copies nothing.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub holdout_yardstick: Option<Yardstick>,
    /// What the model never reproduces of the real table (set by the caller that knows
    /// the model).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub protected: Vec<Protected>,
    pub seed: u64,
}

/// The scores of the holdout rows taken as if they were synthetic: a real sample the
/// generator never saw. A synthetic score well above it means copying; well below, that
/// the model misses the data.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Yardstick {
    pub quality: Option<f64>,
    pub column_shapes: Option<f64>,
    pub column_pair_trends: Option<f64>,
    /// Median distance of a holdout row to its closest training row.
    pub median_dcr_train: f64,
}

/// What a model's protection changed in one column, so no rare value is reproduced.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Protected {
    pub column: String,
    /// Categories never reproduced (seen in fewer rows than the threshold, or beyond the
    /// most categories), and the rows they held.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub rare_categories: usize,
    #[serde(default, skip_serializing_if = "is_zero_u64")]
    pub rare_rows: u64,
    /// Rows whose extreme value was moved in, at the low and the high end, and where to.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub clipped_low: Option<(u64, f64)>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub clipped_high: Option<(u64, f64)>,
    /// Where the extremes were moved to, as the column writes its values (a date, not its
    /// microseconds); filled by [`Protected::shown`].
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub clipped_low_shown: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub clipped_high_shown: Option<String>,
}

impl Protected {
    /// With the moved-to values also written as the column writes them, by `metadata`.
    pub fn shown(mut self, metadata: &Metadata) -> Self {
        let show = |end: Option<(u64, f64)>| end.map(|(_, to)| metadata.show(&self.column, to));
        self.clipped_low_shown = show(self.clipped_low);
        self.clipped_high_shown = show(self.clipped_high);
        self
    }
}

fn is_zero(n: &usize) -> bool {
    *n == 0
}

fn is_zero_u64(n: &u64) -> bool {
    *n == 0
}

/// The holdout scored against the training rows as a synthetic table would be.
fn yardstick(
    real: &Table,
    holdout: &Table,
    metadata: &Metadata,
    pair_options: &PairOptions,
    privacy_options: &PrivacyOptions,
) -> Result<Yardstick, EvaluateError> {
    let q = quality_report(real, holdout, metadata, pair_options)?;
    let p = privacy_report(real, None, holdout, metadata, privacy_options)?;
    Ok(Yardstick {
        quality: q.score,
        column_shapes: q.column_shapes,
        column_pair_trends: q.column_pair_trends,
        median_dcr_train: p.median_dcr_train,
    })
}

/// Both tables have rows to compare.
fn check_rows(real: &Table, synthetic: &Table) -> Result<(), EvaluateError> {
    if real.n_rows() == 0 {
        return Err(EvaluateError::Empty("real"));
    }
    if synthetic.n_rows() == 0 {
        return Err(EvaluateError::Empty("synthetic"));
    }
    Ok(())
}

/// Evaluate `synthetic` against `real` (the rows the synthesizer learned from).
pub fn evaluate(
    real: &Table,
    synthetic: &Table,
    metadata: &Metadata,
    options: &EvaluateOptions,
) -> Result<EvaluationReport, EvaluateError> {
    check_rows(real, synthetic)?;
    let pair_options = PairOptions {
        seed: options.seed,
        ..PairOptions::default()
    };
    let quality = quality_report(real, synthetic, metadata, &pair_options)?;
    let diagnostic = diagnostic_report(real, synthetic, metadata)?;
    let privacy_options = PrivacyOptions {
        max_rows: options.privacy_max_rows,
        seed: options.seed,
    };
    let privacy = privacy_report(real, options.holdout, synthetic, metadata, &privacy_options)?;
    let holdout_yardstick = options
        .holdout
        .map(|h| yardstick(real, h, metadata, &pair_options, &privacy_options))
        .transpose()?;
    let ml_efficacy = match &options.target {
        None => None,
        Some(target) => {
            let efficacy = EfficacyOptions {
                seed: options.seed,
                ..options.efficacy.clone()
            };
            Some(match options.holdout {
                Some(h) => ml_efficacy(real, synthetic, h, metadata, target, &efficacy)?,
                None => {
                    let f = options.holdout_fraction;
                    if !(f > 0.0 && f < 1.0) {
                        return Err(EvaluateError::Invalid(format!(
                            "holdout_fraction must be in (0, 1), got {f}"
                        )));
                    }
                    let (train, test) = split(real, f, options.seed);
                    let mut r = ml_efficacy(&train, synthetic, &test, metadata, target, &efficacy)?;
                    r.holdout_seen_by_generator = true;
                    r
                }
            })
        }
    };
    Ok(EvaluationReport {
        quality,
        diagnostic,
        privacy,
        ml_efficacy,
        holdout_yardstick,
        protected: Vec::new(),
        seed: options.seed,
    })
}

/// A seeded split of a table into (train, test) with `fraction` of the rows in test.
pub fn split(table: &Table, fraction: f64, seed: u64) -> (Table, Table) {
    let n = table.n_rows();
    let mut rows: Vec<usize> = (0..n).collect();
    rows.shuffle(&mut ChaCha8Rng::seed_from_u64(seed));
    // At least one row on each side when there are two or more.
    let n_test = if n < 2 {
        0
    } else {
        ((n as f64 * fraction).round() as usize).clamp(1, n - 1)
    };
    let (test, train) = rows.split_at(n_test);
    let (mut train, mut test) = (train.to_vec(), test.to_vec());
    train.sort_unstable();
    test.sort_unstable();
    (table.take_rows(&train), table.take_rows(&test))
}

#[cfg(test)]
mod tests {
    use super::*;
    use synth_table::{Column, ColumnData};

    #[test]
    fn split_is_seeded_and_keeps_every_row_once() {
        let t = Table::new(vec![Column {
            name: "i".into(),
            data: ColumnData::Int((0..10).map(Some).collect()),
        }])
        .unwrap();
        let (train, test) = split(&t, 0.3, 5);
        assert_eq!((train.n_rows(), test.n_rows()), (7, 3));
        assert_eq!(split(&t, 0.3, 5), (train.clone(), test.clone()));
        let mut all: Vec<i64> = [&train, &test]
            .iter()
            .flat_map(|t| match &t.columns[0].data {
                ColumnData::Int(v) => v.iter().flatten().copied().collect::<Vec<_>>(),
                _ => unreachable!(),
            })
            .collect();
        all.sort_unstable();
        assert_eq!(all, (0..10).collect::<Vec<_>>());
        assert_ne!(split(&t, 0.3, 6).1, test);
    }
}
