//! Privacy by distance to closest record (DCR): a synthesizer that memorised its training
//! rows puts synthetic rows nearer the training rows than an unseen real holdout of the same
//! size. The DCR share (synthetic rows closer to training than to holdout) is then above
//! 50%; about 50% means the synthetic rows are no closer to what was trained on than to
//! new data from the same source.
//!
//! Distance between two rows: the mean over the scored columns (numerical, datetime,
//! categorical, boolean; ids, text and PII are left out) of a per-column distance in [0, 1]:
//! |a − b| / (real range), capped at 1, for numbers and datetimes; 0 if equal, 1 if not, for
//! categories. Missing equals missing (0) and differs from any value (1).
//!
//! Sampling rule, so 50k × 50k stays fast: with seed `s`, ChaCha8 draws without replacement
//! `min(n_synthetic, max_rows)` synthetic rows, then `min(n_train, n_holdout, max_rows)` rows
//! from each of the training and holdout tables (equal sizes, so the share is fair). The exact
//! match share uses every row.

use std::collections::{HashMap, HashSet};

use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use rayon::prelude::*;
use serde::{Deserialize, Serialize};
use synth_table::{Metadata, Table};

use crate::EvaluateError;
use crate::values::{self, Shape};

/// Settings of the privacy measures.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PrivacyOptions {
    /// Rows sampled from each table for the distance measures (see the module docs).
    pub max_rows: usize,
    pub seed: u64,
}

impl Default for PrivacyOptions {
    fn default() -> Self {
        Self {
            max_rows: 5_000,
            seed: 0,
        }
    }
}

/// Privacy figures of a synthetic table.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PrivacyReport {
    /// Share of sampled synthetic rows closer to a training row than to any holdout row (ties
    /// count half); ~0.5 is no memorisation. `None` without a holdout.
    pub dcr_share: Option<f64>,
    /// Median distance of a synthetic row to its closest training row.
    pub median_dcr_train: f64,
    /// Median distance of a synthetic row to its closest holdout row.
    pub median_dcr_holdout: Option<f64>,
    /// Share of all synthetic rows equal to some training row on every scored column.
    pub exact_match_share: f64,
    /// The same share for holdout rows: how often real rows repeat anyway (the baseline).
    pub holdout_exact_match_share: Option<f64>,
    /// Median over synthetic rows of (closest / second-closest training distance); near 0
    /// means rows sit on top of single training rows, near 1 among many.
    pub median_nndr: f64,
    /// Rows used for the distances: synthetic, and each of training and holdout.
    pub sampled_synthetic_rows: usize,
    pub sampled_reference_rows: usize,
    /// The columns the distance is taken over.
    pub columns: Vec<String>,
}

/// Rows encoded for the distance: numbers scaled by the real range, categories as codes.
struct Encoded {
    num: Vec<f32>,
    cat: Vec<u32>,
    n_num: usize,
    n_cat: usize,
    rows: usize,
}

/// A missing number; far from every scaled value, so it costs 1 against them and 0 against
/// itself once distances are capped.
const MISSING: f32 = -1000.0;

/// Compute the privacy report; `holdout` is real data the synthesizer never saw.
pub fn privacy_report(
    train: &Table,
    holdout: Option<&Table>,
    synthetic: &Table,
    metadata: &Metadata,
    options: &PrivacyOptions,
) -> Result<PrivacyReport, EvaluateError> {
    let holdout = holdout.filter(|h| h.n_rows() > 0);
    let scored = scored_columns(train, holdout, synthetic, metadata, options)?;
    let exact_match_share = exact_share(train, synthetic, &scored);
    let holdout_exact_match_share = holdout.map(|h| exact_share(train, h, &scored));

    let mut rng = ChaCha8Rng::seed_from_u64(options.seed);
    let mut sample = |n: usize, k: usize| -> Vec<usize> {
        let mut idx = rand::seq::index::sample(&mut rng, n, n.min(k)).into_vec();
        idx.sort_unstable();
        idx
    };
    let synth_rows = sample(synthetic.n_rows(), options.max_rows);
    let n_ref = holdout.map_or(train.n_rows(), |h| h.n_rows().min(train.n_rows()));
    let train_rows = sample(train.n_rows(), n_ref.min(options.max_rows));
    let hold_rows = holdout.map(|h| sample(h.n_rows(), n_ref.min(options.max_rows)));

    let mut sides: Vec<(&Table, &[usize])> = vec![(train, &train_rows), (synthetic, &synth_rows)];
    if let (Some(h), Some(r)) = (holdout, hold_rows.as_deref()) {
        sides.push((h, r));
    }
    let enc = encode(&scored, &sides);
    let distances = Distances::measure(&enc);
    Ok(PrivacyReport {
        dcr_share: distances.holdout_share(),
        median_dcr_train: median(&mut distances.to_train()),
        median_dcr_holdout: distances.to_holdout().map(|mut d| median(&mut d)),
        exact_match_share,
        holdout_exact_match_share,
        median_nndr: median(&mut distances.nndr()),
        sampled_synthetic_rows: synth_rows.len(),
        sampled_reference_rows: train_rows.len(),
        columns: scored.iter().map(|(n, _)| (*n).to_owned()).collect(),
    })
}

/// The columns distances are taken over, once every side is checked to have them.
fn scored_columns<'m>(
    train: &Table,
    holdout: Option<&Table>,
    synthetic: &Table,
    metadata: &'m Metadata,
    options: &PrivacyOptions,
) -> Result<Vec<(&'m str, Shape)>, EvaluateError> {
    crate::check_rows(train, synthetic)?;
    if options.max_rows == 0 {
        return Err(EvaluateError::Invalid(
            "privacy max_rows must be positive".into(),
        ));
    }
    let scored: Vec<(&str, Shape)> = metadata
        .columns
        .iter()
        .filter_map(|(n, m)| values::shape_of(m).map(|s| (n.as_str(), s)))
        .collect();
    if scored.is_empty() {
        return Err(EvaluateError::Invalid(
            "no column to measure distances on".into(),
        ));
    }
    let mut tables = vec![("real", train), ("synthetic", synthetic)];
    if let Some(h) = holdout {
        tables.push(("holdout", h));
    }
    for (name, _) in &scored {
        for (side, t) in &tables {
            values::column(t, name, side)?;
        }
    }
    Ok(scored)
}

/// Per sampled synthetic row: the distances (averaged over columns) to its nearest and
/// second-nearest training row, and to its nearest holdout row when there is a holdout.
struct Distances(Vec<(f32, f32, Option<f32>)>);

impl Distances {
    /// `enc` holds training, synthetic and (optionally) holdout rows, in that order.
    fn measure(enc: &[Encoded]) -> Self {
        let n_cols = (enc[0].n_num + enc[0].n_cat).max(1) as f32;
        let (t_enc, s_enc, h_enc) = (&enc[0], &enc[1], enc.get(2));
        Self(
            (0..s_enc.rows)
                .into_par_iter()
                .map(|i| {
                    let (d1, d2) = two_nearest(s_enc, i, t_enc);
                    let dh = h_enc.map(|h| two_nearest(s_enc, i, h).0);
                    (d1 / n_cols, d2 / n_cols, dh.map(|d| d / n_cols))
                })
                .collect(),
        )
    }

    fn to_train(&self) -> Vec<f64> {
        self.0.iter().map(|r| f64::from(r.0)).collect()
    }

    fn to_holdout(&self) -> Option<Vec<f64>> {
        self.0
            .iter()
            .map(|r| r.2.map(f64::from))
            .collect::<Option<Vec<f64>>>()
            .filter(|d| !d.is_empty())
    }

    /// Nearest over second-nearest training distance (0 where both are 0).
    fn nndr(&self) -> Vec<f64> {
        self.0
            .iter()
            .map(|&(d1, d2, _)| if d2 > 0.0 { f64::from(d1 / d2) } else { 0.0 })
            .collect()
    }

    /// Share of rows closer to a training row than to any holdout row (ties count half).
    fn holdout_share(&self) -> Option<f64> {
        let mut closer = 0.0;
        for &(d1, _, h) in &self.0 {
            let h = h?;
            closer += if d1 < h {
                1.0
            } else if d1 == h {
                0.5
            } else {
                0.0
            };
        }
        Some(closer / self.0.len() as f64)
    }
}

fn median(v: &mut [f64]) -> f64 {
    if v.is_empty() {
        return f64::NAN;
    }
    v.sort_by(f64::total_cmp);
    let m = v.len() / 2;
    if v.len() % 2 == 1 {
        v[m]
    } else {
        (v[m - 1] + v[m]) / 2.0
    }
}

/// Share of `rows` rows that equal some `reference` row on every scored column.
fn exact_share(reference: &Table, rows: &Table, scored: &[(&str, Shape)]) -> f64 {
    let keys = |t: &Table| -> Vec<Vec<Option<String>>> {
        let cols: Vec<Vec<Option<String>>> = scored
            .iter()
            .map(|(n, _)| values::labels(&t.column(n).expect("checked").data))
            .collect();
        (0..t.n_rows())
            .map(|i| cols.iter().map(|c| c[i].clone()).collect())
            .collect()
    };
    let reference: HashSet<Vec<Option<String>>> = keys(reference).into_iter().collect();
    let rows = keys(rows);
    if rows.is_empty() {
        return 0.0;
    }
    rows.iter().filter(|r| reference.contains(*r)).count() as f64 / rows.len() as f64
}

/// Encode the sampled rows of each side (training first: its range scales the numbers).
fn encode(scored: &[(&str, Shape)], sides: &[(&Table, &[usize])]) -> Vec<Encoded> {
    let mut num_cols: Vec<Vec<Vec<f32>>> = vec![Vec::new(); sides.len()];
    let mut cat_cols: Vec<Vec<Vec<u32>>> = vec![Vec::new(); sides.len()];
    for (name, shape) in scored {
        match shape {
            Shape::Continuous => {
                for (k, col) in scaled_numbers(name, sides).into_iter().enumerate() {
                    num_cols[k].push(col);
                }
            }
            Shape::Discrete => {
                for (k, col) in category_codes(name, sides).into_iter().enumerate() {
                    cat_cols[k].push(col);
                }
            }
        }
    }
    // Row-major, so the inner loop reads one row's values contiguously.
    sides
        .iter()
        .enumerate()
        .map(|(k, (_, rows))| {
            let mut enc = Encoded {
                num: Vec::with_capacity(rows.len() * num_cols[k].len()),
                cat: Vec::with_capacity(rows.len() * cat_cols[k].len()),
                n_num: num_cols[k].len(),
                n_cat: cat_cols[k].len(),
                rows: rows.len(),
            };
            for i in 0..rows.len() {
                enc.num.extend(num_cols[k].iter().map(|c| c[i]));
                enc.cat.extend(cat_cols[k].iter().map(|c| c[i]));
            }
            enc
        })
        .collect()
}

/// A numerical column of each side's sampled rows, scaled by the range of the real data
/// (every side but the synthetic one, which is second).
fn scaled_numbers(name: &str, sides: &[(&Table, &[usize])]) -> Vec<Vec<f32>> {
    let cols: Vec<Vec<Option<f64>>> = sides
        .iter()
        .map(|(t, _)| values::numeric(&t.column(name).expect("checked").data))
        .collect();
    let (lo, hi) = cols
        .iter()
        .enumerate()
        .filter(|(k, _)| *k != 1)
        .flat_map(|(_, c)| c.iter().flatten())
        .fold((f64::INFINITY, f64::NEG_INFINITY), |(l, h), &x| {
            (l.min(x), h.max(x))
        });
    let range = if hi > lo { hi - lo } else { 1.0 };
    cols.iter()
        .zip(sides)
        .map(|(col, (_, rows))| {
            rows.iter()
                .map(|&i| match col[i] {
                    Some(x) => ((x - lo) / range).clamp(-2.0, 3.0) as f32,
                    None => MISSING,
                })
                .collect()
        })
        .collect()
}

/// A categorical column of each side's sampled rows as codes shared by all sides (0: missing).
fn category_codes(name: &str, sides: &[(&Table, &[usize])]) -> Vec<Vec<u32>> {
    let mut dict: HashMap<String, u32> = HashMap::new();
    sides
        .iter()
        .map(|(t, rows)| {
            let labels = values::labels(&t.column(name).expect("checked").data);
            rows.iter()
                .map(|&i| match &labels[i] {
                    None => 0,
                    Some(s) => {
                        let next = dict.len() as u32 + 1;
                        *dict.entry(s.clone()).or_insert(next)
                    }
                })
                .collect()
        })
        .collect()
}

/// The closest and second-closest summed distances from row `i` of `from` to rows of `to`.
fn two_nearest(from: &Encoded, i: usize, to: &Encoded) -> (f32, f32) {
    let (nn, nc) = (from.n_num, from.n_cat);
    let a_num = &from.num[i * nn..(i + 1) * nn];
    let a_cat = &from.cat[i * nc..(i + 1) * nc];
    let (mut best, mut second) = (f32::INFINITY, f32::INFINITY);
    for j in 0..to.rows {
        let b_num = &to.num[j * nn..(j + 1) * nn];
        let b_cat = &to.cat[j * nc..(j + 1) * nc];
        let mut d = 0.0f32;
        for (x, y) in a_num.iter().zip(b_num) {
            d += (x - y).abs().min(1.0);
        }
        for (x, y) in a_cat.iter().zip(b_cat) {
            d += f32::from(u8::from(x != y));
        }
        if d < best {
            second = best;
            best = d;
        } else if d < second {
            second = d;
        }
    }
    (best, second)
}

#[cfg(test)]
mod tests {
    use super::*;
    use synth_table::{Column, ColumnData, ColumnMetadata, SdType};

    fn table(x: &[f64], c: &[&str]) -> Table {
        Table::new(vec![
            Column {
                name: "x".into(),
                data: ColumnData::Float(x.iter().map(|v| Some(*v)).collect()),
            },
            Column {
                name: "c".into(),
                data: ColumnData::Str(c.iter().map(|v| Some((*v).to_owned())).collect()),
            },
        ])
        .unwrap()
    }

    fn meta() -> Metadata {
        Metadata::new(vec![
            ("x".into(), ColumnMetadata::new(SdType::Numerical)),
            ("c".into(), ColumnMetadata::new(SdType::Categorical)),
        ])
    }

    #[test]
    fn a_copy_of_the_training_rows_is_caught() {
        let train = table(&[0.0, 10.0, 20.0, 30.0], &["a", "b", "a", "b"]);
        let holdout = table(&[5.0, 15.0, 25.0, 35.0], &["a", "b", "a", "b"]);
        let r = privacy_report(
            &train,
            Some(&holdout),
            &train,
            &meta(),
            &PrivacyOptions::default(),
        )
        .unwrap();
        assert_eq!(r.dcr_share, Some(1.0));
        assert_eq!(r.exact_match_share, 1.0);
        assert_eq!(r.holdout_exact_match_share, Some(0.0));
        assert_eq!(r.median_dcr_train, 0.0);
        assert_eq!(r.median_nndr, 0.0);
        // range 35: distance 5/35 on x, 0 on c, mean over 2 columns.
        assert!((r.median_dcr_holdout.unwrap() - 5.0 / 35.0 / 2.0).abs() < 1e-6);
    }

    #[test]
    fn distances_mix_scaled_numbers_and_categories() {
        let train = table(&[0.0, 10.0], &["a", "b"]);
        let synth = table(&[2.0], &["b"]);
        let r = privacy_report(&train, None, &synth, &meta(), &PrivacyOptions::default()).unwrap();
        // to (0,a): 0.2 + 1 ; to (10,b): 0.8 + 0 -> closest 0.8/2, second 1.2/2
        assert!((r.median_dcr_train - 0.4).abs() < 1e-6, "{r:?}");
        assert!((r.median_nndr - 0.8 / 1.2).abs() < 1e-6);
        assert_eq!(r.dcr_share, None);
    }

    #[test]
    fn sampling_is_seeded() {
        let x: Vec<f64> = (0..300).map(f64::from).collect();
        let c: Vec<&str> = (0..300)
            .map(|i| if i % 3 == 0 { "a" } else { "b" })
            .collect();
        let train = table(&x[..200], &c[..200]);
        let hold = table(&x[200..], &c[200..]);
        let synth = table(&x[50..250], &c[50..250]);
        let o = PrivacyOptions {
            max_rows: 40,
            seed: 7,
        };
        let a = privacy_report(&train, Some(&hold), &synth, &meta(), &o).unwrap();
        let b = privacy_report(&train, Some(&hold), &synth, &meta(), &o).unwrap();
        assert_eq!(a, b);
        assert_eq!(
            (a.sampled_synthetic_rows, a.sampled_reference_rows),
            (40, 40)
        );
    }
}
