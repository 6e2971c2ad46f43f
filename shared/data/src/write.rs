//! Writing a table (a synthetic result, usually) in the format the user asked for. polars
//! writes CSV, JSON, NDJSON and Parquet; rust_xlsxwriter writes Excel. Datetimes go out as
//! text in their `datetime_format`, except in Parquet, which has a native timestamp type,
//! and in Excel, whose date cells show them in that format (Excel's own spelling of it);
//! a format Excel cannot show (a UTC offset) or a date before 1900 stays text there.
//! CSV and XLSX outputs neutralise formula cells (see `formula`).

use std::borrow::Cow;
use std::path::Path;

use polars::prelude::*;
use rust_xlsxwriter::{Format, Workbook};
use synth_table::{ColumnData, Metadata, Table};

use crate::datetime::{DEFAULT_DATETIME_FORMAT, DateFormatter, format_for_values};
use crate::formula::neutralise;
use crate::{DataError, FileFormat};

/// Excel's sheet size.
const XLSX_MAX_ROWS: usize = 1_048_575;
const XLSX_MAX_COLUMNS: usize = 16_384;

/// Write a table to `path`, in the format its extension names (tab-separated for `.tsv` and
/// `.tab`, pipe-separated for `.psv`).
pub fn write_path(table: &Table, metadata: &Metadata, path: &Path) -> Result<(), DataError> {
    let name = path
        .file_name()
        .and_then(|n| n.to_str())
        .unwrap_or_default();
    let format = FileFormat::from_extension(name)
        .ok_or_else(|| DataError::UnsupportedOutput(name.to_owned()))?;
    let ext = name
        .rsplit_once('.')
        .map_or("", |(_, e)| e)
        .to_ascii_lowercase();
    let delimiter = match ext.as_str() {
        "tsv" | "tab" => b'\t',
        "psv" => b'|',
        _ => b',',
    };
    let bytes = serialise(table, metadata, format, delimiter)?;
    std::fs::write(path, bytes)?;
    Ok(())
}

/// The metadata of a table as `format` writes it: CSV and XLSX write a formula-like column
/// name behind a `'` (see `formula`), so the metadata beside such a file names it so too,
/// and SDV finds every column of the file in it.
pub fn metadata_as_written(metadata: &Metadata, format: FileFormat) -> Metadata {
    if !matches!(format, FileFormat::Csv | FileFormat::Xlsx) {
        return metadata.clone();
    }
    let mut written = metadata.clone();
    for (name, _) in &mut written.columns {
        *name = neutralise(name).into_owned();
    }
    if let Some(pk) = &mut written.primary_key {
        *pk = neutralise(pk).into_owned();
    }
    written
}

/// A table serialised in `format` (CSV comma-separated).
pub fn write_bytes(
    table: &Table,
    metadata: &Metadata,
    format: FileFormat,
) -> Result<Vec<u8>, DataError> {
    serialise(table, metadata, format, b',')
}

fn serialise(
    table: &Table,
    metadata: &Metadata,
    format: FileFormat,
    delimiter: u8,
) -> Result<Vec<u8>, DataError> {
    let fail = |e: &dyn std::fmt::Display| DataError::Write {
        format,
        message: e.to_string(),
    };
    if format == FileFormat::Xlsx {
        return write_xlsx(table, metadata).map_err(|e| fail(&e));
    }
    let mut df = to_frame(table, metadata, format).map_err(|e| fail(&e))?;
    let mut buf = Vec::new();
    let result = match format {
        FileFormat::Csv => CsvWriter::new(&mut buf)
            .include_header(true)
            .with_separator(delimiter)
            .finish(&mut df),
        FileFormat::Json => JsonWriter::new(&mut buf)
            .with_json_format(JsonFormat::Json)
            .finish(&mut df),
        FileFormat::Ndjson => JsonWriter::new(&mut buf)
            .with_json_format(JsonFormat::JsonLines)
            .finish(&mut df),
        FileFormat::Parquet => ParquetWriter::new(&mut buf).finish(&mut df).map(|_| ()),
        FileFormat::Xlsx => unreachable!("handled above"),
    };
    result.map_err(|e| fail(&e))?;
    Ok(buf)
}

/// The column's datetime format; without one (a datetime column declared categorical, say),
/// the one its values need: a date alone when all are midnight.
fn datetime_format<'a>(metadata: &'a Metadata, column: &synth_table::Column) -> &'a str {
    let given = metadata
        .column(&column.name)
        .and_then(|m| m.datetime_format.as_deref());
    given.unwrap_or(match &column.data {
        ColumnData::Datetime(v) => format_for_values(v),
        _ => DEFAULT_DATETIME_FORMAT,
    })
}

/// Whether the metadata makes `column` a boolean.
fn is_boolean(metadata: &Metadata, column: &synth_table::Column) -> bool {
    metadata
        .column(&column.name)
        .is_some_and(|m| m.sdtype == synth_table::SdType::Boolean)
}

/// Whether a column of `format` holds dates alone: no time of day in its format, and every
/// value at midnight.
fn date_only(format: &str, values: &[Option<i64>]) -> bool {
    let day = 86_400_000_000i64;
    !crate::datetime::has_time(format) && values.iter().flatten().all(|v| v % day == 0)
}

fn to_frame(table: &Table, metadata: &Metadata, format: FileFormat) -> PolarsResult<DataFrame> {
    let native_time = format == FileFormat::Parquet;
    let spreadsheet = format == FileFormat::Csv;
    let typed = format != FileFormat::Csv;
    let columns = table
        .columns
        .iter()
        .map(|c| {
            let name = if spreadsheet {
                PlSmallStr::from(neutralise(&c.name).as_ref())
            } else {
                PlSmallStr::from(c.name.as_str())
            };
            let s = match &c.data {
                ColumnData::Float(v) => Series::new(name, v),
                ColumnData::Int(v) => Series::new(name, v),
                ColumnData::Bool(v) => Series::new(name, v),
                // Booleans kept in their words (`Yes`/`No`) for CSV and Excel are booleans in
                // typed formats: a JSON "False" is true to most code that reads it.
                ColumnData::Str(v) if typed && is_boolean(metadata, c) => {
                    let b: Vec<Option<bool>> = v
                        .iter()
                        .map(|x| x.as_deref().and_then(crate::infer::parse_bool))
                        .collect();
                    Series::new(name, b)
                }
                ColumnData::Str(v) if spreadsheet => {
                    let safe: Vec<Option<Cow<'_, str>>> =
                        v.iter().map(|x| x.as_deref().map(neutralise)).collect();
                    let safe: Vec<Option<&str>> = safe.iter().map(|x| x.as_deref()).collect();
                    Series::new(name, safe)
                }
                ColumnData::Str(v) => Series::new(name, v),
                ColumnData::Datetime(v) if native_time => {
                    let s = Series::new(name, v)
                        .cast(&DataType::Datetime(TimeUnit::Microseconds, None))?;
                    // Dates alone are Parquet dates (as a date-only column came in).
                    if date_only(datetime_format(metadata, c), v) {
                        s.cast(&DataType::Date)?
                    } else {
                        s
                    }
                }
                ColumnData::Datetime(v) => {
                    let formatter = DateFormatter::new(datetime_format(metadata, c));
                    let text: Vec<Option<String>> =
                        v.iter().map(|t| t.map(|t| formatter.format(t))).collect();
                    Series::new(name, text)
                }
            };
            Ok(s.into_column())
        })
        .collect::<PolarsResult<Vec<_>>>()?;
    DataFrame::new(table.n_rows(), columns)
}

fn write_xlsx(table: &Table, metadata: &Metadata) -> Result<Vec<u8>, String> {
    if table.n_rows() > XLSX_MAX_ROWS || table.columns.len() > XLSX_MAX_COLUMNS {
        return Err(format!(
            "a sheet holds at most {XLSX_MAX_ROWS} rows and {XLSX_MAX_COLUMNS} columns"
        ));
    }
    let mut book = Workbook::new();
    let sheet = book.add_worksheet();
    let e = |e: rust_xlsxwriter::XlsxError| e.to_string();
    for (j, col) in table.columns.iter().enumerate() {
        let c = j as u16;
        sheet.write_string(0, c, neutralise(&col.name)).map_err(e)?;
        let strftime = datetime_format(metadata, col);
        let formatter = DateFormatter::new(strftime);
        let date_cell = match &col.data {
            ColumnData::Datetime(v) if excel_holds(v) => {
                excel_format(strftime).map(|f| Format::new().set_num_format(f))
            }
            _ => None,
        };
        for r in 0..col.data.len() {
            let row = r as u32 + 1;
            match &col.data {
                ColumnData::Float(v) => match v[r] {
                    Some(x) if x.is_finite() => sheet.write_number(row, c, x).map(|_| ()),
                    _ => Ok(()),
                },
                ColumnData::Int(v) => match v[r] {
                    Some(x) => sheet.write_number(row, c, x as f64).map(|_| ()),
                    None => Ok(()),
                },
                ColumnData::Bool(v) => match v[r] {
                    Some(x) => sheet.write_boolean(row, c, x).map(|_| ()),
                    None => Ok(()),
                },
                ColumnData::Str(v) => match &v[r] {
                    Some(x) => sheet.write_string(row, c, neutralise(x)).map(|_| ()),
                    None => Ok(()),
                },
                ColumnData::Datetime(v) => match (v[r], &date_cell) {
                    (Some(t), Some(f)) => sheet
                        .write_number_with_format(row, c, crate::read::excel_serial(t), f)
                        .map(|_| ()),
                    (Some(t), _) => sheet.write_string(row, c, formatter.format(t)).map(|_| ()),
                    (None, _) => Ok(()),
                },
            }
            .map_err(e)?;
        }
    }
    book.save_to_buffer().map_err(e)
}

/// 1900-03-01 in microseconds since the Unix epoch: Excel's serial dates count from 1900
/// with a day that never was (29 February 1900), so a column with an earlier one is text.
const EXCEL_FIRST_DAY: i64 = -2_203_891_200_000_000;

/// Whether Excel's date cells hold every value of a column: none before 1900-03-01 and none
/// finer than a millisecond (Excel's own precision). A column is all date cells or all
/// text, so that it reads back as one type.
fn excel_holds(values: &[Option<i64>]) -> bool {
    values
        .iter()
        .flatten()
        .all(|&t| t >= EXCEL_FIRST_DAY && t % 1_000 == 0)
}

/// Excel's number format for a strftime format, or `None` where Excel has no spelling for
/// a field (offsets, weekday numbers, a 12-hour clock without AM/PM, ...).
fn excel_format(strftime: &str) -> Option<String> {
    if strftime.contains("%I") && !strftime.contains("%p") && !strftime.contains("%P") {
        return None;
    }
    let mut out = String::new();
    let mut chars = strftime.chars();
    while let Some(c) = chars.next() {
        if c != '%' {
            match c {
                '-' | '/' | '.' | ':' | ' ' | ',' => out.push(c),
                c if c.is_ascii_alphanumeric() => out.push_str(&format!("\\{c}")),
                _ => return None,
            }
            continue;
        }
        let field = match chars.next()? {
            'Y' => "yyyy",
            'y' => "yy",
            'm' => "mm",
            'd' => "dd",
            'e' => "d",
            'b' | 'h' => "mmm",
            'B' => "mmmm",
            'a' => "ddd",
            'A' => "dddd",
            'H' | 'I' => "hh",
            'M' => "mm",
            'S' => "ss",
            'p' | 'P' => "AM/PM",
            'T' => "hh:mm:ss",
            'R' => "hh:mm",
            'F' => "yyyy-mm-dd",
            '.' if chars.next()? == 'f' => ".000",
            _ => return None,
        };
        out.push_str(field);
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use synth_table::{Column, ColumnMetadata, SdType};

    const DAY: i64 = 86_400_000_000;

    /// A table of datetime columns.
    fn datetimes(columns: &[(&str, Vec<Option<i64>>)]) -> Table {
        let columns = columns.iter().map(|(name, v)| Column {
            name: (*name).into(),
            data: ColumnData::Datetime(v.clone()),
        });
        Table::new(columns.collect()).unwrap()
    }

    #[test]
    fn parquet_writes_dates_alone_as_dates_and_datetimes_as_timestamps() {
        let table = datetimes(&[
            ("born", vec![Some(DAY), None, Some(-3 * DAY)]),
            ("seen", vec![Some(DAY + 3_600_000_000), None, Some(DAY)]),
        ]);
        let dt = |f: &str| ColumnMetadata {
            datetime_format: Some(f.into()),
            ..ColumnMetadata::new(SdType::Datetime)
        };
        let metadata = Metadata::new(vec![
            ("born".into(), dt("%Y-%m-%d")),
            ("seen".into(), dt("%Y-%m-%d %H:%M")),
        ]);
        let bytes = write_bytes(&table, &metadata, FileFormat::Parquet).unwrap();
        let df = ParquetReader::new(std::io::Cursor::new(bytes))
            .finish()
            .unwrap();
        assert_eq!(df.column("born").unwrap().dtype(), &DataType::Date);
        assert_eq!(
            df.column("seen").unwrap().dtype(),
            &DataType::Datetime(TimeUnit::Microseconds, None)
        );
    }

    #[test]
    fn excel_spells_the_formats_it_can_show() {
        let cases = [
            ("%Y-%m-%d", Some("yyyy-mm-dd")),
            ("%d.%m.%Y %H:%M", Some("dd.mm.yyyy hh:mm")),
            ("%m/%d/%Y %I:%M %p", Some("mm/dd/yyyy hh:mm AM/PM")),
            ("%Y-%m-%dT%H:%M:%S%.f", Some("yyyy-mm-dd\\Thh:mm:ss.000")),
            ("%d %b %Y", Some("dd mmm yyyy")),
            ("%Y-%m-%dT%H:%M:%S%:z", None),
            ("%d/%m/%Y %I:%M", None),
            ("%Y-%m-%d %H:%M:%S %Z", None),
        ];
        for (strftime, excel) in cases {
            assert_eq!(excel_format(strftime).as_deref(), excel, "{strftime}");
        }
        assert!(excel_holds(&[Some(0), None, Some(EXCEL_FIRST_DAY)]));
        assert!(!excel_holds(&[Some(0), Some(EXCEL_FIRST_DAY - DAY)]));
        assert!(!excel_holds(&[Some(1_500)]), "finer than a millisecond");
        assert_eq!(crate::read::excel_serial(0), 25_569.0);
        assert_eq!(crate::read::excel_serial(86_400_000_000 / 2), 25_569.5);
    }

    #[test]
    fn datetimes_without_a_format_are_written_as_their_values_need() {
        let table = datetimes(&[
            ("signup", vec![Some(DAY), None]),
            ("seen", vec![Some(DAY + 3_600_000_000), None]),
        ]);
        // Declared categorical (no datetime_format): the dates stay dates.
        let metadata = Metadata::new(vec![
            ("signup".into(), ColumnMetadata::new(SdType::Categorical)),
            ("seen".into(), ColumnMetadata::new(SdType::Categorical)),
        ]);
        let csv = write_bytes(&table, &metadata, FileFormat::Csv).unwrap();
        assert_eq!(
            String::from_utf8(csv).unwrap(),
            "signup,seen\n1970-01-02,1970-01-02 01:00:00\n,\n"
        );
    }
}
