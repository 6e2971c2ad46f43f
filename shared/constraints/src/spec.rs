//! The constraints a user declares, in SDV's JSON (`{"constraint_class": …,
//! "constraint_parameters": {…}}`), and their check against the table's metadata: every
//! column named exists and has a type the class works on.

use serde::{Deserialize, Serialize};
use synth_table::{Metadata, SdType};

use crate::error::{ConstraintError, Result};

/// One rule every synthetic row must keep.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(tag = "constraint_class", content = "constraint_parameters")]
pub enum Constraint {
    /// `low <= high` (`<` when strict), two numerical or two datetime columns.
    Inequality(Inequality),
    /// `column <relation> value`.
    ScalarInequality(ScalarInequality),
    /// `low <= middle <= high` (`<` when strict).
    Range(Range),
    /// `low_value <= column <= high_value` (`<` when strict).
    ScalarRange(ScalarRange),
    /// `column >= 0` (`> 0` when strict).
    Positive(Sign),
    /// `column <= 0` (`< 0` when strict).
    Negative(Sign),
    /// The columns' values occur together only as they do in the real table.
    FixedCombinations(FixedCombinations),
    /// Every value is a whole multiple of `increment_value`.
    FixedIncrements(FixedIncrements),
    /// No two rows share their values in these columns.
    Unique(Unique),
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct Inequality {
    pub low_column_name: String,
    pub high_column_name: String,
    #[serde(default)]
    pub strict_boundaries: bool,
}

/// `>`, `>=`, `<` or `<=`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub enum Relation {
    #[serde(rename = ">")]
    Greater,
    #[serde(rename = ">=")]
    GreaterEqual,
    #[serde(rename = "<")]
    Less,
    #[serde(rename = "<=")]
    LessEqual,
}

impl Relation {
    pub fn symbol(self) -> &'static str {
        match self {
            Relation::Greater => ">",
            Relation::GreaterEqual => ">=",
            Relation::Less => "<",
            Relation::LessEqual => "<=",
        }
    }
}

/// A bound: a number, or for a datetime column a date or date-time string.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(untagged)]
pub enum Scalar {
    Number(f64),
    Text(String),
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct ScalarInequality {
    pub column_name: String,
    pub relation: Relation,
    pub value: Scalar,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct Range {
    pub low_column_name: String,
    pub middle_column_name: String,
    pub high_column_name: String,
    #[serde(default = "yes")]
    pub strict_boundaries: bool,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct ScalarRange {
    pub column_name: String,
    pub low_value: Scalar,
    pub high_value: Scalar,
    #[serde(default = "yes")]
    pub strict_boundaries: bool,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct Sign {
    pub column_name: String,
    #[serde(default)]
    pub strict_boundaries: bool,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct FixedCombinations {
    pub column_names: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct FixedIncrements {
    pub column_name: String,
    pub increment_value: f64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct Unique {
    pub column_names: Vec<String>,
}

fn yes() -> bool {
    true
}

impl Constraint {
    /// The class name, as SDV spells it.
    pub fn class(&self) -> &'static str {
        match self {
            Constraint::Inequality(_) => "Inequality",
            Constraint::ScalarInequality(_) => "ScalarInequality",
            Constraint::Range(_) => "Range",
            Constraint::ScalarRange(_) => "ScalarRange",
            Constraint::Positive(_) => "Positive",
            Constraint::Negative(_) => "Negative",
            Constraint::FixedCombinations(_) => "FixedCombinations",
            Constraint::FixedIncrements(_) => "FixedIncrements",
            Constraint::Unique(_) => "Unique",
        }
    }

    /// The columns the rule reads.
    pub fn columns(&self) -> Vec<&str> {
        match self {
            Constraint::Inequality(c) => vec![&c.low_column_name, &c.high_column_name],
            Constraint::ScalarInequality(c) => vec![&c.column_name],
            Constraint::Range(c) => vec![
                &c.low_column_name,
                &c.middle_column_name,
                &c.high_column_name,
            ],
            Constraint::ScalarRange(c) => vec![&c.column_name],
            Constraint::Positive(c) | Constraint::Negative(c) => vec![&c.column_name],
            Constraint::FixedCombinations(c) => c.column_names.iter().map(String::as_str).collect(),
            Constraint::FixedIncrements(c) => vec![&c.column_name],
            Constraint::Unique(c) => c.column_names.iter().map(String::as_str).collect(),
        }
    }

    /// The rule as a person reads it: `Inequality(checkin <= checkout)`.
    pub fn describe(&self) -> String {
        let lt = |strict: bool| if strict { "<" } else { "<=" };
        let scalar = |s: &Scalar| match s {
            Scalar::Number(n) => n.to_string(),
            Scalar::Text(t) => t.clone(),
        };
        let rule = match self {
            Constraint::Inequality(c) => format!(
                "{} {} {}",
                c.low_column_name,
                lt(c.strict_boundaries),
                c.high_column_name
            ),
            Constraint::ScalarInequality(c) => format!(
                "{} {} {}",
                c.column_name,
                c.relation.symbol(),
                scalar(&c.value)
            ),
            Constraint::Range(c) => format!(
                "{low} {op} {mid} {op} {high}",
                low = c.low_column_name,
                mid = c.middle_column_name,
                high = c.high_column_name,
                op = lt(c.strict_boundaries)
            ),
            Constraint::ScalarRange(c) => format!(
                "{low} {op} {col} {op} {high}",
                low = scalar(&c.low_value),
                col = c.column_name,
                high = scalar(&c.high_value),
                op = lt(c.strict_boundaries)
            ),
            Constraint::Positive(c) => format!(
                "{} {} 0",
                c.column_name,
                if c.strict_boundaries { ">" } else { ">=" }
            ),
            Constraint::Negative(c) => format!("{} {} 0", c.column_name, lt(c.strict_boundaries)),
            Constraint::FixedCombinations(c) => c.column_names.join(", "),
            Constraint::FixedIncrements(c) => {
                format!("{} in steps of {}", c.column_name, c.increment_value)
            }
            Constraint::Unique(c) => c.column_names.join(", "),
        };
        format!("{}({rule})", self.class())
    }
}

/// Reads constraints from JSON: a list of them, or `{"constraints": [...]}` as SDV's
/// metadata-beside files hold them.
pub fn parse(text: &str) -> Result<Vec<Constraint>> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Doc {
        List(Vec<serde_json::Value>),
        Wrapped { constraints: Vec<serde_json::Value> },
    }
    let doc: Doc = serde_json::from_str(text).map_err(|e| {
        ConstraintError::Invalid(format!(
            "constraints must be a JSON list (or {{\"constraints\": [...]}}): {e}"
        ))
    })?;
    let (Doc::List(items) | Doc::Wrapped { constraints: items }) = doc;
    from_values(items)
}

/// Reads each constraint of a JSON list; an error names the one (by position) that is wrong.
pub fn from_values(items: Vec<serde_json::Value>) -> Result<Vec<Constraint>> {
    items
        .into_iter()
        .enumerate()
        .map(|(i, v)| {
            serde_json::from_value(v)
                .map_err(|e| ConstraintError::Invalid(format!("constraint {}: {e}", i + 1)))
        })
        .collect()
}

/// Checks every constraint against the table's metadata: the columns exist and have a type
/// the class works on, and the parameters make sense. Errors name the constraint.
pub fn validate(constraints: &[Constraint], metadata: &Metadata) -> Result<()> {
    for c in constraints {
        validate_one(c, metadata)
            .map_err(|why| ConstraintError::Invalid(format!("{}: {why}", c.describe())))?;
    }
    Ok(())
}

fn validate_one(c: &Constraint, metadata: &Metadata) -> std::result::Result<(), String> {
    let sdtype = |name: &str| {
        metadata
            .column(name)
            .map(|m| m.sdtype)
            .ok_or_else(|| format!("no column {name:?}"))
    };
    let ordered = |name: &str| match sdtype(name)? {
        t @ (SdType::Numerical | SdType::Datetime) => Ok(t),
        t => Err(format!(
            "column {name:?} is {t:?}: it takes numerical or datetime columns"
        )),
    };
    let numerical = |name: &str| match sdtype(name)? {
        SdType::Numerical => Ok(()),
        t => Err(format!(
            "column {name:?} is {t:?}: it takes numerical columns"
        )),
    };
    let distinct = |names: &[&str]| {
        let mut seen = std::collections::HashSet::new();
        match names.iter().find(|n| !seen.insert(**n)) {
            Some(n) => Err(format!("column {n:?} is named twice")),
            None => Ok(()),
        }
    };
    distinct(&c.columns())?;
    not_personal(c, metadata)?;
    match c {
        Constraint::Inequality(i) => {
            same_kind(&[ordered(&i.low_column_name)?, ordered(&i.high_column_name)?])
        }
        Constraint::Range(r) => same_kind(&[
            ordered(&r.low_column_name)?,
            ordered(&r.middle_column_name)?,
            ordered(&r.high_column_name)?,
        ]),
        Constraint::ScalarInequality(s) => ordered(&s.column_name).map(drop),
        Constraint::ScalarRange(s) => ordered(&s.column_name).map(drop),
        Constraint::Positive(s) | Constraint::Negative(s) => numerical(&s.column_name),
        Constraint::FixedIncrements(f) => {
            numerical(&f.column_name)?;
            if f.increment_value.is_finite() && f.increment_value > 0.0 {
                Ok(())
            } else {
                Err("increment_value must be a positive number".into())
            }
        }
        Constraint::FixedCombinations(f) => {
            if f.column_names.len() < 2 {
                return Err("it takes two or more columns".into());
            }
            for name in &f.column_names {
                match sdtype(name)? {
                    SdType::Categorical | SdType::Boolean => {}
                    t => {
                        return Err(format!(
                            "column {name:?} is {t:?}: it takes categorical or boolean columns"
                        ));
                    }
                }
            }
            Ok(())
        }
        Constraint::Unique(u) => {
            if u.column_names.is_empty() {
                return Err("it takes one or more columns".into());
            }
            u.column_names.iter().try_for_each(|n| sdtype(n).map(drop))
        }
    }
}

/// Personal data is generated from shapes, never learned: a constraint would need the model
/// to learn it (a FixedCombinations column would hand real values back). Unique holds on
/// generated values as on any.
fn not_personal(c: &Constraint, metadata: &Metadata) -> std::result::Result<(), String> {
    if matches!(c, Constraint::Unique(_)) {
        return Ok(());
    }
    match c
        .columns()
        .into_iter()
        .find(|n| metadata.column(n).is_some_and(|m| m.is_personal()))
    {
        Some(name) => Err(format!(
            "column {name:?} is personal data (pii): its values are generated, not learned, \
             so a constraint cannot hold them"
        )),
        None => Ok(()),
    }
}

fn same_kind(types: &[SdType]) -> std::result::Result<(), String> {
    if types.windows(2).all(|w| w[0] == w[1]) {
        Ok(())
    } else {
        Err("its columns must all be numerical or all datetime".into())
    }
}
