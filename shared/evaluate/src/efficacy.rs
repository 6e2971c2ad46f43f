//! Machine-learning efficacy: does a model trained on the synthetic rows predict a target on
//! real, unseen rows about as well as the same model trained on real rows? Both are random
//! forests (smartcore: pure Rust, light to build) fitted with the same seed and features and
//! scored on the same real holdout: accuracy and macro F1 for categorical or boolean
//! targets, R² for numerical ones.

use std::collections::HashMap;

use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};
use smartcore::ensemble::random_forest_classifier::{
    RandomForestClassifier, RandomForestClassifierParameters,
};
use smartcore::ensemble::random_forest_regressor::{
    RandomForestRegressor, RandomForestRegressorParameters,
};
use smartcore::linalg::basic::matrix::DenseMatrix;
use synth_table::{Metadata, Table};

use crate::EvaluateError;
use crate::values::{self, Shape};

/// Settings of the efficacy models.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EfficacyOptions {
    pub n_trees: u16,
    pub max_depth: u16,
    /// Training rows per model are a seeded sample of at most this many (keeps it fast).
    pub max_train_rows: usize,
    /// Categories of a feature beyond the most frequent this many share one "other" slot.
    pub max_categories: usize,
    pub seed: u64,
}

impl Default for EfficacyOptions {
    fn default() -> Self {
        Self {
            n_trees: 50,
            max_depth: 12,
            max_train_rows: 20_000,
            max_categories: 30,
            seed: 0,
        }
    }
}

/// One model's scores on the real holdout; only the task's metrics are set.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EfficacyScores {
    pub accuracy: Option<f64>,
    pub f1_macro: Option<f64>,
    pub r2: Option<f64>,
    pub train_rows: usize,
}

/// Train-on-synthetic versus train-on-real, tested on real holdout rows.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MlEfficacyReport {
    pub target: String,
    /// `classification` or `regression`.
    pub task: String,
    pub model: String,
    pub real: EfficacyScores,
    pub synthetic: EfficacyScores,
    pub test_rows: usize,
    /// Set when the test rows were split off the real table the synthesizer learned from, so
    /// the synthetic model may have seen them indirectly (its score is then optimistic).
    pub holdout_seen_by_generator: bool,
}

/// Features encoded from the real training rows: numbers (missing → training mean) and
/// one-hot categories.
struct Features {
    columns: Vec<(String, FeatureKind)>,
    width: usize,
}

enum FeatureKind {
    Number {
        fill: f64,
    },
    Category {
        slots: HashMap<Option<String>, usize>,
    },
}

impl Features {
    fn fit(train: &Table, metadata: &Metadata, target: &str, max_categories: usize) -> Self {
        let mut columns = Vec::new();
        let mut width = 0;
        for (name, meta) in &metadata.columns {
            if name == target {
                continue;
            }
            let (Some(shape), Some(col)) = (values::shape_of(meta), train.column(name)) else {
                continue;
            };
            match shape {
                Shape::Continuous => {
                    let v = values::numeric(&col.data);
                    let present: Vec<f64> = v.into_iter().flatten().collect();
                    let fill = if present.is_empty() {
                        0.0
                    } else {
                        present.iter().sum::<f64>() / present.len() as f64
                    };
                    columns.push((name.clone(), FeatureKind::Number { fill }));
                    width += 1;
                }
                Shape::Discrete => {
                    let mut counts: HashMap<Option<String>, usize> = HashMap::new();
                    for l in values::labels(&col.data) {
                        *counts.entry(l).or_default() += 1;
                    }
                    let mut by_freq: Vec<_> = counts.into_iter().collect();
                    by_freq.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
                    let slots: HashMap<_, _> = by_freq
                        .into_iter()
                        .take(max_categories)
                        .enumerate()
                        .map(|(i, (l, _))| (l, i))
                        .collect();
                    width += slots.len() + 1;
                    columns.push((name.clone(), FeatureKind::Category { slots }));
                }
            }
        }
        Self { columns, width }
    }

    /// Row-major feature matrix of the given rows.
    fn matrix(&self, table: &Table, rows: &[usize]) -> Result<DenseMatrix<f64>, EvaluateError> {
        let mut x = vec![0.0; rows.len() * self.width];
        let mut offset = 0;
        for (name, kind) in &self.columns {
            let col = values::column(table, name, "evaluated")?;
            match kind {
                FeatureKind::Number { fill } => {
                    let v = values::numeric(col);
                    for (r, &i) in rows.iter().enumerate() {
                        x[r * self.width + offset] = v[i].unwrap_or(*fill);
                    }
                    offset += 1;
                }
                FeatureKind::Category { slots } => {
                    let labels = values::labels(col);
                    for (r, &i) in rows.iter().enumerate() {
                        let slot = slots.get(&labels[i]).copied().unwrap_or(slots.len());
                        x[r * self.width + offset + slot] = 1.0;
                    }
                    offset += slots.len() + 1;
                }
            }
        }
        DenseMatrix::new(
            rows.len(),
            self.width.max(1),
            pad(x, rows.len(), self.width),
            false,
        )
        .map_err(|e| EvaluateError::Model(e.to_string()))
    }
}

/// A table without features still needs one (constant) column for the forest.
fn pad(x: Vec<f64>, rows: usize, width: usize) -> Vec<f64> {
    if width == 0 { vec![0.0; rows] } else { x }
}

/// Train on `real_train` and on `synthetic`, score both on `test` (real rows).
pub fn ml_efficacy(
    real_train: &Table,
    synthetic: &Table,
    test: &Table,
    metadata: &Metadata,
    target: &str,
    options: &EfficacyOptions,
) -> Result<MlEfficacyReport, EvaluateError> {
    let meta = metadata.column(target).ok_or_else(|| {
        EvaluateError::Invalid(format!("target {target:?} is not in the metadata"))
    })?;
    let shape = values::shape_of(meta).ok_or_else(|| {
        EvaluateError::Invalid(format!("target {target:?} is an id, text or PII column"))
    })?;
    let features = Features::fit(real_train, metadata, target, options.max_categories);
    // One generator, drawn in this order, so a seed gives the same subsamples.
    let mut rng = ChaCha8Rng::seed_from_u64(options.seed);
    let sides = [
        (real_train, "real", options.max_train_rows),
        (synthetic, "synthetic", options.max_train_rows),
        (test, "holdout", usize::MAX),
    ];
    let mut sets = Vec::with_capacity(3);
    for (table, side, cap) in sides {
        let rows = rows_with_target(table, target, side, cap, &mut rng)?;
        let x = features.matrix(table, &rows)?;
        sets.push(LabelledRows { table, rows, x });
    }
    let [real, synth, holdout]: [LabelledRows; 3] = sets.try_into().ok().expect("three sides");
    let (task, real_scores, synthetic_scores) = match shape {
        Shape::Discrete => {
            let (a, b) = classification(target, [&real, &synth, &holdout], options)?;
            ("classification", a, b)
        }
        Shape::Continuous => {
            let (a, b) = regression(target, [&real, &synth, &holdout], options)?;
            ("regression", a, b)
        }
    };
    Ok(MlEfficacyReport {
        target: target.to_owned(),
        task: task.to_owned(),
        model: format!(
            "random forest (smartcore, {} trees, max depth {})",
            options.n_trees, options.max_depth
        ),
        real: real_scores,
        synthetic: synthetic_scores,
        test_rows: holdout.rows.len(),
        holdout_seen_by_generator: false,
    })
}

/// The rows of one side that have a target, and their feature matrix.
struct LabelledRows<'a> {
    table: &'a Table,
    rows: Vec<usize>,
    x: DenseMatrix<f64>,
}

/// The rows whose target is present, at most `cap` of them (a seeded subsample, in order).
fn rows_with_target(
    t: &Table,
    target: &str,
    side: &'static str,
    cap: usize,
    rng: &mut ChaCha8Rng,
) -> Result<Vec<usize>, EvaluateError> {
    let col = values::column(t, target, side)?;
    let mut rows: Vec<usize> = values::labels(col)
        .iter()
        .enumerate()
        .filter_map(|(i, l)| l.is_some().then_some(i))
        .collect();
    if rows.len() > cap {
        rows = rand::seq::index::sample(rng, rows.len(), cap)
            .into_iter()
            .map(|k| rows[k])
            .collect();
        rows.sort_unstable();
    }
    if rows.is_empty() {
        return Err(EvaluateError::Empty(side));
    }
    Ok(rows)
}

/// Classifier scores of training on the real and on the synthetic rows, on the holdout.
fn classification(
    target: &str,
    [real, synth, holdout]: [&LabelledRows; 3],
    options: &EfficacyOptions,
) -> Result<(EfficacyScores, EfficacyScores), EvaluateError> {
    // Class codes in order of first appearance across the sides, as they are read.
    let mut classes: HashMap<String, u32> = HashMap::new();
    let mut codes = |side: &LabelledRows| -> Vec<u32> {
        let labels = values::labels(&side.table.column(target).expect("checked").data);
        side.rows
            .iter()
            .map(|&i| {
                let l = labels[i].clone().expect("rows have a target");
                let next = classes.len() as u32;
                *classes.entry(l).or_insert(next)
            })
            .collect()
    };
    let (y_real, y_synth, y_test) = (codes(real), codes(synth), codes(holdout));
    let params = RandomForestClassifierParameters::default()
        .with_n_trees(options.n_trees)
        .with_max_depth(options.max_depth)
        .with_seed(options.seed);
    let fit_score = |x: &DenseMatrix<f64>, y: &Vec<u32>| -> Result<EfficacyScores, EvaluateError> {
        let pred = if all_equal(y) {
            vec![y[0]; holdout.rows.len()]
        } else {
            let m = RandomForestClassifier::fit(x, y, params.clone())
                .map_err(|e| EvaluateError::Model(e.to_string()))?;
            m.predict(&holdout.x)
                .map_err(|e| EvaluateError::Model(e.to_string()))?
        };
        Ok(EfficacyScores {
            accuracy: Some(accuracy(&y_test, &pred)),
            f1_macro: Some(f1_macro(&y_test, &pred)),
            r2: None,
            train_rows: y.len(),
        })
    };
    Ok((fit_score(&real.x, &y_real)?, fit_score(&synth.x, &y_synth)?))
}

/// Regressor scores of training on the real and on the synthetic rows, on the holdout.
fn regression(
    target: &str,
    [real, synth, holdout]: [&LabelledRows; 3],
    options: &EfficacyOptions,
) -> Result<(EfficacyScores, EfficacyScores), EvaluateError> {
    let ys = |side: &LabelledRows| -> Vec<f64> {
        let v = values::numeric(&side.table.column(target).expect("checked").data);
        side.rows.iter().map(|&i| v[i].unwrap_or(0.0)).collect()
    };
    let (y_real, y_synth, y_test) = (ys(real), ys(synth), ys(holdout));
    let params = RandomForestRegressorParameters::default()
        .with_n_trees(usize::from(options.n_trees))
        .with_max_depth(options.max_depth)
        .with_seed(options.seed);
    let fit_score = |x: &DenseMatrix<f64>, y: &Vec<f64>| -> Result<EfficacyScores, EvaluateError> {
        let m = RandomForestRegressor::fit(x, y, params.clone())
            .map_err(|e| EvaluateError::Model(e.to_string()))?;
        let pred: Vec<f64> = m
            .predict(&holdout.x)
            .map_err(|e| EvaluateError::Model(e.to_string()))?;
        Ok(EfficacyScores {
            accuracy: None,
            f1_macro: None,
            r2: Some(r2(&y_test, &pred)),
            train_rows: y.len(),
        })
    };
    Ok((fit_score(&real.x, &y_real)?, fit_score(&synth.x, &y_synth)?))
}

fn all_equal(y: &[u32]) -> bool {
    y.windows(2).all(|w| w[0] == w[1])
}

/// Share of predictions equal to the truth.
pub fn accuracy(truth: &[u32], pred: &[u32]) -> f64 {
    let hit = truth.iter().zip(pred).filter(|(a, b)| a == b).count();
    hit as f64 / truth.len().max(1) as f64
}

/// Unweighted mean of per-class F1 over the classes in the truth or the predictions (as
/// scikit-learn's `f1_score(average="macro")`; a class with no true or predicted positive
/// scores 0).
pub fn f1_macro(truth: &[u32], pred: &[u32]) -> f64 {
    let mut classes: Vec<u32> = truth.iter().chain(pred).copied().collect();
    classes.sort_unstable();
    classes.dedup();
    if classes.is_empty() {
        return 0.0;
    }
    let total: f64 = classes
        .iter()
        .map(|&c| {
            let tp = truth
                .iter()
                .zip(pred)
                .filter(|&(t, p)| *t == c && *p == c)
                .count() as f64;
            let fp = truth
                .iter()
                .zip(pred)
                .filter(|&(t, p)| *t != c && *p == c)
                .count() as f64;
            let fneg = truth
                .iter()
                .zip(pred)
                .filter(|&(t, p)| *t == c && *p != c)
                .count() as f64;
            let denom = 2.0 * tp + fp + fneg;
            if denom == 0.0 { 0.0 } else { 2.0 * tp / denom }
        })
        .sum();
    total / classes.len() as f64
}

/// Coefficient of determination, 1 − SS_res / SS_tot (0 when the truth is constant and the
/// prediction imperfect, as scikit-learn does; 1 when both are perfect).
pub fn r2(truth: &[f64], pred: &[f64]) -> f64 {
    let n = truth.len().max(1) as f64;
    let mean = truth.iter().sum::<f64>() / n;
    let ss_tot: f64 = truth.iter().map(|t| (t - mean).powi(2)).sum();
    let ss_res: f64 = truth.iter().zip(pred).map(|(t, p)| (t - p).powi(2)).sum();
    if ss_tot == 0.0 {
        return if ss_res == 0.0 { 1.0 } else { 0.0 };
    }
    1.0 - ss_res / ss_tot
}

#[cfg(test)]
mod tests {
    use super::*;
    use synth_table::{Column, ColumnData, ColumnMetadata, SdType};

    #[test]
    fn classification_metrics_by_hand() {
        let truth = [0, 0, 1, 1];
        let pred = [0, 1, 1, 1];
        assert_eq!(accuracy(&truth, &pred), 0.75);
        // class 0: tp 1 fp 0 fn 1 -> 2/3 ; class 1: tp 2 fp 1 fn 0 -> 4/5
        assert!((f1_macro(&truth, &pred) - (2.0 / 3.0 + 0.8) / 2.0).abs() < 1e-12);
    }

    #[test]
    fn r2_by_hand() {
        // mean 2, ss_tot 2, ss_res 0.5 -> 0.75
        assert!((r2(&[1.0, 2.0, 3.0], &[1.5, 2.0, 2.5]) - 0.75).abs() < 1e-12);
        assert_eq!(r2(&[1.0, 2.0], &[1.0, 2.0]), 1.0);
    }

    fn table(n: usize, flip: bool) -> Table {
        let x: Vec<Option<f64>> = (0..n).map(|i| Some(i as f64)).collect();
        let y: Vec<Option<String>> = (0..n)
            .map(|i| Some(if (i < 30) != flip { "lo" } else { "hi" }.to_owned()))
            .collect();
        Table::new(vec![
            Column {
                name: "x".into(),
                data: ColumnData::Float(x),
            },
            Column {
                name: "y".into(),
                data: ColumnData::Str(y),
            },
        ])
        .unwrap()
    }

    #[test]
    fn synthetic_rows_with_the_wrong_rule_score_worse() {
        let meta = Metadata::new(vec![
            ("x".into(), ColumnMetadata::new(SdType::Numerical)),
            ("y".into(), ColumnMetadata::new(SdType::Categorical)),
        ]);
        let o = EfficacyOptions {
            n_trees: 5,
            ..EfficacyOptions::default()
        };
        let (real, synthetic, test) = (table(60, false), table(60, true), table(40, false));
        let run = || ml_efficacy(&real, &synthetic, &test, &meta, "y", &o).unwrap();
        let r = run();
        assert_eq!(r.task, "classification");
        assert!(r.real.accuracy.unwrap() > 0.9, "{r:?}");
        assert!(r.synthetic.accuracy.unwrap() < 0.5, "{r:?}");
        // Seeded: the same inputs score the same.
        assert_eq!(r, run());
    }
}
