//! Datetime formats: detecting which strftime format a column of strings uses and parsing
//! with it. Hand-written because polars (without its `lazy`/temporal string parsing) does not
//! detect formats, and SDV metadata needs the format itself, not just parsed values.

use chrono::DateTime;
use chrono::format::{Item, Parsed, StrftimeItems};

/// Candidate formats, most specific first; ambiguous day/month orders are both listed.
pub(crate) const CANDIDATES: &[&str] = &[
    "%Y-%m-%d",
    "%Y-%m-%dT%H:%M:%S",
    "%Y-%m-%dT%H:%M:%S%.f",
    "%Y-%m-%dT%H:%M:%SZ",
    "%Y-%m-%dT%H:%M:%S%.fZ",
    "%Y-%m-%dT%H:%M:%S%:z",
    "%Y-%m-%dT%H:%M:%S%.f%:z",
    "%Y-%m-%dT%H:%M",
    "%Y-%m-%d %H:%M:%S",
    "%Y-%m-%d %H:%M:%S%.f",
    "%Y-%m-%d %H:%M",
    "%Y/%m/%d",
    "%Y/%m/%d %H:%M:%S",
    "%m/%d/%Y",
    "%d/%m/%Y",
    "%m/%d/%Y %H:%M",
    "%d/%m/%Y %H:%M",
    "%m/%d/%Y %H:%M:%S",
    "%d/%m/%Y %H:%M:%S",
    "%d.%m.%Y",
    "%d-%m-%Y",
    "%d %b %Y",
    "%b %d, %Y",
    "%d-%b-%Y",
];

/// Default format for datetimes with no format of their own.
pub const DEFAULT_DATETIME_FORMAT: &str = "%Y-%m-%d %H:%M:%S";

fn has_time(format: &str) -> bool {
    ["%H", "%M", "%S", "%T", "%R", "%I", "%p", "%s", "%+", "%c"]
        .iter()
        .any(|t| format.contains(t))
}

fn has_offset(format: &str) -> bool {
    ["%z", "%:z", "%#z", "%+"]
        .iter()
        .any(|t| format.contains(t))
}

/// A strftime format compiled once, for parsing a column's worth of values (chrono's
/// `parse_from_str` would re-read the format string for every value).
pub(crate) struct DateParser {
    items: Vec<Item<'static>>,
    kind: Kind,
}

#[derive(Clone, Copy)]
enum Kind {
    /// Has a UTC offset: converted to UTC.
    Offset,
    /// Date and time, taken as UTC.
    Time,
    /// Date only: midnight UTC.
    Date,
}

impl DateParser {
    /// `None` when `format` is not a valid strftime format.
    pub(crate) fn new(format: &str) -> Option<Self> {
        let items = StrftimeItems::new(format).parse_to_owned().ok()?;
        let kind = if has_offset(format) {
            Kind::Offset
        } else if has_time(format) {
            Kind::Time
        } else {
            Kind::Date
        };
        Some(Self { items, kind })
    }

    /// Microseconds since the epoch (UTC), or `None` if `value` does not match.
    pub(crate) fn parse(&self, value: &str) -> Option<i64> {
        let mut parsed = Parsed::new();
        chrono::format::parse(&mut parsed, value.trim(), self.items.iter()).ok()?;
        match self.kind {
            Kind::Offset => parsed.to_datetime().ok().map(|d| d.timestamp_micros()),
            Kind::Time => parsed
                .to_naive_datetime_with_offset(0)
                .ok()
                .map(|d| d.and_utc().timestamp_micros()),
            Kind::Date => parsed
                .to_naive_date()
                .ok()
                .and_then(|d| d.and_hms_opt(0, 0, 0))
                .map(|d| d.and_utc().timestamp_micros()),
        }
    }
}

/// Parse one value with a strftime format into microseconds since the epoch (UTC).
#[cfg(test)]
pub fn parse(value: &str, format: &str) -> Option<i64> {
    DateParser::new(format)?.parse(value)
}

/// A strftime format compiled once for rendering many values; an invalid format falls back to
/// [`DEFAULT_DATETIME_FORMAT`] rather than failing a write.
pub(crate) struct DateFormatter {
    items: Vec<Item<'static>>,
}

impl DateFormatter {
    pub(crate) fn new(format: &str) -> Self {
        let items = StrftimeItems::new(format)
            .parse_to_owned()
            .or_else(|_| StrftimeItems::new(DEFAULT_DATETIME_FORMAT).parse_to_owned())
            .unwrap_or_default();
        Self { items }
    }

    pub(crate) fn format(&self, micros: i64) -> String {
        match DateTime::from_timestamp_micros(micros) {
            Some(d) => d
                .naive_utc()
                .format_with_items(self.items.iter())
                .to_string(),
            None => micros.to_string(),
        }
    }
}

/// Render microseconds since the epoch with a strftime format.
pub fn format(micros: i64, format: &str) -> String {
    DateFormatter::new(format).format(micros)
}

/// The format that fits a column of datetimes already parsed: date-only when all are midnight.
pub fn format_for_values(values: &[Option<i64>]) -> &'static str {
    let day = 86_400_000_000i64;
    if values.iter().flatten().all(|v| v.rem_euclid(day) == 0) {
        "%Y-%m-%d"
    } else {
        DEFAULT_DATETIME_FORMAT
    }
}

/// What the sample of a string column says about datetime formats.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Detected {
    /// Every sampled value parses with this format; `ambiguous` when another format also fits.
    Format {
        format: &'static str,
        ambiguous: bool,
    },
    /// Every value parses with one of several formats, but no single one fits all.
    Mixed(Vec<&'static str>),
    None,
}

/// Detect the datetime format of a sample of non-null strings.
pub(crate) fn detect<'a>(sample: impl Iterator<Item = &'a str> + Clone) -> Detected {
    let mut first = sample.clone();
    match first.next() {
        // Dates need digits and are short; skipping early keeps inference cheap on text.
        Some(v) if v.len() <= 40 && v.bytes().any(|b| b.is_ascii_digit()) => {}
        _ => return Detected::None,
    }
    let parsers: Vec<(&'static str, DateParser)> = CANDIDATES
        .iter()
        .filter_map(|f| Some((*f, DateParser::new(f)?)))
        .collect();
    let fitting: Vec<&'static str> = parsers
        .iter()
        .filter(|(_, p)| sample.clone().all(|v| p.parse(v).is_some()))
        .map(|(f, _)| *f)
        .collect();
    if let Some(&format) = fitting.first() {
        // Only the day/month swap counts as ambiguous; `%Y-%m-%dT%H:%M:%S` vs `...%.f` is not.
        let ambiguous = fitting
            .iter()
            .any(|f| f.contains("%d/%m") != format.contains("%d/%m") && f.contains('/'));
        return Detected::Format { format, ambiguous };
    }
    // No single format: do several together cover every value?
    let mut used = Vec::new();
    for v in sample {
        match parsers.iter().find(|(_, p)| p.parse(v).is_some()) {
            Some((f, _)) => {
                if !used.contains(f) {
                    used.push(*f);
                }
            }
            None => return Detected::None,
        }
    }
    if used.len() > 1 {
        Detected::Mixed(used)
    } else {
        Detected::None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_and_formats_round_trip() {
        let us = parse("2024-01-31", "%Y-%m-%d").unwrap();
        assert_eq!(us, 1_706_659_200_000_000);
        assert_eq!(format(us, "%d/%m/%Y"), "31/01/2024");
        let t = parse("2024-01-31T10:20:30+01:00", "%Y-%m-%dT%H:%M:%S%:z").unwrap();
        assert_eq!(format(t, DEFAULT_DATETIME_FORMAT), "2024-01-31 09:20:30");
        assert_eq!(parse("20240131", "%Y-%m-%d"), None);
    }

    #[test]
    fn detects_formats_and_mixes() {
        let cases: [(&[&str], &str, bool); 5] = [
            (&["2024-01-31", "2023-12-01"], "%Y-%m-%d", false),
            (
                &["2024-01-31 10:00:00", "2023-12-01 23:59:59"],
                "%Y-%m-%d %H:%M:%S",
                false,
            ),
            (&["2024-01-31T10:00:00Z"], "%Y-%m-%dT%H:%M:%SZ", false),
            (&["01/02/2024", "03/04/2024"], "%m/%d/%Y", true),
            (&["31/01/2024", "03/04/2024"], "%d/%m/%Y", false),
        ];
        for (values, format, ambiguous) in cases {
            let d = detect(values.iter().copied());
            assert_eq!(d, Detected::Format { format, ambiguous }, "{values:?}");
        }
        let d = detect(["2024-01-31", "31.01.2024"].into_iter());
        assert_eq!(d, Detected::Mixed(vec!["%Y-%m-%d", "%d.%m.%Y"]));
        assert_eq!(detect(["20240131", "20240201"].into_iter()), Detected::None);
        assert_eq!(detect(["hello"].into_iter()), Detected::None);
    }
}
