//! Semantic type inference: what each column *means* (SDV sdtypes), with a confidence and a
//! reason the user can read and override. Hand-written: polars knows storage types, not
//! meanings. Work is done on a column's distinct values wherever possible, so a million-row
//! column of a few hundred categories costs one hashing pass.

use std::collections::HashSet;

use serde::Serialize;
use synth_core::table::{Column, ColumnData, ColumnMetadata, Metadata, SdType, Table};

use crate::datetime::{self, Detected};

/// Numbers with at most this many distinct values...
const CATEGORICAL_MAX_DISTINCT: usize = 10;
/// ...making up at most this share of the non-null values are categories, not quantities.
const CATEGORICAL_MAX_SHARE: f64 = 0.05;
/// Values examined to detect a datetime format; the format is then verified on more.
const DETECT_SAMPLE: usize = 200;
/// Distinct values a detected pattern (datetime, email, phone) is verified against.
const VERIFY_SAMPLE: usize = 20_000;

/// What inference concluded about one column, and why.
#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
pub struct ColumnInference {
    pub name: String,
    pub sdtype: SdType,
    /// 0..1: how sure the rule that decided is (1 when the storage type says it all).
    pub confidence: f64,
    pub reason: String,
}

/// Inferred SDV metadata plus the per-column reasoning behind it.
#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
pub struct Inference {
    pub metadata: Metadata,
    pub columns: Vec<ColumnInference>,
}

/// Infer every column's sdtype (and representation, datetime format, PII flag) and pick a
/// primary key among the id columns.
pub fn infer_metadata(table: &Table) -> Inference {
    let mut columns = Vec::with_capacity(table.columns.len());
    let mut metas = Vec::with_capacity(table.columns.len());
    for col in &table.columns {
        let (meta, confidence, reason) = infer_column(col);
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
            let mut out = verdict(
                SdType::Numerical,
                0.6,
                format!("only {distinct} distinct {stored}, but they look like calendar years"),
            );
            out.0.computer_representation = Some("Int64".into());
            return out;
        }
        return verdict(
            SdType::Categorical,
            0.8,
            format!(
                "{stored} with only {distinct} distinct values in {nn} (≤ {CATEGORICAL_MAX_DISTINCT} and ≤ 5% of rows): coded categories"
            ),
        );
    }
    let mut out = verdict(
        SdType::Numerical,
        if as_text { 0.85 } else { 0.95 },
        format!("{stored} with {distinct} distinct values"),
    );
    out.0.computer_representation = Some("Int64".into());
    out
}

/// Decimal places of a float as it would be printed (shortest round-trip form).
fn decimals(v: f64) -> usize {
    let s = v.to_string();
    if s.contains(['e', 'E']) {
        return 0;
    }
    s.split_once('.').map_or(0, |(_, f)| f.len())
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
        return verdict(
            SdType::Categorical,
            0.7,
            format!(
                "{stored} with only {distinct} distinct values in {nn} (≤ {CATEGORICAL_MAX_DISTINCT} and ≤ 5% of rows): coded categories"
            ),
        );
    }
    let places = values
        .iter()
        .flatten()
        .take(1000)
        .map(|&v| decimals(v))
        .max()
        .unwrap_or(0);
    let mut out = verdict(
        SdType::Numerical,
        if as_text { 0.85 } else { 0.95 },
        format!("{stored} with up to {places} decimals, {distinct} distinct values"),
    );
    out.0.computer_representation = Some("Float".into());
    out
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
fn numeric_text(s: &str) -> bool {
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

fn strings(name: &str, values: &[Option<String>], nulls: usize) -> Verdict {
    let present: Vec<&str> = values.iter().flatten().map(String::as_str).collect();
    let nn = present.len();
    // Distinct values in first-seen order, so samples are deterministic.
    let mut seen = HashSet::with_capacity(1024);
    let distinct: Vec<&str> = present
        .iter()
        .copied()
        .filter(|s| seen.insert(*s))
        .collect();
    drop(seen);
    let d = distinct.len();
    let verify = spread(&distinct, VERIFY_SAMPLE);

    if d <= 2
        && distinct.iter().all(|s| {
            let l = s.trim().to_ascii_lowercase();
            TRUE_TOKENS.contains(&l.as_str()) || FALSE_TOKENS.contains(&l.as_str())
        })
    {
        return verdict(SdType::Boolean, 0.9, format!("only the words {distinct:?}"));
    }

    if distinct
        .iter()
        .all(|s| numeric_text(s) && s.trim().parse::<i64>().is_ok())
    {
        let ints: Vec<Option<i64>> = values
            .iter()
            .map(|v| v.as_deref().and_then(|s| s.trim().parse().ok()))
            .collect();
        return integers(name, &ints, nulls, true);
    }
    if distinct
        .iter()
        .all(|s| numeric_text(s) && s.trim().parse::<f64>().is_ok_and(f64::is_finite))
    {
        let fl: Vec<Option<f64>> = values
            .iter()
            .map(|v| v.as_deref().and_then(|s| s.trim().parse().ok()))
            .collect();
        return floats(&fl, true);
    }

    let head: Vec<&str> = distinct.iter().copied().take(DETECT_SAMPLE).collect();
    let mut note = String::new();
    match datetime::detect(head.iter().copied()) {
        Detected::Format { format, ambiguous } => {
            let ok = verify
                .iter()
                .filter(|v| datetime::parse(v, format).is_some())
                .count();
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
                return out;
            }
            note = format!(
                "{} of {} checked values match {format}, not all; ",
                ok,
                verify.len()
            );
        }
        Detected::Mixed(formats) => {
            note = format!(
                "dates in mixed formats ({}), so no single datetime_format fits; ",
                formats.join(", ")
            );
        }
        Detected::None => {}
    }

    if verify.iter().all(|s| is_email(s)) {
        return verdict(
            SdType::Email,
            0.9,
            format!("{note}every value looks like an email address"),
        );
    }
    if verify.iter().all(|s| is_phone(s)) {
        return verdict(
            SdType::Phone,
            0.8,
            format!("{note}every value looks like a phone number"),
        );
    }

    let share = d as f64 / nn as f64;
    let sample = spread(&present, 1000);
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
    if share > 0.5 && (avg_len >= 30.0 || avg_words >= 4.0) {
        return verdict(
            SdType::Text,
            0.8,
            format!(
                "{note}mostly unique ({:.0}% distinct), long strings (avg {avg_len:.0} chars): free text",
                share * 100.0
            ),
        );
    }
    if d <= CATEGORICAL_MAX_DISTINCT || share <= 0.5 {
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
            "{note}mostly unique ({:.0}% distinct) short strings",
            share * 100.0
        ),
    )
}
