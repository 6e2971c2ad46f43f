//! One-hot encoding of a discrete column (categorical, boolean, and text-like columns, which
//! are treated as categorical). Missing values become their own category. Columns with more
//! distinct values than the cut-off keep their most frequent values as categories and pool
//! the rest into an "other" category; decoding "other" draws a value from the real tail with
//! its real frequencies, so the one-hot stays small and every output value is a real one.
//!
//! A sample drawn as the whole table is ([`Shares::Real`]) holds each slot — a category,
//! "other", null — in its share of the real rows, as the continuous columns hold their
//! modes: a GAN learns those shares only roughly (CTGAN's category shapes scored 0.83–0.98
//! by seed where the real shares give 1). The model's choice stands wherever it fits; the
//! rows a slot has too many of move to the slots short of rows that they score closest to
//! their own, so the rows that change are the ones the model was least sure of.

use std::collections::HashMap;

use serde::{Deserialize, Serialize};
use synth_table::ColumnData;

use super::personal::Shapes;
use super::{Shares, Span, argmax, largest_remainders};
use crate::random::{EngineRng, weighted_index};

/// How a discrete column's values are represented in the table.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ValueRepr {
    Str,
    Bool,
    Int,
    Float,
    Datetime,
}

/// The fitted encoder of one discrete column.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct DiscreteTransform {
    pub name: String,
    repr: ValueRepr,
    /// The categories with their own one-hot slot, most frequent first.
    categories: Vec<String>,
    /// Real values pooled into "other", with their counts; empty when there is no "other".
    tail: Vec<(String, u64)>,
    has_nulls: bool,
    /// Real rows of each category, and all rows: how rare a condition was in the real data.
    /// Absent from models saved before.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    counts: Vec<u64>,
    #[serde(default, skip_serializing_if = "is_zero")]
    rows: u64,
}

fn is_zero(n: &u64) -> bool {
    *n == 0
}

/// The canonical text of one value, the key categories are matched on.
pub(crate) fn value_key(data: &ColumnData, i: usize) -> Option<String> {
    match data {
        ColumnData::Str(v) => v[i].clone(),
        ColumnData::Bool(v) => v[i].map(|b| b.to_string()),
        ColumnData::Int(v) | ColumnData::Datetime(v) => v[i].map(|x| x.to_string()),
        ColumnData::Float(v) => v[i].map(|x| x.to_string()),
    }
}

/// Each value's count (by [`value_key`]), most frequent first (ties by key, so the order
/// is the same on every run), and whether the column has nulls.
pub(crate) fn counts_by_frequency(data: &ColumnData) -> (Vec<(String, u64)>, bool) {
    let mut counts: HashMap<String, u64> = HashMap::new();
    let mut has_nulls = false;
    for i in 0..data.len() {
        match value_key(data, i) {
            Some(k) => *counts.entry(k).or_default() += 1,
            None => has_nulls = true,
        }
    }
    let mut by_freq: Vec<(String, u64)> = counts.into_iter().collect();
    by_freq.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
    (by_freq, has_nulls)
}

pub(crate) fn repr_of(data: &ColumnData) -> ValueRepr {
    match data {
        ColumnData::Str(_) => ValueRepr::Str,
        ColumnData::Bool(_) => ValueRepr::Bool,
        ColumnData::Int(_) => ValueRepr::Int,
        ColumnData::Float(_) => ValueRepr::Float,
        ColumnData::Datetime(_) => ValueRepr::Datetime,
    }
}

impl DiscreteTransform {
    /// Counts the column's values and chooses its categories.
    pub fn fit(name: &str, data: &ColumnData, max_categories: usize) -> Self {
        let (mut by_freq, has_nulls) = counts_by_frequency(data);
        let keep = if by_freq.len() > max_categories {
            max_categories.saturating_sub(1).max(1)
        } else {
            by_freq.len()
        };
        let tail = by_freq.split_off(keep);
        Self {
            name: name.to_owned(),
            repr: repr_of(data),
            counts: by_freq.iter().map(|(_, n)| *n).collect(),
            rows: data.len() as u64,
            categories: by_freq.into_iter().map(|(k, _)| k).collect(),
            tail,
            has_nulls,
        }
    }

    /// The share of the real rows that had this value (by its key), if the model kept
    /// its counts.
    pub fn share_of(&self, key: &str) -> Option<f64> {
        if self.rows == 0 {
            return None;
        }
        let n = match self.categories.iter().position(|c| c == key) {
            Some(i) => *self.counts.get(i)?,
            None => self
                .tail
                .iter()
                .find(|(t, _)| t == key)
                .map_or(0, |(_, n)| *n),
        };
        Some(n as f64 / self.rows as f64)
    }

    pub fn width(&self) -> usize {
        self.categories.len() + usize::from(!self.tail.is_empty()) + usize::from(self.has_nulls)
    }

    pub fn spans(&self) -> Vec<Span> {
        vec![Span::softmax(self.width())]
    }

    fn other_slot(&self) -> Option<usize> {
        (!self.tail.is_empty()).then_some(self.categories.len())
    }

    fn null_slot(&self) -> Option<usize> {
        self.has_nulls
            .then_some(self.categories.len() + usize::from(!self.tail.is_empty()))
    }

    /// The slot a value (by its key; `None` for missing) is encoded in, if it was seen.
    pub fn slot_of(&self, key: Option<&str>) -> Option<usize> {
        match key {
            None => self.null_slot(),
            Some(k) => self.categories.iter().position(|c| c == k).or_else(|| {
                self.tail
                    .iter()
                    .any(|(t, _)| t == k)
                    .then(|| self.other_slot())
                    .flatten()
            }),
        }
    }

    /// Whether `key` (or a missing value, for `None`) occurs in the real column.
    pub fn knows(&self, key: &str) -> bool {
        self.categories.iter().any(|c| c == key) || self.tail.iter().any(|(t, _)| t == key)
    }

    /// Matches a user's condition value to the canonical key (booleans case-insensitively).
    pub fn canonical(&self, value: &str) -> String {
        match self.repr {
            ValueRepr::Bool => value.to_ascii_lowercase(),
            _ => value.to_owned(),
        }
    }

    /// Encodes into a column-major block `n × width`; unseen values go to "other" or fail.
    pub fn encode(&self, data: &ColumnData) -> Result<Vec<f32>, String> {
        let n = data.len();
        let mut out = vec![0f32; n * self.width()];
        let index: HashMap<&str, usize> = self
            .categories
            .iter()
            .enumerate()
            .map(|(i, c)| (c.as_str(), i))
            .collect();
        for i in 0..n {
            let key = value_key(data, i);
            let slot = match &key {
                None => self.null_slot(),
                Some(k) => index.get(k.as_str()).copied().or(self.other_slot()),
            }
            .ok_or_else(|| {
                format!(
                    "column {:?}: value {key:?} was not seen when fitting",
                    self.name
                )
            })?;
            out[slot * n + i] = 1.0;
        }
        Ok(out)
    }

    /// Decodes this column's span of each row of the model's output (see [`super::column_rows`]).
    /// Slots are shared out as `shares` says (see the module docs).
    pub fn decode(&self, rows: &[&[f32]], shares: Shares, rng: &mut EngineRng) -> ColumnData {
        let tail_weights: Vec<f64> = self.tail.iter().map(|(_, c)| *c as f64).collect();
        let drawn: Vec<usize> = rows.iter().map(|row| argmax(row)).collect();
        let slots = match self.real_counts(rows.len()) {
            Some(targets) if shares == Shares::Real => move_to_counts(rows, drawn, &targets),
            _ => drawn,
        };
        let keys: Vec<Option<&str>> = slots
            .into_iter()
            .map(|slot| {
                if Some(slot) == self.null_slot() {
                    None
                } else if Some(slot) == self.other_slot() {
                    Some(self.tail[weighted_index(rng, &tail_weights)].0.as_str())
                } else {
                    Some(self.categories[slot].as_str())
                }
            })
            .collect();
        self.to_column(&keys)
    }

    /// How many of `n` rows each slot holds in the real shares (largest remainders), if the
    /// model kept its counts.
    fn real_counts(&self, n: usize) -> Option<Vec<usize>> {
        if self.counts.len() != self.categories.len() || self.rows == 0 {
            return None;
        }
        let mut real = self.counts.clone();
        let tail: u64 = self.tail.iter().map(|(_, c)| c).sum();
        if self.other_slot().is_some() {
            real.push(tail);
        }
        if self.has_nulls {
            real.push(self.rows.saturating_sub(real.iter().sum::<u64>()));
        }
        let weights: Vec<f64> = real.iter().map(|&c| c as f64).collect();
        Some(largest_remainders(&weights, n))
    }

    /// Turns keys back into the column's own representation.
    fn to_column(&self, keys: &[Option<&str>]) -> ColumnData {
        keys_to_column(self.repr, keys)
    }
}

/// How many of a row's slots short of rows it may move to, best first: bounds the moves
/// weighed to `rows × MOVES_PER_ROW` however many categories there are.
const MOVES_PER_ROW: usize = 8;

/// Each row's slot while moving rows until slot `s` holds `counts[s]` of them.
struct Moving<'a> {
    slots: Vec<usize>,
    held: Vec<usize>,
    counts: &'a [usize],
    moved: Vec<bool>,
}

impl Moving<'_> {
    fn over(&self, s: usize) -> bool {
        self.held[s] > self.counts[s]
    }

    fn short(&self, s: usize) -> bool {
        self.held[s] < self.counts[s]
    }

    /// Moves row `i` to slot `to` if it has not moved yet, its slot holds too many and
    /// `to` too few.
    fn offer(&mut self, i: usize, to: usize) {
        let from = self.slots[i];
        if !self.moved[i] && self.over(from) && self.short(to) {
            self.held[from] -= 1;
            self.held[to] += 1;
            self.slots[i] = to;
            self.moved[i] = true;
        }
    }
}

/// `slots` (each row's slot, as drawn) moved until slot `s` holds `counts[s]` rows (the
/// counts sum to the rows): a row of a slot with too many moves to a slot short of rows,
/// the rows that lose least of their score (their own slot's score less the new slot's)
/// first. Each row moves at most once.
fn move_to_counts(rows: &[&[f32]], slots: Vec<usize>, counts: &[usize]) -> Vec<usize> {
    let mut held = vec![0usize; counts.len()];
    for &s in &slots {
        held[s] += 1;
    }
    let mut m = Moving {
        moved: vec![false; slots.len()],
        slots,
        held,
        counts,
    };
    let short: Vec<usize> = (0..counts.len()).filter(|&s| m.short(s)).collect();
    if short.is_empty() {
        return m.slots;
    }
    let (mut moves, mut to) = (Vec::new(), Vec::with_capacity(short.len()));
    for (i, row) in rows.iter().enumerate() {
        let from = m.slots[i];
        if m.over(from) {
            to.clear();
            to.extend(short.iter().map(|&s| (row[from] - row[s], i, s)));
            if to.len() > MOVES_PER_ROW {
                to.select_nth_unstable_by(MOVES_PER_ROW, |a, b| a.0.total_cmp(&b.0));
                to.truncate(MOVES_PER_ROW);
            }
            moves.extend_from_slice(&to);
        }
    }
    moves.sort_unstable_by(|a, b| a.0.total_cmp(&b.0).then(a.1.cmp(&b.1)).then(a.2.cmp(&b.2)));
    for (_, i, to) in moves {
        m.offer(i, to);
    }
    if short.iter().all(|&s| !m.short(s)) {
        return m.slots;
    }
    // Slots no row had among its best few: the rows least sure of their own slot fill
    // them, in turn (one sort, however many slots are left).
    let mut left: Vec<(f32, usize)> = (rows.iter().zip(&m.slots).enumerate())
        .map(|(i, (row, &s))| (row[s], i))
        .collect();
    left.sort_by(|a, b| a.0.total_cmp(&b.0).then(a.1.cmp(&b.1)));
    let mut left = left.into_iter().map(|(_, i)| i);
    for to in short {
        while m.short(to) {
            let Some(i) = left.next() else { break };
            m.offer(i, to);
        }
    }
    m.slots
}

/// Keys of real values back in their column's representation (keys came from real values,
/// so parsing them back cannot fail).
pub(crate) fn keys_to_column(repr: ValueRepr, keys: &[Option<&str>]) -> ColumnData {
    let parse_i = |k: &str| k.parse::<i64>().expect("key of an integer");
    match repr {
        ValueRepr::Str => ColumnData::Str(keys.iter().map(|k| k.map(str::to_owned)).collect()),
        ValueRepr::Bool => ColumnData::Bool(keys.iter().map(|k| k.map(|k| k == "true")).collect()),
        ValueRepr::Int => ColumnData::Int(keys.iter().map(|k| k.map(parse_i)).collect()),
        ValueRepr::Datetime => ColumnData::Datetime(keys.iter().map(|k| k.map(parse_i)).collect()),
        ValueRepr::Float => ColumnData::Float(
            keys.iter()
                .map(|k| k.map(|k| k.parse().expect("key of a float")))
                .collect(),
        ),
    }
}

/// Regenerates a column never learned from the real one: a key (unique values) or personal
/// data (values of the real shapes, see [`Shapes`]).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct IdTransform {
    pub name: String,
    repr: ValueRepr,
    /// Integers count up from here; strings are zero-padded to this width.
    start: i64,
    width: usize,
    /// Text every real key starts and ends with, up to its first and from its last digit
    /// (`item_` of `item_12`, `CUST-` and `-EU` of `CUST-0042-EU`): generated keys keep it.
    #[serde(default)]
    prefix: String,
    #[serde(default)]
    suffix: String,
    /// Personal data (not a key): values of the real ones' shapes, generated afresh.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    personal: Option<Shapes>,
}

/// The longest text all `keys` start with (`rev`: end with) that holds no digit.
fn shared_affix<'a>(keys: impl Iterator<Item = &'a str> + Clone, rev: bool) -> String {
    let chars = |k: &'a str| -> Box<dyn Iterator<Item = char> + 'a> {
        if rev {
            Box::new(k.chars().rev())
        } else {
            Box::new(k.chars())
        }
    };
    let Some(first) = keys.clone().next() else {
        return String::new();
    };
    let mut affix: Vec<char> = chars(first).take_while(|c| !c.is_ascii_digit()).collect();
    for k in keys {
        let common = chars(k).zip(&affix).take_while(|(a, b)| a == *b).count();
        affix.truncate(common);
    }
    if rev {
        affix.reverse();
    }
    affix.into_iter().collect()
}

impl IdTransform {
    pub fn fit(name: &str, data: &ColumnData) -> Self {
        let (mut prefix, mut suffix) = (String::new(), String::new());
        let (start, width) = match data {
            ColumnData::Int(v) | ColumnData::Datetime(v) => {
                (v.iter().flatten().min().copied().unwrap_or(0), 0)
            }
            ColumnData::Str(v) => {
                let keys = v.iter().flatten().map(String::as_str);
                prefix = shared_affix(keys.clone(), false);
                // A key that is all prefix leaves nothing for the suffix.
                let rest = keys.clone().map(|k| &k[prefix.len()..]);
                suffix = shared_affix(rest.clone(), true);
                let width = rest.map(|k| k.len() - suffix.len()).max().unwrap_or(0);
                (0, width)
            }
            _ => (0, 0),
        };
        Self {
            name: name.to_owned(),
            repr: repr_of(data),
            start,
            width,
            prefix,
            suffix,
            personal: None,
        }
    }

    /// A personal column (see [`Shapes`]), or `None` for one of a representation shapes do
    /// not fit (it is learned as any other column).
    pub fn personal(name: &str, data: &ColumnData, email: bool) -> Option<Self> {
        let repr = repr_of(data);
        Shapes::fits(repr).then(|| Self {
            name: name.to_owned(),
            repr,
            start: 0,
            width: 0,
            prefix: String::new(),
            suffix: String::new(),
            personal: Some(Shapes::fit(data, email)),
        })
    }

    /// `n` values of a personal column's shapes, none null; `None` for a key, or a column
    /// with no value to take a shape from.
    pub fn generate_present(&self, n: usize, rng: &mut EngineRng) -> Option<ColumnData> {
        self.personal.as_ref()?.generate_present(n, self.repr, rng)
    }

    /// Whether it regenerates a key (unique values), not personal data.
    pub fn is_key(&self) -> bool {
        self.personal.is_none()
    }

    /// `n` values: a personal column's in the real shapes, drawn from `rng`; keys unique,
    /// strings numbered rows in the real keys' prefix and suffix, integers counting up from
    /// the real minimum.
    pub fn generate(&self, n: usize, rng: &mut EngineRng) -> ColumnData {
        if let Some(shapes) = &self.personal {
            return shapes.generate(n, self.repr, rng);
        }
        let ints = (0..n as i64).map(|i| Some(self.start + i));
        match self.repr {
            ValueRepr::Int => ColumnData::Int(ints.collect()),
            ValueRepr::Datetime => ColumnData::Datetime(ints.collect()),
            ValueRepr::Float => ColumnData::Float((0..n).map(|i| Some(i as f64)).collect()),
            ValueRepr::Bool | ValueRepr::Str => {
                let (w, p, s) = (self.width, &self.prefix, &self.suffix);
                ColumnData::Str((0..n).map(|i| Some(format!("{p}{i:0w$}{s}"))).collect())
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::random::rng_for;

    fn keys(v: &[&str]) -> ColumnData {
        ColumnData::Str(v.iter().map(|s| Some((*s).to_owned())).collect())
    }

    fn generated(v: &[&str], n: usize) -> Vec<String> {
        let ColumnData::Str(out) = IdTransform::fit("id", &keys(v)).generate(n, &mut rng_for(0, 0))
        else {
            panic!("string keys")
        };
        out.into_iter().flatten().collect()
    }

    /// Row-major rows of `width` scores, each built by `score(row, slot)`.
    fn scored(n: usize, width: usize, score: impl Fn(usize, usize) -> f32) -> Vec<f32> {
        (0..n * width)
            .map(|x| score(x / width, x % width))
            .collect()
    }

    fn held(slots: &[usize], width: usize) -> Vec<usize> {
        (0..width)
            .map(|s| slots.iter().filter(|&&x| x == s).count())
            .collect()
    }

    #[test]
    fn the_rows_a_slot_has_too_many_of_move_where_they_lose_least() {
        // 100 rows drawn: 80 in slot 0 (row i sure of it by i / 100), 20 in slot 1; every
        // row scores slot 2 at 0.3 and slot 1 at 0.2 (its own at 0.9 where it drew 1).
        let data = scored(100, 3, |i, s| match (i < 80, s) {
            (true, 0) => 0.4 + i as f32 / 100.0,
            (false, 1) => 0.9,
            (_, 1) => 0.2,
            (_, 2) => 0.3,
            _ => 0.0,
        });
        let rows = super::super::column_rows(&data, 3, 0, 3);
        let drawn: Vec<usize> = rows.iter().map(|r| argmax(r)).collect();
        assert_eq!(held(&drawn, 3), [80, 20, 0]);
        let slots = move_to_counts(&rows, drawn.clone(), &[50, 30, 20]);
        assert_eq!(held(&slots, 3), [50, 30, 20]);
        // The 30 rows least sure of slot 0 moved: to slot 2 first (they lose less there).
        let moved: Vec<usize> = (0..100).filter(|&i| slots[i] != drawn[i]).collect();
        assert_eq!(moved, (0..30).collect::<Vec<_>>());
        assert!(slots[..20].iter().all(|&s| s == 2));
        assert!(slots[20..30].iter().all(|&s| s == 1));
        // Counts the draw already meets change nothing.
        assert_eq!(move_to_counts(&rows, drawn.clone(), &[80, 20, 0]), drawn);
    }

    #[test]
    fn every_slot_fills_however_many_there_are() {
        // 20 slots, every row drawn in slot 0 and scoring slots 1–8 above the rest: the
        // rows' best few moves fill those, the others still fill.
        let data = scored(200, 20, |i, s| match s {
            0 => 1.0,
            1..=8 => 0.5 + (i % 7) as f32 / 100.0,
            _ => 0.1,
        });
        let rows = super::super::column_rows(&data, 20, 0, 20);
        let slots = move_to_counts(&rows, vec![0; 200], &[10; 20]);
        assert_eq!(held(&slots, 20), [10; 20]);
    }

    #[test]
    fn a_sample_holds_each_category_and_null_in_its_real_share() {
        // Real: 60 a, 30 b, 10 null; the model draws a in every row.
        let real: Vec<Option<String>> = (0..100)
            .map(|i| match i {
                0..60 => Some("a".to_owned()),
                60..90 => Some("b".to_owned()),
                _ => None,
            })
            .collect();
        let t = DiscreteTransform::fit("x", &ColumnData::Str(real), 10);
        assert_eq!(t.width(), 3);
        let data = scored(50, 3, |i, s| if s == 0 { 1.0 } else { i as f32 / 100.0 });
        let rows = super::super::column_rows(&data, 3, 0, 3);
        let decoded = |t: &DiscreteTransform, shares| {
            let ColumnData::Str(v) = t.decode(&rows, shares, &mut rng_for(0, 0)) else {
                panic!("strings")
            };
            let count = |k: Option<&str>| v.iter().filter(|x| x.as_deref() == k).count();
            (count(Some("a")), count(Some("b")), count(None))
        };
        assert_eq!(decoded(&t, Shares::Real), (30, 15, 5));
        assert_eq!(decoded(&t, Shares::AsDrawn), (50, 0, 0));
        // A model saved before the counts were kept decodes as drawn.
        let old = DiscreteTransform {
            counts: Vec::new(),
            rows: 0,
            ..t.clone()
        };
        assert_eq!(decoded(&old, Shares::Real), (50, 0, 0));
        // Largest remainders: 7 rows of 60/30/10 are 4, 2 and 1.
        assert_eq!(t.real_counts(7), Some(vec![4, 2, 1]));
    }

    #[test]
    fn string_keys_are_regenerated_in_the_shape_of_the_real_ones() {
        assert_eq!(
            generated(&["item_12", "item_7", "item_305"], 3),
            ["item_000", "item_001", "item_002"]
        );
        assert_eq!(
            generated(&["CUST-0042-EU", "CUST-1-EU"], 2),
            ["CUST-0000-EU", "CUST-0001-EU"]
        );
        // No shared text: numbered rows as wide as the widest key; unique however many.
        let plain = generated(&["ab", "c7f"], 1200);
        assert_eq!(plain[..2], ["000", "001"]);
        let distinct: std::collections::HashSet<&String> = plain.iter().collect();
        assert_eq!(distinct.len(), 1200);
        assert_eq!(generated(&["Zürich-1", "Zürich-22"], 1), ["Zürich-00"]);
    }
}
