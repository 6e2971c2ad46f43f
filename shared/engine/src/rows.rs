//! Conditional sampling by rejection, shared by every model: draw batches, decode them,
//! keep the rows that meet every condition, stack them.

use synth_table::Table;

use crate::condition::Condition;
use crate::error::{EngineError, Result};
use crate::random::{EngineRng, rng_for};
use crate::transformer::{DataTransformer, Resolved, Shares};

/// Batches tried by conditional sampling before a condition is declared too rare.
pub const MAX_CONDITIONAL_BATCHES: usize = 200;

/// Reads every condition against the transformer (unknown columns and categories, ranges
/// on discrete columns, ids), refusing two different values asked of one column.
pub fn resolve_all(
    transformer: &DataTransformer,
    conditions: &[Condition],
) -> Result<Vec<Resolved>> {
    for (i, c) in conditions.iter().enumerate() {
        if let Some(other) = conditions[..i].iter().find(|o| {
            o.column == c.column
                && matches!((o.equality(), c.equality()), (Some(a), Some(b)) if a != b)
        }) {
            return Err(EngineError::InvalidCondition(format!(
                "column {:?} cannot equal both {:?} and {:?}",
                c.column,
                other.equality().unwrap_or_default(),
                c.equality().unwrap_or_default()
            )));
        }
    }
    conditions.iter().map(|c| transformer.resolve(c)).collect()
}

/// `n` decoded rows that meet every condition: `draw(rows, rng)` produces encoded rows (at
/// least `batch` per try), of which the matching ones are kept. After
/// [`MAX_CONDITIONAL_BATCHES`] tries without `n` rows it fails, naming the conditions and
/// how rare each was in the real data. Each batch is decoded in the shares
/// `shares` says.
pub fn sample_matching(
    transformer: &DataTransformer,
    n: usize,
    batch: usize,
    conditions: &[Resolved],
    seed: u64,
    shares: Shares,
    mut draw: impl FnMut(usize, &mut EngineRng) -> Result<Vec<f32>>,
) -> Result<Table> {
    let mut rng = rng_for(seed, 11);
    let mut out = Table::default();
    let mut have = 0;
    for attempt in 0..MAX_CONDITIONAL_BATCHES {
        if have >= n {
            break;
        }
        let want = (n - have).max(batch);
        let data = draw(want, &mut rng)?;
        let decoded =
            transformer.inverse(&data, want, seed.wrapping_add(attempt as u64), shares)?;
        let keep: Vec<usize> = (0..want)
            .filter(|&i| conditions.iter().all(|c| transformer.meets(&decoded, c, i)))
            .take(n - have)
            .collect();
        have += keep.len();
        out.append(decoded.take_rows(&keep))
            .expect("tables decoded by the same transformer have the same columns");
    }
    if have < n {
        return Err(too_rare(have, n, conditions));
    }
    transformer.regenerate_ids(&mut out);
    Ok(out)
}

/// The error of conditions a model could not meet: each with its share of the real rows.
fn too_rare(have: usize, n: usize, conditions: &[Resolved]) -> EngineError {
    let asked: Vec<String> = conditions.iter().map(|c| c.condition.to_string()).collect();
    let shares: Vec<String> = conditions
        .iter()
        .map(|c| match c.real_share {
            Some(s) if s > 0.0 => format!("{} in {:.1}% of the real rows", c.condition, s * 100.0),
            Some(_) => format!("{} in under 0.5% of the real rows", c.condition),
            None => format!("{}: its share of the real rows is not known", c.condition),
        })
        .collect();
    EngineError::InvalidCondition(format!(
        "only {have} of {n} rows met {} after {MAX_CONDITIONAL_BATCHES} batches: too rare for this \
         model ({})",
        asked.join(" and "),
        shares.join("; ")
    ))
}
