//! Column Shapes: how well each column's marginal distribution is kept — KSComplement for
//! numerical and datetime columns, TVComplement for categorical and boolean ones, as
//! SDMetrics defines them (missing values dropped first on both sides).

// Ordered maps: sums run in a fixed order, so a report is bit-for-bit reproducible.
use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use synth_table::{ColumnData, Metadata, Table};

use crate::EvaluateError;
use crate::values::{self, Shape};

/// One column's shape score.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ColumnShape {
    pub column: String,
    /// `KSComplement` or `TVComplement`.
    pub metric: String,
    /// `None` where SDMetrics gives NaN (a side has no values); such columns do not count.
    pub score: Option<f64>,
}

/// Per-column shape scores, in metadata order; columns of other sdtypes are skipped.
pub fn column_shapes(
    real: &Table,
    synthetic: &Table,
    metadata: &Metadata,
) -> Result<Vec<ColumnShape>, EvaluateError> {
    let mut out = Vec::new();
    for (name, meta) in &metadata.columns {
        let Some(shape) = values::shape_of(meta) else {
            continue;
        };
        let r = values::column(real, name, "real")?;
        let s = values::column(synthetic, name, "synthetic")?;
        let (metric, score) = match shape {
            Shape::Continuous => ("KSComplement", ks_column(r, s)),
            Shape::Discrete => ("TVComplement", tv_column(r, s)),
        };
        out.push(ColumnShape {
            column: name.clone(),
            metric: metric.to_owned(),
            score,
        });
    }
    Ok(out)
}

fn ks_column(real: &ColumnData, synthetic: &ColumnData) -> Option<f64> {
    // SDMetrics rounds to 14 decimals before the test; datetimes are integers and are not
    // rounded.
    let round = !matches!(real, ColumnData::Datetime(_));
    let prep = |d: &ColumnData| -> Vec<f64> {
        values::numeric(d)
            .into_iter()
            .flatten()
            .map(|x| if round { round14(x) } else { x })
            .collect()
    };
    ks_complement(&prep(real), &prep(synthetic))
}

/// numpy's `round(x, 14)`: scale, round half to even, unscale.
fn round14(x: f64) -> f64 {
    let y = x * 1e14;
    if y.is_finite() {
        y.round_ties_even() / 1e14
    } else {
        x
    }
}

/// 1 − the two-sample Kolmogorov–Smirnov statistic (the largest gap between the empirical
/// CDFs); `None` when a sample is empty.
pub fn ks_complement(real: &[f64], synthetic: &[f64]) -> Option<f64> {
    if real.is_empty() || synthetic.is_empty() {
        return None;
    }
    let mut a = real.to_vec();
    let mut b = synthetic.to_vec();
    a.sort_by(f64::total_cmp);
    b.sort_by(f64::total_cmp);
    let (na, nb) = (a.len() as f64, b.len() as f64);
    let (mut i, mut j, mut d) = (0usize, 0usize, 0.0f64);
    // Step through the distinct values of both samples; after a value, each CDF counts every
    // element <= it (ties advance together).
    while i < a.len() || j < b.len() {
        let x = match (a.get(i), b.get(j)) {
            (Some(&x), Some(&y)) => x.min(y),
            (Some(&x), None) => x,
            (None, Some(&y)) => y,
            (None, None) => break,
        };
        while i < a.len() && a[i] <= x {
            i += 1;
        }
        while j < b.len() && b[j] <= x {
            j += 1;
        }
        d = d.max((i as f64 / na - j as f64 / nb).abs());
    }
    Some(1.0 - d)
}

fn tv_column(real: &ColumnData, synthetic: &ColumnData) -> Option<f64> {
    let r: Vec<String> = values::labels(real).into_iter().flatten().collect();
    let s: Vec<String> = values::labels(synthetic).into_iter().flatten().collect();
    tv_complement(&r, &s)
}

/// 1 − the total variation distance between the two category frequency distributions;
/// `None` when a side has no values. Like SDMetrics, a category only the synthetic side has
/// is given a real count of 1e-6 (which keeps it in the sum).
pub fn tv_complement<T: AsRef<str>>(real: &[T], synthetic: &[T]) -> Option<f64> {
    if real.is_empty() || synthetic.is_empty() {
        return None;
    }
    let mut real_counts: BTreeMap<&str, f64> = BTreeMap::new();
    for v in real {
        *real_counts.entry(v.as_ref()).or_default() += 1.0;
    }
    let mut synth_counts: BTreeMap<&str, f64> = BTreeMap::new();
    for v in synthetic {
        *synth_counts.entry(v.as_ref()).or_default() += 1.0;
    }
    for k in synth_counts.keys() {
        real_counts.entry(k).or_insert(1e-6);
    }
    let real_total: f64 = real_counts.values().sum();
    let synth_total = synthetic.len() as f64;
    let tv: f64 = real_counts
        .iter()
        .map(|(k, rc)| {
            let sc = synth_counts.get(k).copied().unwrap_or(0.0);
            (sc / synth_total - rc / real_total).abs()
        })
        .sum();
    Some(1.0 - 0.5 * tv)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ks_of_two_known_samples() {
        let s = ks_complement(&[1.0, 2.0, 3.0], &[2.5, 3.0, 4.0, 5.0]).unwrap();
        // CDF gaps after 1: 1/3; after 2: 2/3 − 0 (the largest); after 2.5: 2/3 − 1/4; after 3: 1/2.
        assert!((s - (1.0 - 2.0 / 3.0)).abs() < 1e-12, "{s}");
        assert_eq!(ks_complement(&[1.0, 2.0], &[2.0, 1.0]), Some(1.0));
        assert_eq!(ks_complement(&[0.0], &[1.0]), Some(0.0));
        assert_eq!(ks_complement(&[], &[1.0]), None);
    }

    #[test]
    fn ks_counts_ties_together() {
        // Real: 1,1,2 ; synthetic: 1,2,2. After 1: 2/3 vs 1/3 -> 1/3.
        let s = ks_complement(&[1.0, 1.0, 2.0], &[1.0, 2.0, 2.0]).unwrap();
        assert!((s - 2.0 / 3.0).abs() < 1e-12);
    }

    #[test]
    fn tv_of_two_known_distributions() {
        // real a:.5 b:.25 c:.25 ; synthetic a:.25 b:.75 -> TVD = (.25+.5+.25)/2 = .5
        let s = tv_complement(&["a", "a", "b", "c"], &["a", "b", "b", "b"]).unwrap();
        assert!((s - 0.5).abs() < 1e-12, "{s}");
        // a category only the synthetic side has costs its whole share.
        let s = tv_complement(&["a", "a"], &["a", "z"]).unwrap();
        assert!((s - 0.5).abs() < 1e-5, "{s}");
        assert_eq!(tv_complement::<&str>(&[], &["a"]), None);
    }

    #[test]
    fn personal_columns_are_not_scored() {
        use synth_table::{Column, ColumnMetadata, SdType};
        let col = |name: &str, v: f64| Column {
            name: name.into(),
            data: ColumnData::Float(vec![Some(v), Some(v + 1.0)]),
        };
        let real = Table::new(vec![col("salary", 1.0), col("age", 30.0)]).unwrap();
        let synthetic = Table::new(vec![col("salary", 7.0), col("age", 30.0)]).unwrap();
        let metadata = Metadata::new(vec![
            (
                "salary".into(),
                ColumnMetadata {
                    pii: Some(true),
                    ..ColumnMetadata::new(SdType::Numerical)
                },
            ),
            ("age".into(), ColumnMetadata::new(SdType::Numerical)),
        ]);
        let scored = column_shapes(&real, &synthetic, &metadata).unwrap();
        let names: Vec<&str> = scored.iter().map(|c| c.column.as_str()).collect();
        assert_eq!(names, ["age"]);
    }

    #[test]
    fn nulls_are_dropped_before_scoring() {
        let real = ColumnData::Float(vec![Some(1.0), None, Some(2.0)]);
        let synth = ColumnData::Float(vec![Some(2.0), Some(1.0), None, None]);
        assert_eq!(ks_column(&real, &synth), Some(1.0));
        let real = ColumnData::Str(vec![Some("x".into()), None]);
        let synth = ColumnData::Str(vec![None, None, Some("x".into())]);
        assert_eq!(tv_column(&real, &synth), Some(1.0));
    }
}
