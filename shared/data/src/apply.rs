//! Applying metadata (inferred or the user's own) to a table: each column is converted to the
//! storage its sdtype needs, and metadata the data contradicts is refused, naming the column.

use std::collections::BTreeMap;

use polars::prelude::PlHashSet as HashSet;
use rayon::prelude::*;
use synth_table::{Column, ColumnData, ColumnMetadata, Metadata, SdType, Table};

use crate::DataError;
use crate::datetime;
use crate::infer::{missing_number_codes, parse_bool};

/// Coerce each column named in `metadata` to its sdtype: datetime strings (with
/// `datetime_format`) to datetimes, numbers stored as text to numbers, 0/1 to booleans.
/// Columns the metadata does not name are kept as they are.
pub fn apply_metadata(table: Table, metadata: &Metadata) -> Result<Table, DataError> {
    apply_metadata_noting(table, metadata).map(|(table, _)| table)
}

/// [`apply_metadata`], with a note for each column in which values were read as missing
/// (`unknown`, `-`, `oops` among numbers): the table loses them, so its user should hear of it.
pub fn apply_metadata_noting(
    table: Table,
    metadata: &Metadata,
) -> Result<(Table, Vec<String>), DataError> {
    for (name, _) in &metadata.columns {
        if table.column(name).is_none() {
            return Err(DataError::UnknownColumn {
                column: name.clone(),
            });
        }
    }
    let columns = table
        .columns
        .into_par_iter()
        .map(|col| match metadata.column(&col.name) {
            Some(meta) => coerce(col, meta),
            None => Ok((col, None)),
        })
        .collect::<Result<Vec<_>, _>>()?;
    let (columns, notes): (Vec<Column>, Vec<Option<String>>) = columns.into_iter().unzip();
    let table = Table::new(columns).map_err(DataError::InvalidTable)?;
    if let Some(pk) = &metadata.primary_key {
        check_primary_key(&table, pk)?;
    }
    Ok((table, notes.into_iter().flatten().collect()))
}

fn check_primary_key(table: &Table, pk: &str) -> Result<(), DataError> {
    let col = table.column(pk).ok_or_else(|| DataError::UnknownColumn {
        column: pk.to_owned(),
    })?;
    let why = |w: &str| DataError::PrimaryKey {
        column: pk.to_owned(),
        why: w.to_owned(),
    };
    if col.data.null_count() > 0 {
        return Err(why("has missing values"));
    }
    if present_values_distinct(&col.data) {
        Ok(())
    } else {
        Err(why("has duplicate values, so it cannot identify rows"))
    }
}

/// Whether no present value of a column occurs twice (what an `id` column needs).
fn present_values_distinct(data: &ColumnData) -> bool {
    fn distinct<T: std::hash::Hash + Eq>(values: impl Iterator<Item = T>) -> bool {
        let mut seen = HashSet::default();
        values.into_iter().all(|x| seen.insert(x))
    }
    match data {
        ColumnData::Float(v) => distinct(v.iter().flatten().map(|f| f.to_bits())),
        ColumnData::Int(v) | ColumnData::Datetime(v) => distinct(v.iter().flatten()),
        ColumnData::Bool(v) => v.iter().flatten().count() <= 2 && distinct(v.iter().flatten()),
        ColumnData::Str(v) => distinct(v.iter().flatten()),
    }
}

/// For each column of `table` (as read, not yet typed) that `metadata` names, the sdtypes its
/// values allow: what a user's metadata override may pick. Each sdtype is tried by applying
/// it to the column alone; categorical always fits, the PII and text types fit text.
pub fn compatible_sdtypes(table: &Table, metadata: &Metadata) -> BTreeMap<String, Vec<SdType>> {
    table
        .columns
        .par_iter()
        .filter_map(|column| {
            let inferred = metadata.column(&column.name)?;
            Some((column.name.clone(), compatible(column, inferred)))
        })
        .collect()
}

fn compatible(column: &Column, inferred: &ColumnMetadata) -> Vec<SdType> {
    let is_text = matches!(column.data, ColumnData::Str(_));
    let applies = |sdtype: SdType| {
        let mut meta = ColumnMetadata::new(sdtype);
        if sdtype == SdType::Datetime {
            let Some(format) = inferred.datetime_format.clone() else {
                return false;
            };
            meta.datetime_format = Some(format);
        }
        coerce(column.clone(), &meta).is_ok()
    };
    SdType::ALL
        .into_iter()
        .filter(|&sdtype| match sdtype {
            SdType::Categorical => true,
            SdType::Text | SdType::Email | SdType::Phone => is_text || inferred.sdtype == sdtype,
            SdType::Id => present_values_distinct(&column.data),
            _ if sdtype == inferred.sdtype => true,
            _ => applies(sdtype),
        })
        .collect()
}

fn contradiction(col: &str, sdtype: SdType, row: usize, value: String, why: &str) -> DataError {
    DataError::Contradiction {
        column: col.to_owned(),
        sdtype: serde_json::to_value(sdtype)
            .ok()
            .and_then(|v| v.as_str().map(str::to_owned))
            .unwrap_or_default(),
        row: row + 1,
        value,
        why: why.to_owned(),
    }
}

/// Convert every non-null value with `f`, failing on the first it refuses.
fn convert<T, U>(
    values: &[Option<T>],
    mut f: impl FnMut(&T) -> Option<U>,
    fail: impl Fn(usize, &T) -> DataError,
) -> Result<Vec<Option<U>>, DataError> {
    values
        .iter()
        .enumerate()
        .map(|(i, v)| match v {
            None => Ok(None),
            Some(x) => f(x).map(Some).ok_or_else(|| fail(i, x)),
        })
        .collect()
}

/// How a conversion names the value it refused: row, value, why.
type Refusal<'a> = &'a dyn Fn(usize, String, &str) -> DataError;

/// The column in its sdtype's storage, and a note when values of it were read as missing.
fn coerce(col: Column, meta: &ColumnMetadata) -> Result<(Column, Option<String>), DataError> {
    let Column { name, data } = col;
    let sdtype = meta.sdtype;
    let err = |row: usize, value: String, why: &str| contradiction(&name, sdtype, row, value, why);
    let mut missing = None;
    let data = match sdtype {
        SdType::Numerical => {
            let want_int = meta.computer_representation.as_deref().is_some_and(|r| {
                r.starts_with("Int") || r.starts_with("UInt") || r.starts_with("int")
            });
            let auto = meta.computer_representation.is_none();
            numerical(data, want_int, auto, &mut missing, &err)?
        }
        SdType::Boolean => boolean(data, &err)?,
        SdType::Datetime => datetime_column(data, meta.datetime_format.as_deref(), &err)?,
        // Categories, keys, text and PII keep their storage; only their meaning changes.
        _ => data,
    };
    let note = missing.map(|Missing { spellings, rows }| {
        format!(
            "column {name:?}: {rows} value{} read as missing, written {}",
            if rows == 1 { "" } else { "s" },
            spellings.join(", ")
        )
    });
    Ok((Column { name, data }, note))
}

/// Text read as a missing number: its spellings (quoted, sorted) and how many rows had one.
struct Missing {
    spellings: Vec<String>,
    rows: usize,
}

/// Booleans: numbers 0 and 1 become true and false; text keeps its words (`Yes`/`No`,
/// `True`/`False`, `Y`/`N`), checked to be booleans, so a synthetic table spells them as the
/// real one does.
fn boolean(data: ColumnData, err: Refusal) -> Result<ColumnData, DataError> {
    let zero_or_one = "only 0 and 1 are booleans";
    Ok(ColumnData::Bool(match data {
        ColumnData::Bool(v) => v,
        ColumnData::Str(v) => {
            let not_boolean = "not a boolean (true/false, yes/no, 1/0)";
            let refused = v.iter().enumerate().find_map(|(i, s)| {
                s.as_ref()
                    .filter(|s| parse_bool(s).is_none())
                    .map(|s| (i, s))
            });
            return match refused {
                Some((i, s)) => Err(err(i, s.clone(), not_boolean)),
                None => Ok(ColumnData::Str(v)),
            };
        }
        ColumnData::Int(v) => convert(
            &v,
            |x| match x {
                0 => Some(false),
                1 => Some(true),
                _ => None,
            },
            |i, x| err(i, x.to_string(), zero_or_one),
        )?,
        ColumnData::Float(v) => convert(
            &v,
            |x| (*x == 0.0 || *x == 1.0).then_some(*x == 1.0),
            |i, x| err(i, x.to_string(), zero_or_one),
        )?,
        ColumnData::Datetime(_) => {
            return Err(err(0, "a datetime".into(), "datetimes are not booleans"));
        }
    }))
}

/// Text numbers with their [`missing_number_codes`] made missing (unchanged when the column
/// has more text than those allow: then its first non-number is refused).
fn without_missing_codes(
    values: Vec<Option<String>>,
    missing: &mut Option<Missing>,
) -> Vec<Option<String>> {
    let codes: HashSet<String> = missing_number_codes(values.iter().flatten().map(String::as_str))
        .map(|codes| codes.into_iter().map(str::to_owned).collect())
        .unwrap_or_default();
    if codes.is_empty() {
        return values;
    }
    let mut spellings: Vec<String> = codes.iter().map(|c| format!("{c:?}")).collect();
    spellings.sort_unstable();
    let mut rows = 0;
    let values = values
        .into_iter()
        .map(|v| {
            let coded = v.as_ref().is_some_and(|s| codes.contains(s));
            rows += usize::from(coded);
            v.filter(|_| !coded)
        })
        .collect();
    *missing = Some(Missing { spellings, rows });
    values
}

/// Datetimes from text (in `format`, or one detected) or from integers (in `format` only).
fn datetime_column(
    data: ColumnData,
    format: Option<&str>,
    err: Refusal,
) -> Result<ColumnData, DataError> {
    let mismatch = |format: &str| format!("does not match datetime_format {format}");
    Ok(ColumnData::Datetime(match data {
        ColumnData::Datetime(v) => v,
        ColumnData::Str(v) => {
            let format = match format {
                Some(f) => f.to_owned(),
                None => detect_format(&v).ok_or_else(|| {
                    let (i, s) = first_present(&v);
                    err(
                        i,
                        s,
                        "no datetime_format given and none of the known formats fits",
                    )
                })?,
            };
            let parser = date_parser(&format, err)?;
            convert(
                &v,
                |s| parser.parse(s),
                |i, s| err(i, s.clone(), &mismatch(&format)),
            )?
        }
        // Integers are dates only when told how to read them (e.g. `%Y%m%d`).
        ColumnData::Int(v) => {
            let Some(format) = format else {
                let (i, s) = first_present(&v);
                return Err(err(
                    i,
                    s,
                    "integers are dates only with a datetime_format such as %Y%m%d",
                ));
            };
            let parser = date_parser(format, err)?;
            convert(
                &v,
                |x| parser.parse(&x.to_string()),
                |i, x| err(i, x.to_string(), &mismatch(format)),
            )?
        }
        other => {
            return Err(err(
                0,
                describe(&other).into(),
                "this storage cannot hold datetimes",
            ));
        }
    }))
}

/// A compiled datetime format, or an error naming the column if the format is invalid.
fn date_parser(format: &str, err: Refusal) -> Result<datetime::DateParser, DataError> {
    datetime::DateParser::new(format)
        .ok_or_else(|| err(0, format.to_owned(), "not a valid strftime datetime_format"))
}

fn describe(data: &ColumnData) -> &'static str {
    match data {
        ColumnData::Float(_) => "decimal numbers",
        ColumnData::Int(_) => "integers",
        ColumnData::Bool(_) => "booleans",
        ColumnData::Str(_) => "text",
        ColumnData::Datetime(_) => "datetimes",
    }
}

fn first_present<T: ToString>(v: &[Option<T>]) -> (usize, String) {
    v.iter()
        .enumerate()
        .find_map(|(i, x)| x.as_ref().map(|x| (i, x.to_string())))
        .unwrap_or((0, String::new()))
}

fn detect_format(values: &[Option<String>]) -> Option<String> {
    let sample: Vec<&str> = values
        .iter()
        .flatten()
        .take(200)
        .map(String::as_str)
        .collect();
    match datetime::detect(sample.iter().copied()) {
        datetime::Detected::Format { format, .. } => Some(format.to_owned()),
        _ => None,
    }
}

fn numerical(
    data: ColumnData,
    want_int: bool,
    auto: bool,
    missing: &mut Option<Missing>,
    err: Refusal,
) -> Result<ColumnData, DataError> {
    // Numbers written with a currency sign, separators or a percent sign are those numbers;
    // a few spellings of a missing number (`unknown`, `-`) are missing: as inference reads them.
    let data = match data {
        ColumnData::Str(v) => match crate::number::read(&v) {
            Some(numbers) => numbers,
            None => ColumnData::Str(without_missing_codes(v, missing)),
        },
        other => other,
    };
    Ok(match data {
        ColumnData::Int(v) if want_int || auto => ColumnData::Int(v),
        ColumnData::Int(v) => {
            ColumnData::Float(v.into_iter().map(|x| x.map(|x| x as f64)).collect())
        }
        ColumnData::Float(v) if want_int => ColumnData::Int(convert(
            &v,
            |x| (x.fract() == 0.0 && x.abs() < 9.0e15).then_some(*x as i64),
            |i, x| {
                err(
                    i,
                    x.to_string(),
                    "computer_representation is an integer type but this has decimals",
                )
            },
        )?),
        ColumnData::Float(v) => ColumnData::Float(v),
        ColumnData::Str(v) if want_int => ColumnData::Int(convert(
            &v,
            |s| s.trim().parse::<i64>().ok(),
            |i, s| err(i, s.clone(), "not an integer"),
        )?),
        ColumnData::Str(v)
            if auto && v.iter().flatten().all(|s| s.trim().parse::<i64>().is_ok()) =>
        {
            ColumnData::Int(
                v.iter()
                    .map(|s| s.as_deref().and_then(|s| s.trim().parse().ok()))
                    .collect(),
            )
        }
        ColumnData::Str(v) => {
            let floats = convert(
                &v,
                |s| s.trim().parse::<f64>().ok().filter(|x| x.is_finite()),
                |i, s| err(i, s.clone(), "not a number"),
            )?;
            ColumnData::Float(floats)
        }
        ColumnData::Bool(v) => ColumnData::Int(v.into_iter().map(|b| b.map(i64::from)).collect()),
        ColumnData::Datetime(_) => {
            return Err(err(0, "a datetime".into(), "datetimes are not numbers"));
        }
    })
}
