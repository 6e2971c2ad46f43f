//! Semantic type inference: what each column *means* (SDV sdtypes), with a confidence and a
//! reason the user can read and override. Hand-written: polars knows storage types, not
//! meanings. Work is done on a column's distinct values wherever possible, so a million-row
//! column of a few hundred categories costs one hashing pass.

use polars::prelude::PlHashSet as HashSet;
use rayon::prelude::*;

use serde::Serialize;
use synth_table::{Column, ColumnData, ColumnMetadata, Metadata, SdType, Table};

use crate::datetime::{self, Detected};
use crate::number;

/// Numbers with at most this many distinct values...
const CATEGORICAL_MAX_DISTINCT: usize = 10;
/// ...making up at most this share of the non-null values are categories, not quantities.
const CATEGORICAL_MAX_SHARE: f64 = 0.05;
/// Above this many distinct strings, a column is categorical only if they repeat a lot
/// (≤ 5% of rows distinct).
const STRING_CATEGORIES_MAX: usize = 1_000;
/// Values examined to detect a datetime format; the format is then verified on more.
const DETECT_SAMPLE: usize = 200;
/// Distinct values a detected pattern (datetime, email, phone) is verified against.
const VERIFY_SAMPLE: usize = 20_000;

/// What inference concluded about one column, and why.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ColumnInference {
    pub name: String,
    pub sdtype: SdType,
    /// 0..1: how sure the rule that decided is (1 when the storage type says it all).
    pub confidence: f64,
    pub reason: String,
}

/// Inferred SDV metadata plus the per-column reasoning behind it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Inference {
    pub metadata: Metadata,
    pub columns: Vec<ColumnInference>,
}

/// Infer every column's sdtype (and representation, datetime format, PII flag) and pick a
/// primary key among the id columns.
pub fn infer_metadata(table: &Table) -> Inference {
    // Columns are independent: infer them in parallel.
    let verdicts: Vec<Verdict> = table.columns.par_iter().map(infer_column).collect();
    let mut columns = Vec::with_capacity(table.columns.len());
    let mut metas = Vec::with_capacity(table.columns.len());
    for (col, (meta, confidence, reason)) in table.columns.iter().zip(verdicts) {
        columns.push(ColumnInference {
            name: col.name.clone(),
            sdtype: meta.sdtype,
            confidence,
            reason,
        });
        metas.push((col.name.clone(), meta));
    }
    let ids: Vec<&str> = columns
        .iter()
        .filter(|c| c.sdtype == SdType::Id)
        .map(|c| c.name.as_str())
        .collect();
    let primary_key = ids
        .iter()
        .find(|n| id_name_hint(n))
        .or(ids.first())
        .map(|n| (*n).to_owned());
    let mut metadata = Metadata::new(metas);
    metadata.primary_key = primary_key;
    Inference { metadata, columns }
}

type Verdict = (ColumnMetadata, f64, String);

fn verdict(sdtype: SdType, confidence: f64, reason: impl Into<String>) -> Verdict {
    let mut meta = ColumnMetadata::new(sdtype);
    if sdtype.is_pii() {
        meta.pii = Some(true);
    }
    (meta, confidence, reason.into())
}

fn infer_column(col: &Column) -> Verdict {
    let n = col.data.len();
    let nulls = col.data.null_count();
    if n == nulls {
        return verdict(SdType::Categorical, 0.2, "every value is missing");
    }
    match &col.data {
        ColumnData::Bool(_) => verdict(SdType::Boolean, 1.0, "stored as true/false"),
        ColumnData::Datetime(v) => {
            let mut out = verdict(SdType::Datetime, 1.0, "stored as datetimes");
            out.0.datetime_format = Some(datetime::format_for_values(v).to_owned());
            out
        }
        ColumnData::Int(v) => integers(&col.name, v, nulls, false),
        ColumnData::Float(v) => floats(v, false),
        ColumnData::Str(v) => strings(&col.name, v, nulls),
    }
}

/// Names that say "this is a key".
fn id_name_hint(name: &str) -> bool {
    let lower = name.to_ascii_lowercase();
    ["id", "uuid", "guid", "key", "pk"].contains(&lower.as_str())
        || ["_id", " id", "-id", "_key", "_uuid"]
            .iter()
            .any(|s| lower.ends_with(s))
        || (name.ends_with("Id") || name.ends_with("ID")) && name.len() > 2
}

/// The few-distinct-numbers rule from the issue: categories coded as numbers.
fn few_distinct(distinct: usize, non_null: usize) -> bool {
    distinct <= CATEGORICAL_MAX_DISTINCT
        && distinct as f64 <= CATEGORICAL_MAX_SHARE * non_null as f64
}

fn integers(name: &str, values: &[Option<i64>], nulls: usize, as_text: bool) -> Verdict {
    let present: Vec<i64> = values.iter().flatten().copied().collect();
    let nn = present.len();
    let distinct = present.iter().collect::<HashSet<_>>().len();
    let stored = if as_text {
        "integers stored as text"
    } else {
        "integers"
    };
    // Before the key rules: a daily date column is unique and increasing too.
    if let Some(dates) = integer_dates(&present, stored) {
        return dates;
    }
    let unique = distinct == nn && nulls == 0;
    if unique && id_name_hint(name) {
        return verdict(
            SdType::Id,
            0.9,
            format!("{stored}, unique per row, and named like a key"),
        );
    }
    if unique && nn >= 10 && present.windows(2).all(|w| w[0] < w[1]) {
        return verdict(
            SdType::Id,
            0.75,
            format!("{stored}, unique and strictly increasing (a row key)"),
        );
    }
    if few_distinct(distinct, nn) {
        let (min, max) = (present.iter().min(), present.iter().max());
        // Years repeat a lot (a survey's 2007/2008/2009) but stay ordered quantities; SDV's
        // own demo metadata keeps them numerical.
        if let (Some(&min), Some(&max)) = (min, max)
            && (1800..=2200).contains(&min)
            && (1800..=2200).contains(&max)
        {
            return quantity(
                "Int64",
                0.6,
                format!("only {distinct} distinct {stored}, but they look like calendar years"),
            );
        }
        return coded_categories(stored, distinct, nn, 0.8);
    }
    quantity(
        "Int64",
        if as_text { 0.85 } else { 0.95 },
        format!("{stored} with {distinct} distinct values"),
    )
}

/// Integers that are all valid `YYYYMMDD` dates (20240131): dates, read with `%Y%m%d`, so
/// a synthetic table keeps real calendar days in the same spelling instead of numbers
/// between them (20240199).
fn integer_dates(present: &[i64], stored: &str) -> Option<Verdict> {
    let is_date = |v: i64| {
        (10_000_101..=99_991_231).contains(&v)
            && chrono::NaiveDate::from_ymd_opt(
                (v / 10_000) as i32,
                (v / 100 % 100) as u32,
                (v % 100) as u32,
            )
            .is_some()
    };
    if present.is_empty() || !present.iter().all(|&v| is_date(v)) {
        return None;
    }
    let mut out = verdict(
        SdType::Datetime,
        0.8,
        format!("{stored} that are all valid YYYYMMDD dates"),
    );
    out.0.datetime_format = Some("%Y%m%d".into());
    Some(out)
}

/// A numerical verdict, stored as `representation` (SDV's `computer_representation`).
fn quantity(representation: &str, confidence: f64, reason: String) -> Verdict {
    let mut out = verdict(SdType::Numerical, confidence, reason);
    out.0.computer_representation = Some(representation.into());
    out
}

/// Numbers of few distinct values: categories coded as numbers, not quantities.
fn coded_categories(stored: &str, distinct: usize, nn: usize, confidence: f64) -> Verdict {
    verdict(
        SdType::Categorical,
        confidence,
        format!(
            "{stored} with only {distinct} distinct values in {nn} (≤ {CATEGORICAL_MAX_DISTINCT} and ≤ 5% of rows): coded categories"
        ),
    )
}

/// Decimal places of a float as it would be printed (shortest round-trip form).
fn decimals(v: f64) -> usize {
    let s = v.to_string();
    if s.contains(['e', 'E']) {
        return 0;
    }
    s.split_once('.').map_or(0, |(_, f)| f.len())
}

/// Most decimal places among (a sample of) a float column's values.
pub(crate) fn max_decimals(values: &[Option<f64>]) -> u32 {
    let n = values.len().max(1);
    // An even spread of up to 10,000 values: rounding is a property of the whole column.
    let step = n.div_ceil(10_000);
    values
        .iter()
        .step_by(step)
        .flatten()
        .map(|&v| decimals(v) as u32)
        .max()
        .unwrap_or(0)
}

fn floats(values: &[Option<f64>], as_text: bool) -> Verdict {
    let nn = values.iter().flatten().count();
    let distinct = values
        .iter()
        .flatten()
        .map(|v| v.to_bits())
        .collect::<HashSet<_>>()
        .len();
    let stored = if as_text {
        "decimal numbers stored as text"
    } else {
        "decimal numbers"
    };
    if few_distinct(distinct, nn) {
        return coded_categories(stored, distinct, nn, 0.7);
    }
    let places = max_decimals(values);
    quantity(
        "Float",
        if as_text { 0.85 } else { 0.95 },
        format!("{stored} with up to {places} decimals, {distinct} distinct values"),
    )
}

const TRUE_TOKENS: &[&str] = &["true", "t", "yes", "y"];
const FALSE_TOKENS: &[&str] = &["false", "f", "no", "n"];

/// Parse a boolean word (and 0/1), case-insensitively.
pub(crate) fn parse_bool(s: &str) -> Option<bool> {
    let l = s.trim().to_ascii_lowercase();
    if TRUE_TOKENS.contains(&l.as_str()) || l == "1" {
        Some(true)
    } else if FALSE_TOKENS.contains(&l.as_str()) || l == "0" {
        Some(false)
    } else {
        None
    }
}

/// A plain number as text; leading zeros (zip codes, account numbers) are not numbers.
pub(crate) fn numeric_text(s: &str) -> bool {
    let s = s.trim();
    let digits = s.strip_prefix('-').unwrap_or(s);
    !(digits.len() > 1 && digits.starts_with('0') && !digits.starts_with("0."))
}

pub(crate) fn is_email(s: &str) -> bool {
    let Some((local, domain)) = s.split_once('@') else {
        return false;
    };
    !local.is_empty()
        && !domain.contains('@')
        && !s.contains(char::is_whitespace)
        && domain
            .split_once('.')
            .is_some_and(|(host, tld)| !host.is_empty() && tld.len() >= 2 && !tld.ends_with('.'))
}

pub(crate) fn is_phone(s: &str) -> bool {
    let s = s.trim();
    let digits = s.bytes().filter(u8::is_ascii_digit).count();
    let allowed = s
        .bytes()
        .all(|b| b.is_ascii_digit() || b" +-().".contains(&b) || b == b'x');
    // A separator or a leading + distinguishes a phone number from a bare integer.
    allowed
        && (7..=15).contains(&digits)
        && (s.starts_with('+') || s.bytes().any(|b| b" -().".contains(&b)))
        && s.bytes()
            .next()
            .is_some_and(|b| b == b'+' || b == b'(' || b.is_ascii_digit())
}

/// An evenly spread sample of at most `k` items, in order.
fn spread<'a>(items: &[&'a str], k: usize) -> Vec<&'a str> {
    if items.len() <= k {
        return items.to_vec();
    }
    let step = items.len() as f64 / k as f64;
    (0..k).map(|i| items[(i as f64 * step) as usize]).collect()
}

/// Distinct values in first-seen order, so samples are deterministic.
fn distinct_in_order<'a>(values: &[&'a str]) -> Vec<&'a str> {
    let mut seen = HashSet::with_capacity_and_hasher(values.len().min(1 << 16), Default::default());
    values.iter().copied().filter(|s| seen.insert(*s)).collect()
}

/// Every non-null value parsed (and plain: no leading zeros), or `None` if one is not.
fn parse_all<'a, T: std::str::FromStr>(
    values: impl Iterator<Item = Option<&'a str>>,
    ok: impl Fn(&T) -> bool,
) -> Option<Vec<Option<T>>> {
    values
        .map(|v| match v {
            None => Some(None),
            Some(s) if numeric_text(s) => s.trim().parse::<T>().ok().filter(&ok).map(Some),
            Some(_) => None,
        })
        .collect()
}

fn strings(name: &str, values: &[Option<String>], nulls: usize) -> Verdict {
    let present: Vec<&str> = values.iter().flatten().map(String::as_str).collect();
    // Patterns (booleans, numbers, dates, emails, phones) are decided on an evenly spread
    // sample; hashing every value for the distinct count is left to the columns that need it.
    let sample = spread(&present, VERIFY_SAMPLE);
    let distinct = distinct_in_order(&sample);
    let text = Text {
        name,
        values,
        present: &present,
        distinct: &distinct,
        nulls,
    };
    if let Some(v) = booleans_or_numbers(&text) {
        return v;
    }
    let note = match dates(&distinct) {
        Ok(v) => return in_one_zone(v, &present),
        Err(note) => note,
    };
    if distinct.iter().all(|s| is_email(s)) {
        return verdict(
            SdType::Email,
            0.9,
            format!("{note}every value looks like an email address"),
        );
    }
    if distinct.iter().all(|s| is_phone(s)) {
        return verdict(
            SdType::Phone,
            0.8,
            format!("{note}every value looks like a phone number"),
        );
    }
    free_form(name, &present, nulls, &note)
}

/// Most distinct spellings of a missing number in a column of numbers (`unknown`, `-`, `?`).
const MISSING_CODES_MAX: usize = 3;
/// ...and the most rows they may fill.
const MISSING_CODES_MAX_SHARE: f64 = 0.05;

/// A number as text, as a numerical column reads it.
/// An integer must fit in 64 bits: longer runs of digits are identifiers (order numbers,
/// hashes), every digit of which counts, not quantities to round.
fn is_number(s: &str) -> bool {
    let s = s.trim();
    let digits = s.strip_prefix(['-', '+']).unwrap_or(s);
    if !digits.is_empty() && digits.bytes().all(|b| b.is_ascii_digit()) {
        return s.parse::<i64>().is_ok();
    }
    s.parse::<f64>().is_ok_and(f64::is_finite)
}

/// The spellings of a missing number in a column of numbers stored as text: exports write
/// `unknown`, `-` or `?` where a number is missing. At most [`MISSING_CODES_MAX`] spellings,
/// without digits (`12kg` or `1,234` are numbers written oddly, not missing ones), on at most
/// [`MISSING_CODES_MAX_SHARE`] of the values; `None` when the column has more text than that
/// (it is not a column of numbers). Inference and applying metadata read such a column alike:
/// these spellings as missing.
pub(crate) fn missing_number_codes<'a>(
    present: impl Iterator<Item = &'a str>,
) -> Option<HashSet<&'a str>> {
    let mut codes = HashSet::default();
    let (mut rows, mut coded) = (0usize, 0usize);
    for s in present {
        rows += 1;
        if is_number(s) {
            continue;
        }
        if s.bytes().any(|b| b.is_ascii_digit()) || s.chars().count() > 20 {
            return None;
        }
        coded += 1;
        codes.insert(s);
        if codes.len() > MISSING_CODES_MAX {
            return None;
        }
    }
    (coded as f64 <= MISSING_CODES_MAX_SHARE * rows as f64).then_some(codes)
}

/// A column of text as the pattern rules read it.
struct Text<'a> {
    name: &'a str,
    values: &'a [Option<String>],
    present: &'a [&'a str],
    /// The distinct values of an evenly spread sample, in first-seen order.
    distinct: &'a [&'a str],
    nulls: usize,
}

impl<'a> Text<'a> {
    /// Every value, missing ones as `None`.
    fn texts(&self) -> impl Iterator<Item = Option<&'a str>> + use<'a> {
        self.values.iter().map(Option::as_deref)
    }
}

/// Text that spells booleans, integers or floats, checked on the distinct sampled values.
fn booleans_or_numbers(c: &Text) -> Option<Verdict> {
    if c.distinct.len() <= 2
        && c.distinct.iter().all(|s| {
            let l = s.trim().to_ascii_lowercase();
            TRUE_TOKENS.contains(&l.as_str()) || FALSE_TOKENS.contains(&l.as_str())
        })
        && c.present.iter().all(|s| c.distinct.contains(s))
    {
        return Some(verdict(
            SdType::Boolean,
            0.9,
            format!("only the words {:?}", c.distinct),
        ));
    }
    if c.distinct
        .iter()
        .all(|s| numeric_text(s) && s.trim().parse::<i64>().is_ok())
        && let Some(ints) = parse_all::<i64>(c.texts(), |_| true)
    {
        return Some(integers(c.name, &ints, c.nulls, true));
    }
    if c.distinct.iter().all(|s| numeric_text(s) && is_number(s))
        && let Some(fl) = parse_all::<f64>(c.texts(), |x| x.is_finite())
    {
        return Some(floats(&fl, true));
    }
    if let Some(style) = number::describe(c.distinct.iter().copied())
        && let Some(numbers) = number::read(c.values)
    {
        let mut v = match numbers {
            ColumnData::Int(ints) => integers(c.name, &ints, c.nulls, true),
            ColumnData::Float(fl) => floats(&fl, true),
            _ => return None,
        };
        v.2 = format!("{}; {style}", v.2);
        return Some(v);
    }
    numbers_with_missing_codes(c)
}

/// Numbers with a few spellings of a missing one among them ([`missing_number_codes`]):
/// numerical, those spellings read as missing, and the reason says which.
fn numbers_with_missing_codes(c: &Text) -> Option<Verdict> {
    // The distinct sample rules most text out cheaply; the rows are then counted in full.
    let text = c.distinct.iter().filter(|s| !is_number(s)).count();
    if text == 0 || text > MISSING_CODES_MAX || text == c.distinct.len() {
        return None;
    }
    let codes = missing_number_codes(c.present.iter().copied())?;
    let coded = c.present.iter().filter(|s| codes.contains(*s)).count();
    let plain = || c.texts().map(|v| v.filter(|s| !codes.contains(s)));
    let mut verdict = match parse_all::<i64>(plain(), |_| true) {
        Some(ints) => integers(c.name, &ints, c.nulls + coded, true),
        None => floats(&parse_all::<f64>(plain(), |x| x.is_finite())?, true),
    };
    // Only as quantities: codes, keys and dates keep their text.
    if verdict.0.sdtype != SdType::Numerical {
        return None;
    }
    let mut spellings: Vec<&str> = codes.into_iter().collect();
    spellings.sort_unstable();
    verdict.2 = format!(
        "{}; {spellings:?} ({coded} rows) read as missing",
        verdict.2
    );
    Some(verdict)
}

/// Dates in one format across every checked value; otherwise a note on what came close,
/// for the verdict that follows.
fn dates(verify: &[&str]) -> Result<Verdict, String> {
    let head: Vec<&str> = verify.iter().copied().take(DETECT_SAMPLE).collect();
    match datetime::detect(head.iter().copied()) {
        Detected::Format { format, ambiguous } => {
            let parser = datetime::DateParser::new(format).expect("candidate formats are valid");
            let ok = verify.iter().filter(|v| parser.parse(v).is_some()).count();
            if ok == verify.len() {
                let mut out = verdict(
                    SdType::Datetime,
                    if ambiguous { 0.7 } else { 0.95 },
                    if ambiguous {
                        format!("dates matching {format} (day and month order is ambiguous)")
                    } else {
                        format!("every value matches {format}")
                    },
                );
                out.0.datetime_format = Some(format.to_owned());
                return Ok(out);
            }
            Err(format!(
                "{} of {} checked values match {format}, not all; ",
                ok,
                verify.len()
            ))
        }
        Detected::Mixed(formats) => Err(format!(
            "dates in mixed formats ({}), so no single datetime_format fits; ",
            formats.join(", ")
        )),
        Detected::None => Err(String::new()),
    }
}

/// A datetime verdict whose format has a UTC offset (`%:z`, `%z`), for a column whose every
/// value is written in the same zone (`+02:00`): that offset as literal text in the format,
/// so the times are read and written as the wall-clock times they are, offset and all,
/// rather than moved to UTC. A column of several zones keeps the offset field (and UTC).
fn in_one_zone(mut v: Verdict, present: &[&str]) -> Verdict {
    let Some(format) = v.0.datetime_format.clone() else {
        return v;
    };
    let (field, len) = match (format.ends_with("%:z"), format.ends_with("%z")) {
        (true, _) => ("%:z", 6),
        (_, true) => ("%z", 5),
        _ => return v,
    };
    let offset = |s: &str| {
        s.trim()
            .get(s.trim().len().saturating_sub(len)..)
            .map(str::to_owned)
    };
    let Some(zone) = present.first().and_then(|s| offset(s)) else {
        return v;
    };
    let is_offset = zone.starts_with(['+', '-'])
        && zone[1..]
            .chars()
            .all(|c| c.is_ascii_digit() || (len == 6 && c == ':'));
    if !is_offset
        || !present
            .iter()
            .all(|s| offset(s).as_deref() == Some(zone.as_str()))
    {
        return v;
    }
    let literal = format!("{}{zone}", &format[..format.len() - field.len()]);
    v.2 = format!("{}; every value is at UTC{zone}, kept as written", v.2);
    v.0.datetime_format = Some(literal);
    v
}

/// Strings of no pattern: a key, free text or categories, by how many are distinct and
/// how long they are.
fn free_form(name: &str, present: &[&str], nulls: usize, note: &str) -> Verdict {
    let nn = present.len();
    let d = distinct_in_order(present).len();
    let share = d as f64 / nn as f64;
    let sample = spread(present, 1000);
    let avg_len =
        sample.iter().map(|s| s.chars().count()).sum::<usize>() as f64 / sample.len() as f64;
    let avg_words = sample
        .iter()
        .map(|s| s.split_whitespace().count())
        .sum::<usize>() as f64
        / sample.len() as f64;
    let token_like = sample
        .iter()
        .all(|s| !s.contains(char::is_whitespace) && s.len() <= 64);
    let unique = d == nn && nulls == 0;
    if unique && token_like && (id_name_hint(name) || nn >= 10) {
        let conf = if id_name_hint(name) { 0.9 } else { 0.7 };
        return verdict(
            SdType::Id,
            conf,
            format!("{note}unique per row, short tokens: a key"),
        );
    }
    // Hundreds of thousands of "categories" are not categories, whatever their share.
    let many = d > STRING_CATEGORIES_MAX && share > CATEGORICAL_MAX_SHARE;
    if (share > 0.5 || many) && (avg_len >= 30.0 || avg_words >= 4.0) {
        return verdict(
            SdType::Text,
            0.8,
            format!(
                "{note}{:.0}% distinct, long strings (avg {avg_len:.0} chars): free text",
                share * 100.0
            ),
        );
    }
    if d <= CATEGORICAL_MAX_DISTINCT || (share <= 0.5 && !many) {
        let conf = if note.is_empty() {
            if d <= 50 { 0.9 } else { 0.7 }
        } else {
            0.5
        };
        return verdict(
            SdType::Categorical,
            conf,
            format!("{note}{d} distinct values in {nn} rows: categories"),
        );
    }
    verdict(
        SdType::Text,
        0.5,
        format!(
            "{note}many distinct short strings ({:.0}% distinct)",
            share * 100.0
        ),
    )
}
