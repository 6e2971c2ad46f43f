//! Datetime formats: detecting which strftime format a column of strings uses and parsing
//! with it. Hand-written because polars (without its `lazy`/temporal string parsing) does not
//! detect formats, and SDV metadata needs the format itself, not just parsed values.

use chrono::format::{Item, Parsed, StrftimeItems};
pub use synth_table::datetime::{DEFAULT_DATETIME_FORMAT, DateFormatter, format};

/// Candidate formats, most specific first; ambiguous day/month orders are both listed.
pub(crate) const CANDIDATES: &[&str] = &[
    "%Y-%m-%d",
    "%Y-%m-%dT%H:%M:%S",
    "%Y-%m-%dT%H:%M:%S%.f",
    "%Y-%m-%dT%H:%M:%SZ",
    "%Y-%m-%dT%H:%M:%S%.fZ",
    "%Y-%m-%dT%H:%M:%S%:z",
    "%Y-%m-%dT%H:%M:%S%.f%:z",
    // RFC 3339: offsets and `Z` in one column (UTC written as `Z` beside other zones).
    "%+",
    "%Y-%m-%dT%H:%M",
    "%Y-%m-%d %H:%M:%S",
    "%Y-%m-%d %H:%M:%S%.f",
    "%Y-%m-%d %H:%M",
    "%Y/%m/%d",
    "%Y/%m/%d %H:%M:%S",
    "%Y/%m/%d %H:%M",
    // 12-hour clocks, as US exports and spreadsheets write them (`05:00 PM`).
    "%Y-%m-%d %I:%M:%S %p",
    "%Y-%m-%d %I:%M %p",
    "%m/%d/%Y",
    "%d/%m/%Y",
    "%m/%d/%Y %H:%M",
    "%d/%m/%Y %H:%M",
    "%m/%d/%Y %H:%M:%S",
    "%d/%m/%Y %H:%M:%S",
    "%m/%d/%Y %I:%M %p",
    "%d/%m/%Y %I:%M %p",
    "%m/%d/%Y %I:%M:%S %p",
    "%d/%m/%Y %I:%M:%S %p",
    // Day first with dots or dashes, as much of Europe writes it.
    "%d.%m.%Y",
    "%d.%m.%Y %H:%M",
    "%d.%m.%Y %H:%M:%S",
    "%d-%m-%Y",
    "%d-%m-%Y %H:%M",
    "%d-%m-%Y %H:%M:%S",
    // Month names: `%b` reads `Jan`; `%B` reads `January` and `Jan` alike.
    "%d %b %Y",
    "%b %d, %Y",
    "%d-%b-%Y",
    "%d %B %Y",
    "%B %d, %Y",
    "%d %b %Y %H:%M",
    "%b %d, %Y %I:%M %p",
];

pub(crate) fn has_time(format: &str) -> bool {
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
    /// For a format with a time of day, its date part: a bare date in a column of datetimes
    /// (`2024-01-31` among `2024-01-31 10:20:00`, as exports print midnight) is that day at
    /// midnight, as pandas reads it.
    date_part: Option<Vec<Item<'static>>>,
    /// For a format with an offset, the same without it: a time written without an offset
    /// among times with one is taken as UTC.
    naive: Option<Vec<Item<'static>>>,
}

/// `format` without its UTC offset (`%+` spelt out as its date and time).
fn without_offset(format: &str) -> String {
    format
        .replace("%+", "%Y-%m-%dT%H:%M:%S%.f")
        .replace("%:z", "")
        .replace("%#z", "")
        .replace("%z", "")
}

/// The date part of a format with a time: what comes before the first time field, without
/// the separator; `None` unless it names a day, a month and a year.
fn date_part(format: &str) -> Option<Vec<Item<'static>>> {
    let time = ["%H", "%I", "%T", "%R"]
        .iter()
        .filter_map(|t| format.find(t))
        .min()?;
    let date = format[..time].trim_end_matches([' ', 'T', ',']);
    let full = ["%d", "%e"].iter().any(|d| date.contains(d))
        && ["%m", "%b", "%B"].iter().any(|m| date.contains(m))
        && ["%Y", "%y"].iter().any(|y| date.contains(y));
    if !full {
        return None;
    }
    StrftimeItems::new(date).parse_to_owned().ok()
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
        let (naive, date_part) = match kind {
            Kind::Date => (None, None),
            Kind::Time => (None, date_part(format)),
            Kind::Offset => {
                let naive = without_offset(format);
                let items = StrftimeItems::new(&naive).parse_to_owned().ok();
                (items, date_part(&naive))
            }
        };
        Some(Self {
            items,
            kind,
            date_part,
            naive,
        })
    }

    /// Microseconds since the epoch (UTC), or `None` if `value` does not match.
    /// The format itself first, then without its offset (as UTC), then its date part alone.
    pub(crate) fn parse(&self, value: &str) -> Option<i64> {
        let value = value.trim();
        parse_as(value, &self.items, self.kind)
            .or_else(|| parse_as(value, self.naive.as_ref()?, Kind::Time))
            .or_else(|| parse_as(value, self.date_part.as_ref()?, Kind::Date))
    }
}

/// `value` read with `items` as an instant of `kind`, in microseconds since the epoch (UTC).
fn parse_as(value: &str, items: &[Item<'static>], kind: Kind) -> Option<i64> {
    let mut parsed = Parsed::new();
    chrono::format::parse(&mut parsed, value, items.iter()).ok()?;
    match kind {
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

/// Parse one value with a strftime format into microseconds since the epoch (UTC).
#[cfg(test)]
pub fn parse(value: &str, format: &str) -> Option<i64> {
    DateParser::new(format)?.parse(value)
}

/// The format that fits a column of datetimes already parsed: date-only when all are
/// midnight, with fractions of a second when any has them.
pub fn format_for_values(values: &[Option<i64>]) -> &'static str {
    let (day, second) = (86_400_000_000i64, 1_000_000i64);
    let mut present = values.iter().flatten();
    if present.clone().all(|v| v.rem_euclid(day) == 0) {
        "%Y-%m-%d"
    } else if present.any(|v| v.rem_euclid(second) != 0) {
        "%Y-%m-%d %H:%M:%S%.f"
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
        // SDV's `%z` reads as `%:z` (see synth_table's `sdv_format`): both spellings of an
        // offset read with it.
        assert_eq!(
            parse("2024-01-31T10:20:30+0100", "%Y-%m-%dT%H:%M:%S%:z"),
            Some(t)
        );
        assert_eq!(format(t, DEFAULT_DATETIME_FORMAT), "2024-01-31 09:20:30");
        assert_eq!(parse("20240131", "%Y-%m-%d"), None);
        // An offset renders as UTC's, not as a failure (naive times have none to show).
        assert_eq!(
            format(t, "%Y-%m-%dT%H:%M:%S%:z"),
            "2024-01-31T09:20:30+00:00"
        );
        assert_eq!(format(t, "%Y-%m-%d %H:%M:%S %Z"), "2024-01-31 09:20:30 UTC");
    }

    #[test]
    fn a_column_of_instants_gets_the_format_that_shows_all_of_them() {
        let (day, second) = (86_400_000_000i64, 1_000_000i64);
        let cases: [(&[Option<i64>], &str); 4] = [
            (&[Some(day), None, Some(-3 * day)], "%Y-%m-%d"),
            (
                &[Some(day), Some(day + 5 * second)],
                DEFAULT_DATETIME_FORMAT,
            ),
            (&[Some(day), Some(day + 1_500)], "%Y-%m-%d %H:%M:%S%.f"),
            (&[None], "%Y-%m-%d"),
        ];
        for (values, want) in cases {
            assert_eq!(format_for_values(values), want, "{values:?}");
        }
        assert_eq!(
            format(day + 1_500, "%Y-%m-%d %H:%M:%S%.f"),
            "1970-01-02 00:00:00.001500"
        );
    }

    #[test]
    fn detects_formats_and_mixes() {
        let cases: [(&[&str], &str, bool); 10] = [
            (&["2024-01-31", "2023-12-01"], "%Y-%m-%d", false),
            (
                &["2024-01-31 10:00:00", "2023-12-01 23:59:59"],
                "%Y-%m-%d %H:%M:%S",
                false,
            ),
            (&["2024-01-31T10:00:00Z"], "%Y-%m-%dT%H:%M:%SZ", false),
            (&["01/02/2024", "03/04/2024"], "%m/%d/%Y", true),
            (&["31/01/2024", "03/04/2024"], "%d/%m/%Y", false),
            (
                &["01.01.2024 00:37", "31.12.2023 17:05"],
                "%d.%m.%Y %H:%M",
                false,
            ),
            (
                &["01/02/2023 05:00 AM", "12/31/2023 11:59 PM"],
                "%m/%d/%Y %I:%M %p",
                false,
            ),
            (
                &["2023-01-02 05:00:10 pm", "2023-01-02 12:00:00 AM"],
                "%Y-%m-%d %I:%M:%S %p",
                false,
            ),
            (&["28-02-2024 23:59:59"], "%d-%m-%Y %H:%M:%S", false),
            (&["January 5, 2024", "Dec 31, 2023"], "%B %d, %Y", false),
        ];
        for (values, format, ambiguous) in cases {
            let d = detect(values.iter().copied());
            assert_eq!(d, Detected::Format { format, ambiguous }, "{values:?}");
        }
        // Bare dates among datetimes are midnight, in the datetimes' format.
        let d = detect(["2024-01-31", "2024-02-01 10:27:00"].into_iter());
        let format = "%Y-%m-%d %H:%M:%S";
        assert_eq!(
            d,
            Detected::Format {
                format,
                ambiguous: false
            }
        );
        assert_eq!(parse("2024-01-31", format), parse("2024-01-31", "%Y-%m-%d"));
        assert_eq!(
            parse("31/01/2024", "%d/%m/%Y %H:%M"),
            parse("2024-01-31", "%Y-%m-%d")
        );
        assert_eq!(parse("2024-01-31 10", format), None);
        // Times without an offset among times with one are UTC.
        let d = detect(["2024-01-31T10:00:00+02:00", "2024-01-31T10:01:00"].into_iter());
        let Detected::Format { format, .. } = d else {
            panic!("{d:?}")
        };
        assert_eq!(
            parse("2024-01-31T10:01:00", format),
            parse("2024-01-31T10:01:00Z", "%+")
        );
        assert_eq!(
            parse("2024-01-31T10:00:00+02:00", format),
            parse("2024-01-31T08:00:00Z", "%+")
        );
        let d = detect(["2024-01-31", "31.01.2024"].into_iter());
        assert_eq!(d, Detected::Mixed(vec!["%Y-%m-%d", "%d.%m.%Y"]));
        assert_eq!(detect(["20240131", "20240201"].into_iter()), Detected::None);
        assert_eq!(detect(["hello"].into_iter()), Detected::None);
    }
}
