//! Conditions on any column: what every sampled row must have. A discrete column equals a
//! category; a numerical or datetime column equals a value (integers, dates, or floats on
//! their grid) or lies in a range (`col>=a`, `col<b`, `col=a..b`). Values stay text until
//! they are read against the column they name, so a date is written as the data writes it.

use std::fmt;

use synth_constraints::spec::Scalar;
use synth_table::{Metadata, SdType};

/// How a date reaches the models: ISO 8601, to the microsecond.
const ISO: &str = "%Y-%m-%dT%H:%M:%S%.f";

/// One side of a range: the value as written, and whether it is included.
#[derive(Debug, Clone, PartialEq)]
pub struct Bound {
    pub value: String,
    pub inclusive: bool,
}

/// What a condition asks of its column.
#[derive(Debug, Clone, PartialEq)]
pub enum Test {
    Equals(String),
    Within {
        low: Option<Bound>,
        high: Option<Bound>,
    },
}

/// `column` must pass `test` in every sampled row.
#[derive(Debug, Clone, PartialEq)]
pub struct Condition {
    pub column: String,
    pub test: Test,
}

impl Condition {
    /// This condition with a date on a datetime column written as the column writes it (its
    /// `datetime_format`, `01.01.2022`) rewritten in ISO 8601, which every model reads; any
    /// other condition, or a value that is no date in that format, unchanged.
    pub fn with_iso_dates(mut self, metadata: &Metadata) -> Self {
        let Some(meta) = metadata
            .column(&self.column)
            .filter(|m| m.sdtype == SdType::Datetime && m.datetime_format.is_some())
        else {
            return self;
        };
        let column = &self.column;
        let iso = |value: &mut String| {
            let text = Scalar::Text(value.clone());
            if let Ok(micros) = synth_constraints::values::scalar(&text, column, meta) {
                *value = synth_table::datetime::format(micros.round() as i64, ISO);
            }
        };
        match &mut self.test {
            Test::Equals(v) => iso(v),
            Test::Within { low, high } => {
                for b in [low, high].into_iter().flatten() {
                    iso(&mut b.value);
                }
            }
        }
        self
    }

    pub fn equals(column: impl Into<String>, value: impl Into<String>) -> Self {
        Self {
            column: column.into(),
            test: Test::Equals(value.into()),
        }
    }

    /// Reads `col=v`, `col>=a`, `col>a`, `col<=b`, `col<b` or `col=a..b` (both ends
    /// included). The column name is everything before the operator, trimmed.
    pub fn parse(expr: &str) -> Result<Self, String> {
        let bad = || {
            format!("condition {expr:?} is not COLUMN=VALUE, COLUMN>=A, COLUMN<B or COLUMN=A..B")
        };
        let at = expr.find(['=', '<', '>']).ok_or_else(bad)?;
        let column = expr[..at].trim();
        if column.is_empty() {
            return Err(bad());
        }
        let rest = &expr[at..];
        let (op, value) = ["<=", ">=", "<", ">", "="]
            .into_iter()
            .find_map(|op| rest.strip_prefix(op).map(|v| (op, v)))
            .ok_or_else(bad)?;
        let bound = |v: &str, inclusive| Bound {
            value: v.trim().to_owned(),
            inclusive,
        };
        let test = match op {
            "=" => match value.split_once("..") {
                Some((a, b)) if !a.trim().is_empty() && !b.trim().is_empty() => Test::Within {
                    low: Some(bound(a, true)),
                    high: Some(bound(b, true)),
                },
                _ => Test::Equals(value.to_owned()),
            },
            ">=" => Test::Within {
                low: Some(bound(value, true)),
                high: None,
            },
            ">" => Test::Within {
                low: Some(bound(value, false)),
                high: None,
            },
            "<=" => Test::Within {
                low: None,
                high: Some(bound(value, true)),
            },
            _ => Test::Within {
                low: None,
                high: Some(bound(value, false)),
            },
        };
        if let Test::Within { low, high } = &test
            && [low, high]
                .into_iter()
                .flatten()
                .any(|b| b.value.is_empty())
        {
            return Err(bad());
        }
        Ok(Self {
            column: column.to_owned(),
            test,
        })
    }

    /// The value an equality asks for.
    pub fn equality(&self) -> Option<&str> {
        match &self.test {
            Test::Equals(v) => Some(v),
            Test::Within { .. } => None,
        }
    }
}

impl fmt::Display for Condition {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.test {
            Test::Equals(v) => write!(f, "{}={v}", self.column),
            Test::Within {
                low: Some(l),
                high: Some(h),
            } if l.inclusive && h.inclusive => {
                write!(f, "{}={}..{}", self.column, l.value, h.value)
            }
            Test::Within { low, high } => {
                let mut parts = Vec::new();
                if let Some(l) = low {
                    let op = if l.inclusive { ">=" } else { ">" };
                    parts.push(format!("{}{op}{}", self.column, l.value));
                }
                if let Some(h) = high {
                    let op = if h.inclusive { "<=" } else { "<" };
                    parts.push(format!("{}{op}{}", self.column, h.value));
                }
                write!(f, "{}", parts.join(" and "))
            }
        }
    }
}

/// Whether `x` is within the bounds (each `(value, inclusive)`).
pub(crate) fn within(x: f64, low: Option<(f64, bool)>, high: Option<(f64, bool)>) -> bool {
    let above = low.is_none_or(|(b, inc)| if inc { x >= b } else { x > b });
    let below = high.is_none_or(|(b, inc)| if inc { x <= b } else { x < b });
    above && below
}

#[cfg(test)]
mod tests {
    use super::*;
    use synth_table::ColumnMetadata;

    #[test]
    fn a_date_as_its_column_writes_it_reaches_the_models_in_iso() {
        let mut day = ColumnMetadata::new(SdType::Datetime);
        day.datetime_format = Some("%d.%m.%Y".into());
        let m = Metadata::new(vec![
            ("Datum".into(), day),
            ("Ort".into(), ColumnMetadata::new(SdType::Categorical)),
        ]);
        let iso = |expr: &str| {
            Condition::parse(expr)
                .unwrap()
                .with_iso_dates(&m)
                .to_string()
        };
        assert_eq!(iso("Datum>=01.02.2022"), "Datum>=2022-02-01T00:00:00");
        assert_eq!(
            iso("Datum=01.02.2022..28.02.2022"),
            "Datum=2022-02-01T00:00:00..2022-02-28T00:00:00"
        );
        // Already ISO, another column, or no date at all: as given (the model says what is
        // wrong with it).
        assert_eq!(iso("Datum<2022-03-01"), "Datum<2022-03-01T00:00:00");
        assert_eq!(iso("Ort=01.02.2022"), "Ort=01.02.2022");
        assert_eq!(iso("Datum=soon"), "Datum=soon");
    }

    #[test]
    fn reads_every_form_and_writes_it_back() {
        for expr in [
            "kind=b",
            "age>=18",
            "age>17",
            "price<=9.5",
            "price<10",
            "day=2024-01-01..2024-01-31",
        ] {
            let c = Condition::parse(expr).unwrap();
            assert_eq!(c.to_string(), expr);
        }
        let c = Condition::parse(" city = New York ").unwrap();
        assert_eq!(
            (c.column.as_str(), c.equality()),
            ("city", Some(" New York "))
        );
        let c = Condition::parse("note=a..").unwrap();
        assert_eq!(c.equality(), Some("a.."), "not a range: one end is missing");
        for bad in ["", "=5", "age", "age>=", "age<"] {
            assert!(Condition::parse(bad).is_err(), "{bad}");
        }
    }
}
