//! CSV: encoding, delimiter sniffing and a structural pre-scan are hand-written (polars has
//! none of them: it assumes UTF-8, a known separator, and pads or rejects ragged rows without
//! a line number); the parse itself is polars'.

use std::borrow::Cow;
use std::io::Cursor;

use polars::prelude::*;
use synth_table::Table;

use super::{frame_to_table, malformed};
use crate::{DataError, FileFormat, Limits};

/// Null spellings handed to polars' parser, most common first.
const POLARS_NULLS: [&str; 7] = ["NA", "null", "NaN", "N/A", "None", "NULL", "nan"];
const DELIMITERS: [u8; 4] = [b',', b';', b'\t', b'|'];
/// Records looked at to pick the delimiter.
const SNIFF_RECORDS: usize = 50;

pub(super) fn read(
    bytes: &[u8],
    limits: &Limits,
    warnings: &mut Vec<String>,
) -> Result<Table, DataError> {
    let text = decode(bytes, warnings);
    if text.iter().all(|b| b.is_ascii_whitespace()) {
        return Err(DataError::Empty);
    }
    let delimiter = sniff_delimiter(&text);
    let shape = scan(&text, delimiter)?;
    if shape.columns > limits.max_columns {
        return Err(DataError::TooManyColumns {
            count: shape.columns,
            limit: limits.max_columns,
        });
    }
    if shape.rows == 0 {
        return Err(DataError::HeaderOnly);
    }
    if shape.rows > limits.max_rows {
        return Err(DataError::TooManyRows {
            limit: limits.max_rows,
        });
    }
    let parse = |infer: Option<usize>| {
        // polars compares every field with every token, so it gets the common spellings only
        // (an empty field is null already); the rare ones are caught when text is converted.
        let nulls = POLARS_NULLS.iter().map(|s| (*s).into()).collect();
        CsvReadOptions::default()
            .with_has_header(true)
            .with_infer_schema_length(infer)
            .with_parse_options(
                CsvParseOptions::default()
                    .with_separator(delimiter)
                    .with_quote_char(Some(b'"'))
                    .with_null_values(Some(NullValues::AllColumns(nulls))),
            )
            .into_reader_with_file_handle(Cursor::new(&text[..]))
            .finish()
    };
    // A schema guessed from the first rows can be wrong further down (ints then a float);
    // only then pay for a full-file inference.
    let df = match parse(Some(10_000)) {
        Ok(df) => df,
        Err(_) => parse(None).map_err(|e| malformed(FileFormat::Csv, e))?,
    };
    let mut table = frame_to_table(&df, FileFormat::Csv)?;
    // polars unquotes header fields but leaves their doubled quotes (`"a""b"` is `a""b`).
    if table.columns.iter().any(|c| c.name.contains("\"\"")) {
        for col in &mut table.columns {
            col.name = col.name.replace("\"\"", "\"");
        }
        table = Table::new(table.columns).map_err(DataError::InvalidTable)?;
    }
    Ok(table)
}

/// UTF-8 without its BOM, or Latin-1 transcoded to UTF-8 (every byte is a valid Latin-1 char).
fn decode<'a>(bytes: &'a [u8], warnings: &mut Vec<String>) -> Cow<'a, [u8]> {
    let bytes = bytes.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(bytes);
    if std::str::from_utf8(bytes).is_ok() {
        return Cow::Borrowed(bytes);
    }
    warnings.push("the file is not valid UTF-8; it was read as Latin-1 (ISO-8859-1)".into());
    Cow::Owned(
        bytes
            .iter()
            .map(|&b| b as char)
            .collect::<String>()
            .into_bytes(),
    )
}

/// Field counts of the first records for one delimiter, quote-aware.
fn field_counts(text: &[u8], delimiter: u8) -> Vec<usize> {
    let mut counts = Vec::new();
    let mut fields = 1;
    let mut in_quotes = false;
    let mut line_empty = true;
    for &b in text {
        match b {
            b'"' => {
                in_quotes = !in_quotes;
                line_empty = false;
            }
            b'\n' if !in_quotes => {
                if !line_empty {
                    counts.push(fields);
                    if counts.len() == SNIFF_RECORDS {
                        return counts;
                    }
                }
                fields = 1;
                line_empty = true;
            }
            b'\r' => {}
            _ if b == delimiter && !in_quotes => {
                fields += 1;
                line_empty = false;
            }
            _ => line_empty = false,
        }
    }
    if !line_empty {
        counts.push(fields);
    }
    counts
}

/// The delimiter among `, ; \t |` that splits the first records into the same number (> 1) of
/// fields; ties go to the one that splits into more fields, then to the comma.
pub(crate) fn sniff_delimiter(text: &[u8]) -> u8 {
    let mut best = (b',', 0usize, 0usize); // (delimiter, consistent records, fields)
    for d in DELIMITERS {
        let counts = field_counts(text, d);
        let Some(&header) = counts.first() else {
            continue;
        };
        if header < 2 {
            continue;
        }
        let consistent = counts.iter().take_while(|&&c| c == header).count();
        if (consistent, header) > (best.1, best.2) {
            best = (d, consistent, header);
        }
    }
    best.0
}

struct Shape {
    columns: usize,
    rows: usize,
}

/// One quote-aware pass over the file: the header's width, the number of data records, and the
/// first record whose width differs (by physical line number, as an editor shows it). It jumps
/// between quotes, newlines and delimiters with memchr, the only bytes that matter here.
fn scan(text: &[u8], delimiter: u8) -> Result<Shape, DataError> {
    let mut line = 1usize;
    let mut record_line = 1usize;
    let mut record_start = 0usize;
    let mut fields = 1usize;
    let mut in_quotes = false;
    let mut saw_quote = false;
    let mut header: Option<usize> = None;
    let mut rows = 0usize;
    let mut end_record = |fields: usize, record_line: usize| -> Result<(), DataError> {
        match header {
            None => header = Some(fields),
            Some(expected) if expected != fields => {
                return Err(DataError::RaggedCsv {
                    line: record_line,
                    expected,
                    found: fields,
                });
            }
            Some(_) => rows += 1,
        }
        Ok(())
    };
    // A record of one field with no quote is blank when it holds nothing but `\r`.
    let blank = |from: usize, to: usize| text[from..to].iter().all(|&b| b == b'\r');
    for pos in memchr::memchr3_iter(b'"', b'\n', delimiter, text) {
        match text[pos] {
            b'"' => {
                in_quotes = !in_quotes;
                saw_quote = true;
            }
            b'\n' => {
                line += 1;
                if !in_quotes {
                    if fields > 1 || saw_quote || !blank(record_start, pos) {
                        end_record(fields, record_line)?;
                    }
                    fields = 1;
                    saw_quote = false;
                    record_start = pos + 1;
                    record_line = line;
                }
            }
            _ if !in_quotes => fields += 1,
            _ => {}
        }
    }
    if in_quotes {
        return Err(DataError::UnterminatedQuote { line: record_line });
    }
    if fields > 1 || saw_quote || !blank(record_start, text.len()) {
        end_record(fields, record_line)?;
    }
    Ok(Shape {
        columns: header.unwrap_or(0),
        rows,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sniffs_each_delimiter_and_ignores_quoted_ones() {
        assert_eq!(sniff_delimiter(b"a,b,c\n1,2,3\n"), b',');
        assert_eq!(sniff_delimiter(b"a;b\n\"1,5\";2\n\"3,5\";4\n"), b';');
        assert_eq!(sniff_delimiter(b"a\tb\n1\t2\n"), b'\t');
        assert_eq!(sniff_delimiter(b"a|b|c\n1|2|3\n"), b'|');
        // Commas inside quotes must not win over the real separator.
        assert_eq!(
            sniff_delimiter(b"name|note\nx|\"a, b, c\"\ny|\"d, e\"\n"),
            b'|'
        );
    }

    #[test]
    fn scan_reports_the_first_ragged_line() {
        let err = scan(b"a,b\n1,2\n\"multi\nline\",3\n4,5,6\n", b',')
            .err()
            .unwrap();
        match err {
            DataError::RaggedCsv {
                line,
                expected,
                found,
            } => assert_eq!((line, expected, found), (5, 2, 3)),
            e => panic!("unexpected {e}"),
        }
        let shape = scan(b"a,b\r\n1,2\r\n\r\n3,4", b',').unwrap();
        assert_eq!((shape.columns, shape.rows), (2, 2));
        assert!(matches!(
            scan(b"a,b\n\"1,2\n", b','),
            Err(DataError::UnterminatedQuote { line: 2 })
        ));
    }
}
