//! Sampling the autoregressive model: cells a caller gives are seen by every regressor,
//! and the others are drawn column by column, each given the cells seen so far. So fixed
//! values, seed rows and the known cells of a table with gaps are all met exactly, with
//! no rejection. A condition's range restricts its column's tokens (each weighted by the
//! share of its bin inside the range) and the value drawn inside the bin.

use std::collections::HashMap;

use synth_table::ColumnData;

use super::network::ArgnNet;
use super::tokens::{Codec, Range, Tokenizer};
use crate::condition::{Condition, Test};
use crate::error::{EngineError, Result};
use crate::random::{EngineRng, weighted_index};

/// Rows sampled together.
const CHUNK: usize = 4096;

/// One cell of the rows being sampled.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Cell {
    /// Given, and seen by the regressors as this token.
    Seen(u32),
    /// Given, but with a value the model cannot place (never seen when fitting): kept,
    /// not seen.
    Hidden,
    /// To be drawn.
    Draw,
}

/// Draws every [`Cell::Draw`] of `cells` (`rows × columns`, row-major), column by
/// column in `order`, each token ∝ `weights[j][t]` × softmax(logits / `temperature`).
pub fn draw_tokens(
    net: &ArgnNet,
    cells: &[Cell],
    weights: &[Vec<f64>],
    order: &[usize],
    temperature: f64,
    rng: &mut EngineRng,
) -> Result<Vec<u32>> {
    let c = net.columns();
    let mut out = Vec::with_capacity(cells.len());
    for chunk in cells.chunks(CHUNK * c) {
        let rows = chunk.len() / c;
        let mut tokens: Vec<u32> = chunk
            .iter()
            .map(|cell| match cell {
                Cell::Seen(t) => *t,
                Cell::Hidden | Cell::Draw => 0,
            })
            .collect();
        let mut visible: Vec<f32> = chunk
            .iter()
            .map(|cell| f32::from(u8::from(matches!(cell, Cell::Seen(_)))))
            .collect();
        for &j in order {
            let wanted: Vec<usize> = (0..rows)
                .filter(|&r| chunk[r * c + j] == Cell::Draw)
                .collect();
            if wanted.is_empty() {
                continue;
            }
            let embedded = net.embed(&tokens, rows)?;
            let mask = net.spread(&visible, rows)?;
            let logits = net.logits(j, &embedded, &mask)?.to_vec2::<f32>()?;
            let mut p = vec![0f64; weights[j].len()];
            for r in wanted {
                let l = &logits[r];
                let top = l
                    .iter()
                    .zip(&weights[j])
                    .filter(|(_, w)| **w > 0.0)
                    .map(|(x, _)| *x)
                    .fold(f32::NEG_INFINITY, f32::max);
                for ((p, x), w) in p.iter_mut().zip(l).zip(&weights[j]) {
                    *p = if *w > 0.0 {
                        w * (f64::from(x - top) / temperature).exp()
                    } else {
                        0.0
                    };
                }
                tokens[r * c + j] = weighted_index(rng, &p) as u32;
                visible[r * c + j] = 1.0;
            }
        }
        out.extend(tokens);
    }
    Ok(out)
}

/// What a caller's conditions ask of each modelled column.
#[derive(Debug, Clone, Default)]
pub struct Asked {
    /// A token every row sees (an equality), by modelled column.
    pub fixed: HashMap<usize, u32>,
    /// An exact number written (a numerical equality), by modelled column.
    pub values: HashMap<usize, f64>,
    /// A range the drawn value keeps, by modelled column.
    pub ranges: HashMap<usize, Range>,
}

/// Reads `conditions` against the tokenizer (`modelled[j]` is modelled column `j`'s index
/// in its columns), with the weights sampling starts from; each error names its column.
pub fn resolve(
    tokenizer: &Tokenizer,
    modelled: &[usize],
    conditions: &[Condition],
    weights: &mut [Vec<f64>],
) -> Result<Asked> {
    let mut asked = Asked::default();
    let bad = |m: String| EngineError::InvalidCondition(m);
    for cond in conditions {
        let column = &cond.column;
        let i = tokenizer
            .columns
            .iter()
            .position(|c| c.name() == column)
            .ok_or_else(|| bad(format!("unknown column {column:?}")))?;
        let j = modelled.iter().position(|&m| m == i).ok_or_else(|| {
            bad(format!(
                "column {column:?} is an id or personal data: its values are generated, not learned"
            ))
        })?;
        match (&tokenizer.columns[i], &cond.test) {
            (Codec::Discrete(d), Test::Equals(value)) => {
                let token = d.token_of(value).map_err(|rare| {
                    bad(if rare {
                        format!(
                            "category {value:?} of column {column:?} is seen in fewer than {} rows: \
                             the model protects it and never writes it",
                            tokenizer.rare_threshold
                        )
                    } else {
                        format!("column {column:?} has no category {value:?}")
                    })
                })?;
                if asked.fixed.insert(j, token).is_some_and(|t| t != token) {
                    return Err(bad(format!("column {column:?} cannot equal two values")));
                }
            }
            (Codec::Discrete(_), Test::Within { .. }) => {
                return Err(bad(format!(
                    "column {column:?} is categorical: a range applies to numerical and datetime columns"
                )));
            }
            (Codec::Numeric(b), Test::Equals(value)) => {
                let x = b.read(value)?;
                if asked.values.insert(j, x).is_some_and(|v| v != x) {
                    return Err(bad(format!("column {column:?} cannot equal two values")));
                }
                asked.fixed.insert(j, b.token_of(x));
            }
            (Codec::Numeric(b), Test::Within { low, high }) => {
                let range = range_of(b, cond, low, high)?;
                let range = asked.ranges.get(&j).map_or(range, |r| r.and(range));
                asked.ranges.insert(j, range);
                for (w, r) in weights[j].iter_mut().zip(b.range_weights(range)) {
                    *w *= r;
                }
                if weights[j].iter().all(|w| *w <= 0.0) {
                    return Err(bad(format!(
                        "no value of column {column:?} the model writes meets {cond}"
                    )));
                }
            }
            (Codec::Id(_), _) => unreachable!("ids are not modelled"),
        }
    }
    for (j, x) in &asked.values {
        if asked.ranges.get(j).is_some_and(|r| !r.contains(*x)) {
            return Err(bad(format!(
                "column {:?}: its value is outside its range",
                tokenizer.columns[modelled[*j]].name()
            )));
        }
    }
    Ok(asked)
}

/// A range condition read on its column's number line; an error when its ends cross.
fn range_of(
    bins: &super::tokens::Bins,
    cond: &Condition,
    low: &Option<crate::condition::Bound>,
    high: &Option<crate::condition::Bound>,
) -> Result<Range> {
    let read = |bound: &Option<crate::condition::Bound>| {
        bound
            .as_ref()
            .map(|b| bins.read(&b.value).map(|x| (x, b.inclusive)))
            .transpose()
    };
    let range = Range {
        low: read(low)?,
        high: read(high)?,
    };
    if let (Some((l, _)), Some((h, _))) = (range.low, range.high)
        && l > h
    {
        return Err(EngineError::InvalidCondition(format!(
            "{cond}: the low end is above the high end"
        )));
    }
    Ok(range)
}

/// Whether row `i` of a column is null.
pub fn is_null(data: &ColumnData, i: usize) -> bool {
    match data {
        ColumnData::Float(v) => v[i].is_none_or(|x| !x.is_finite()),
        ColumnData::Int(v) | ColumnData::Datetime(v) => v[i].is_none(),
        ColumnData::Bool(v) => v[i].is_none(),
        ColumnData::Str(v) => v[i].is_none(),
    }
}
