//! Constraints made ready to check rows: bounds resolved on their column's number line, and
//! for FixedCombinations the combinations the real table holds. A real table is checked
//! against them at fit (every breaking row counted, a few shown), and every synthetic row
//! before it is kept.

use std::collections::{BTreeMap, HashSet};

use serde::{Deserialize, Serialize};
use synth_table::{ColumnData, Metadata, Table};

use crate::error::{ConstraintError, Result};
use crate::spec::{Constraint, Relation};
use crate::values::{Cell, Kind, numbers, scalar};

/// How many breaking rows a violation shows.
pub const EXAMPLES: usize = 5;

/// What a row must satisfy, per class.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(crate) enum Rule {
    /// Each column at most (below, when strict) the next; a row with a null is not bound.
    Order { columns: Vec<String>, strict: bool },
    /// Within the bounds; each bound says whether it is strict.
    Bounds {
        column: String,
        low: Option<(f64, bool)>,
        high: Option<(f64, bool)>,
    },
    /// The columns' values together are one of these (nulls included).
    Combinations {
        columns: Vec<String>,
        seen: Vec<Vec<Cell>>,
    },
    /// A whole multiple of the increment.
    Increments { column: String, increment: f64 },
    /// No two rows alike in these columns. One numerical or datetime column has the grid
    /// its values keep, so a repeated value can move to the nearest free one.
    Unique {
        columns: Vec<String>,
        grid: Option<Kind>,
    },
}

/// One constraint and its rule.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Checked {
    pub constraint: Constraint,
    pub(crate) rule: Rule,
}

/// Rows of a real table that break a constraint.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Violation {
    /// The constraint, as a person reads it: `Inequality(checkin <= checkout)`.
    pub constraint: String,
    /// How many rows break it.
    pub rows: usize,
    /// The first few of them: the row's 0-based index and its values in the constraint's
    /// columns.
    pub examples: Vec<Example>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Example {
    /// The row's 0-based index in the table (the first row after a header is 0).
    pub row: usize,
    pub values: BTreeMap<String, Option<String>>,
}

/// Every combination of `names` the real table has, each once, in order of appearance.
fn combinations(real: &Table, names: &[String]) -> Result<Vec<Vec<Cell>>> {
    let cols = columns(real, names)?;
    let mut seen = HashSet::new();
    Ok((0..real.n_rows())
        .map(|r| key(&cols, r))
        .filter(|k| seen.insert(k.clone()))
        .collect())
}

/// A ScalarRange's bounds as a rule; an error when they do not leave a range.
fn scalar_range(
    constraint: &Constraint,
    column: &str,
    (low, high): (f64, f64),
    strict: bool,
) -> Result<Rule> {
    if low >= high {
        return Err(ConstraintError::Invalid(format!(
            "{}: low_value must be below high_value",
            constraint.describe()
        )));
    }
    Ok(Rule::Bounds {
        column: column.to_owned(),
        low: Some((low, strict)),
        high: Some((high, strict)),
    })
}

impl Checked {
    /// Resolves a constraint (already validated against `metadata`) on the real table.
    pub fn new(constraint: &Constraint, metadata: &Metadata, real: &Table) -> Result<Self> {
        let bound = |v, column: &str| {
            let meta = metadata
                .column(column)
                .ok_or_else(|| ConstraintError::Invalid(format!("no column {column:?}")))?;
            scalar(v, column, meta).map_err(|why| {
                ConstraintError::Invalid(format!("{}: {why}", constraint.describe()))
            })
        };
        let rule = match constraint {
            Constraint::Inequality(c) => Rule::Order {
                columns: vec![c.low_column_name.clone(), c.high_column_name.clone()],
                strict: c.strict_boundaries,
            },
            Constraint::Range(c) => Rule::Order {
                columns: vec![
                    c.low_column_name.clone(),
                    c.middle_column_name.clone(),
                    c.high_column_name.clone(),
                ],
                strict: c.strict_boundaries,
            },
            Constraint::ScalarInequality(c) => {
                let v = bound(&c.value, &c.column_name)?;
                let (low, high) = match c.relation {
                    Relation::Greater => (Some((v, true)), None),
                    Relation::GreaterEqual => (Some((v, false)), None),
                    Relation::Less => (None, Some((v, true))),
                    Relation::LessEqual => (None, Some((v, false))),
                };
                Rule::Bounds {
                    column: c.column_name.clone(),
                    low,
                    high,
                }
            }
            Constraint::ScalarRange(c) => {
                let (low, high) = (
                    bound(&c.low_value, &c.column_name)?,
                    bound(&c.high_value, &c.column_name)?,
                );
                scalar_range(constraint, &c.column_name, (low, high), c.strict_boundaries)?
            }
            Constraint::Positive(c) => Rule::Bounds {
                column: c.column_name.clone(),
                low: Some((0.0, c.strict_boundaries)),
                high: None,
            },
            Constraint::Negative(c) => Rule::Bounds {
                column: c.column_name.clone(),
                low: None,
                high: Some((0.0, c.strict_boundaries)),
            },
            Constraint::FixedCombinations(c) => Rule::Combinations {
                columns: c.column_names.clone(),
                seen: combinations(real, &c.column_names)?,
            },
            Constraint::FixedIncrements(c) => Rule::Increments {
                column: c.column_name.clone(),
                increment: c.increment_value,
            },
            Constraint::Unique(c) => Rule::Unique {
                columns: c.column_names.clone(),
                grid: match c.column_names.as_slice() {
                    [one] => Kind::of(columns(real, &[one])?[0]).filter(|k| k.step() > 0.0),
                    _ => None,
                },
            },
        };
        Ok(Self {
            constraint: constraint.clone(),
            rule,
        })
    }

    /// Whether each row of `table` keeps the rule (for Unique, the first of equal rows
    /// does, the later ones do not).
    pub fn mask(&self, table: &Table) -> Result<Vec<bool>> {
        let n = table.n_rows();
        Ok(match &self.rule {
            Rule::Order {
                columns: names,
                strict,
            } => {
                let cols = number_columns(table, names)?;
                (0..n)
                    .map(|r| {
                        let values: Option<Vec<f64>> = cols.iter().map(|c| c[r]).collect();
                        values.is_none_or(|v| {
                            v.windows(2)
                                .all(|w| if *strict { w[0] < w[1] } else { w[0] <= w[1] })
                        })
                    })
                    .collect()
            }
            Rule::Bounds { column, low, high } => {
                let col = &number_columns(table, std::slice::from_ref(column))?[0];
                col.iter()
                    .map(|v| v.is_none_or(|x| within(x, *low, *high)))
                    .collect()
            }
            Rule::Combinations {
                columns: names,
                seen,
            } => {
                let cols = columns(table, names)?;
                let seen: HashSet<&Vec<Cell>> = seen.iter().collect();
                (0..n).map(|r| seen.contains(&key(&cols, r))).collect()
            }
            Rule::Increments { column, increment } => {
                let col = &number_columns(table, std::slice::from_ref(column))?[0];
                col.iter()
                    .map(|v| v.is_none_or(|x| is_multiple(x, *increment)))
                    .collect()
            }
            Rule::Unique { columns: names, .. } => {
                let cols = columns(table, names)?;
                let mut seen = HashSet::new();
                (0..n).map(|r| seen.insert(key(&cols, r))).collect()
            }
        })
    }

    /// The rows of `table` that break the rule, counted, with a few shown; `None` if none do.
    pub fn violation(&self, table: &Table) -> Result<Option<Violation>> {
        let mask = self.mask(table)?;
        let breaking: Vec<usize> = (0..mask.len()).filter(|&r| !mask[r]).collect();
        if breaking.is_empty() {
            return Ok(None);
        }
        let names = self.constraint.columns();
        let cols = columns(table, &names)?;
        let examples = breaking
            .iter()
            .take(EXAMPLES)
            .map(|&row| Example {
                row,
                values: names
                    .iter()
                    .zip(&cols)
                    .map(|(n, c)| (n.to_string(), Cell::of(c, row).text()))
                    .collect(),
            })
            .collect();
        Ok(Some(Violation {
            constraint: self.constraint.describe(),
            rows: breaking.len(),
            examples,
        }))
    }
}

/// Whether `x` is within the bounds.
pub(crate) fn within(x: f64, low: Option<(f64, bool)>, high: Option<(f64, bool)>) -> bool {
    let above = low.is_none_or(|(b, strict)| if strict { x > b } else { x >= b });
    let below = high.is_none_or(|(b, strict)| if strict { x < b } else { x <= b });
    above && below
}

pub(crate) fn is_multiple(x: f64, increment: f64) -> bool {
    let q = x / increment;
    (q - q.round()).abs() <= 1e-9 * q.abs().max(1.0)
}

/// The named columns of `table`, in that order.
pub(crate) fn columns<'t, S: AsRef<str>>(
    table: &'t Table,
    names: &[S],
) -> Result<Vec<&'t ColumnData>> {
    names
        .iter()
        .map(|n| {
            table
                .column(n.as_ref())
                .map(|c| &c.data)
                .ok_or_else(|| ConstraintError::Invalid(format!("no column {:?}", n.as_ref())))
        })
        .collect()
}

fn number_columns(table: &Table, names: &[String]) -> Result<Vec<Vec<Option<f64>>>> {
    columns(table, names)?
        .into_iter()
        .zip(names)
        .map(|(c, n)| {
            numbers(c).ok_or_else(|| {
                ConstraintError::Invalid(format!("column {n:?} is not numerical or datetime"))
            })
        })
        .collect()
}

/// A row's cells in the given columns.
pub(crate) fn key(cols: &[&ColumnData], row: usize) -> Vec<Cell> {
    cols.iter().map(|c| Cell::of(c, row)).collect()
}

/// The constraints `table` breaks; FixedCombinations are those of `real`. Empty when it
/// keeps them all.
pub fn violations(
    constraints: &[Constraint],
    metadata: &Metadata,
    real: &Table,
    table: &Table,
) -> Result<Vec<Violation>> {
    crate::spec::validate(constraints, metadata)?;
    let mut out = Vec::new();
    for c in constraints {
        if let Some(v) = Checked::new(c, metadata, real)?.violation(table)? {
            out.push(v);
        }
    }
    Ok(out)
}
