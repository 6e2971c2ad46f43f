//! Column profiles: the statistics shown to the user after upload and used to sanity-check a
//! synthetic table against the real one. Numeric statistics come from polars; category counts
//! are a hash count because polars' `value_counts` needs features this crate does not build.

use std::hash::Hash;

use polars::prelude::*;
use rayon::prelude::*;
use serde::Serialize;
use serde_json::Value;
use synth_core::table::{Column, ColumnData, ColumnMetadata, Metadata, SdType, Table};

use crate::Inference;
use crate::datetime::{self, DEFAULT_DATETIME_FORMAT};

/// Rows included in a profile's preview.
pub const PREVIEW_ROWS: usize = 20;
/// Categories listed per column, most frequent first.
pub const TOP_CATEGORIES: usize = 20;
const QUANTILES: [f64; 5] = [0.05, 0.25, 0.5, 0.75, 0.95];

/// A table's profile: per-column statistics plus the first rows.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct Profile {
    pub n_rows: usize,
    pub n_columns: usize,
    pub columns: Vec<ColumnProfile>,
    /// The first rows as JSON objects (column name → value); datetimes in their format.
    #[schema(value_type = Vec<Object>)]
    pub preview: Vec<PreviewRow>,
    /// What the user should know about the values (e.g. cells that read as formulas).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub warnings: Vec<String>,
}

/// One row of a preview: (column, value) pairs in column order, serialised as a JSON object
/// (a `serde_json::Map` would sort the columns by name).
#[derive(Debug, Clone, PartialEq)]
pub struct PreviewRow(pub Vec<(String, Value)>);

impl PreviewRow {
    /// The value of a column in this row.
    pub fn get(&self, column: &str) -> Option<&Value> {
        self.0.iter().find(|(n, _)| n == column).map(|(_, v)| v)
    }
}

impl Serialize for PreviewRow {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeMap;
        let mut m = s.serialize_map(Some(self.0.len()))?;
        for (k, v) in &self.0 {
            m.serialize_entry(k, v)?;
        }
        m.end()
    }
}

/// One column's statistics; which parts are present depends on its sdtype.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct ColumnProfile {
    pub name: String,
    pub sdtype: SdType,
    /// From inference, when the profile was given one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub confidence: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// Non-missing values.
    pub count: usize,
    pub nulls: usize,
    /// Distinct non-missing values.
    pub distinct: usize,
    /// Numerical columns.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub numeric: Option<NumericSummary>,
    /// Decimal places of a numerical column (0 for integers), so generated values can be
    /// rounded like the real ones; SDV metadata has no field for it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub decimals: Option<u32>,
    /// Datetime columns, rendered in the column's datetime format.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub datetime: Option<DatetimeSummary>,
    /// Categorical and boolean columns.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub top: Vec<CategoryCount>,
}

/// Summary statistics of a numerical column.
#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
pub struct NumericSummary {
    pub min: f64,
    pub max: f64,
    pub mean: f64,
    /// Sample standard deviation; absent with a single value.
    pub std: Option<f64>,
    pub quantiles: Vec<Quantile>,
}

/// A quantile `q` (0..1) and its value.
#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
pub struct Quantile {
    pub q: f64,
    pub value: f64,
}

/// Summary statistics of a datetime column.
#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
pub struct DatetimeSummary {
    pub min: String,
    pub max: String,
    pub mean: String,
    pub quantiles: Vec<DatetimeQuantile>,
}

/// A quantile `q` (0..1) of a datetime column, in the column's format.
#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
pub struct DatetimeQuantile {
    pub q: f64,
    pub value: String,
}

/// A category and how often it occurs.
#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
pub struct CategoryCount {
    pub value: String,
    pub count: usize,
    /// count / non-missing values.
    pub frequency: f64,
}

/// Profile a table under its metadata; `inference`, when given, adds confidence and reason.
pub fn profile(table: &Table, metadata: &Metadata, inference: Option<&Inference>) -> Profile {
    let columns = table
        .columns
        .par_iter()
        .map(|col| {
            let inferred = inference.and_then(|i| i.columns.iter().find(|c| c.name == col.name));
            let meta = metadata
                .column(&col.name)
                .cloned()
                .or_else(|| inference.and_then(|i| i.metadata.column(&col.name).cloned()))
                .unwrap_or_else(|| ColumnMetadata::new(SdType::Categorical));
            let mut p = column_profile(col, &meta);
            if let Some(inf) = inferred.filter(|i| i.sdtype == meta.sdtype) {
                p.confidence = Some(inf.confidence);
                p.reason = Some(inf.reason.clone());
            } else if inferred.is_some() {
                p.reason = Some("set by the metadata given".into());
            }
            p
        })
        .collect();
    Profile {
        n_rows: table.n_rows(),
        n_columns: table.columns.len(),
        columns,
        preview: preview(table, metadata, PREVIEW_ROWS),
        warnings: crate::formula::warnings(table),
    }
}

fn column_profile(col: &Column, meta: &ColumnMetadata) -> ColumnProfile {
    let n = col.data.len();
    let nulls = col.data.null_count();
    let mut p = ColumnProfile {
        name: col.name.clone(),
        sdtype: meta.sdtype,
        confidence: None,
        reason: None,
        count: n - nulls,
        nulls,
        distinct: 0,
        numeric: None,
        decimals: None,
        datetime: None,
        top: Vec::new(),
    };
    let wants_top = matches!(meta.sdtype, SdType::Categorical | SdType::Boolean);
    match &col.data {
        ColumnData::Str(v) => {
            let counts = count_values(v.iter().map(|x| x.as_deref()));
            p.distinct = counts.len();
            if meta.sdtype == SdType::Datetime {
                let format = meta
                    .datetime_format
                    .as_deref()
                    .unwrap_or(DEFAULT_DATETIME_FORMAT);
                if let Some(parser) = datetime::DateParser::new(format) {
                    let parsed: Vec<Option<i64>> = v
                        .iter()
                        .map(|x| x.as_deref().and_then(|s| parser.parse(s)))
                        .collect();
                    p.datetime = datetime_summary(&parsed, format);
                }
            }
            if wants_top {
                p.top = top(counts, p.count, str::to_owned);
            }
        }
        ColumnData::Bool(v) => {
            let counts = count_values(
                v.iter()
                    .map(|x| x.map(|b| if b { "true" } else { "false" })),
            );
            p.distinct = counts.len();
            p.top = top(counts, p.count, str::to_owned);
        }
        ColumnData::Int(v) | ColumnData::Datetime(v) => {
            let s = Series::new(col.name.as_str().into(), v);
            p.distinct = distinct(&s, nulls);
            if matches!(col.data, ColumnData::Datetime(_)) {
                let format = meta
                    .datetime_format
                    .as_deref()
                    .unwrap_or(DEFAULT_DATETIME_FORMAT);
                p.datetime = datetime_summary(v, format);
            } else if meta.sdtype == SdType::Numerical {
                p.numeric = numeric_summary(&s);
                p.decimals = Some(0);
            }
            if wants_top {
                p.top = top(count_values(v.iter().copied()), p.count, |x| x.to_string());
            }
        }
        ColumnData::Float(v) => {
            let s = Series::new(col.name.as_str().into(), v);
            p.distinct = distinct(&s, nulls);
            if meta.sdtype == SdType::Numerical {
                p.numeric = numeric_summary(&s);
                p.decimals = Some(crate::infer::max_decimals(v));
            }
            if wants_top {
                let bits = v.iter().map(|x| x.map(f64::to_bits));
                p.top = top(count_values(bits), p.count, |b| {
                    f64::from_bits(b).to_string()
                });
            }
        }
    }
    p
}

/// polars' `n_unique` counts null as a value; the profile counts values only.
fn distinct(s: &Series, nulls: usize) -> usize {
    s.n_unique()
        .unwrap_or(0)
        .saturating_sub(usize::from(nulls > 0))
}

fn count_values<K: Hash + Eq>(values: impl Iterator<Item = Option<K>>) -> PlHashMap<K, usize> {
    let mut counts = PlHashMap::default();
    for v in values.flatten() {
        *counts.entry(v).or_insert(0) += 1;
    }
    counts
}

/// The most frequent values, rendered only once they are chosen (not per row).
fn top<K: Ord>(
    counts: PlHashMap<K, usize>,
    present: usize,
    render: impl Fn(K) -> String,
) -> Vec<CategoryCount> {
    let mut all: Vec<(K, usize)> = counts.into_iter().collect();
    // Ties broken by value, so profiles are deterministic.
    all.sort_unstable_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(&b.0)));
    all.into_iter()
        .take(TOP_CATEGORIES)
        .map(|(v, c)| CategoryCount {
            value: render(v),
            count: c,
            frequency: c as f64 / present.max(1) as f64,
        })
        .collect()
}

fn numeric_summary(s: &Series) -> Option<NumericSummary> {
    let s = s.cast(&DataType::Float64).ok()?;
    let ca = s.f64().ok()?;
    let quantiles = ca.quantiles(&QUANTILES, QuantileMethod::Linear).ok()?;
    Some(NumericSummary {
        min: ca.min()?,
        max: ca.max()?,
        mean: s.mean()?,
        std: s.std(1).filter(|x| x.is_finite()),
        quantiles: QUANTILES
            .iter()
            .zip(quantiles)
            .filter_map(|(&q, v)| Some(Quantile { q, value: v? }))
            .collect(),
    })
}

fn datetime_summary(values: &[Option<i64>], format: &str) -> Option<DatetimeSummary> {
    let s = Series::new("t".into(), values);
    let ca = s.i64().ok()?;
    let quantiles = ca.quantiles(&QUANTILES, QuantileMethod::Nearest).ok()?;
    let fmt = |us: f64| datetime::format(us.round() as i64, format);
    Some(DatetimeSummary {
        min: datetime::format(ca.min()?, format),
        max: datetime::format(ca.max()?, format),
        mean: fmt(s.mean()?),
        quantiles: QUANTILES
            .iter()
            .zip(quantiles)
            .filter_map(|(&q, v)| Some(DatetimeQuantile { q, value: fmt(v?) }))
            .collect(),
    })
}

/// The first `rows` rows as JSON objects, datetimes rendered in their format.
pub(crate) fn preview(table: &Table, metadata: &Metadata, rows: usize) -> Vec<PreviewRow> {
    let rows = rows.min(table.n_rows());
    (0..rows)
        .map(|r| {
            table
                .columns
                .iter()
                .map(|c| {
                    let format = metadata
                        .column(&c.name)
                        .and_then(|m| m.datetime_format.as_deref())
                        .unwrap_or(DEFAULT_DATETIME_FORMAT);
                    (c.name.clone(), cell_json(&c.data, r, format))
                })
                .collect::<Vec<_>>()
        })
        .map(PreviewRow)
        .collect()
}

/// One cell as JSON; missing values (and non-finite floats) are null.
pub(crate) fn cell_json(data: &ColumnData, row: usize, format: &str) -> Value {
    match data {
        ColumnData::Float(v) => v[row]
            .and_then(serde_json::Number::from_f64)
            .map_or(Value::Null, Value::Number),
        ColumnData::Int(v) => v[row].map_or(Value::Null, Value::from),
        ColumnData::Bool(v) => v[row].map_or(Value::Null, Value::Bool),
        ColumnData::Str(v) => v[row].clone().map_or(Value::Null, Value::String),
        ColumnData::Datetime(v) => {
            v[row].map_or(Value::Null, |t| Value::String(datetime::format(t, format)))
        }
    }
}
