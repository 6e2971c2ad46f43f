//! Constraints a real table obeys on every row, suggested to its owner: inequalities
//! between numerical or datetime columns, positivity, whole-number increments, and fixed
//! combinations of low-cardinality columns. Pairs are searched on at most 5,000 rows and
//! 64 columns of a kind, and what they find is checked on every row. Only rules the data
//! shows: an inequality that
//! the columns' ranges alone imply (every `a` below every `b`) is left out, and a missing
//! combination counts only when, were the columns independent, it would have been seen
//! often enough (so shuffled columns suggest none).

use std::borrow::Cow;
use std::collections::{HashMap, HashSet};

use synth_table::{ColumnData, Metadata, SdType, Table};

use crate::spec::{Constraint, FixedCombinations, FixedIncrements, Inequality, Sign};
use crate::values::{Cell, numbers};

/// Rows a pair needs, both non-null, before an inequality is suggested.
const MIN_ROWS: usize = 20;
/// A combination absent from the table shows structure when independence would expect it
/// this many times.
const EXPECTED_ABSENT: f64 = 10.0;
/// Columns with more categories than this are not combined.
const MAX_LEVELS: usize = 50;

/// Rows the pairwise searches look at (evenly spaced); what they find is then checked on
/// every row, so a large upload costs its ingestion pairs × this, not pairs × its rows.
const SAMPLE_ROWS: usize = 5_000;
/// Columns of one kind the pairwise searches consider: the first ones, in table order.
const MAX_PAIR_COLUMNS: usize = 64;

/// The constraints every row of `table` keeps, in a stable order.
pub fn discover(table: &Table, metadata: &Metadata) -> Vec<Constraint> {
    let n = table.n_rows();
    let (sample, full) = if n > SAMPLE_ROWS {
        let rows: Vec<usize> = (0..SAMPLE_ROWS).map(|i| i * n / SAMPLE_ROWS).collect();
        (Cow::Owned(table.take_rows(&rows)), Some(table))
    } else {
        (Cow::Borrowed(table), None)
    };
    let mut out = inequalities(&sample, full, metadata);
    out.extend(signs_and_increments(table, metadata));
    out.extend(combinations(&sample, metadata));
    out
}

fn of_type<'t>(
    table: &'t Table,
    metadata: &Metadata,
    types: &[SdType],
) -> Vec<(&'t str, &'t ColumnData)> {
    table
        .columns
        .iter()
        .filter(|c| {
            // Personal data is generated, not learned: no constraint can hold it.
            metadata
                .column(&c.name)
                .is_some_and(|m| types.contains(&m.sdtype) && !m.is_personal())
        })
        .map(|c| (c.name.as_str(), &c.data))
        .collect()
}

/// [`of_type`], at most [`MAX_PAIR_COLUMNS`] of them: for the searches over pairs.
fn pairable<'t>(
    table: &'t Table,
    metadata: &Metadata,
    types: &[SdType],
) -> Vec<(&'t str, &'t ColumnData)> {
    let mut cols = of_type(table, metadata, types);
    cols.truncate(MAX_PAIR_COLUMNS);
    cols
}

/// `(low, high, strict)` for every ordered pair `sample` keeps (and `full` too, when the
/// sample is only part of it; as strict as `full` allows), less those implied by two others.
fn inequalities(sample: &Table, full: Option<&Table>, metadata: &Metadata) -> Vec<Constraint> {
    let mut found: Vec<(String, String, bool)> = Vec::new();
    for sdtype in [SdType::Numerical, SdType::Datetime] {
        let on = |t: &Table| -> Vec<(String, Vec<Option<f64>>)> {
            pairable(t, metadata, &[sdtype])
                .into_iter()
                .filter_map(|(n, d)| Some((n.to_owned(), numbers(d)?)))
                .collect()
        };
        let cols = on(sample);
        let whole = full.map(on);
        for (i, (a, av)) in cols.iter().enumerate() {
            for (j, (b, bv)) in cols.iter().enumerate() {
                if i == j {
                    continue;
                }
                let strict = match &whole {
                    None => holds_below(av, bv),
                    Some(w) => holds_below(av, bv).and_then(|_| holds_below(&w[i].1, &w[j].1)),
                };
                if let Some(strict) = strict {
                    found.push((a.clone(), b.clone(), strict));
                }
            }
        }
    }
    let pairs: HashSet<(&str, &str)> = found
        .iter()
        .map(|(a, b, _)| (a.as_str(), b.as_str()))
        .collect();
    let implied = |a: &str, c: &str| {
        pairs
            .iter()
            .any(|(x, b)| *x == a && *b != c && pairs.contains(&(*b, c)))
    };
    found
        .iter()
        .filter(|(a, c, _)| !implied(a, c))
        .map(|(a, b, strict)| {
            Constraint::Inequality(Inequality {
                low_column_name: a.clone(),
                high_column_name: b.clone(),
                strict_boundaries: *strict,
            })
        })
        .collect()
}

/// `Some(strict)` when `a <= b` on every row with both, on enough rows, not always equal,
/// and not implied by the ranges.
fn holds_below(a: &[Option<f64>], b: &[Option<f64>]) -> Option<bool> {
    // Most pairs break on an early row: stop there, before collecting anything.
    let mut pairs = a.iter().zip(b).filter_map(|(x, y)| Some(((*x)?, (*y)?)));
    if pairs.any(|(x, y)| x > y) {
        return None;
    }
    let both: Vec<(f64, f64)> = a
        .iter()
        .zip(b)
        .filter_map(|(x, y)| Some(((*x)?, (*y)?)))
        .collect();
    if both.len() < MIN_ROWS {
        return None;
    }
    if both.iter().all(|(x, y)| x == y) {
        return None;
    }
    let max_a = both.iter().map(|p| p.0).fold(f64::NEG_INFINITY, f64::max);
    let min_b = both.iter().map(|p| p.1).fold(f64::INFINITY, f64::min);
    if max_a <= min_b {
        return None;
    }
    Some(both.iter().all(|(x, y)| x < y))
}

fn gcd(a: u64, b: u64) -> u64 {
    if b == 0 { a } else { gcd(b, a % b) }
}

fn signs_and_increments(table: &Table, metadata: &Metadata) -> Vec<Constraint> {
    let mut out = Vec::new();
    for (name, data) in of_type(table, metadata, &[SdType::Numerical]) {
        let Some(values) = numbers(data) else {
            continue;
        };
        let values: Vec<f64> = values.into_iter().flatten().collect();
        if values.len() < MIN_ROWS {
            continue;
        }
        let min = values.iter().copied().fold(f64::INFINITY, f64::min);
        if min >= 0.0 {
            out.push(Constraint::Positive(Sign {
                column_name: name.into(),
                strict_boundaries: min > 0.0,
            }));
        }
        let whole = values.iter().all(|v| v.fract() == 0.0 && v.abs() < 9.0e15);
        let distinct: HashSet<u64> = values.iter().map(|v| v.abs() as u64).collect();
        if whole && distinct.len() >= 3 {
            let step = distinct.iter().fold(0, |g, &v| gcd(g, v));
            if step >= 2 {
                out.push(Constraint::FixedIncrements(FixedIncrements {
                    column_name: name.into(),
                    increment_value: step as f64,
                }));
            }
        }
    }
    out
}

/// Groups of discrete columns whose pairs miss combinations independence would show.
fn combinations(table: &Table, metadata: &Metadata) -> Vec<Constraint> {
    let n = table.n_rows();
    let cols: Vec<(&str, Vec<Cell>)> =
        pairable(table, metadata, &[SdType::Categorical, SdType::Boolean])
            .into_iter()
            .map(|(name, d)| (name, (0..n).map(|r| Cell::of(d, r)).collect::<Vec<_>>()))
            .filter(|(_, cells)| {
                let levels: HashSet<&Cell> = cells.iter().collect();
                (2..=MAX_LEVELS).contains(&levels.len())
            })
            .collect();
    fn counts(cells: &[Cell]) -> HashMap<&Cell, usize> {
        let mut m: HashMap<&Cell, usize> = HashMap::new();
        for c in cells {
            *m.entry(c).or_default() += 1;
        }
        m
    }
    let mut linked: Vec<(usize, usize)> = Vec::new();
    for i in 0..cols.len() {
        for j in i + 1..cols.len() {
            let (ci, cj) = (counts(&cols[i].1), counts(&cols[j].1));
            let seen: HashSet<(&Cell, &Cell)> = cols[i].1.iter().zip(&cols[j].1).collect();
            let structured = ci.iter().any(|(x, nx)| {
                cj.iter().any(|(y, ny)| {
                    let expected = (*nx as f64) * (*ny as f64) / n as f64;
                    expected >= EXPECTED_ABSENT && !seen.contains(&(*x, *y))
                })
            });
            if structured {
                linked.push((i, j));
            }
        }
    }
    // Linked pairs join into groups (connected components), in column order.
    let mut group: Vec<usize> = (0..cols.len()).collect();
    fn root(group: &mut [usize], i: usize) -> usize {
        if group[i] == i {
            i
        } else {
            let r = root(group, group[i]);
            group[i] = r;
            r
        }
    }
    for (i, j) in &linked {
        let (ri, rj) = (root(&mut group, *i), root(&mut group, *j));
        group[ri.max(rj)] = ri.min(rj);
    }
    let mut members: Vec<Vec<usize>> = vec![Vec::new(); cols.len()];
    let in_pair: HashSet<usize> = linked.iter().flat_map(|(i, j)| [*i, *j]).collect();
    for i in 0..cols.len() {
        if in_pair.contains(&i) {
            let r = root(&mut group, i);
            members[r].push(i);
        }
    }
    members
        .into_iter()
        .filter(|m| m.len() >= 2)
        .map(|m| {
            Constraint::FixedCombinations(FixedCombinations {
                column_names: m.iter().map(|&i| cols[i].0.to_owned()).collect(),
            })
        })
        .collect()
}
