//! Mode-specific normalisation of one continuous column (numbers and datetimes): a value is
//! encoded as its offset α = (x − μₖ)/(4σₖ) within a mixture mode k drawn from the mode
//! posterior, plus the one-hot of k, plus a null indicator when the column has missing
//! values. Decoding undoes this and restores the column's representation (integers,
//! decimals, datetime granularity) and range (a value drawn past a bound folds back inside,
//! rather than piling onto it).
//!
//! Point masses — a value that holds a large share of the column, such as the zeros of a
//! zero-inflated amount — are modes of their own after the mixture's: a row holding one is
//! encoded as that mode with α = 0, and decodes to exactly that value. The mixture is fitted
//! on the other values only, so it no longer spends a mode (and its spread) on the spike,
//! and the model learns the spike's share as it learns a category's.
//!
//! A GAN or VAE learns that share only roughly (on a planted 90% of zeros, seeds of CTGAN
//! gave 87–96% and of TVAE 88–97%), so an unconditioned sample takes each point mass in
//! its real share: of the rows decoded as present, the ones the model leans to the spike
//! most (its score over the best other mode's) take it. The model still decides which rows
//! hold the spike; only how many is fixed. The mixture's modes likewise take their weights'
//! shares of the other rows: CTGAN drew a uniform date column's modes in skewed shares
//! (a third of the rows in the last eighth of the range), and given their real shares its
//! date columns' SDMetrics shape scores rose from 0.77 to 0.84 on average. Nulls too: the
//! model's null share wandered from seed to seed (a real 14.5% came out as 5% or 32% from
//! CTGAN), so such a sample makes null the real share of rows, the ones leaning to null
//! most.
//!
//! Last, the values themselves: a GAN learns α poorly. CTGAN's α came out centred ±0.4
//! away from the real offsets in every mode of a column (1.6 standard deviations), so the
//! real shares of modes still left a uniform date column with a quarter of its rows in a
//! tenth of its range — SDV's CTGAN does the same. Such a sample therefore gives its
//! mixture rows the real values' quantiles (kept as a sketch of 201) in the order of the
//! values the model drew: the model decides which rows are high and which low, and so
//! every dependence on other columns that ranks carry; the column's distribution is the
//! real one. On five tables never seen before, at 100 epochs, this raised CTGAN's mean
//! SDMetrics shape score from 0.88 to 0.96 and its pair trends from 0.67 to 0.71 (SDV's
//! CTGAN: 0.86 and 0.66); TVAE's rose too. The sketch holds 201 of the column's values
//! and is drawn between, so no value is copied but at the ends of its range, which
//! clipping reached before.

use rand::Rng;
use serde::{Deserialize, Serialize};
use synth_table::ColumnData;

use super::gmm::{BayesianGmm, GmmConfig};
use super::{Shares, Span, TransformerOptions, argmax};
use crate::error::{EngineError, Result};
use crate::random::EngineRng;

/// How a continuous column's values are represented in the table.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum NumberRepr {
    /// Floats rounded to the number of decimals seen (none when they look unrounded).
    Float {
        decimals: Option<u32>,
    },
    Int,
    /// Microseconds, rounded to the coarsest unit all real values keep a step of (day,
    /// hour, minute, second, ms, µs) at the place they all share within it (`offset_us`:
    /// every real value at 10:00 gives days at 10:00).
    Datetime {
        granularity_us: i64,
        #[serde(default, skip_serializing_if = "no_offset")]
        offset_us: i64,
    },
}

fn no_offset(x: &i64) -> bool {
    *x == 0
}

/// The fitted encoder of one continuous column.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ContinuousTransform {
    pub name: String,
    repr: NumberRepr,
    /// Means and standard deviations of the modes kept (weight above the threshold).
    means: Vec<f64>,
    stds: Vec<f64>,
    /// The full mixture, for the mode posterior when encoding.
    gmm: BayesianGmm,
    /// Indices (into the full mixture) of the modes kept.
    kept: Vec<usize>,
    /// Values encoded exactly, as modes after the mixture's (see the module docs). Absent
    /// from models saved before point masses (and from columns without any).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    spikes: Vec<f64>,
    /// Each point mass's share of the present values (absent from models saved before:
    /// their samples keep the shares the model draws).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    spike_shares: Vec<f64>,
    /// The least and greatest value that is not a point mass: a value of the mixture is
    /// brought into it, so that adds nothing to a spike at a bound. Absent from models
    /// saved before (they clip to `[min, max]`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    spread: Option<(f64, f64)>,
    min: f64,
    max: f64,
    /// Fill value for missing values before encoding (the mean, as RDT imputes).
    fill: f64,
    has_nulls: bool,
    clip: bool,
    /// The real values' quantiles at 0, 0.5%, … 100%, and their share of the rows: how
    /// rare a condition was in the real data. Absent from models saved before.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    quantiles: Vec<f64>,
    /// The same sketch of the values that are not point masses, whose distribution the
    /// mixture's rows of a sample take (absent from models saved before: their values are
    /// the ones drawn, folded into the range).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    spread_quantiles: Vec<f64>,
    #[serde(default, skip_serializing_if = "is_zero")]
    present_share: f64,
}

fn is_zero(x: &f64) -> bool {
    *x == 0.0
}

/// Quantiles kept for [`ContinuousTransform::share_within`] and the values of a sample.
const SKETCH: usize = 201;

/// A value holding at least this share of a column's present values is a point mass.
const SPIKE_SHARE: f64 = 0.1;

/// The values holding at least [`SPIKE_SHARE`] of `present`, most frequent first, with
/// their shares.
fn point_masses(present: &[f64]) -> Vec<(f64, f64)> {
    let mut counts: Vec<(f64, usize)> = Vec::new();
    let mut sorted = present.to_vec();
    sorted.sort_by(f64::total_cmp);
    for v in sorted {
        match counts.last_mut() {
            Some((last, n)) if *last == v => *n += 1,
            _ => counts.push((v, 1)),
        }
    }
    let least = (SPIKE_SHARE * present.len() as f64).ceil() as usize;
    // A constant column, or too few rows to tell a spike from chance: the mixture alone.
    if counts.len() <= 1 || least < 2 {
        return Vec::new();
    }
    counts.retain(|&(_, n)| n >= least);
    counts.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.total_cmp(&b.0)));
    let n = present.len() as f64;
    counts.into_iter().map(|(v, c)| (v, c as f64 / n)).collect()
}

/// The least and the greatest of `values`.
fn extent(values: &[f64]) -> (f64, f64) {
    values
        .iter()
        .fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), &v| {
            (lo.min(v), hi.max(v))
        })
}

/// The [`SKETCH`] quantiles of `present` (not empty), from its least value to its greatest.
fn sketch(present: &[f64]) -> Vec<f64> {
    let mut sorted = present.to_vec();
    sorted.sort_by(f64::total_cmp);
    (0..SKETCH)
        .map(|i| sorted[i * (sorted.len() - 1) / (SKETCH - 1)])
        .collect()
}

/// The column's finite values (in row order), whether any row is null or not finite, and
/// how its values are written.
pub(crate) fn finite_numbers(
    name: &str,
    data: &ColumnData,
) -> Result<(Vec<f64>, bool, NumberRepr)> {
    let (values, repr) = column_numbers(name, data)?;
    let finite: Vec<f64> = values
        .iter()
        .flatten()
        .copied()
        .filter(|v| v.is_finite())
        .collect();
    let has_nulls = finite.len() < values.len();
    Ok((finite, has_nulls, repr))
}

/// Reads a continuous column as f64s and says how it is represented.
pub(crate) fn column_numbers(
    name: &str,
    data: &ColumnData,
) -> Result<(Vec<Option<f64>>, NumberRepr)> {
    Ok(match data {
        ColumnData::Float(v) => {
            let decimals = learn_decimals(v.iter().flatten().copied());
            (v.clone(), NumberRepr::Float { decimals })
        }
        ColumnData::Int(v) => (
            v.iter().map(|x| x.map(|x| x as f64)).collect(),
            NumberRepr::Int,
        ),
        ColumnData::Datetime(v) => {
            let (granularity_us, offset_us) = learn_granularity(v.iter().flatten().copied());
            (
                v.iter().map(|x| x.map(|x| x as f64)).collect(),
                NumberRepr::Datetime {
                    granularity_us,
                    offset_us,
                },
            )
        }
        ColumnData::Bool(_) | ColumnData::Str(_) => {
            return Err(EngineError::InvalidData(format!(
                "column {name:?} is declared numerical or datetime but holds booleans or text"
            )));
        }
    })
}

impl ContinuousTransform {
    /// Fits the mixture of one column.
    pub fn fit(
        name: &str,
        data: &ColumnData,
        options: &TransformerOptions,
        rng: &mut EngineRng,
    ) -> Result<Self> {
        let (present, has_nulls, repr) = finite_numbers(name, data)?;
        let present_share = if data.is_empty() {
            0.0
        } else {
            present.len() as f64 / data.len() as f64
        };
        let present = if present.is_empty() {
            vec![0.0]
        } else {
            present
        };
        let (spikes, spike_shares): (Vec<f64>, Vec<f64>) =
            point_masses(&present).into_iter().unzip();
        let rest: Vec<f64> = present
            .iter()
            .copied()
            .filter(|v| !spikes.contains(v))
            .collect();
        // Every value a spike: the mixture still needs some values to have a mode.
        let rest = if rest.is_empty() {
            present.clone()
        } else {
            rest
        };
        let config = GmmConfig {
            max_components: options.max_modes,
            weight_concentration_prior: options.weight_concentration_prior,
            max_iter: options.max_gmm_iter,
            ..GmmConfig::default()
        };
        let gmm = BayesianGmm::fit(&rest, &config, rng);
        let weights = gmm.weights();
        let mut kept: Vec<usize> = (0..weights.len())
            .filter(|&j| weights[j] > options.weight_threshold)
            .collect();
        if kept.is_empty() {
            kept.push(argmax(&weights));
        }
        let (all_means, all_stds) = (gmm.means(), gmm.stds());
        let (min, max) = extent(&present);
        let spread = (!spikes.is_empty()).then(|| extent(&rest));
        Ok(Self {
            name: name.to_owned(),
            repr,
            means: kept.iter().map(|&j| all_means[j]).collect(),
            stds: kept.iter().map(|&j| all_stds[j].max(1e-12)).collect(),
            fill: present.iter().sum::<f64>() / present.len() as f64,
            gmm,
            kept,
            spikes,
            spike_shares,
            spread,
            min,
            max,
            has_nulls,
            clip: options.clip_to_range,
            quantiles: sketch(&present),
            spread_quantiles: sketch(&rest),
            present_share,
        })
    }

    /// A condition's value read on this column's number line: a number, or for a datetime
    /// column a date or date-time.
    pub fn read(&self, text: &str) -> Result<f64> {
        self.repr.read(&self.name, text)
    }

    /// Half the step between two values this column writes (0 for unrounded floats): an
    /// equality holds within it.
    pub fn half_step(&self) -> f64 {
        self.repr.half_step()
    }

    /// About what share of the real rows lay within the bounds (in steps of 0.5%), if the
    /// model kept its quantiles.
    pub fn share_within(&self, low: Option<(f64, bool)>, high: Option<(f64, bool)>) -> Option<f64> {
        if self.quantiles.is_empty() {
            return None;
        }
        let inside = self
            .quantiles
            .iter()
            .filter(|&&q| crate::condition::within(q, low, high))
            .count();
        Some(inside as f64 / SKETCH as f64 * self.present_share)
    }

    /// The spans this column contributes: α, the mode one-hot, and the null indicator.
    pub fn spans(&self) -> Vec<Span> {
        let mut s = vec![Span::tanh(1), Span::softmax(self.modes())];
        if self.has_nulls {
            s.push(Span::softmax(2));
        }
        s
    }

    pub fn width(&self) -> usize {
        1 + self.modes() + if self.has_nulls { 2 } else { 0 }
    }

    /// The mixture's modes and the point masses after them.
    fn modes(&self) -> usize {
        self.means.len() + self.spikes.len()
    }

    /// Encodes the column into a column-major block `n × width`, sampling each value's mode
    /// from its posterior over the kept modes.
    pub fn encode(&self, data: &ColumnData, rng: &mut EngineRng) -> Result<Vec<f32>> {
        let (values, _) = column_numbers(&self.name, data)?;
        let n = values.len();
        let w = self.width();
        let x: Vec<f64> = values
            .iter()
            .map(|v| v.filter(|v| v.is_finite()).unwrap_or(self.fill))
            .collect();
        let full_k = self.gmm.weights().len();
        let proba = self.gmm.predict_proba_many(&x);
        let mut out = vec![0f32; n * w];
        let mut p = vec![0.0; self.kept.len()];
        for (i, &xi) in x.iter().enumerate() {
            if self.has_nulls {
                let null = values[i].is_none_or(|v| !v.is_finite());
                out[(1 + self.modes() + usize::from(null)) * n + i] = 1.0;
            }
            let spike = values[i].and_then(|v| self.spikes.iter().position(|&s| s == v));
            if let Some(j) = spike {
                out[(1 + self.means.len() + j) * n + i] = 1.0;
                continue;
            }
            for (pj, &j) in p.iter_mut().zip(&self.kept) {
                // RDT adds 1e-6 so a value far from every kept mode still gets one.
                *pj = proba[i * full_k + j] + 1e-6;
            }
            let k = crate::random::weighted_index(rng, &p);
            let alpha = ((xi - self.means[k]) / (4.0 * self.stds[k])).clamp(-0.99, 0.99);
            out[i] = alpha as f32;
            out[(1 + k) * n + i] = 1.0;
        }
        Ok(out)
    }

    /// Decodes this column's span of each row of the model's output (see [`super::column_rows`]),
    /// sharing out its point masses, modes, nulls and values as `shares` says (see the
    /// module docs).
    pub fn decode(&self, rows: &[&[f32]], shares: Shares, rng: &mut EngineRng) -> ColumnData {
        let (k, modes) = (self.means.len(), self.modes());
        let real_shares = shares == Shares::Real;
        let present = self.present_rows(rows, real_shares);
        let chosen = if real_shares {
            self.modes_in_real_shares(rows, &present)
        } else {
            rows.iter().map(|row| argmax(&row[1..1 + modes])).collect()
        };
        let real_values = real_shares && self.clip && !self.spread_quantiles.is_empty();
        let mut values: Vec<Option<f64>> = rows
            .iter()
            .zip(&chosen)
            .zip(&present)
            .map(|((row, &mode), &present)| {
                if !present {
                    return None;
                }
                if mode >= k {
                    return Some(self.spikes[mode - k]);
                }
                let alpha = (row[0] as f64).clamp(-1.0, 1.0);
                let mut x = alpha * 4.0 * self.stds[mode] + self.means[mode];
                if self.clip && !real_values {
                    let (low, high) = self.spread.unwrap_or((self.min, self.max));
                    x = fold_into(x, low, high);
                }
                Some(x)
            })
            .collect();
        if real_values {
            let mixture = (0..rows.len()).filter(|&i| present[i] && chosen[i] < k);
            self.take_real_quantiles(&mut values, mixture, rng);
        }
        self.repr.column(values)
    }

    /// Gives the `mixture` rows (all holding a value) the real spread's quantiles in the
    /// order of their values: the j-th lowest of m takes the quantile at (j + u) / m, u
    /// uniform in [0, 1), between the sketch's points.
    fn take_real_quantiles(
        &self,
        values: &mut [Option<f64>],
        mixture: impl Iterator<Item = usize>,
        rng: &mut EngineRng,
    ) {
        let mut ranked: Vec<(f64, usize)> =
            mixture.filter_map(|i| values[i].map(|x| (x, i))).collect();
        ranked.sort_by(|a, b| a.0.total_cmp(&b.0).then(a.1.cmp(&b.1)));
        let (m, q) = (ranked.len() as f64, &self.spread_quantiles);
        let last = q.len() - 1;
        for (j, &(_, i)) in ranked.iter().enumerate() {
            let at = (j as f64 + rng.random::<f64>()) / m * last as f64;
            let below = (at.floor() as usize).min(last.saturating_sub(1));
            let above = (below + 1).min(last);
            let f = at - below as f64;
            values[i] = Some(q[below] + (q[above] - q[below]) * f);
        }
    }

    /// Which rows hold a value. In real shares, the real share of rows is null: the rows
    /// whose null score most exceeds their present score (models saved before the share
    /// was kept: the rows the model draws null).
    fn present_rows(&self, rows: &[&[f32]], real_shares: bool) -> Vec<bool> {
        let modes = self.modes();
        let lean = |row: &[f32]| row[1 + modes + 1] - row[1 + modes];
        if !self.has_nulls {
            return vec![true; rows.len()];
        }
        if !(real_shares && self.present_share > 0.0) {
            return rows.iter().map(|row| lean(row) <= 0.0).collect();
        }
        // The null indicator's two entries, scored at `1 + modes` (present) and after it
        // (null), shared out as modes are.
        let (present, null) = (modes, modes + 1);
        let nulls = ((1.0 - self.present_share) * rows.len() as f64).round() as usize;
        let mut chosen = vec![present; rows.len()];
        take_leaning(
            rows,
            (0..rows.len()).collect(),
            null,
            &[present],
            nulls,
            &mut chosen,
        );
        chosen.into_iter().map(|c| c != null).collect()
    }

    /// Each present row's mode, every mode in its real share: point mass `j` in `share_j` of
    /// the present rows, most frequent spike first, then the mixture's modes in their
    /// weights' shares of the rest, heaviest first. Each goes to the rows whose score for it
    /// most exceeds their best score for the modes still to fill.
    fn modes_in_real_shares(&self, rows: &[&[f32]], present: &[bool]) -> Vec<usize> {
        let (k, modes) = (self.means.len(), self.modes());
        let mut free: Vec<usize> = (0..rows.len()).filter(|&i| present[i]).collect();
        let n_present = free.len() as f64;
        let mut chosen = vec![0; rows.len()];
        for (j, share) in self.spike_shares.iter().enumerate() {
            let spike = k + j;
            let rivals: Vec<usize> = (0..modes).filter(|&m| m != spike).collect();
            let take = (share * n_present).round() as usize;
            free = take_leaning(rows, free, spike, &rivals, take, &mut chosen);
        }
        let weights = self.gmm.weights();
        let mut order: Vec<(usize, f64)> = (self.kept.iter().enumerate())
            .map(|(m, &j)| (m, weights[j]))
            .collect();
        order.sort_by(|a, b| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0)));
        let (total, n_rest) = (order.iter().map(|o| o.1).sum::<f64>(), free.len() as f64);
        for (at, &(m, weight)) in order.iter().enumerate() {
            let rivals: Vec<usize> = order[at + 1..].iter().map(|o| o.0).collect();
            let take = if rivals.is_empty() {
                free.len()
            } else {
                (weight / total * n_rest).round() as usize
            };
            free = take_leaning(rows, free, m, &rivals, take, &mut chosen);
        }
        chosen
    }
}

/// Gives mode `m` (scored at `1 + m` in a row; likewise the null indicator's entries) to the
/// `take` rows of `free` whose score for it most exceeds their best score among `rivals`;
/// returns the rows left.
fn take_leaning(
    rows: &[&[f32]],
    free: Vec<usize>,
    m: usize,
    rivals: &[usize],
    take: usize,
    chosen: &mut [usize],
) -> Vec<usize> {
    let lean = |row: &[f32]| {
        let best_rival = rivals
            .iter()
            .map(|&o| row[1 + o])
            .fold(f32::NEG_INFINITY, f32::max);
        row[1 + m] - best_rival
    };
    let mut by_lean: Vec<(f32, usize)> = free.iter().map(|&i| (lean(rows[i]), i)).collect();
    by_lean.sort_by(|a, b| b.0.total_cmp(&a.0).then(a.1.cmp(&b.1)));
    let take = take.min(by_lean.len());
    for &(_, i) in &by_lean[..take] {
        chosen[i] = m;
    }
    by_lean[take..].iter().map(|&(_, i)| i).collect()
}

/// `x` brought into `[low, high]`: a value past a bound is folded back inside by as much as
/// it went past (then clamped, should it pass the other bound too). Clamping alone piled
/// every value a model drew past a bound onto it: 10–30% of a date column's rows on its
/// first or last day, where the real share was 0.1%.
fn fold_into(x: f64, low: f64, high: f64) -> f64 {
    let folded = if x < low {
        2.0 * low - x
    } else if x > high {
        2.0 * high - x
    } else {
        x
    };
    folded.clamp(low, high)
}

impl NumberRepr {
    /// Values on the column's number line written in its representation: rounded to its
    /// decimals, to integers, or to its datetime granularity.
    pub(crate) fn column(self, values: Vec<Option<f64>>) -> ColumnData {
        match self {
            NumberRepr::Float { decimals } => ColumnData::Float(
                values
                    .into_iter()
                    .map(|v| v.map(|x| decimals.map_or(x, |d| round_to(x, d))))
                    .collect(),
            ),
            NumberRepr::Int => ColumnData::Int(
                values
                    .into_iter()
                    .map(|v| v.map(|x| x.round() as i64))
                    .collect(),
            ),
            NumberRepr::Datetime {
                granularity_us: g,
                offset_us: at,
            } => ColumnData::Datetime(
                values
                    .into_iter()
                    .map(|v| v.map(|x| ((x - at as f64) / g as f64).round() as i64 * g + at))
                    .collect(),
            ),
        }
    }

    /// Half the step between two values written in this representation (0 for unrounded
    /// floats): an equality holds within it.
    pub(crate) fn half_step(self) -> f64 {
        match self {
            NumberRepr::Float { decimals: Some(d) } => 0.5 * 10f64.powi(-(d as i32)),
            NumberRepr::Float { decimals: None } => 0.0,
            NumberRepr::Int => 0.5,
            NumberRepr::Datetime { granularity_us, .. } => 0.5 * granularity_us as f64,
        }
    }

    /// Where the values this representation writes start from within a step (a datetime's
    /// place within its unit; 0 otherwise).
    pub(crate) fn offset(self) -> f64 {
        match self {
            NumberRepr::Datetime { offset_us, .. } => offset_us as f64,
            _ => 0.0,
        }
    }

    /// A condition's value read on a column's number line: a number, or for a datetime
    /// column a date or date-time.
    pub(crate) fn read(self, column: &str, text: &str) -> Result<f64> {
        let bad = |what: &str| {
            EngineError::InvalidCondition(format!("{text:?} is not {what} (column {column:?})"))
        };
        match self {
            NumberRepr::Datetime { .. } => {
                let meta = synth_table::ColumnMetadata::new(synth_table::SdType::Datetime);
                synth_constraints::values::scalar(
                    &synth_constraints::spec::Scalar::Text(text.to_owned()),
                    column,
                    &meta,
                )
                .map_err(|_| bad("a date or date-time"))
            }
            _ => text
                .trim()
                .parse::<f64>()
                .ok()
                .filter(|x| x.is_finite())
                .ok_or_else(|| bad("a number")),
        }
    }
}

fn round_to(x: f64, decimals: u32) -> f64 {
    let p = 10f64.powi(decimals as i32);
    (x * p).round() / p
}

/// The most decimals any value needs (up to 10); `None` when values look unrounded.
fn learn_decimals(values: impl Iterator<Item = f64>) -> Option<u32> {
    let mut most = 0;
    for v in values.filter(|v| v.is_finite()) {
        let d = (0..=10).find(|&d| (round_to(v, d) - v).abs() <= 1e-12 * v.abs().max(1.0))?;
        most = most.max(d);
    }
    Some(most)
}

/// The coarsest of day / second / millisecond / microsecond that every timestamp falls on.
fn learn_granularity(values: impl Iterator<Item = i64> + Clone) -> (i64, i64) {
    // Day, hour, minute, second, millisecond (an hourly timestamp stays on whole hours, a
    // daily one at its time of day).
    let first = values.clone().next().unwrap_or(0);
    [86_400_000_000, 3_600_000_000, 60_000_000, 1_000_000, 1_000]
        .into_iter()
        .find(|g| {
            values
                .clone()
                .all(|v| v.rem_euclid(*g) == first.rem_euclid(*g))
        })
        .map_or((1, 0), |g| (g, first.rem_euclid(g)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::random::rng_for;
    use crate::transformer::column_rows;

    #[test]
    fn learns_decimals_and_granularity() {
        assert_eq!(learn_decimals([1.0, 2.5, 3.25].into_iter()), Some(2));
        assert_eq!(learn_decimals([1.0, 2.0].into_iter()), Some(0));
        assert_eq!(learn_decimals([std::f64::consts::PI].into_iter()), None);
        let day = 86_400_000_000i64;
        let (hour, minute) = (3_600_000_000i64, 60_000_000i64);
        let learned = |v: &[i64]| learn_granularity(v.iter().copied());
        assert_eq!(learned(&[day, 3 * day]), (day, 0));
        assert_eq!(learned(&[day, day + 1_000_000]), (1_000_000, 0));
        assert_eq!(learned(&[day, day + 5 * hour]), (hour, 0));
        assert_eq!(learned(&[hour, hour + 30 * minute]), (minute, 0));
        assert_eq!(learned(&[minute, minute + 1_000]), (1_000, 0));
        // Every value at 10:00 (before 1970 too): days, at 10:00.
        assert_eq!(
            learned(&[10 * hour, 5 * day + 10 * hour, -day + 10 * hour]),
            (day, 10 * hour)
        );
        let at_ten = NumberRepr::Datetime {
            granularity_us: day,
            offset_us: 10 * hour,
        };
        let drawn = vec![
            Some((3 * day + 2 * hour) as f64),
            Some((day + 20 * hour) as f64),
        ];
        assert_eq!(
            at_ten.column(drawn),
            ColumnData::Datetime(vec![Some(3 * day + 10 * hour), Some(day + 10 * hour)])
        );
    }

    /// 400 amounts: 5% null; of the present ones 240 zeros, 60 at the cap of 100, the rest
    /// spread between.
    fn capped_amounts() -> Vec<Option<f64>> {
        (0..400)
            .map(|i| match i % 20 {
                0..12 => Some(0.0),
                12..15 => Some(100.0),
                15 => None,
                k => Some(f64::from(k) * 3.7 + f64::from(i) * 0.01),
            })
            .collect()
    }

    /// The transform fitted on [`capped_amounts`].
    fn capped_transform() -> ContinuousTransform {
        let mut rng = crate::random::rng_for(1, 0);
        let data = ColumnData::Float(capped_amounts());
        ContinuousTransform::fit("amount", &data, &TransformerOptions::default(), &mut rng).unwrap()
    }

    #[test]
    fn point_masses_are_modes_of_their_own_and_decode_exactly() {
        let real = capped_amounts();
        assert_eq!(
            point_masses(&real.iter().flatten().copied().collect::<Vec<_>>()),
            [(0.0, 240.0 / 380.0), (100.0, 60.0 / 380.0)]
        );
        let mut rng = crate::random::rng_for(1, 0);
        let options = TransformerOptions::default();
        let data = ColumnData::Float(real.clone());
        let t = ContinuousTransform::fit("amount", &data, &options, &mut rng).unwrap();
        let encoded = t.encode(&data, &mut rng).unwrap();
        // Column-major `n × width` back to row-major for decoding.
        let (n, w) = (real.len(), t.width());
        let rows: Vec<f32> = (0..n)
            .flat_map(|i| (0..w).map(move |j| (i, j)))
            .map(|(i, j)| encoded[j * n + i])
            .collect();
        // As drawn: an encoding's own modes (real shares would move rows between modes).
        let ColumnData::Float(back) = t.decode(
            &column_rows(&rows, w, 0, w),
            Shares::AsDrawn,
            &mut rng_for(0, 0),
        ) else {
            panic!("floats")
        };
        for (r, b) in real.iter().zip(&back) {
            match r {
                Some(v) if *v == 0.0 || *v == 100.0 => assert_eq!(b, r, "a spike decodes exactly"),
                Some(v) => assert!(
                    (b.unwrap() - v).abs() < 1e-3 * v.abs().max(1.0),
                    "{b:?} vs {v}"
                ),
                None => assert_eq!(*b, None),
            }
        }
        // No spikes in a column of spread values.
        let spread: Vec<f64> = (0..400).map(|i| f64::from(i) * 0.5).collect();
        assert!(point_masses(&spread).is_empty());
    }

    #[test]
    fn point_masses_take_their_real_shares_in_the_rows_leaning_to_them_most() {
        let t = capped_transform();
        let (k, modes, w) = (t.means.len(), t.modes(), t.width());
        // A model that puts row i's zero score at i / n over a mixture score of 0.5 (so it
        // draws zeros in half the rows) and never leans to 100; the last 50 rows (5%, as in
        // the real column) are null.
        let n = 1000;
        let mut out = vec![0f32; n * w];
        for i in 0..n {
            let row = &mut out[i * w..(i + 1) * w];
            row[1] = 0.5;
            row[1 + k] = i as f32 / n as f32;
            row[1 + k + 1] = -1.0;
            row[1 + modes + usize::from(i >= 950)] = 1.0;
        }
        let count = |d: &ColumnData, v: f64| match d {
            ColumnData::Float(x) => x.iter().filter(|x| **x == Some(v)).count(),
            _ => panic!("floats"),
        };
        let drawn = t.decode(
            &column_rows(&out, w, 0, w),
            Shares::AsDrawn,
            &mut rng_for(0, 0),
        );
        assert_eq!((count(&drawn, 0.0), count(&drawn, 100.0)), (449, 0));
        let fixed = t.decode(
            &column_rows(&out, w, 0, w),
            Shares::Real,
            &mut rng_for(0, 0),
        );
        let shares = (
            (950.0 * 240.0 / 380.0_f64).round() as usize,
            (950.0 * 60.0 / 380.0_f64).round() as usize,
        );
        assert_eq!((count(&fixed, 0.0), count(&fixed, 100.0)), shares);
        let ColumnData::Float(values) = fixed else {
            unreachable!()
        };
        // The zeros went to the rows leaning to them most; nulls stayed null.
        let zeros: Vec<usize> = (0..n).filter(|&i| values[i] == Some(0.0)).collect();
        assert_eq!(zeros, (950 - shares.0..950).collect::<Vec<_>>());
        assert!(values[950..].iter().all(Option::is_none));
    }

    #[test]
    fn mixture_modes_take_their_weights_shares_in_the_rows_leaning_to_them_most() {
        // Two clusters, three times as many values near 0 as near 1000.
        let real: Vec<Option<f64>> = (0..400)
            .map(|i| Some(if i % 4 == 3 { 1000.0 } else { 0.0 } + f64::from(i) * 0.01))
            .collect();
        let mut rng = crate::random::rng_for(1, 0);
        let data = ColumnData::Float(real);
        let t =
            ContinuousTransform::fit("x", &data, &TransformerOptions::default(), &mut rng).unwrap();
        assert_eq!(t.means.len(), 2, "{:?}", t.means);
        let high = usize::from(t.means[1] > t.means[0]);
        let weights = t.gmm.weights();
        let high_share = weights[t.kept[high]] / t.kept.iter().map(|&j| weights[j]).sum::<f64>();
        assert!((high_share - 0.25).abs() < 0.02, "{high_share}");
        // A model that draws the low cluster in every row, row i leaning to the high one by
        // i / n.
        let (n, w) = (1000, t.width());
        let mut out = vec![0f32; n * w];
        for i in 0..n {
            let row = &mut out[i * w..(i + 1) * w];
            row[1 + (1 - high)] = 1.0;
            row[1 + high] = i as f32 / n as f32;
        }
        let highs = |d: &ColumnData| match d {
            ColumnData::Float(x) => (0..n).filter(|&i| x[i] > Some(500.0)).collect::<Vec<_>>(),
            _ => panic!("floats"),
        };
        let drawn = t.decode(
            &column_rows(&out, w, 0, w),
            Shares::AsDrawn,
            &mut rng_for(0, 0),
        );
        assert!(highs(&drawn).is_empty());
        let fixed = t.decode(
            &column_rows(&out, w, 0, w),
            Shares::Real,
            &mut rng_for(0, 0),
        );
        // The high values went to the rows leaning to the high mode most, in the real
        // share (the mode's weight places the rows; the real quantiles give the values).
        let take = highs(&fixed).len();
        assert_eq!(highs(&fixed), (n - take..n).collect::<Vec<_>>());
        assert!(take.abs_diff(250) <= 3, "{take}");
        let old = ContinuousTransform {
            spread_quantiles: Vec::new(),
            ..t.clone()
        };
        let fixed = old.decode(
            &column_rows(&out, w, 0, w),
            Shares::Real,
            &mut rng_for(0, 0),
        );
        let take = (high_share * n as f64).round() as usize;
        assert_eq!(highs(&fixed), (n - take..n).collect::<Vec<_>>());
    }

    #[test]
    fn nulls_take_their_real_share_in_the_rows_leaning_to_null_most() {
        let t = capped_transform();
        let (modes, w) = (t.modes(), t.width());
        // A model that leans to null in 30% of the rows (row i by (i − 700) / n), where 5%
        // of the real rows are null.
        let n = 1000;
        let mut out = vec![0f32; n * w];
        for i in 0..n {
            let row = &mut out[i * w..(i + 1) * w];
            row[1] = 1.0;
            row[1 + modes + 1] = (i as f32 - 699.5) / n as f32;
        }
        let nulls = |d: &ColumnData| match d {
            ColumnData::Float(x) => (0..n).filter(|&i| x[i].is_none()).collect::<Vec<_>>(),
            _ => panic!("floats"),
        };
        let drawn = t.decode(
            &column_rows(&out, w, 0, w),
            Shares::AsDrawn,
            &mut rng_for(0, 0),
        );
        assert_eq!(nulls(&drawn), (700..n).collect::<Vec<_>>());
        let fixed = t.decode(
            &column_rows(&out, w, 0, w),
            Shares::Real,
            &mut rng_for(0, 0),
        );
        assert_eq!(nulls(&fixed), (950..n).collect::<Vec<_>>());
        // A model saved before the share was kept draws its own.
        let old = ContinuousTransform {
            present_share: 0.0,
            ..t.clone()
        };
        let kept = old.decode(
            &column_rows(&out, w, 0, w),
            Shares::Real,
            &mut rng_for(0, 0),
        );
        assert_eq!(nulls(&kept), (700..n).collect::<Vec<_>>());
    }

    /// The largest gap between the empirical distribution functions of `a` and `b`
    /// (Kolmogorov–Smirnov's statistic; SDMetrics' shape score is one minus it).
    fn ks(a: &[f64], b: &[f64]) -> f64 {
        let sorted = |v: &[f64]| {
            let mut v = v.to_vec();
            v.sort_by(f64::total_cmp);
            v
        };
        let (a, b) = (sorted(a), sorted(b));
        let cdf = |v: &[f64], x: f64| v.partition_point(|&y| y <= x) as f64 / v.len() as f64;
        a.iter()
            .chain(&b)
            .map(|&x| (cdf(&a, x) - cdf(&b, x)).abs())
            .fold(0.0, f64::max)
    }

    fn floats(d: ColumnData) -> Vec<f64> {
        match d {
            ColumnData::Float(x) => x.into_iter().flatten().collect(),
            _ => panic!("floats"),
        }
    }

    #[test]
    fn a_sample_takes_the_real_distribution_in_the_order_the_model_drew() {
        // Real: skewed, most values low and a long tail.
        let real: Vec<f64> = (0..2000).map(|i| (f64::from(i) / 400.0).exp()).collect();
        let mut rng = rng_for(1, 0);
        let data = ColumnData::Float(real.iter().map(|&v| Some(v)).collect());
        let t =
            ContinuousTransform::fit("x", &data, &TransformerOptions::default(), &mut rng).unwrap();
        // A model whose α is off: every row at the low side of whichever mode it draws.
        let (n, w) = (1000, t.width());
        let mut out = vec![0f32; n * w];
        for i in 0..n {
            let row = &mut out[i * w..(i + 1) * w];
            row[0] = -0.9 + 0.3 * (i % 7) as f32 / 7.0;
            row[1 + i % t.means.len()] = 1.0;
        }
        let rows = column_rows(&out, w, 0, w);
        let drawn = floats(t.decode(&rows, Shares::AsDrawn, &mut rng_for(0, 0)));
        let fixed = floats(t.decode(&rows, Shares::Real, &mut rng_for(0, 0)));
        assert!(ks(&real, &drawn) > 0.2, "drawn {}", ks(&real, &drawn));
        assert!(ks(&real, &fixed) < 0.02, "fixed {}", ks(&real, &fixed));
        let again = floats(t.decode(&rows, Shares::Real, &mut rng_for(0, 0)));
        assert_eq!(fixed, again, "the same draws give the same sample");
        // A model saved before the sketch was kept decodes the values it draws.
        let old = ContinuousTransform {
            spread_quantiles: Vec::new(),
            ..t.clone()
        };
        let kept = floats(old.decode(&rows, Shares::Real, &mut rng_for(0, 0)));
        assert!(ks(&real, &kept) > 0.2, "old {}", ks(&real, &kept));
    }

    #[test]
    fn the_real_quantiles_go_to_the_rows_in_the_order_of_their_values() {
        let t = capped_transform();
        // Rows 0..300 drawn from the mixture in a scrambled order; 300..310 hold a point
        // mass, 310..320 are null.
        let drawn: Vec<Option<f64>> = (0..320)
            .map(|i| match i {
                0..300 => Some(f64::from((i * 37) % 300).powi(2)),
                300..310 => Some(100.0),
                _ => None,
            })
            .collect();
        let mut values = drawn.clone();
        t.take_real_quantiles(&mut values, 0..300, &mut rng_for(3, 0));
        assert_eq!(
            values[300..],
            drawn[300..],
            "point masses and nulls are left alone"
        );
        for a in 0..300 {
            for b in 0..300 {
                if drawn[a] < drawn[b] {
                    assert!(values[a] <= values[b], "rows {a} and {b} swapped");
                }
            }
        }
        let real_spread: Vec<f64> = (capped_amounts().into_iter().flatten())
            .filter(|&v| v != 0.0 && v != 100.0)
            .collect();
        let taken: Vec<f64> = values[..300].iter().flatten().copied().collect();
        assert!(
            ks(&real_spread, &taken) < 0.03,
            "{}",
            ks(&real_spread, &taken)
        );
        let (low, high) = t.spread.unwrap();
        assert!(taken.iter().all(|v| (low..=high).contains(v)));
    }

    #[test]
    fn values_past_a_bound_fold_back_inside_it() {
        assert_eq!(fold_into(5.0, 0.0, 10.0), 5.0);
        assert_eq!(fold_into(-2.0, 0.0, 10.0), 2.0);
        assert_eq!(fold_into(10.5, 0.0, 10.0), 9.5);
        assert_eq!(fold_into(-25.0, 0.0, 10.0), 10.0, "past both: clamped");
        assert_eq!(fold_into(3.0, 7.0, 7.0), 7.0, "a constant column");
        // A model drawing a tenth of its values past each bound: none piles onto either.
        let drawn: Vec<f64> = (0..1200).map(|i| f64::from(i) / 1000.0 - 0.1).collect();
        let folded: Vec<f64> = drawn.iter().map(|&x| fold_into(x, 0.0, 1.0)).collect();
        let on_bounds = folded.iter().filter(|&&x| x == 0.0 || x == 1.0).count();
        assert!(on_bounds <= 2, "{on_bounds} values on a bound");
        assert!(folded.iter().all(|x| (0.0..=1.0).contains(x)));
    }

    #[test]
    fn an_hourly_column_decodes_to_whole_hours() {
        let hour = 3_600_000_000i64;
        let real: Vec<Option<i64>> = (0..200)
            .map(|i| Some(472_222 * hour + (i % 48) * hour))
            .collect();
        let mut rng = crate::random::rng_for(1, 0);
        let options = TransformerOptions::default();
        let t =
            ContinuousTransform::fit("t", &ColumnData::Datetime(real), &options, &mut rng).unwrap();
        // Any output of a model: α anywhere in (−1, 1), the first mode.
        let w = t.width();
        let rows = 50;
        let mut data = vec![0f32; rows * w];
        for i in 0..rows {
            data[i * w] = -0.97 + 1.9 * i as f32 / rows as f32;
            data[i * w + 1] = 1.0;
        }
        let ColumnData::Datetime(out) = t.decode(
            &column_rows(&data, w, 0, w),
            Shares::Real,
            &mut rng_for(0, 0),
        ) else {
            panic!("datetimes")
        };
        assert!(out.iter().flatten().all(|v| v % hour == 0), "{out:?}");
        let distinct: std::collections::BTreeSet<_> = out.iter().flatten().collect();
        assert!(distinct.len() > 5, "{distinct:?}");
    }
}
