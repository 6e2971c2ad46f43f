//! Constraints: rules a synthetic table never breaks, in SDV's JSON (`Inequality`,
//! `ScalarInequality`, `Range`, `ScalarRange`, `Positive`, `Negative`, `FixedCombinations`,
//! `FixedIncrements`, `Unique`).
//!
//! - [`spec`]: the constraints as declared, parsed and checked against the metadata.
//! - [`rules`]: a constraint resolved on the real table, and the check of any row against
//!   it; violations name the constraint, count the rows and show a few.
//! - [`plan`]: the fitted plan: the reversible changes of the columns a model learns that
//!   enforce what they can by construction, and the sieve every written-back row passes
//!   (the rest, and Unique, by rejection). Model-agnostic: the engine wraps any model in it.
//! - [`discover`]: the constraints a real table obeys, suggested to its owner.
//!
//! Hand-written: no crate does SDV's constraints outside Python.

pub mod discover;
pub mod error;
pub mod plan;
pub mod rules;
pub mod spec;
pub mod values;

pub use discover::discover;
pub use error::{ConstraintError, Result};
pub use plan::{OnViolation, Ordering, Plan, Prepared, Sieve};
pub use rules::{Example, Violation, violations};
pub use spec::{Constraint, from_values, parse, validate};
