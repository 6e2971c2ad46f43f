//! The diagnostic report: SDMetrics' DiagnosticReport — whether the synthetic table is
//! *valid* (values inside the real ranges and categories, keys unique) and has the real
//! table's *structure* — basic checks any synthesizer should pass with 1.0.

use std::collections::HashSet;

use serde::{Deserialize, Serialize};
use synth_table::{ColumnData, Metadata, SdType, Table};

use crate::EvaluateError;
use crate::values::{self, check_columns, mean_of};

/// One validity check of one column.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ColumnValidity {
    pub column: String,
    /// `BoundaryAdherence`, `CategoryAdherence` or `KeyUniqueness`.
    pub metric: String,
    /// Share of synthetic values that pass; `None` when there are none to judge.
    pub score: Option<f64>,
}

/// Data validity and structure, each 0–1, and their mean.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DiagnosticReport {
    pub score: Option<f64>,
    pub data_validity: Option<f64>,
    /// TableStructure: |shared (column, type)| / |all (column, type)| across both tables.
    pub data_structure: f64,
    pub columns: Vec<ColumnValidity>,
}

/// Compute the diagnostic report. SDMetrics' DatetimeFormatAdherence is not computed: a
/// `Table` holds parsed datetimes, so the original strings' format is no longer visible.
pub fn diagnostic_report(
    real: &Table,
    synthetic: &Table,
    metadata: &Metadata,
) -> Result<DiagnosticReport, EvaluateError> {
    check_columns(real, synthetic, metadata)?;
    let mut columns = Vec::new();
    for (name, meta) in &metadata.columns {
        let r = values::column(real, name, "real")?;
        let s = values::column(synthetic, name, "synthetic")?;
        let is_key = metadata.primary_key.as_deref() == Some(name.as_str());
        let mut push = |metric: &str, score: Option<f64>| {
            columns.push(ColumnValidity {
                column: name.clone(),
                metric: metric.to_owned(),
                score,
            })
        };
        match meta.sdtype {
            SdType::Numerical | SdType::Datetime => push(
                "BoundaryAdherence",
                boundary_adherence(&values::numeric(r), &values::numeric(s)),
            ),
            SdType::Categorical | SdType::Boolean => {
                push("CategoryAdherence", category_adherence(r, s))
            }
            _ if is_key => push("KeyUniqueness", key_uniqueness(s)),
            _ => {}
        }
    }
    let data_validity = mean_of(columns.iter().map(|c| c.score));
    let data_structure = table_structure(real, synthetic);
    Ok(DiagnosticReport {
        score: mean_of([data_validity, Some(data_structure)]),
        data_validity,
        data_structure,
        columns,
    })
}

/// Share of synthetic values within [min, max] of the real values. Missing synthetic values
/// pass only if the real column has missing values too.
pub fn boundary_adherence(real: &[Option<f64>], synthetic: &[Option<f64>]) -> Option<f64> {
    let present: Vec<f64> = real.iter().flatten().copied().collect();
    let lo = present.iter().copied().fold(f64::INFINITY, f64::min);
    let hi = present.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    let nullable = present.len() < real.len();
    let judged: Vec<&Option<f64>> = synthetic
        .iter()
        .filter(|v| !(nullable && v.is_none()))
        .collect();
    if judged.is_empty() {
        return None;
    }
    let valid = judged
        .iter()
        .filter(|v| v.is_some_and(|x| x >= lo && x <= hi))
        .count();
    Some(valid as f64 / judged.len() as f64)
}

/// Share of synthetic values that are categories of the real column (a missing value is a
/// valid category only if the real column has one).
pub fn category_adherence(real: &ColumnData, synthetic: &ColumnData) -> Option<f64> {
    let real = values::labels(real);
    let synthetic = values::labels(synthetic);
    if synthetic.is_empty() {
        return None;
    }
    let allowed: HashSet<&Option<String>> = real.iter().collect();
    let valid = synthetic.iter().filter(|v| allowed.contains(v)).count();
    Some(valid as f64 / synthetic.len() as f64)
}

/// 1 − share of synthetic keys that are missing or repeat an earlier key.
pub fn key_uniqueness(synthetic: &ColumnData) -> Option<f64> {
    let labels = values::labels(synthetic);
    if labels.is_empty() {
        return None;
    }
    let mut seen = HashSet::new();
    let bad = labels
        .iter()
        .filter(|v| v.is_none() || !seen.insert(v.as_deref()))
        .count();
    Some(1.0 - bad as f64 / labels.len() as f64)
}

/// |shared (name, storage type)| / |union| over the columns of both tables.
pub fn table_structure(real: &Table, synthetic: &Table) -> f64 {
    let set = |t: &Table| -> HashSet<(String, &'static str)> {
        t.columns
            .iter()
            .map(|c| (c.name.clone(), values::storage_kind(&c.data)))
            .collect()
    };
    let (r, s) = (set(real), set(synthetic));
    let union = r.union(&s).count();
    if union == 0 {
        return 1.0;
    }
    r.intersection(&s).count() as f64 / union as f64
}

#[cfg(test)]
mod tests {
    use super::*;
    use synth_table::Column;

    fn strs(v: &[Option<&str>]) -> ColumnData {
        ColumnData::Str(v.iter().map(|x| x.map(str::to_owned)).collect())
    }

    #[test]
    fn boundary_adherence_counts_values_in_the_real_range() {
        let real = [Some(0.0), Some(10.0)];
        let s = boundary_adherence(&real, &[Some(5.0), Some(11.0), Some(10.0), None]);
        // the missing value fails: the real column has none.
        assert_eq!(s, Some(0.5));
        let s = boundary_adherence(&[Some(0.0), None, Some(10.0)], &[Some(5.0), None]);
        assert_eq!(s, Some(1.0));
    }

    #[test]
    fn category_adherence_and_key_uniqueness() {
        let real = strs(&[Some("a"), Some("b")]);
        let synth = strs(&[Some("a"), Some("c"), None, Some("b")]);
        assert_eq!(category_adherence(&real, &synth), Some(0.5));
        let real = strs(&[Some("a"), None]);
        assert_eq!(category_adherence(&real, &synth), Some(0.5));
        assert_eq!(
            key_uniqueness(&strs(&[Some("1"), Some("1"), None, Some("2")])),
            Some(0.5)
        );
    }

    #[test]
    fn structure_compares_names_and_types() {
        let col = |n: &str, d: ColumnData| Column {
            name: n.into(),
            data: d,
        };
        let real = Table::new(vec![
            col("a", ColumnData::Int(vec![Some(1)])),
            col("b", ColumnData::Float(vec![Some(1.0)])),
        ])
        .unwrap();
        let synth = Table::new(vec![
            col("a", ColumnData::Int(vec![Some(1)])),
            col("b", ColumnData::Str(vec![None])),
        ])
        .unwrap();
        // shared {a:int}; union {a:int, b:float, b:str}
        assert!((table_structure(&real, &synth) - 1.0 / 3.0).abs() < 1e-12);
        assert_eq!(table_structure(&real, &real), 1.0);
    }
}
