//! Conditional sampling by rejection, shared by every model: draw batches, decode them,
//! keep the rows that meet every condition, stack them.

use synth_table::Table;

use crate::condition::Condition;
use crate::error::{EngineError, Result};
use crate::random::{EngineRng, rng_for};
use crate::transformer::{DataTransformer, Resolved, Shares};

/// Batches tried by conditional sampling before a condition is declared too rare; the rows
/// drawn in all are at most this many times the rows asked for (or a batch, if more).
pub const MAX_CONDITIONAL_BATCHES: usize = 200;

/// The most rows one batch draws, so a rare condition's batches stay within memory.
const MAX_BATCH_ROWS: usize = 50_000;

/// A category condition is met by keeping rows of samples of the whole table, in the real
/// shares of every column, when it is held by at least this share of the real rows...
pub const KEEP_FROM_SHARE: f64 = 0.01;

/// ...and those samples take at most this many rows (about rows wanted / share, 5–8 s of
/// sampling); otherwise it is asked of a model that takes a condition (CTGAN's conditional
/// vector), whose rows come in the shares the model draws, which it learns only roughly.
/// On a 100-epoch CTGAN of loans, 1,000 rows of each of grades B, D and F (27%, 13% and 3%
/// of the rows) scored 0.04–0.05 higher (SDMetrics, against the real rows of that grade)
/// kept than asked.
pub const KEEP_FROM_ROWS: f64 = 500_000.0;

/// The category condition to ask of a model that takes one, for `n` rows: the first that
/// is not kept from whole samples ([`KEEP_FROM_SHARE`], [`KEEP_FROM_ROWS`]), or whose real
/// share the model does not know.
pub fn model_input(conditions: &[Resolved], n: usize) -> Option<(usize, usize)> {
    let kept = |p: f64| p >= KEEP_FROM_SHARE && n as f64 / p <= KEEP_FROM_ROWS;
    conditions
        .iter()
        .filter(|r| !r.real_share.is_some_and(kept))
        .find_map(|r| r.slot)
}

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
/// least `batch` per try), of which the matching ones are kept. The first try draws the
/// rows still wanted; each later one enough for them at the rate met so far (with a fifth
/// to spare). After [`MAX_CONDITIONAL_BATCHES`] tries, or that many times `n` rows drawn,
/// without `n` rows it fails, naming the conditions and how rare each was in the real data.
/// Each batch is decoded in the shares `shares` says.
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
    let (mut have, mut drawn) = (0, 0);
    let budget = MAX_CONDITIONAL_BATCHES * n.max(batch);
    for attempt in 0..MAX_CONDITIONAL_BATCHES {
        if have >= n || drawn >= budget {
            break;
        }
        let left = (n - have) as f64;
        let want = if drawn == 0 {
            left
        } else if have == 0 {
            f64::INFINITY
        } else {
            (left * drawn as f64 / have as f64 * 1.2).ceil()
        };
        let want = (want.min(MAX_BATCH_ROWS as f64) as usize)
            .max(batch)
            .min(budget - drawn);
        drawn += want;
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
        return Err(too_rare(have, n, drawn, conditions));
    }
    transformer.regenerate_ids(&mut out);
    Ok(out)
}

/// The error of conditions a model could not meet: each with its share of the real rows.
fn too_rare(have: usize, n: usize, drawn: usize, conditions: &[Resolved]) -> EngineError {
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
        "only {have} of {n} rows met {} in {drawn} rows drawn: too rare for this \
         model ({})",
        asked.join(" and "),
        shares.join("; ")
    ))
}

#[cfg(test)]
mod tests {
    use synth_table::{ColumnData, SdType};

    use super::*;
    use crate::test_support::table_of;
    use crate::transformer::TransformerOptions;

    /// 400 rows of `kind`: 20 (5%) `b`, the rest `a`.
    fn transformer() -> DataTransformer {
        let kinds = (0..400)
            .map(|i| Some(if i % 20 == 0 { "b" } else { "a" }.to_owned()))
            .collect();
        let (t, m) = table_of(vec![("kind", SdType::Categorical, ColumnData::Str(kinds))]);
        DataTransformer::fit(&t, &m, &TransformerOptions::default(), 0).unwrap()
    }

    #[test]
    fn a_common_category_is_kept_from_whole_samples_and_a_rare_one_asked_of_the_model() {
        let t = transformer();
        let b = t.resolve(&Condition::equals("kind", "b")).unwrap();
        assert_eq!(b.real_share, Some(0.05));
        assert_eq!(model_input(std::slice::from_ref(&b), 1000), None);
        // 100,000 rows at 5% would take 2,000,000 drawn.
        assert_eq!(model_input(std::slice::from_ref(&b), 100_000), b.slot);
        let rare = Resolved {
            real_share: Some(0.009),
            ..b.clone()
        };
        assert_eq!(model_input(&[b.clone(), rare.clone()], 10), rare.slot);
        let unknown = Resolved {
            real_share: None,
            ..b
        };
        assert_eq!(
            model_input(std::slice::from_ref(&unknown), 10),
            unknown.slot
        );
    }

    /// `n` rows with `kind = b` (in batches of at least `batch`) from a model that leans to
    /// `a` in every row, decoded in `shares` (real shares make 5% of each batch `b`); and
    /// the size of each batch drawn.
    fn sample_b(n: usize, batch: usize, shares: Shares) -> (Result<Table>, Vec<usize>) {
        let t = transformer();
        let b = [t.resolve(&Condition::equals("kind", "b")).unwrap()];
        let (w, mut sizes) = (t.output_width(), Vec::new());
        let out = sample_matching(&t, n, batch, &b, 1, shares, |want, _| {
            sizes.push(want);
            Ok((0..want * w)
                .map(|x| if x % w == 0 { 1.0 } else { 0.0 })
                .collect())
        });
        (out, sizes)
    }

    #[test]
    fn later_batches_are_sized_by_the_rate_met_so_far() {
        let (out, sizes) = sample_b(200, 50, Shares::Real);
        assert_eq!(out.unwrap().n_rows(), 200);
        // 10 of the first 200 rows; then 190 more at 5%, with a fifth to spare.
        assert_eq!(sizes, [200, 4560]);
    }

    #[test]
    fn a_condition_never_met_fails_within_its_budget_of_rows() {
        let (out, sizes) = sample_b(10, 50, Shares::AsDrawn);
        // 200 batches of 50 rows at most: 50, then the 9,950 left in one.
        assert_eq!(sizes, [50, 9_950]);
        let text = out.unwrap_err().to_string();
        assert!(
            text.contains("only 0 of 10 rows met kind=b in 10000 rows drawn"),
            "{text}"
        );
        assert!(text.contains("5.0% of the real rows"), "{text}");
    }
}
