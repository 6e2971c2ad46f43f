//! How the autoregressive model reads a table: every modelled column becomes one token per
//! row, so each column's distribution given the others is a softmax.
//!
//! - A discrete column's tokens are its categories, most frequent first, plus one for
//!   nulls, plus one standing for every category seen in fewer than `k` rows (the rare
//!   token). The rare token is learnt, so the other columns see that something rare was
//!   there, but it is never sampled: no category of fewer than `k` rows is reproduced.
//! - A numerical or datetime column's `k − 1` most extreme values at each end are first
//!   moved onto the `k`-th, so no extreme value is reproduced either (in a column of few
//!   distinct levels, only a level held by one row). Then, with few
//!   distinct values left, every value is a token of its own (exact); with many, values
//!   holding a whole bin's share are exact tokens (point masses such as the zeros of an
//!   amount) and the rest fall into quantile bins. A value is drawn inside its bin by the
//!   bin's own quantiles (a few per bin, each step holding [`ROWS_PER_STEP`] rows or more),
//!   so a skewed bin keeps its shape (the top bin of an income or an amount does not spread
//!   its rows evenly up to the largest value), and written back in the column's
//!   representation (decimals, integers, datetime granularity). Nulls are a token.
//! - `id` columns are not modelled; they are regenerated unique.

use std::collections::HashMap;

use serde::{Deserialize, Serialize};
pub use synth_models::argn::{RARE_TEXT, default_rare_threshold};
use synth_table::{Column, ColumnData, Metadata, SdType, Table};

use crate::error::{EngineError, Result};
use crate::random::EngineRng;
use crate::transformer::continuous::{NumberRepr, column_numbers, finite_numbers};
use crate::transformer::discrete::{
    IdTransform, ValueRepr, counts_by_frequency, keys_to_column, repr_of, value_key,
};
use rand::Rng;

/// Most categories with a token of their own; the less frequent ones share the rare token.
pub const MAX_CATEGORIES: usize = 1000;

/// Rows per quantile bin at least: a small table gets fewer, wider bins, which its rows
/// can teach. Measured on seattle_weather's 730 rows (3 seeds, SDMetrics quality), values
/// drawn evenly in their bin: 100 bins 0.83, one per 25 rows 0.906, one per 100 (10 bins)
/// 0.921. Once values were drawn by each bin's own quantiles, one per 50 rows did better
/// than one per 100 over five tables of 344 to 1,461 rows (mean 0.919 against 0.915;
/// seattle_weather 0.955 against 0.947, two near-linear pairs 0.962 against 0.948).
pub const ROWS_PER_BIN: usize = 50;

/// Rows per step of a bin's own quantiles at least, so no step stands for one or two real
/// values; a bin has at most [`MAX_STEPS`] steps.
const ROWS_PER_STEP: usize = 10;
const MAX_STEPS: usize = 16;

/// The bins of a numerical column of a `rows`-row table: one per [`ROWS_PER_BIN`] rows,
/// at least 10, at most `max_bins`.
pub fn bins_for(rows: usize, max_bins: usize) -> usize {
    (rows / ROWS_PER_BIN).max(10).min(max_bins)
}

/// The tokens of every column of a table, in the metadata's order.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Tokenizer {
    pub columns: Vec<Codec>,
    /// The threshold `k` the protection used.
    pub rare_threshold: usize,
}

/// One column's tokens.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Codec {
    Discrete(Categories),
    Numeric(Bins),
    Id(IdTransform),
}

/// The tokens of a discrete column: `[null] categories… [rare]`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Categories {
    pub name: String,
    repr: ValueRepr,
    has_null: bool,
    /// Categories with a token, most frequent first.
    values: Vec<String>,
    /// Categories folded into the rare token, and the rows they held.
    rare_categories: usize,
    rare_rows: u64,
}

/// The tokens of a numerical or datetime column: `[null] exact values… bins…`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Bins {
    pub name: String,
    repr: NumberRepr,
    has_null: bool,
    /// Values with a token of their own, ascending.
    exact: Vec<f64>,
    /// Quantile bin edges over the other values, ascending: bin `i` is
    /// `[edges[i], edges[i + 1]]`.
    edges: Vec<f64>,
    /// Each bin's own quantile edges, from `edges[i]` to `edges[i + 1]`: a value is drawn
    /// in a step picked evenly, uniformly inside it. Empty in models saved before (a bin is
    /// then one step).
    #[serde(default)]
    steps: Vec<Vec<f64>>,
    /// Values are moved into `[low, high]` before anything else.
    low: f64,
    high: f64,
    /// Rows whose value was moved up to `low` / down to `high`.
    clipped: (u64, u64),
}

pub use synth_evaluate::Protected;

/// What a sampled value of a column must meet (a condition's range), on its number line.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Range {
    pub low: Option<(f64, bool)>,
    pub high: Option<(f64, bool)>,
}

impl Range {
    pub const ALL: Range = Range {
        low: None,
        high: None,
    };

    pub fn contains(&self, x: f64) -> bool {
        crate::condition::within(x, self.low, self.high)
    }

    /// This range and `other` together.
    pub fn and(self, other: Range) -> Range {
        let tighter = |a: Option<(f64, bool)>, b: Option<(f64, bool)>, low: bool| match (a, b) {
            (Some(a), Some(b)) => {
                let pick_a = if a.0 == b.0 { !a.1 } else { (a.0 > b.0) == low };
                Some(if pick_a { a } else { b })
            }
            (a, b) => a.or(b),
        };
        Range {
            low: tighter(self.low, other.low, true),
            high: tighter(self.high, other.high, false),
        }
    }

    /// About the share of `[a, b]`'s values inside the range, for values written on a grid
    /// of `step` (0: unrounded; a bin of width 0 is a point, in or out).
    fn overlap(&self, a: f64, b: f64, step: f64) -> f64 {
        let lo = self.low.map_or(a, |(l, _)| l.max(a));
        let hi = self.high.map_or(b, |(h, _)| h.min(b));
        if hi < lo || (b <= a && !self.contains(a)) {
            return 0.0;
        }
        if b <= a {
            return 1.0;
        }
        ((hi - lo + step) / (b - a + step)).clamp(0.0, 1.0)
    }
}

impl Tokenizer {
    /// Reads every column described by `metadata`, protecting values rarer than
    /// `rare_threshold` rows (`None`: [`default_rare_threshold`]).
    pub fn fit(
        table: &Table,
        metadata: &Metadata,
        max_bins: usize,
        rare_threshold: Option<usize>,
    ) -> Result<Self> {
        if table.n_rows() == 0 {
            return Err(EngineError::InvalidData("the table has no rows".into()));
        }
        crate::transformer::described(table, metadata)?;
        let k = synth_models::argn::rare_threshold(rare_threshold, table.n_rows());
        let max_bins = bins_for(table.n_rows(), max_bins);
        let columns = metadata
            .columns
            .iter()
            .map(|(name, meta)| {
                let col = table.column(name).ok_or_else(|| {
                    EngineError::InvalidData(format!(
                        "column {name:?} is in the metadata but not the table"
                    ))
                })?;
                let is_key = metadata.primary_key.as_deref() == Some(name);
                let email = meta.sdtype == SdType::Email;
                let personal = (!is_key && meta.is_personal())
                    .then(|| IdTransform::personal(name, &col.data, email))
                    .flatten();
                if let Some(personal) = personal {
                    return Ok(Codec::Id(personal));
                }
                Ok(match (is_key, meta.sdtype) {
                    (true, _) | (_, SdType::Id) => Codec::Id(IdTransform::fit(name, &col.data)),
                    (_, SdType::Numerical | SdType::Datetime) => {
                        Codec::Numeric(Bins::fit(name, &col.data, max_bins, k)?)
                    }
                    _ => Codec::Discrete(Categories::fit(name, &col.data, k)),
                })
            })
            .collect::<Result<Vec<_>>>()?;
        if !columns.iter().any(|c| c.vocab().is_some()) {
            return Err(EngineError::InvalidData(
                "no column can be modelled (only ids?)".into(),
            ));
        }
        Ok(Self {
            columns,
            rare_threshold: k,
        })
    }

    /// The modelled columns' indices (into [`Self::columns`]) and token counts.
    pub fn modelled(&self) -> Vec<(usize, usize)> {
        self.columns
            .iter()
            .enumerate()
            .filter_map(|(i, c)| c.vocab().map(|v| (i, v)))
            .collect()
    }

    /// The tokens of `table` (which has every modelled column), row-major over the
    /// modelled columns; a value never seen is an error naming it.
    pub fn encode(&self, table: &Table) -> Result<Vec<u32>> {
        let modelled = self.modelled();
        let n = table.n_rows();
        let mut out = vec![0u32; n * modelled.len()];
        for (j, &(i, _)) in modelled.iter().enumerate() {
            let codec = &self.columns[i];
            let col = table.column(codec.name()).ok_or_else(|| {
                EngineError::InvalidData(format!("column {:?} is missing", codec.name()))
            })?;
            let tokens = codec.tokens(&col.data)?;
            for (r, t) in tokens.into_iter().enumerate() {
                out[r * modelled.len() + j] = t.ok_or_else(|| {
                    EngineError::InvalidData(format!(
                        "column {:?}: row {r} holds a value never seen when fitting",
                        codec.name()
                    ))
                })?;
            }
        }
        Ok(out)
    }

    /// What the protection changed, column by column (only columns it changed).
    pub fn protected(&self) -> Vec<Protected> {
        self.columns
            .iter()
            .filter_map(|c| {
                let mut p = Protected {
                    column: c.name().to_owned(),
                    ..Protected::default()
                };
                match c {
                    Codec::Discrete(d) => {
                        p.rare_categories = d.rare_categories;
                        p.rare_rows = d.rare_rows;
                    }
                    Codec::Numeric(b) => {
                        p.clipped_low = (b.clipped.0 > 0).then_some((b.clipped.0, b.low));
                        p.clipped_high = (b.clipped.1 > 0).then_some((b.clipped.1, b.high));
                    }
                    Codec::Id(_) => {}
                }
                (p.rare_categories > 0 || p.clipped_low.is_some() || p.clipped_high.is_some())
                    .then_some(p)
            })
            .collect()
    }
}

impl Codec {
    pub fn name(&self) -> &str {
        match self {
            Codec::Discrete(d) => &d.name,
            Codec::Numeric(b) => &b.name,
            Codec::Id(i) => &i.name,
        }
    }

    /// Each token's place in the column's order: −1 for the least value … 1 for the
    /// greatest (a bin by its middle); 0 for nulls and every category.
    pub fn ordinal(&self) -> Vec<f32> {
        let Codec::Numeric(b) = self else {
            return vec![0.0; self.vocab().unwrap_or(0)];
        };
        let mut middles: Vec<(f64, usize)> = b
            .exact
            .iter()
            .copied()
            .chain(b.edges.windows(2).map(|e| 0.5 * (e[0] + e[1])))
            .enumerate()
            .map(|(t, x)| (x, t))
            .collect();
        middles.sort_by(|a, b| a.0.total_cmp(&b.0));
        let mut places = vec![0f32; b.vocab()];
        let offset = usize::from(b.has_null);
        let last = middles.len().saturating_sub(1).max(1) as f32;
        for (rank, (_, t)) in middles.into_iter().enumerate() {
            places[offset + t] = 2.0 * rank as f32 / last - 1.0;
        }
        places
    }

    /// The null token, if the column had nulls.
    pub fn null_token(&self) -> Option<usize> {
        match self {
            Codec::Discrete(d) => d.null_token().map(|t| t as usize),
            Codec::Numeric(b) => b.has_null.then_some(0),
            Codec::Id(_) => None,
        }
    }

    /// Tokens of a modelled column (`None` for ids).
    pub fn vocab(&self) -> Option<usize> {
        match self {
            Codec::Discrete(d) => Some(d.vocab()),
            Codec::Numeric(b) => Some(b.vocab()),
            Codec::Id(_) => None,
        }
    }

    /// Each value's token; `None` for a value the column cannot place (a category never
    /// seen where there is no rare token).
    pub fn tokens(&self, data: &ColumnData) -> Result<Vec<Option<u32>>> {
        match self {
            Codec::Discrete(d) => Ok(d.tokens(data)),
            Codec::Numeric(b) => b.tokens(data),
            Codec::Id(_) => Ok(vec![None; data.len()]),
        }
    }

    /// The weight sampling gives each token before the model's probabilities: 0 for the
    /// rare token (unless nothing else is there to write), 1 otherwise.
    pub fn base_weights(&self) -> Vec<f64> {
        let mut w = vec![1.0; self.vocab().unwrap_or(0)];
        if let Codec::Discrete(d) = self
            && let Some(r) = d.rare_token()
            && !d.values.is_empty()
        {
            w[r as usize] = 0.0;
        }
        w
    }

    /// Writes sampled tokens back as values; numbers are drawn inside their bin (within
    /// `range`) from `rng`.
    pub fn decode(&self, tokens: &[u32], range: Range, rng: &mut EngineRng) -> ColumnData {
        match self {
            Codec::Discrete(d) => d.decode(tokens),
            Codec::Numeric(b) => b.decode(tokens, range, rng),
            Codec::Id(i) => i.generate(tokens.len(), rng),
        }
    }
}

impl Categories {
    fn fit(name: &str, data: &ColumnData, k: usize) -> Self {
        let (mut by_freq, has_null) = counts_by_frequency(data);
        let kept = by_freq
            .iter()
            .take(MAX_CATEGORIES)
            .take_while(|(_, n)| *n >= k as u64)
            .count();
        let rare = by_freq.split_off(kept);
        Self {
            name: name.to_owned(),
            repr: repr_of(data),
            has_null,
            values: by_freq.into_iter().map(|(v, _)| v).collect(),
            rare_categories: rare.len(),
            rare_rows: rare.iter().map(|(_, n)| n).sum(),
        }
    }

    fn vocab(&self) -> usize {
        usize::from(self.has_null) + self.values.len() + usize::from(self.rare_categories > 0)
    }

    fn null_token(&self) -> Option<u32> {
        self.has_null.then_some(0)
    }

    fn rare_token(&self) -> Option<u32> {
        (self.rare_categories > 0).then(|| (self.vocab() - 1) as u32)
    }

    /// The token of a category with a token of its own, by its key (booleans
    /// case-insensitively); otherwise `Err(true)` for one folded into the rare token and
    /// `Err(false)` for one never seen.
    pub fn token_of(&self, value: &str) -> std::result::Result<u32, bool> {
        let key = match self.repr {
            ValueRepr::Bool => value.to_ascii_lowercase(),
            _ => value.to_owned(),
        };
        match self.values.iter().position(|v| *v == key) {
            Some(i) => Ok((usize::from(self.has_null) + i) as u32),
            None => Err(self.rare_categories > 0),
        }
    }

    fn tokens(&self, data: &ColumnData) -> Vec<Option<u32>> {
        let index: HashMap<&str, u32> = self
            .values
            .iter()
            .enumerate()
            .map(|(i, v)| (v.as_str(), (usize::from(self.has_null) + i) as u32))
            .collect();
        (0..data.len())
            .map(|i| match value_key(data, i) {
                None => self.null_token(),
                Some(k) => index.get(k.as_str()).copied().or(self.rare_token()),
            })
            .collect()
    }

    fn decode(&self, tokens: &[u32]) -> ColumnData {
        let offset = usize::from(self.has_null);
        let rare = match self.repr {
            ValueRepr::Str => Some(RARE_TEXT),
            _ => None,
        };
        let keys: Vec<Option<&str>> = tokens
            .iter()
            .map(|&t| {
                let t = t as usize;
                if self.has_null && t == 0 {
                    None
                } else {
                    self.values.get(t - offset).map(String::as_str).or(rare)
                }
            })
            .collect();
        keys_to_column(self.repr, &keys)
    }
}

impl Bins {
    fn fit(name: &str, data: &ColumnData, max_bins: usize, k: usize) -> Result<Self> {
        let (mut sorted, has_null, repr) = finite_numbers(name, data)?;
        sorted.sort_by(f64::total_cmp);
        let n = sorted.len();
        // A column of few levels (each its own token) is a set of shared levels, such as an
        // education grade: only a level held by a single row is moved at either end. A
        // level held by a few rows stays, so the column keeps its range (SDMetrics bins each
        // table by its own range: moving a 1..16 grade's rare 1s to 2 cost a 16,000-row
        // table 0.08 of quality). Measurements, with many distinct values, lose their k − 1
        // most extreme values at each end.
        let levels = 1 + sorted.windows(2).filter(|w| w[0] != w[1]).count();
        let k = if levels <= max_bins { k.min(2) } else { k };
        let (low, high) = match n {
            0 => (0.0, 0.0),
            _ if k > 1 && n >= 2 * k => (sorted[k - 1], sorted[n - k]),
            _ => (sorted[0], sorted[n - 1]),
        };
        let clipped = (
            sorted.iter().filter(|&&v| v < low).count() as u64,
            sorted.iter().filter(|&&v| v > high).count() as u64,
        );
        for v in &mut sorted {
            *v = v.clamp(low, high);
        }
        let mut counts: Vec<(f64, usize)> = Vec::new();
        for &v in &sorted {
            match counts.last_mut() {
                Some((last, c)) if *last == v => *c += 1,
                _ => counts.push((v, 1)),
            }
        }
        let (exact, edges, steps) = if counts.len() <= max_bins {
            (
                counts.iter().map(|(v, _)| *v).collect(),
                Vec::new(),
                Vec::new(),
            )
        } else {
            // Values holding at least a bin's share are exact; at most half the tokens.
            let share = (n / max_bins).max(2);
            let mut heavy: Vec<(f64, usize)> = counts
                .iter()
                .copied()
                .filter(|&(_, c)| c >= share)
                .collect();
            heavy.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.total_cmp(&b.0)));
            heavy.truncate(max_bins / 2);
            let mut exact: Vec<f64> = heavy.into_iter().map(|(v, _)| v).collect();
            exact.sort_by(f64::total_cmp);
            let rest: Vec<f64> = sorted
                .iter()
                .copied()
                .filter(|v| exact.binary_search_by(|e| e.total_cmp(v)).is_err())
                .collect();
            let edges = quantile_edges(&rest, max_bins - exact.len());
            let steps = steps_within(&rest, &edges);
            (exact, edges, steps)
        };
        Ok(Self {
            name: name.to_owned(),
            repr,
            has_null,
            exact,
            edges,
            steps,
            low,
            high,
            clipped,
        })
    }

    /// A value of bin `b` inside `[a, z]`, by the bin's own quantiles: a step picked by the
    /// share of it inside (evenly when the whole bin may be drawn), then a value evenly in
    /// that part of it.
    fn draw_in(&self, b: usize, (a, z): (f64, f64), rng: &mut EngineRng) -> f64 {
        // On the stack: this runs once for every value drawn into a bin.
        let (mut parts, mut weights) = ([(0.0, 0.0); MAX_STEPS], [0.0; MAX_STEPS]);
        let steps = self.steps_of(b);
        // A bin has at most MAX_STEPS steps (see `steps_within`).
        for (i, s) in steps.windows(2).take(MAX_STEPS).enumerate() {
            let (lo, hi) = (s[0].max(a), s[1].min(z));
            parts[i] = (lo, hi);
            weights[i] = match s[1] - s[0] {
                w if w > 0.0 => ((hi - lo) / w).max(0.0),
                _ => f64::from(u8::from(lo <= hi)),
            };
        }
        let m = (steps.len() - 1).min(MAX_STEPS);
        let (lo, hi) = if weights[..m].iter().sum::<f64>() > 0.0 {
            parts[crate::random::weighted_index(rng, &weights[..m])]
        } else {
            (a, z)
        };
        if hi > lo {
            rng.random_range(lo..=hi)
        } else {
            lo
        }
    }

    fn vocab(&self) -> usize {
        usize::from(self.has_null) + self.exact.len() + self.edges.len().saturating_sub(1)
    }

    fn bins(&self) -> usize {
        self.edges.len().saturating_sub(1)
    }

    /// The values a token stands for: `[low, high]` of its bin, or its exact value twice;
    /// `None` for the null token.
    pub fn span_of(&self, token: u32) -> Option<(f64, f64)> {
        let t = (token as usize).checked_sub(usize::from(self.has_null))?;
        match self.exact.get(t) {
            Some(&x) => Some((x, x)),
            None => {
                let b = t - self.exact.len();
                Some((self.edges[b], self.edges[b + 1]))
            }
        }
    }

    /// The token of a value on the column's number line (moved into its range first).
    pub fn token_of(&self, x: f64) -> u32 {
        let x = x.clamp(self.low, self.high);
        let offset = usize::from(self.has_null);
        if let Ok(i) = self.exact.binary_search_by(|e| e.total_cmp(&x)) {
            return (offset + i) as u32;
        }
        if self.bins() == 0 {
            // Only exact values: the nearest one.
            let i = self
                .exact
                .partition_point(|&e| e < x)
                .min(self.exact.len() - 1);
            let i = if i > 0 && (x - self.exact[i - 1]).abs() < (self.exact[i] - x).abs() {
                i - 1
            } else {
                i
            };
            return (offset + i) as u32;
        }
        let bin = self
            .edges
            .partition_point(|&e| e <= x)
            .saturating_sub(1)
            .min(self.bins() - 1);
        (offset + self.exact.len() + bin) as u32
    }

    fn tokens(&self, data: &ColumnData) -> Result<Vec<Option<u32>>> {
        let (values, _) = column_numbers(&self.name, data)?;
        Ok(values
            .iter()
            .map(|v| match v.filter(|v| v.is_finite()) {
                Some(x) if self.vocab() > usize::from(self.has_null) => Some(self.token_of(x)),
                _ => self.has_null.then_some(0),
            })
            .collect())
    }

    /// Each token's weight under `range`: the share of its values inside (nulls: none).
    pub fn range_weights(&self, range: Range) -> Vec<f64> {
        let mut w = Vec::with_capacity(self.vocab());
        if self.has_null {
            w.push(0.0);
        }
        w.extend(
            self.exact
                .iter()
                .map(|&x| f64::from(u8::from(range.contains(x)))),
        );
        let (grid, step) = (self.snapped(range), 2.0 * self.repr.half_step());
        w.extend((0..self.bins()).map(|b| {
            let steps = self.steps_of(b);
            let inside: f64 = steps
                .windows(2)
                .map(|s| grid.overlap(s[0], s[1], step))
                .sum();
            inside / (steps.len() - 1) as f64
        }));
        w
    }

    /// Bin `b`'s own quantile edges (each step holds an even share of its rows); its two
    /// edges alone in a model saved before they were kept.
    fn steps_of(&self, b: usize) -> &[f64] {
        match self.steps.get(b) {
            Some(steps) if steps.len() >= 2 => steps,
            _ => &self.edges[b..b + 2],
        }
    }

    /// Reads a condition's value on this column's number line.
    pub fn read(&self, text: &str) -> Result<f64> {
        self.repr.read(&self.name, text)
    }

    /// `range` moved inward onto the values this column writes (its decimals, integers or
    /// datetime unit), inclusive; unchanged for unrounded floats.
    fn snapped(&self, range: Range) -> Range {
        let (step, at) = (2.0 * self.repr.half_step(), self.repr.offset());
        if step <= 0.0 {
            return range;
        }
        let up = |(x, inclusive): (f64, bool)| {
            let g = ((x - at) / step).ceil() * step + at;
            (if !inclusive && g <= x { g + step } else { g }, true)
        };
        let down = |(x, inclusive): (f64, bool)| {
            let g = ((x - at) / step).floor() * step + at;
            (if !inclusive && g >= x { g - step } else { g }, true)
        };
        Range {
            low: range.low.map(up),
            high: range.high.map(down),
        }
    }

    fn decode(&self, tokens: &[u32], range: Range, rng: &mut EngineRng) -> ColumnData {
        let offset = usize::from(self.has_null);
        let r = self.snapped(range);
        let (lo, hi) = (r.low.map(|b| b.0), r.high.map(|b| b.0));
        let values: Vec<Option<f64>> = tokens
            .iter()
            .map(|&t| {
                let t = t as usize;
                if self.has_null && t == 0 {
                    return None;
                }
                let t = t - offset;
                if t < self.exact.len() {
                    return Some(self.exact[t]);
                }
                let b = t - self.exact.len();
                let (mut a, mut z) = (self.edges[b], self.edges[b + 1]);
                if let Some(lo) = lo {
                    a = a.max(lo);
                }
                if let Some(hi) = hi {
                    z = z.min(hi);
                }
                Some(self.draw_in(b, (a, z), rng))
            })
            .collect();
        self.repr.column(values)
    }
}

/// At most `bins` quantile bins over sorted `values`: strictly increasing edges from the
/// least to the greatest value.
fn quantile_edges(values: &[f64], bins: usize) -> Vec<f64> {
    if values.is_empty() || bins == 0 {
        return Vec::new();
    }
    let n = values.len();
    let mut edges: Vec<f64> = (0..=bins).map(|i| values[(i * (n - 1)) / bins]).collect();
    edges.dedup();
    if edges.len() == 1 {
        // One value: a bin of width 0.
        edges.push(edges[0]);
    }
    edges
}

/// Each bin's own quantile edges over the sorted `values` it holds: one step per
/// [`ROWS_PER_STEP`] rows, at most [`MAX_STEPS`], from the bin's first edge to its last.
fn steps_within(values: &[f64], edges: &[f64]) -> Vec<Vec<f64>> {
    edges
        .windows(2)
        .map(|e| {
            let from = values.partition_point(|&v| v < e[0]);
            let to = values.partition_point(|&v| v <= e[1]);
            let inside = &values[from..to];
            // Edges are values of the column, so a bin's first and last values are its edges.
            quantile_edges(inside, (inside.len() / ROWS_PER_STEP).clamp(1, MAX_STEPS))
        })
        .collect()
}

/// A column of `given` values where `keep` holds and of `drawn` ones elsewhere; both of
/// the same type.
pub fn merge(drawn: ColumnData, given: &ColumnData, keep: &[bool]) -> Result<ColumnData> {
    fn pick<T: Clone>(mut d: Vec<Option<T>>, g: &[Option<T>], keep: &[bool]) -> Vec<Option<T>> {
        for ((d, g), k) in d.iter_mut().zip(g).zip(keep) {
            if *k {
                *d = g.clone();
            }
        }
        d
    }
    Ok(match (drawn, given) {
        (ColumnData::Float(d), ColumnData::Float(g)) => ColumnData::Float(pick(d, g, keep)),
        (ColumnData::Int(d), ColumnData::Int(g)) => ColumnData::Int(pick(d, g, keep)),
        (ColumnData::Datetime(d), ColumnData::Datetime(g)) => {
            ColumnData::Datetime(pick(d, g, keep))
        }
        (ColumnData::Bool(d), ColumnData::Bool(g)) => ColumnData::Bool(pick(d, g, keep)),
        (ColumnData::Str(d), ColumnData::Str(g)) => ColumnData::Str(pick(d, g, keep)),
        (ColumnData::Int(d), ColumnData::Float(g)) => ColumnData::Float(pick(
            d.into_iter().map(|v| v.map(|x| x as f64)).collect(),
            g,
            keep,
        )),
        (ColumnData::Float(d), ColumnData::Int(g)) => {
            let g: Vec<Option<f64>> = g.iter().map(|v| v.map(|x| x as f64)).collect();
            ColumnData::Float(pick(d, &g, keep))
        }
        (_, _) => {
            return Err(EngineError::InvalidData(
                "a given column's values are not of the type the model writes".into(),
            ));
        }
    })
}

/// A column named `name` holding `data`.
pub fn named(name: &str, data: ColumnData) -> Column {
    Column {
        name: name.to_owned(),
        data,
    }
}
