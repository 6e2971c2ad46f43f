//! Conditional sampling by rejection, shared by every model: draw batches, decode them,
//! keep the rows that meet every condition, stack them.

use synth_table::Table;

use crate::error::{EngineError, Result};
use crate::random::{EngineRng, rng_for};
use crate::transformer::DataTransformer;

/// Batches tried by conditional sampling before a condition is declared too rare.
pub const MAX_CONDITIONAL_BATCHES: usize = 200;

/// Checks `column = value` conditions against the transformer (unknown columns,
/// non-discrete columns, unknown categories, a column given two values) and returns the
/// (discrete column, category) slot of each.
pub fn condition_slots(
    transformer: &DataTransformer,
    conditions: &[(String, String)],
) -> Result<Vec<(usize, usize)>> {
    let mut slots = Vec::with_capacity(conditions.len());
    for (i, (column, value)) in conditions.iter().enumerate() {
        if let Some((_, other)) = conditions[..i]
            .iter()
            .find(|(c, v)| c == column && v != value)
        {
            return Err(EngineError::InvalidCondition(format!(
                "column {column:?} cannot equal both {other:?} and {value:?}"
            )));
        }
        slots.push(transformer.condition_slot(column, value)?);
    }
    Ok(slots)
}

/// `n` decoded rows that meet every condition: `draw(rows, rng)` produces encoded rows (at
/// least `batch` per try), of which the matching ones are kept. After
/// [`MAX_CONDITIONAL_BATCHES`] tries without `n` rows it fails, saying the combination is
/// too rare for this model.
pub fn sample_matching(
    transformer: &DataTransformer,
    n: usize,
    batch: usize,
    conditions: &[(String, String)],
    seed: u64,
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
        let decoded = transformer.inverse(&data, want, seed.wrapping_add(attempt as u64))?;
        let keep: Vec<usize> = (0..want)
            .filter(|&i| {
                conditions.iter().all(|(column, value)| {
                    let col = decoded
                        .column(column)
                        .expect("decoded tables have every column");
                    transformer.matches(col, i, value)
                })
            })
            .take(n - have)
            .collect();
        have += keep.len();
        out.append(decoded.take_rows(&keep))
            .expect("tables decoded by the same transformer have the same columns");
    }
    if have < n {
        return Err(EngineError::InvalidCondition(format!(
            "only {have} of {n} rows met the conditions after {MAX_CONDITIONAL_BATCHES} batches; \
             the combination is too rare for this model"
        )));
    }
    transformer.regenerate_ids(&mut out);
    Ok(out)
}
