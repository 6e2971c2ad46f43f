//! Errors of declaring, checking and meeting constraints.

use crate::rules::Violation;

#[derive(Debug, thiserror::Error)]
pub enum ConstraintError {
    /// A constraint that cannot apply: unknown class or column, wrong column type, bad
    /// parameters.
    #[error("invalid constraint: {0}")]
    Invalid(String),
    /// The real table breaks declared constraints (fit refuses unless told to drop them).
    #[error("the real table breaks {}", describe(.0))]
    Violated(Vec<Violation>),
    /// Sampling could not meet a constraint or condition.
    #[error("{0}")]
    Unmet(String),
}

pub type Result<T, E = ConstraintError> = std::result::Result<T, E>;

/// People count rows from 1 and a file has a header, so an example is named as row `n`
/// after the header (`Example::row` stays the 0-based index).
fn describe(violations: &[Violation]) -> String {
    violations
        .iter()
        .map(|v| {
            let example = v.examples.first().map(|e| {
                let values: Vec<String> = e
                    .values
                    .iter()
                    .map(|(c, v)| format!("{c}={}", v.as_deref().unwrap_or("null")))
                    .collect();
                format!(
                    " (e.g. row {} after the header: {})",
                    e.row + 1,
                    values.join(", ")
                )
            });
            format!(
                "{} in {} row{}{}",
                v.constraint,
                v.rows,
                if v.rows == 1 { "" } else { "s" },
                example.unwrap_or_default()
            )
        })
        .collect::<Vec<_>>()
        .join("; ")
}
