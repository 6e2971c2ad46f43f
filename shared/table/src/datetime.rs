//! Rendering datetimes (microseconds since the epoch, UTC) with a column's strftime format:
//! what the writers, the profile, the report and the command line all show a datetime as.

use std::fmt::Write;

use chrono::DateTime;
use chrono::format::{Item, StrftimeItems};

/// Default format for datetimes with no format of their own.
pub const DEFAULT_DATETIME_FORMAT: &str = "%Y-%m-%d %H:%M:%S";

/// A strftime format compiled once for rendering many values; an invalid format falls back to
/// [`DEFAULT_DATETIME_FORMAT`] rather than failing a write.
pub struct DateFormatter {
    items: Vec<Item<'static>>,
}

impl DateFormatter {
    pub fn new(format: &str) -> Self {
        let items = StrftimeItems::new(format)
            .parse_to_owned()
            .or_else(|_| StrftimeItems::new(DEFAULT_DATETIME_FORMAT).parse_to_owned())
            .unwrap_or_default();
        Self { items }
    }

    /// The instant in UTC (an offset in the format renders as `+00:00`); a format chrono
    /// cannot render for it falls back to [`DEFAULT_DATETIME_FORMAT`].
    pub fn format(&self, micros: i64) -> String {
        let Some(d) = DateTime::from_timestamp_micros(micros) else {
            return micros.to_string();
        };
        let mut out = String::new();
        if write!(out, "{}", d.format_with_items(self.items.iter())).is_err() {
            out = d.format(DEFAULT_DATETIME_FORMAT).to_string();
        }
        out
    }
}

/// Render microseconds since the epoch with a strftime format.
pub fn format(micros: i64, format: &str) -> String {
    DateFormatter::new(format).format(micros)
}

/// SDV metadata spells `datetime_format` as Python's `strftime` does; Synth reads and writes
/// datetimes with chrono, whose spelling differs in a few fields. Metadata is translated at
/// its edge (serde), so SDV reads what Synth writes and Synth reads what SDV writes, and
/// everything inside speaks chrono:
///
/// | Python (SDV)      | chrono      |
/// |-------------------|-------------|
/// | `.%f` (fraction)  | `%.f`       |
/// | `%f` (no dot)     | `%6f`       |
/// | `%z` (`+02:00`)   | `%:z`       |
///
/// chrono's own spellings are read as they are (metadata stored before), and chrono-only
/// fields are written as Python's nearest (`%.3f` as `.%f`, `%+` as ISO 8601 with `%z`).
/// Written by hand: no crate translates between the two.
pub mod sdv_format {
    use serde::{Deserialize, Deserializer, Serializer};

    /// A format's fields and literal runs, `%` fields with their modifiers kept whole.
    fn tokens(format: &str) -> Vec<String> {
        let mut out = Vec::new();
        let mut chars = format.chars().peekable();
        while let Some(c) = chars.next() {
            if c != '%' {
                out.push(c.to_string());
                continue;
            }
            let mut field = String::from('%');
            while let Some(&m) = chars.peek() {
                field.push(m);
                chars.next();
                if !matches!(m, '.' | ':' | '#' | '-' | '_' | '0'..='9') {
                    break;
                }
            }
            out.push(field);
        }
        out
    }

    /// chrono's spelling as Python's.
    pub fn to_python(format: &str) -> String {
        tokens(format)
            .into_iter()
            .map(|t| match t.as_str() {
                "%.f" | "%.3f" | "%.6f" | "%.9f" => ".%f".to_owned(),
                "%3f" | "%6f" | "%9f" => "%f".to_owned(),
                "%:z" | "%::z" | "%#z" => "%z".to_owned(),
                "%+" => "%Y-%m-%dT%H:%M:%S%z".to_owned(),
                _ => t,
            })
            .collect()
    }

    /// Python's spelling (or chrono's, kept) as chrono's.
    pub fn from_python(format: &str) -> String {
        let mut out: Vec<String> = Vec::new();
        for t in tokens(format) {
            match t.as_str() {
                "%f" if out.last().is_some_and(|l| l == ".") => {
                    out.pop();
                    out.push("%.f".into());
                }
                "%f" => out.push("%6f".into()),
                "%z" => out.push("%:z".into()),
                _ => out.push(t),
            }
        }
        out.concat()
    }

    pub fn serialize<S: Serializer>(format: &Option<String>, s: S) -> Result<S::Ok, S::Error> {
        match format {
            Some(f) => s.serialize_some(&to_python(f)),
            None => s.serialize_none(),
        }
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<String>, D::Error> {
        Ok(Option::<String>::deserialize(d)?.map(|f| from_python(&f)))
    }
}
