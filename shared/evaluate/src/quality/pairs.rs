//! Column Pair Trends: whether relationships between columns are kept, as SDMetrics 0.32
//! defines them. Two continuous columns: CorrelationSimilarity (Pearson). Two discrete
//! columns: ContingencySimilarity. A continuous with a discrete column: the continuous one is
//! cut into numpy's 10 histogram bins (each table with its own edges, missing values in the
//! top bin as `np.digitize` puts them) and ContingencySimilarity is used.
//!
//! Since 0.30 SDMetrics only averages pairs that are related in the real data: |ρ| > 0.5 for
//! correlations, Cramér's V > 0.3 for contingency tables. Other pairs are still scored here
//! (for the detail table and heatmaps) but marked as not counting.

// Ordered maps: sums run in a fixed order, so a report is bit-for-bit reproducible.
use std::collections::BTreeMap;

use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};
use synth_table::{Metadata, Table};

use crate::EvaluateError;
use crate::values::{self, Codes, Shape};

/// Settings of the pair property; the defaults are SDMetrics' QualityReport defaults.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PairOptions {
    /// A numeric pair counts only if |real Pearson ρ| is above this.
    pub real_correlation_threshold: f64,
    /// A contingency pair counts only if the real table's Cramér's V is above this.
    pub real_association_threshold: f64,
    /// Contingency tables of larger tables are computed on a seeded sample of this many rows
    /// per side (SDMetrics samples unseeded).
    pub num_rows_subsample: Option<usize>,
    pub seed: u64,
}

impl Default for PairOptions {
    fn default() -> Self {
        Self {
            real_correlation_threshold: 0.5,
            real_association_threshold: 0.3,
            num_rows_subsample: Some(50_000),
            seed: 0,
        }
    }
}

/// One column pair's trend score.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ColumnPairTrend {
    pub column_1: String,
    pub column_2: String,
    /// `CorrelationSimilarity` or `ContingencySimilarity`.
    pub metric: String,
    /// `None` where SDMetrics gives NaN (constant column, too few rows).
    pub score: Option<f64>,
    pub real_correlation: Option<f64>,
    pub synthetic_correlation: Option<f64>,
    /// Cramér's V of the real contingency table (contingency pairs only).
    pub real_association: Option<f64>,
    /// Whether the pair counts towards the property score.
    pub meets_threshold: bool,
}

/// A column prepared once: numbers for correlations, bins or codes for contingency tables.
struct Prepared {
    shape: Shape,
    real_num: Vec<Option<f64>>,
    synth_num: Vec<Option<f64>>,
    codes: Codes,
}

/// Per-pair trend scores over every pair of scored columns, in metadata order.
pub fn column_pair_trends(
    real: &Table,
    synthetic: &Table,
    metadata: &Metadata,
    options: &PairOptions,
) -> Result<Vec<ColumnPairTrend>, EvaluateError> {
    let mut cols: Vec<(&str, Prepared)> = Vec::new();
    for (name, meta) in &metadata.columns {
        let Some(shape) = values::shape_of(meta) else {
            continue;
        };
        let r = values::column(real, name, "real")?;
        let s = values::column(synthetic, name, "synthetic")?;
        let prepared = match shape {
            Shape::Continuous => {
                let real_num = values::numeric(r);
                let synth_num = values::numeric(s);
                let codes = Codes {
                    real: digitize(&real_num),
                    synthetic: digitize(&synth_num),
                };
                Prepared {
                    shape,
                    real_num,
                    synth_num,
                    codes,
                }
            }
            Shape::Discrete => Prepared {
                shape,
                real_num: Vec::new(),
                synth_num: Vec::new(),
                codes: values::encode(r, s),
            },
        };
        cols.push((name, prepared));
    }

    let subsample = subsample_rows(real.n_rows(), synthetic.n_rows(), options);
    let mut out = Vec::new();
    for i in 0..cols.len() {
        for j in i + 1..cols.len() {
            let (n1, a) = &cols[i];
            let (n2, b) = &cols[j];
            let trend = if a.shape == Shape::Continuous && b.shape == Shape::Continuous {
                correlation_pair(a, b, options)
            } else {
                contingency_pair(&a.codes, &b.codes, subsample.as_ref(), options)
            };
            out.push(ColumnPairTrend {
                column_1: (*n1).to_owned(),
                column_2: (*n2).to_owned(),
                ..trend
            });
        }
    }
    Ok(out)
}

fn correlation_pair(a: &Prepared, b: &Prepared, options: &PairOptions) -> ColumnPairTrend {
    let mut t = ColumnPairTrend {
        column_1: String::new(),
        column_2: String::new(),
        metric: "CorrelationSimilarity".into(),
        score: None,
        real_correlation: None,
        synthetic_correlation: None,
        real_association: None,
        meets_threshold: false,
    };
    // SDMetrics refuses a pair with a constant column (an error, so NaN and not counted).
    if [&a.real_num, &b.real_num, &a.synth_num, &b.synth_num]
        .iter()
        .any(|c| n_unique_is_one(c))
    {
        return t;
    }
    let r = pearson_pairwise(&a.real_num, &b.real_num);
    let s = pearson_pairwise(&a.synth_num, &b.synth_num);
    t.real_correlation = r;
    t.synthetic_correlation = s;
    if let (Some(r), Some(s)) = (r, s) {
        t.score = Some(correlation_similarity(r, s));
    }
    t.meets_threshold =
        t.score.is_some() && r.is_some_and(|r| r.abs() > options.real_correlation_threshold);
    t
}

fn n_unique_is_one(col: &[Option<f64>]) -> bool {
    let mut first = None;
    for x in col.iter().flatten() {
        match first {
            None => first = Some(*x),
            Some(f) if f != *x => return false,
            _ => {}
        }
    }
    first.is_some()
}

/// 1 − |ρ_real − ρ_synthetic| / 2.
pub fn correlation_similarity(real: f64, synthetic: f64) -> f64 {
    1.0 - (real - synthetic).abs() / 2.0
}

/// Pearson's ρ over the rows where both values are present; `None` with fewer than two such
/// rows or a constant side (scipy's NaN).
pub fn pearson_pairwise(x: &[Option<f64>], y: &[Option<f64>]) -> Option<f64> {
    let (xs, ys): (Vec<f64>, Vec<f64>) = x
        .iter()
        .zip(y)
        .filter_map(|(a, b)| Some(((*a)?, (*b)?)))
        .unzip();
    pearson(&xs, &ys)
}

/// Pearson's ρ of two equally long samples (mean-centred, as scipy computes it).
pub fn pearson(x: &[f64], y: &[f64]) -> Option<f64> {
    let n = x.len();
    if n < 2 || y.len() != n {
        return None;
    }
    let mx = x.iter().sum::<f64>() / n as f64;
    let my = y.iter().sum::<f64>() / n as f64;
    let (mut sxy, mut sxx, mut syy) = (0.0, 0.0, 0.0);
    for (a, b) in x.iter().zip(y) {
        let (dx, dy) = (a - mx, b - my);
        sxy += dx * dy;
        sxx += dx * dx;
        syy += dy * dy;
    }
    if sxx == 0.0 || syy == 0.0 {
        return None;
    }
    Some((sxy / (sxx.sqrt() * syy.sqrt())).clamp(-1.0, 1.0))
}

/// numpy's default histogram bin count.
const BINS: usize = 10;

/// `np.digitize(col, np.histogram_bin_edges(col.dropna()))`: bin `i` holds
/// `edges[i-1] <= x < edges[i]`, so the maximum and missing values both land in bin 11.
pub(crate) fn digitize(col: &[Option<f64>]) -> Vec<u32> {
    let edges = histogram_bin_edges(col);
    col.iter()
        .map(|x| match x {
            None => edges.len() as u32,
            Some(x) => edges.partition_point(|e| e <= x) as u32,
        })
        .collect()
}

/// numpy's `histogram_bin_edges(a, bins=10)`: 11 evenly spaced edges over [min, max],
/// widened by 0.5 each way when the column is constant, [0, 1] when it is empty.
pub(crate) fn histogram_bin_edges(col: &[Option<f64>]) -> Vec<f64> {
    let (mut lo, mut hi) = col
        .iter()
        .flatten()
        .fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), &x| {
            (lo.min(x), hi.max(x))
        });
    if lo > hi {
        (lo, hi) = (0.0, 1.0);
    }
    if lo == hi {
        lo -= 0.5;
        hi += 0.5;
    }
    let step = (hi - lo) / BINS as f64;
    let mut edges: Vec<f64> = (0..=BINS).map(|i| i as f64 * step + lo).collect();
    edges[BINS] = hi;
    edges
}

/// Seeded row samples (real, synthetic) when a table is larger than the contingency limit.
fn subsample_rows(
    n_real: usize,
    n_synth: usize,
    options: &PairOptions,
) -> Option<(Vec<usize>, Vec<usize>)> {
    let limit = options.num_rows_subsample?;
    if n_real.max(n_synth) <= limit {
        return None;
    }
    let mut rng = ChaCha8Rng::seed_from_u64(options.seed);
    let mut pick = |n: usize| {
        let mut idx = rand::seq::index::sample(&mut rng, n, n.min(limit)).into_vec();
        idx.sort_unstable();
        idx
    };
    let r = pick(n_real);
    let s = pick(n_synth);
    Some((r, s))
}

fn contingency_pair(
    a: &Codes,
    b: &Codes,
    subsample: Option<&(Vec<usize>, Vec<usize>)>,
    options: &PairOptions,
) -> ColumnPairTrend {
    let pairs = |x: &[u32], y: &[u32], rows: Option<&Vec<usize>>| -> Vec<(u32, u32)> {
        match rows {
            Some(rows) => rows.iter().map(|&i| (x[i], y[i])).collect(),
            None => x.iter().copied().zip(y.iter().copied()).collect(),
        }
    };
    let real = pairs(&a.real, &b.real, subsample.map(|s| &s.0));
    let synth = pairs(&a.synthetic, &b.synthetic, subsample.map(|s| &s.1));
    let association = cramers_v(&real);
    let score = contingency_similarity(&real, &synth);
    ColumnPairTrend {
        column_1: String::new(),
        column_2: String::new(),
        metric: "ContingencySimilarity".into(),
        score,
        real_correlation: None,
        synthetic_correlation: None,
        real_association: association,
        meets_threshold: score.is_some()
            && association.is_some_and(|v| v > options.real_association_threshold),
    }
}

fn counts(rows: &[(u32, u32)]) -> BTreeMap<(u32, u32), f64> {
    let mut m = BTreeMap::new();
    for &k in rows {
        *m.entry(k).or_insert(0.0) += 1.0;
    }
    m
}

/// 1 − the total variation distance between the two normalised contingency tables (missing
/// values are a category of their own); `None` when a side is empty.
pub fn contingency_similarity(real: &[(u32, u32)], synthetic: &[(u32, u32)]) -> Option<f64> {
    if real.is_empty() || synthetic.is_empty() {
        return None;
    }
    let (cr, cs) = (counts(real), counts(synthetic));
    let (nr, ns) = (real.len() as f64, synthetic.len() as f64);
    let mut tv = 0.0;
    for (k, r) in &cr {
        tv += (r / nr - cs.get(k).copied().unwrap_or(0.0) / ns).abs();
    }
    for (k, s) in &cs {
        if !cr.contains_key(k) {
            tv += s / ns;
        }
    }
    Some(1.0 - tv / 2.0)
}

/// Cramér's V of a contingency table (χ² without continuity correction, as scipy's
/// `association`); `None` when the table has fewer than two rows or columns.
pub fn cramers_v(rows: &[(u32, u32)]) -> Option<f64> {
    let cells = counts(rows);
    let mut row_sums: BTreeMap<u32, f64> = BTreeMap::new();
    let mut col_sums: BTreeMap<u32, f64> = BTreeMap::new();
    for (&(a, b), &c) in &cells {
        *row_sums.entry(a).or_default() += c;
        *col_sums.entry(b).or_default() += c;
    }
    let k = row_sums.len().min(col_sums.len());
    if k < 2 {
        return None;
    }
    let n = rows.len() as f64;
    let mut chi2 = 0.0;
    for (ra, rs) in &row_sums {
        for (cb, cs) in &col_sums {
            let expected = rs * cs / n;
            let observed = cells.get(&(*ra, *cb)).copied().unwrap_or(0.0);
            chi2 += (observed - expected).powi(2) / expected;
        }
    }
    Some((chi2 / n / (k - 1) as f64).sqrt())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pearson_of_known_pairs() {
        let r = pearson(&[1.0, 2.0, 3.0], &[2.0, 4.0, 6.0]).unwrap();
        assert!((r - 1.0).abs() < 1e-12);
        let r = pearson(&[1.0, 2.0, 3.0], &[3.0, 2.0, 1.0]).unwrap();
        assert!((r + 1.0).abs() < 1e-12);
        // x = 1,2,3,4 ; y = 1,3,2,4: sxy = 4, sxx = syy = 5 -> 0.8
        let r = pearson(&[1.0, 2.0, 3.0, 4.0], &[1.0, 3.0, 2.0, 4.0]).unwrap();
        assert!((r - 0.8).abs() < 1e-12, "{r}");
        assert_eq!(pearson(&[1.0, 1.0], &[1.0, 2.0]), None);
        // rows with a missing value on either side are dropped.
        let r = pearson_pairwise(
            &[Some(1.0), None, Some(2.0), Some(3.0)],
            &[Some(1.0), Some(9.0), Some(2.0), Some(3.0)],
        );
        assert!((r.unwrap() - 1.0).abs() < 1e-12);
        assert!((correlation_similarity(0.8, -0.2) - 0.5).abs() < 1e-12);
    }

    #[test]
    fn contingency_table_similarity() {
        // real: (0,0)x2 (1,1)x2 ; synthetic: (0,0) (0,1) (1,1)x2
        // p_real = .5 0 .5 ; p_synth = .25 .25 .5 -> TVD = (.25 + .25)/2 = .25
        let real = [(0, 0), (0, 0), (1, 1), (1, 1)];
        let synth = [(0, 0), (0, 1), (1, 1), (1, 1)];
        let s = contingency_similarity(&real, &synth).unwrap();
        assert!((s - 0.75).abs() < 1e-12, "{s}");
        assert_eq!(contingency_similarity(&real, &real), Some(1.0));
    }

    #[test]
    fn cramers_v_of_known_tables() {
        // perfectly associated 2x2 -> 1 ; independent -> 0
        assert!((cramers_v(&[(0, 0), (0, 0), (1, 1), (1, 1)]).unwrap() - 1.0).abs() < 1e-12);
        assert!(cramers_v(&[(0, 0), (0, 1), (1, 0), (1, 1)]).unwrap().abs() < 1e-12);
        // [[3,1],[1,3]]: chi2 = 4 * (1^2/2) = 2, n = 8 -> V = sqrt(2/8) = 0.5
        let t = [
            (0, 0),
            (0, 0),
            (0, 0),
            (0, 1),
            (1, 0),
            (1, 1),
            (1, 1),
            (1, 1),
        ];
        assert!((cramers_v(&t).unwrap() - 0.5).abs() < 1e-12);
        assert_eq!(cramers_v(&[(0, 0), (0, 1)]), None);
    }

    #[test]
    fn bins_follow_numpy_digitize() {
        let col = [
            Some(0.0),
            Some(0.5),
            Some(9.99),
            Some(10.0),
            None,
            Some(1.0),
        ];
        let edges = histogram_bin_edges(&col);
        assert_eq!(edges.len(), 11);
        assert_eq!((edges[0], edges[1], edges[10]), (0.0, 1.0, 10.0));
        // the maximum and the missing value share bin 11, as np.digitize puts them.
        assert_eq!(digitize(&col), [1, 1, 10, 11, 11, 2]);
        // a constant column is widened by 0.5 each way.
        assert_eq!(histogram_bin_edges(&[Some(3.0)])[0], 2.5);
    }
}
