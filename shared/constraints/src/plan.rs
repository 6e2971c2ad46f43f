//! The fitted plan: which constraints are enforced by construction, through a reversible
//! change of the columns the model learns, and the check every written-back row passes.
//!
//! - Inequality `low <= high`: the model learns `high − low` (never negative in the real
//!   table), written back as `low + max(d, gap)` (`gap` 0, or when strict the smallest
//!   positive real difference).
//! - Range `low <= middle <= high`: `high` as above, `middle` as the fraction of the way
//!   from `low` to `high`, clamped to 0..1.
//! - FixedIncrements: the model learns the multiple, written back times the increment.
//! - FixedCombinations: the columns become one category per combination the real table has.
//! - ScalarInequality, ScalarRange, Positive, Negative: values past a bound are clipped onto
//!   it (onto the nearest real value, when strict).
//! - Unique, and any of the above that cannot own its column (a column another constraint
//!   already changes, a cycle, nulls the change cannot carry): by rejection.
//!
//! The steps read the real table as it is when going forward, and are undone in an order
//! where every column a step reads is written back before it: chains (`a <= b`, `b <= c`)
//! compose.

use std::collections::{HashMap, HashSet};

use serde::{Deserialize, Serialize};
use synth_table::{Column, ColumnData, ColumnMetadata, Metadata, SdType, Table};

use crate::error::{ConstraintError, Result};
use crate::rules::{Checked, Rule, Violation, columns, key};
use crate::spec::{Constraint, validate};
use crate::values::{Cell, Kind, Shape, column_of, numbers};

/// What to do with real rows that break a declared constraint.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum OnViolation {
    /// Refuse to fit, naming each broken constraint with its count and examples.
    #[default]
    Fail,
    /// Leave those rows out of training, and say how many.
    Drop,
}

/// How an Inequality's or a Range's ordered columns are learned. Measured on the shared
/// tables: CTGAN gains from learning the difference (seattle_weather +0.06 quality), TVAE
/// loses (-0.02) and keeps its quality when it learns the columns as they are and only the
/// rare out-of-order value is moved; so the engine picks per model.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Ordering {
    /// `high` as `high − low`, `middle` as its fraction of the way from `low` to `high`.
    #[default]
    Reparametrise,
    /// The columns as they are; written back, `high` is raised to `low` (plus the gap) and
    /// `middle` moved into `low..=high` where they are not.
    Clamp,
}

/// One reversible change of the table the model learns.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
enum Step {
    Difference {
        low: String,
        high: String,
        kind: Kind,
        gap: f64,
        #[serde(default)]
        ordering: Ordering,
    },
    Fraction {
        low: String,
        middle: String,
        high: String,
        kind: Kind,
        strict: bool,
        #[serde(default)]
        ordering: Ordering,
    },
    Increment {
        column: String,
        increment: f64,
        kind: Kind,
    },
    Joint {
        columns: Vec<String>,
        shapes: Vec<Shape>,
        name: String,
        combos: Vec<Vec<Cell>>,
    },
    Clip {
        column: String,
        low: Option<f64>,
        high: Option<f64>,
        kind: Kind,
    },
}

impl Step {
    /// The columns the step writes back.
    fn owns(&self) -> Vec<&str> {
        match self {
            Step::Difference { high, .. } => vec![high],
            Step::Fraction { middle, .. } => vec![middle],
            Step::Increment { column, .. } => vec![column],
            Step::Joint { columns, .. } => columns.iter().map(String::as_str).collect(),
            Step::Clip { .. } => vec![],
        }
    }

    /// The columns it reads when written back.
    fn reads(&self) -> Vec<&str> {
        match self {
            Step::Difference { low, .. } => vec![low],
            Step::Fraction { low, high, .. } => vec![low, high],
            Step::Clip { column, .. } => vec![column],
            Step::Increment { .. } | Step::Joint { .. } => vec![],
        }
    }
}

/// A fitted plan; saved beside the model, so a loaded model keeps its constraints.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Plan {
    rules: Vec<Checked>,
    /// In the order they are undone.
    steps: Vec<Step>,
    /// The real table's columns, in order, with their metadata and type.
    columns: Vec<(String, ColumnMetadata, Shape)>,
}

/// A plan fitted on a real table, and what the model learns.
#[derive(Debug, Clone)]
pub struct Prepared {
    pub plan: Plan,
    /// The real rows kept, changed as the plan says.
    pub table: Table,
    pub metadata: Metadata,
    /// The constraints the real table broke (with [`OnViolation::Drop`]: the rows left out).
    pub dropped: Vec<Violation>,
}

impl Plan {
    /// Checks the constraints against the metadata and the real table, and plans how each
    /// is enforced (ordered columns reparametrised). Rows that break one are refused or left
    /// out as `policy` says.
    pub fn fit(
        real: &Table,
        metadata: &Metadata,
        constraints: &[Constraint],
        policy: OnViolation,
    ) -> Result<Prepared> {
        Self::fit_with(real, metadata, constraints, policy, Ordering::default())
    }

    /// As [`Plan::fit`], with ordered columns learned as `ordering` says.
    pub fn fit_with(
        real: &Table,
        metadata: &Metadata,
        constraints: &[Constraint],
        policy: OnViolation,
        ordering: Ordering,
    ) -> Result<Prepared> {
        validate(constraints, metadata)?;
        let rules = checked(constraints, metadata, real)?;
        let mut violations = Vec::new();
        let mut keep = vec![true; real.n_rows()];
        for rule in &rules {
            if let Some(v) = rule.violation(real)? {
                violations.push(v);
                for (k, ok) in keep.iter_mut().zip(rule.mask(real)?) {
                    *k &= ok;
                }
            }
        }
        if !violations.is_empty() && policy == OnViolation::Fail {
            return Err(ConstraintError::Violated(violations));
        }
        let rows: Vec<usize> = (0..keep.len()).filter(|&r| keep[r]).collect();
        let kept = real.take_rows(&rows);
        let rules = if violations.is_empty() {
            rules
        } else {
            checked(constraints, metadata, &kept)?
        };
        let columns = kept
            .columns
            .iter()
            .filter_map(|c| {
                let meta = metadata.column(&c.name)?;
                Some((c.name.clone(), meta.clone(), Shape::of(&c.data)))
            })
            .collect();
        let plan = Plan {
            steps: order(plan_steps(&rules, &kept, ordering)?),
            rules,
            columns,
        };
        let (table, metadata) = plan.forward(&kept, metadata)?;
        Ok(Prepared {
            plan,
            table,
            metadata,
            dropped: violations,
        })
    }

    /// The constraints, as declared.
    pub fn constraints(&self) -> Vec<&Constraint> {
        self.rules.iter().map(|r| &r.constraint).collect()
    }

    /// The real table as the model learns it, and its metadata.
    fn forward(&self, real: &Table, metadata: &Metadata) -> Result<(Table, Metadata)> {
        let mut table = real.clone();
        let mut meta = metadata.clone();
        for step in &self.steps {
            forward_step(step, real, &mut table, &mut meta)?;
        }
        Ok((table, meta))
    }

    /// A table the model sampled, written back as the real table's columns.
    pub fn reverse(&self, sampled: &Table) -> Result<Table> {
        let mut out: HashMap<String, ColumnData> = sampled
            .columns
            .iter()
            .map(|c| (c.name.clone(), c.data.clone()))
            .collect();
        let n = sampled.n_rows();
        for step in &self.steps {
            reverse_step(step, &mut out, n)?;
        }
        let columns = self
            .columns
            .iter()
            .map(|(name, _, _)| {
                out.remove(name)
                    .map(|data| Column {
                        name: name.clone(),
                        data,
                    })
                    .ok_or_else(|| {
                        ConstraintError::Invalid(format!("the sample lacks column {name:?}"))
                    })
            })
            .collect::<Result<Vec<_>>>()?;
        Table::new(columns).map_err(ConstraintError::Invalid)
    }

    /// A check of written-back rows that remembers what Unique has seen across batches.
    pub fn sieve(&self) -> Sieve<'_> {
        Sieve {
            plan: self,
            seen: vec![HashSet::new(); self.rules.len()],
            slots: self.rules.iter().map(|_| Slots::default()).collect(),
        }
    }

    /// Whether the model learns `column` as it is (so a condition on it goes to the model).
    pub fn learns_as_is(&self, column: &str) -> bool {
        !self
            .steps
            .iter()
            .any(|s| !matches!(s, Step::Clip { .. }) && s.owns().contains(&column))
    }

    /// Conditions on the columns of a FixedCombinations, all given, as the one condition
    /// on the category the model learns; `None` when they are not all given. An error when
    /// the real table never has them together.
    pub fn joint_condition(
        &self,
        conditions: &[(String, String)],
    ) -> Result<Vec<(String, String)>> {
        let given: HashMap<&str, &str> = conditions
            .iter()
            .map(|(c, v)| (c.as_str(), v.as_str()))
            .collect();
        let mut out = Vec::new();
        for step in &self.steps {
            let Step::Joint {
                columns,
                name,
                combos,
                ..
            } = step
            else {
                continue;
            };
            if !columns.iter().all(|c| given.contains_key(c.as_str())) {
                continue;
            }
            let wanted: Vec<Option<&str>> =
                columns.iter().map(|c| Some(given[c.as_str()])).collect();
            let found = combos.iter().position(|combo| {
                combo
                    .iter()
                    .map(Cell::text)
                    .zip(&wanted)
                    .all(|(have, want)| have.as_deref() == *want)
            });
            match found {
                Some(i) => out.push((name.clone(), i.to_string())),
                None => {
                    return Err(ConstraintError::Unmet(format!(
                        "no real row has {} together (FixedCombinations({}))",
                        columns
                            .iter()
                            .map(|c| format!("{c}={}", given[c.as_str()]))
                            .collect::<Vec<_>>()
                            .join(", "),
                        columns.join(", ")
                    )));
                }
            }
        }
        Ok(out)
    }

    /// The columns of the FixedCombinations that folds `column` into one category.
    pub fn joint_group(&self, column: &str) -> Option<&[String]> {
        self.steps.iter().find_map(|s| match s {
            Step::Joint { columns, .. } if columns.iter().any(|c| c == column) => {
                Some(columns.as_slice())
            }
            _ => None,
        })
    }

    /// The metadata of one of the real table's columns.
    pub fn metadata_of(&self, column: &str) -> Option<&ColumnMetadata> {
        self.columns
            .iter()
            .find(|(n, _, _)| n == column)
            .map(|(_, m, _)| m)
    }
}

/// Keeps the rows that meet every constraint, remembering Unique's keys between calls.
pub struct Sieve<'p> {
    plan: &'p Plan,
    seen: Vec<HashSet<Vec<Cell>>>,
    slots: Vec<Slots>,
}

impl Sieve<'_> {
    /// The rows of `table` (written back) that meet every constraint and repeat no key kept
    /// before; and for each constraint, how many rows it refused. A repeated value of a
    /// one-column Unique on a numerical or datetime grid first moves to the nearest free
    /// grid value (in `table`), so such a key never runs out.
    pub fn keep(&mut self, table: &mut Table) -> Result<(Vec<usize>, Vec<usize>)> {
        let n = table.n_rows();
        for (i, rule) in self.plan.rules.iter().enumerate() {
            if let Rule::Unique {
                columns: names,
                grid: Some(kind),
            } = &rule.rule
            {
                move_repeats(table, &names[0], *kind, &mut self.slots[i])?;
            }
        }
        let mut ok = vec![true; n];
        let mut refused = vec![0; self.plan.rules.len()];
        for (i, rule) in self.plan.rules.iter().enumerate() {
            if matches!(rule.rule, Rule::Unique { .. }) {
                continue;
            }
            for (r, pass) in rule.mask(table)?.into_iter().enumerate() {
                if !pass && ok[r] {
                    refused[i] += 1;
                    ok[r] = false;
                }
            }
        }
        for (i, rule) in self.plan.rules.iter().enumerate() {
            let Rule::Unique { columns: names, .. } = &rule.rule else {
                continue;
            };
            let cols = columns(table, names)?;
            for (r, pass) in ok.iter_mut().enumerate() {
                if *pass && !self.seen[i].insert(key(&cols, r)) {
                    *pass = false;
                    refused[i] += 1;
                }
            }
        }
        Ok(((0..n).filter(|&r| ok[r]).collect(), refused))
    }
}

/// The grid values a one-column Unique has handed out, and for each taken one where to
/// look next, up and down (a disjoint-set "next free slot", path-compressed), so moving a
/// repeat is near constant time even when the model repeats a few values many times.
#[derive(Default)]
struct Slots {
    taken: HashSet<i64>,
    up: HashMap<i64, i64>,
    down: HashMap<i64, i64>,
}

impl Slots {
    /// The nearest free slot from `i` in one direction (`dir` ±1).
    fn free_from(&mut self, i: i64, dir: i64) -> i64 {
        let next = if dir > 0 {
            &mut self.up
        } else {
            &mut self.down
        };
        let mut path = Vec::new();
        let mut at = i;
        while self.taken.contains(&at) {
            path.push(at);
            at = next.get(&at).copied().unwrap_or(at + dir);
        }
        for p in path {
            next.insert(p, at);
        }
        at
    }

    /// Takes `i`, or the free slot nearest it (up on a tie).
    fn take(&mut self, i: i64) -> i64 {
        let got = if self.taken.contains(&i) {
            let (up, down) = (self.free_from(i, 1), self.free_from(i, -1));
            if up - i <= i - down { up } else { down }
        } else {
            i
        };
        self.taken.insert(got);
        got
    }
}

/// Moves each value of `column` that an earlier row (of this batch or one before) took to
/// the nearest free grid value.
fn move_repeats(table: &mut Table, column: &str, kind: Kind, slots: &mut Slots) -> Result<()> {
    let Some(c) = table.columns.iter_mut().find(|c| c.name == column) else {
        return Err(ConstraintError::Invalid(format!("no column {column:?}")));
    };
    let Some(values) = numbers(&c.data) else {
        return Ok(());
    };
    let step = kind.step();
    let moved = values.into_iter().map(|v| {
        v.filter(|x| x.is_finite())
            .map(|x| slots.take((kind.snap(x) / step).round() as i64) as f64 * step)
    });
    c.data = kind.column(moved);
    Ok(())
}

fn checked(constraints: &[Constraint], metadata: &Metadata, real: &Table) -> Result<Vec<Checked>> {
    constraints
        .iter()
        .map(|c| Checked::new(c, metadata, real))
        .collect()
}

/// The real table's numbers in `name`, and their kind.
fn number_column(real: &Table, name: &str) -> Result<(Vec<Option<f64>>, Kind)> {
    let data = &columns(real, &[name])?[0];
    match (numbers(data), Kind::of(data)) {
        (Some(v), Some(k)) => Ok((v, k)),
        _ => Err(ConstraintError::Invalid(format!(
            "column {name:?} is not numerical or datetime"
        ))),
    }
}

/// Whether some row has `dependent` but lacks one of `inputs` (a change of `dependent`
/// through them could not carry it).
fn nulls_block(real: &Table, dependent: &str, inputs: &[&str]) -> Result<bool> {
    let dep = &columns(real, &[dependent])?[0];
    let ins = columns(real, inputs)?;
    Ok((0..real.n_rows()).any(|r| {
        Cell::of(dep, r) != Cell::Null && ins.iter().any(|c| Cell::of(c, r) == Cell::Null)
    }))
}

/// The steps for the checked constraints, each owning its columns once.
fn plan_steps(rules: &[Checked], real: &Table, ordering: Ordering) -> Result<Vec<Step>> {
    let mut steps: Vec<Step> = Vec::new();
    let owned = |steps: &[Step], c: &str| steps.iter().any(|s| s.owns().contains(&c));
    for rule in rules {
        match &rule.constraint {
            Constraint::Inequality(c) => {
                let (low, high) = (&c.low_column_name, &c.high_column_name);
                if owned(&steps, high)
                    || depends_on(&steps, low, high)
                    || nulls_block(real, high, &[low])?
                {
                    continue;
                }
                steps.push(difference(real, low, high, c.strict_boundaries, ordering)?);
            }
            Constraint::Range(c) => {
                let (low, mid, high) = (
                    &c.low_column_name,
                    &c.middle_column_name,
                    &c.high_column_name,
                );
                if owned(&steps, mid)
                    || depends_on(&steps, low, mid)
                    || depends_on(&steps, high, mid)
                    || nulls_block(real, mid, &[low, high])?
                {
                    continue;
                }
                // `high` may already be `low` plus a difference (an Inequality on the same
                // pair); otherwise it becomes one here, when it can.
                if !owned(&steps, high)
                    && !depends_on(&steps, low, high)
                    && !nulls_block(real, high, &[low])?
                {
                    steps.push(difference(real, low, high, c.strict_boundaries, ordering)?);
                }
                steps.push(Step::Fraction {
                    low: low.clone(),
                    middle: mid.clone(),
                    high: high.clone(),
                    kind: number_column(real, mid)?.1,
                    strict: c.strict_boundaries,
                    ordering,
                });
            }
            Constraint::FixedIncrements(c) if !owned(&steps, &c.column_name) => {
                steps.push(Step::Increment {
                    column: c.column_name.clone(),
                    increment: c.increment_value,
                    kind: number_column(real, &c.column_name)?.1,
                });
            }
            Constraint::FixedCombinations(c)
                if !c.column_names.iter().any(|n| owned(&steps, n)) =>
            {
                steps.push(joint(rule, real)?);
            }
            Constraint::ScalarInequality(_)
            | Constraint::ScalarRange(_)
            | Constraint::Positive(_)
            | Constraint::Negative(_) => steps.push(clip(rule, real)?),
            _ => {}
        }
    }
    Ok(steps)
}

/// Whether `column` is written back from `target` (directly or through other steps).
fn depends_on(steps: &[Step], column: &str, target: &str) -> bool {
    if column == target {
        return true;
    }
    steps
        .iter()
        .filter(|s| s.owns().contains(&column))
        .flat_map(|s| s.reads())
        .any(|input| depends_on(steps, input, target))
}

fn difference(
    real: &Table,
    low: &str,
    high: &str,
    strict: bool,
    ordering: Ordering,
) -> Result<Step> {
    let (lows, _) = number_column(real, low)?;
    let (highs, kind) = number_column(real, high)?;
    let gap = if strict {
        lows.iter()
            .zip(&highs)
            .filter_map(|(l, h)| Some(h.as_ref()? - l.as_ref()?))
            .filter(|d| *d > 0.0)
            .fold(f64::INFINITY, f64::min)
    } else {
        0.0
    };
    Ok(Step::Difference {
        low: low.into(),
        high: high.into(),
        kind,
        gap: if gap.is_finite() { gap } else { kind.step() },
        ordering,
    })
}

fn joint(rule: &Checked, real: &Table) -> Result<Step> {
    let Rule::Combinations {
        columns: names,
        seen,
    } = &rule.rule
    else {
        unreachable!("a FixedCombinations rule")
    };
    let cols = columns(real, names)?;
    let mut name = names.join("+");
    while real.column(&name).is_some() {
        name.push('#');
    }
    Ok(Step::Joint {
        columns: names.clone(),
        shapes: cols.iter().map(|c| Shape::of(c)).collect(),
        name,
        combos: seen.clone(),
    })
}

/// Clips onto the bounds; a strict bound clips onto the real value nearest it.
fn clip(rule: &Checked, real: &Table) -> Result<Step> {
    let Rule::Bounds { column, low, high } = &rule.rule else {
        unreachable!("a bounds rule")
    };
    let (values, kind) = number_column(real, column)?;
    let real_min = values
        .iter()
        .flatten()
        .copied()
        .fold(f64::INFINITY, f64::min);
    let real_max = values
        .iter()
        .flatten()
        .copied()
        .fold(f64::NEG_INFINITY, f64::max);
    let target = |bound: Option<(f64, bool)>, nearest: f64, towards: f64| {
        bound.map(|(b, strict)| match (strict, kind.step()) {
            (false, _) => b,
            (true, step) if step > 0.0 => b + towards * step,
            (true, _) if nearest.is_finite() => nearest,
            (true, _) => b,
        })
    };
    Ok(Step::Clip {
        column: column.clone(),
        low: target(*low, real_min, 1.0),
        high: target(*high, real_max, -1.0),
        kind,
    })
}

/// The steps in an order where each one's inputs are written back before it (clips last).
fn order(steps: Vec<Step>) -> Vec<Step> {
    let (clips, mut rest): (Vec<Step>, Vec<Step>) = steps
        .into_iter()
        .partition(|s| matches!(s, Step::Clip { .. }));
    let mut ordered: Vec<Step> = Vec::new();
    while !rest.is_empty() {
        let ready = rest
            .iter()
            .position(|s| {
                s.reads()
                    .iter()
                    .all(|input| !rest.iter().any(|o| o.owns().contains(input)))
            })
            .expect("steps form no cycle: depends_on keeps them out");
        ordered.push(rest.remove(ready));
    }
    ordered.extend(clips);
    ordered
}

fn numeric_meta(kind: Kind) -> ColumnMetadata {
    let mut m = ColumnMetadata::new(SdType::Numerical);
    m.computer_representation = Some(
        match kind {
            Kind::Float { .. } => "Float",
            Kind::Int | Kind::Datetime { .. } => "Int64",
        }
        .into(),
    );
    m
}

fn set_meta(meta: &mut Metadata, name: &str, m: ColumnMetadata) {
    if let Some((_, slot)) = meta.columns.iter_mut().find(|(n, _)| n == name) {
        *slot = m;
    }
}

fn replace(table: &mut Table, name: &str, data: ColumnData) {
    if let Some(c) = table.columns.iter_mut().find(|c| c.name == name) {
        c.data = data;
    }
}

fn forward_step(step: &Step, real: &Table, table: &mut Table, meta: &mut Metadata) -> Result<()> {
    match step {
        Step::Difference {
            ordering: Ordering::Clamp,
            ..
        }
        | Step::Fraction {
            ordering: Ordering::Clamp,
            ..
        } => {}
        Step::Difference {
            low, high, kind, ..
        } => {
            let (l, _) = number_column(real, low)?;
            let (h, _) = number_column(real, high)?;
            let d = l
                .iter()
                .zip(&h)
                .map(|(l, h)| Some(h.as_ref()? - l.as_ref()?));
            let learned = match kind {
                Kind::Float { .. } => Kind::Float { decimals: None },
                _ => Kind::Int,
            };
            replace(table, high, learned.column(d));
            set_meta(meta, high, numeric_meta(learned));
        }
        Step::Fraction {
            low, middle, high, ..
        } => {
            let (l, _) = number_column(real, low)?;
            let (m, _) = number_column(real, middle)?;
            let (h, _) = number_column(real, high)?;
            let f = (0..l.len()).map(|r| {
                let (l, m, h) = (l[r]?, m[r]?, h[r]?);
                Some(if h > l { (m - l) / (h - l) } else { 0.0 })
            });
            let learned = Kind::Float { decimals: None };
            replace(table, middle, learned.column(f));
            set_meta(meta, middle, numeric_meta(learned));
        }
        Step::Increment {
            column, increment, ..
        } => {
            let (x, _) = number_column(real, column)?;
            let q = x.iter().map(|v| v.map(|v| (v / increment).round()));
            replace(table, column, Kind::Int.column(q));
            set_meta(meta, column, numeric_meta(Kind::Int));
        }
        Step::Joint {
            columns: names,
            name,
            combos,
            ..
        } => join(real, table, meta, names, name, combos)?,
        Step::Clip { .. } => {}
    }
    Ok(())
}

/// The columns `names` of `table` (and `meta`) replaced, where the first was, by one
/// categorical column `name`: each row's index in `combos`.
fn join(
    real: &Table,
    table: &mut Table,
    meta: &mut Metadata,
    names: &[String],
    name: &str,
    combos: &[Vec<Cell>],
) -> Result<()> {
    let cols = columns(real, names)?;
    let index: HashMap<&Vec<Cell>, usize> =
        combos.iter().enumerate().map(|(i, c)| (c, i)).collect();
    let joint = (0..real.n_rows())
        .map(|r| index.get(&key(&cols, r)).map(|i| i.to_string()))
        .collect();
    let at = table
        .columns
        .iter()
        .position(|c| c.name == names[0])
        .unwrap_or(0);
    table.columns.retain(|c| !names.contains(&c.name));
    table.columns.insert(
        at.min(table.columns.len()),
        Column {
            name: name.to_owned(),
            data: ColumnData::Str(joint),
        },
    );
    let meta_at = meta
        .columns
        .iter()
        .position(|(n, _)| n == &names[0])
        .unwrap_or(0);
    meta.columns.retain(|(n, _)| !names.contains(n));
    meta.columns.insert(
        meta_at.min(meta.columns.len()),
        (name.to_owned(), ColumnMetadata::new(SdType::Categorical)),
    );
    Ok(())
}

fn numbers_of(out: &HashMap<String, ColumnData>, name: &str) -> Result<Vec<Option<f64>>> {
    out.get(name).and_then(numbers).ok_or_else(|| {
        ConstraintError::Invalid(format!("the sample lacks numerical column {name:?}"))
    })
}

/// The joint column `name` of a sample written back as the columns `names` (of
/// `shapes`) of the combination each row's index names.
fn split(
    out: &mut HashMap<String, ColumnData>,
    n: usize,
    names: &[String],
    shapes: &[Shape],
    name: &str,
    combos: &[Vec<Cell>],
) -> Result<()> {
    let joint = out
        .remove(name)
        .ok_or_else(|| ConstraintError::Invalid(format!("the sample lacks column {name:?}")))?;
    let picked: Vec<Option<&Vec<Cell>>> = (0..n)
        .map(|r| {
            let i: usize = Cell::of(&joint, r).text()?.parse().ok()?;
            combos.get(i)
        })
        .collect();
    for (j, (col, shape)) in names.iter().zip(shapes).enumerate() {
        let cells = picked
            .iter()
            .map(|p| p.map_or(Cell::Null, |combo| combo[j].clone()));
        out.insert(col.clone(), column_of(*shape, cells));
    }
    Ok(())
}

fn reverse_step(step: &Step, out: &mut HashMap<String, ColumnData>, n: usize) -> Result<()> {
    match step {
        Step::Difference {
            low,
            high,
            kind,
            gap,
            ordering,
        } => {
            let l = numbers_of(out, low)?;
            let d = numbers_of(out, high)?;
            let h = l.iter().zip(&d).map(|(l, d)| {
                let (l, d) = ((*l)?, (*d)?);
                let h = match ordering {
                    Ordering::Reparametrise => l + d.max(*gap),
                    Ordering::Clamp => d.max(l + gap),
                };
                Some(kind.snap_within(h, Some(l + gap), None))
            });
            out.insert(high.clone(), kind.column(h));
        }
        Step::Fraction {
            low,
            middle,
            high,
            kind,
            strict,
            ordering,
        } => {
            let l = numbers_of(out, low)?;
            let f = numbers_of(out, middle)?;
            let h = numbers_of(out, high)?;
            let (lo, hi) = if *strict {
                (1e-9, 1.0 - 1e-9)
            } else {
                (0.0, 1.0)
            };
            let m = (0..n).map(|r| {
                let (l, f, h) = (l[r]?, f[r]?, h[r]?);
                let m = match ordering {
                    Ordering::Reparametrise => l + f.clamp(lo, hi) * (h - l),
                    // `f` is the middle value itself here.
                    Ordering::Clamp => f.max(l + lo * (h - l)).min(l + hi * (h - l)),
                };
                Some(kind.snap_within(m, Some(l), Some(h)))
            });
            out.insert(middle.clone(), kind.column(m));
        }
        Step::Increment {
            column,
            increment,
            kind,
        } => {
            let q = numbers_of(out, column)?;
            let x = q.iter().map(|q| q.map(|q| q.round() * increment));
            out.insert(column.clone(), kind.column(x));
        }
        Step::Joint {
            columns: names,
            shapes,
            name,
            combos,
        } => split(out, n, names, shapes, name, combos)?,
        Step::Clip {
            column,
            low,
            high,
            kind,
        } => {
            let x = numbers_of(out, column)?;
            let clipped = x
                .iter()
                .map(|v| v.map(|v| kind.snap_within(v, *low, *high)));
            out.insert(column.clone(), kind.column(clipped));
        }
    }
    Ok(())
}
