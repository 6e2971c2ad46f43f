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
