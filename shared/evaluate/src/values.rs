//! Views of a column the metrics work on: numbers (for KS, Pearson, bins, distances) and
//! category codes shared by the real and synthetic sides (for TVD and contingency tables).

use std::collections::HashMap;

use synth_table::ColumnData;
use synth_table::{ColumnMetadata, Metadata, SdType, Table};

use crate::EvaluateError;

/// How a column takes part in the metrics, following SDMetrics' sdtype groups.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Shape {
    /// Numerical and datetime columns.
    Continuous,
    /// Categorical and boolean columns.
    Discrete,
}

/// SDMetrics scores numerical, datetime, categorical and boolean columns; ids, text and PII
/// are left out of every quality metric, as is any column of personal data (generated, not
/// learned: its values are random by design).
pub(crate) fn shape_of(meta: &ColumnMetadata) -> Option<Shape> {
    if meta.is_personal() {
        return None;
    }
    match meta.sdtype {
        SdType::Numerical | SdType::Datetime => Some(Shape::Continuous),
        SdType::Categorical | SdType::Boolean => Some(Shape::Discrete),
        SdType::Id | SdType::Text | SdType::Email | SdType::Phone => None,
    }
}

/// The column's data in a table, or an error naming the side it is missing from.
pub(crate) fn column<'a>(
    table: &'a Table,
    name: &str,
    side: &'static str,
) -> Result<&'a ColumnData, EvaluateError> {
    table
        .column(name)
        .map(|c| &c.data)
        .ok_or_else(|| EvaluateError::MissingColumn {
            column: name.to_owned(),
            side,
        })
}

/// Every metadata column must be in both tables, so that no score silently skips one.
pub(crate) fn check_columns(
    real: &Table,
    synthetic: &Table,
    metadata: &Metadata,
) -> Result<(), EvaluateError> {
    for (name, _) in &metadata.columns {
        column(real, name, "real")?;
        column(synthetic, name, "synthetic")?;
    }
    Ok(())
}

/// The column as numbers. Datetimes become nanoseconds since the epoch (as pandas has them),
/// so histogram bin edges come out bit-for-bit as SDMetrics computes them.
pub(crate) fn numeric(data: &ColumnData) -> Vec<Option<f64>> {
    match data {
        ColumnData::Float(v) => v.iter().map(|x| x.filter(|f| !f.is_nan())).collect(),
        ColumnData::Int(v) => v.iter().map(|x| x.map(|i| i as f64)).collect(),
        ColumnData::Datetime(v) => v
            .iter()
            .map(|x| x.map(|us| us.saturating_mul(1000) as f64))
            .collect(),
        ColumnData::Bool(v) => v
            .iter()
            .map(|x| x.map(|b| f64::from(u8::from(b))))
            .collect(),
        ColumnData::Str(v) => v
            .iter()
            .map(|x| x.as_deref().and_then(|s| s.trim().parse::<f64>().ok()))
            .map(|x| x.filter(|f| !f.is_nan()))
            .collect(),
    }
}

/// The column's values as category labels; `None` is a missing value.
pub(crate) fn labels(data: &ColumnData) -> Vec<Option<String>> {
    match data {
        ColumnData::Str(v) => v.clone(),
        ColumnData::Float(v) => v
            .iter()
            .map(|x| x.filter(|f| !f.is_nan()).map(|f| f.to_string()))
            .collect(),
        ColumnData::Int(v) | ColumnData::Datetime(v) => {
            v.iter().map(|x| x.map(|i| i.to_string())).collect()
        }
        ColumnData::Bool(v) => v
            .iter()
            .map(|x| x.map(|b| if b { "True" } else { "False" }.to_owned()))
            .collect(),
    }
}

/// Code 0 is the missing value in every [`Codes`].
pub(crate) const NULL_CODE: u32 = 0;

/// A discrete column encoded as small integers, with one dictionary for both sides so equal
/// labels get equal codes.
#[derive(Debug, Clone)]
pub(crate) struct Codes {
    pub real: Vec<u32>,
    pub synthetic: Vec<u32>,
}

/// Encode the real and synthetic columns with a shared dictionary.
pub(crate) fn encode(real: &ColumnData, synthetic: &ColumnData) -> Codes {
    let mut dict: HashMap<String, u32> = HashMap::new();
    let mut code = |labels: Vec<Option<String>>| -> Vec<u32> {
        labels
            .into_iter()
            .map(|l| match l {
                None => NULL_CODE,
                Some(s) => {
                    let next = dict.len() as u32 + 1;
                    *dict.entry(s).or_insert(next)
                }
            })
            .collect()
    };
    let real = code(labels(real));
    let synthetic = code(labels(synthetic));
    Codes { real, synthetic }
}

/// A column's kind as a table stores it (for the structure check).
pub(crate) fn storage_kind(data: &ColumnData) -> &'static str {
    match data {
        ColumnData::Float(_) => "float",
        ColumnData::Int(_) => "int",
        ColumnData::Bool(_) => "bool",
        ColumnData::Str(_) => "str",
        ColumnData::Datetime(_) => "datetime",
    }
}

/// Mean of the scores that exist; `None` when there are none (SDMetrics' NaN).
pub(crate) fn mean_of(scores: impl IntoIterator<Item = Option<f64>>) -> Option<f64> {
    let (sum, n) = scores
        .into_iter()
        .flatten()
        .filter(|s| s.is_finite())
        .fold((0.0, 0usize), |(s, n), x| (s + x, n + 1));
    (n > 0).then(|| sum / n as f64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_are_shared_between_sides_and_null_is_zero() {
        let r = ColumnData::Str(vec![Some("a".into()), None, Some("b".into())]);
        let s = ColumnData::Str(vec![Some("b".into()), Some("c".into()), None]);
        let c = encode(&r, &s);
        assert_eq!(c.real, [1, 0, 2]);
        assert_eq!(c.synthetic, [2, 3, 0]);
    }

    #[test]
    fn datetimes_are_nanoseconds_and_nan_is_missing() {
        assert_eq!(
            numeric(&ColumnData::Datetime(vec![Some(2), None])),
            [Some(2000.0), None]
        );
        assert_eq!(numeric(&ColumnData::Float(vec![Some(f64::NAN)])), [None]);
        assert_eq!(mean_of([Some(1.0), None, Some(0.0)]), Some(0.5));
        assert_eq!(mean_of([None]), None);
    }
}
