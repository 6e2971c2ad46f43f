//! One-hot encoding of a discrete column (categorical, boolean, and text-like columns, which
//! are treated as categorical). Missing values become their own category. Columns with more
//! distinct values than the cut-off keep their most frequent values as categories and pool
//! the rest into an "other" category; decoding "other" draws a value from the real tail with
//! its real frequencies, so the one-hot stays small and every output value is a real one.

use std::collections::HashMap;

use serde::{Deserialize, Serialize};
use synth_table::ColumnData;

use super::Span;
use super::argmax;
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
    pub fn decode(&self, rows: &[&[f32]], rng: &mut EngineRng) -> ColumnData {
        let tail_weights: Vec<f64> = self.tail.iter().map(|(_, c)| *c as f64).collect();
        let keys: Vec<Option<&str>> = rows
            .iter()
            .map(|row| {
                let slot = argmax(row);
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

    /// Turns keys back into the column's own representation.
    fn to_column(&self, keys: &[Option<&str>]) -> ColumnData {
        keys_to_column(self.repr, keys)
    }
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

/// Regenerates a key column: unique values, never learned from the real ones.
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
        }
    }

    /// `n` unique values; strings are numbered rows in the real keys' prefix and suffix,
    /// integers count up from the real minimum.
    pub fn generate(&self, n: usize) -> ColumnData {
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

    fn keys(v: &[&str]) -> ColumnData {
        ColumnData::Str(v.iter().map(|s| Some((*s).to_owned())).collect())
    }

    fn generated(v: &[&str], n: usize) -> Vec<String> {
        let ColumnData::Str(out) = IdTransform::fit("id", &keys(v)).generate(n) else {
            panic!("string keys")
        };
        out.into_iter().flatten().collect()
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
