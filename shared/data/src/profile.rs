//! Column profiles: the statistics shown to the user after upload and used to sanity-check a
//! synthetic table against the real one. Numeric statistics come from polars; category counts
//! are a hash count because polars' `value_counts` needs features this crate does not build.

use std::hash::Hash;

use polars::prelude::*;
use rayon::prelude::*;
use serde_json::Value;
use synth_table::{
    CategoryCount, Column, ColumnData, ColumnMetadata, ColumnProfile, DatetimeQuantile,
    DatetimeSummary, Metadata, NumericSummary, PreviewRow, Profile, Quantile, SdType, Table,
};

use crate::Inference;
use crate::datetime::{self, DEFAULT_DATETIME_FORMAT};

/// Rows included in a profile's preview.
pub const PREVIEW_ROWS: usize = 20;
/// Categories listed per column, most frequent first.
pub const TOP_CATEGORIES: usize = 20;
const QUANTILES: [f64; 5] = [0.05, 0.25, 0.5, 0.75, 0.95];

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
        mean: finite_mean(&s, ca, ca.min()?.abs().max(ca.max()?.abs()))?,
        std: s.std(1).filter(|x| x.is_finite()),
        quantiles: QUANTILES
            .iter()
            .zip(quantiles)
            .filter_map(|(&q, v)| Some(Quantile { q, value: v? }))
            .collect(),
    })
}

/// The mean, also of values near f64's limits, whose plain sum is infinite: those are
/// scaled down by the largest magnitude (`scale`) first.
fn finite_mean(s: &Series, ca: &Float64Chunked, scale: f64) -> Option<f64> {
    let mean = s.mean()?;
    if mean.is_finite() {
        return Some(mean);
    }
    let n = (ca.len() - ca.null_count()) as f64;
    let mean = ca.iter().flatten().map(|x| x / scale / n).sum::<f64>() * scale;
    Some(mean).filter(|m| m.is_finite())
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
pub fn preview(table: &Table, metadata: &Metadata, rows: usize) -> Vec<PreviewRow> {
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
