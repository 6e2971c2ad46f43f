//! CSV: polars parses, but it assumes UTF-8 and a known separator, and pads or rejects ragged
//! rows without a line number. So first the text is decoded (`encoding_rs` for the fallback
//! from UTF-8), its delimiter sniffed, and its shape checked — widths and line numbers, from
//! the records as `csv-core` splits them, quote-aware.

use std::borrow::Cow;
use std::io::Cursor;
use std::sync::Arc;

use polars::prelude::*;
use synth_table::Table;

use crate::infer::numeric_text;

use super::{frame_to_table, malformed};
use crate::{DataError, FileFormat, Limits};

/// Null spellings handed to polars' parser, most common first.
const POLARS_NULLS: [&str; 7] = ["NA", "null", "NaN", "N/A", "None", "NULL", "nan"];
const DELIMITERS: [u8; 4] = [b',', b';', b'\t', b'|'];
/// Records looked at to pick the delimiter.
const SNIFF_RECORDS: usize = 50;
/// Rows polars infers column types from, unless they turn out wrong further down.
const INFER_ROWS: usize = 10_000;

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
    let text = match shape.blank_runs.is_empty() {
        true => text,
        false => Cow::Owned(without_blank_lines(&text, &shape.blank_runs)),
    };
    let read = |options: CsvReadOptions| polars_read(&text, delimiter, options);
    let inferred = |rows: Option<usize>| CsvReadOptions::default().with_infer_schema_length(rows);
    // A schema guessed from the first rows can be wrong further down (ints then a float);
    // only then pay for a full-file inference. Where polars cannot type a column even so
    // (an integer beyond i64), every column is read as text, for inference to type.
    let df = read(inferred(Some(INFER_ROWS)))
        .or_else(|_| read(inferred(None)))
        .or_else(|_| read(inferred(Some(0))))
        .map_err(|e| malformed(FileFormat::Csv, e))?;
    let head = head_of(&text, delimiter, INFER_ROWS);
    let probe = |options: CsvReadOptions| polars_read(head, delimiter, options);
    let df = keep_spelling(df, probe, read).map_err(|e| malformed(FileFormat::Csv, e))?;
    let mut table = frame_to_table(&df, FileFormat::Csv)?;
    warn_of_renamed_columns(&table, warnings);
    // polars unquotes header fields but leaves their doubled quotes (`"a""b"` is `a""b`).
    if table.columns.iter().any(|c| c.name.contains("\"\"")) {
        for col in &mut table.columns {
            col.name = col.name.replace("\"\"", "\"");
        }
        table = Table::new(table.columns).map_err(DataError::InvalidTable)?;
    }
    Ok(table)
}

/// polars gives a repeated column name a suffix (`a`, `a_duplicated_0`): say so, since the
/// synthetic table carries the new name.
fn warn_of_renamed_columns(table: &Table, warnings: &mut Vec<String>) {
    for col in &table.columns {
        let Some((name, n)) = col.name.rsplit_once("_duplicated_") else {
            continue;
        };
        // Blank names are named by their place (and said so) once the table is read.
        let blank = name.trim().is_empty();
        if !blank && n.bytes().all(|b| b.is_ascii_digit()) && table.column(name).is_some() {
            warnings.push(format!(
                "the header names column {name:?} more than once; a later one is read as {:?}",
                col.name
            ));
        }
    }
}

/// polars' CSV reader with the header, delimiter and null spellings of every read here.
fn polars_read(text: &[u8], delimiter: u8, options: CsvReadOptions) -> PolarsResult<DataFrame> {
    // polars compares every field with every token, so it gets the common spellings only
    // (an empty field is null already); the rare ones are caught when text is converted.
    let nulls = POLARS_NULLS.iter().map(|s| (*s).into()).collect();
    options
        .with_has_header(true)
        .with_parse_options(
            CsvParseOptions::default()
                .with_separator(delimiter)
                .with_quote_char(Some(b'"'))
                .with_null_values(Some(NullValues::AllColumns(nulls))),
        )
        .into_reader_with_file_handle(Cursor::new(text))
        .finish()
}

/// polars reads `02139` as the number 2139 and `True` as the boolean true: the zip code loses
/// its zero and the boolean its spelling, for good. So the columns it typed as integers or
/// booleans are read again as text over the rows it typed them from (`probe` reads those
/// alone); each whose text is not what the typed value prints as (`2139`, `true`) is read
/// whole as text (by `read`), for inference to type by what it means (a code, a boolean in
/// words).
fn keep_spelling(
    df: DataFrame,
    probe: impl Fn(CsvReadOptions) -> PolarsResult<DataFrame>,
    read: impl Fn(CsvReadOptions) -> PolarsResult<DataFrame>,
) -> PolarsResult<DataFrame> {
    let dtypes = df.dtypes();
    let typed: Vec<usize> = (0..dtypes.len())
        .filter(|&i| dtypes[i].is_integer() || dtypes[i] == DataType::Boolean)
        .collect();
    if typed.is_empty() {
        return Ok(df);
    }
    let probe = probe(as_text(&typed))?;
    let respelled: Vec<usize> = typed
        .iter()
        .zip(probe.columns())
        .filter_map(|(&i, column)| {
            let boolean = dtypes[i] == DataType::Boolean;
            let as_typed = |s: &str| match boolean {
                true => s == "true" || s == "false",
                false => numeric_text(s),
            };
            let text = column.str().ok()?;
            text.iter().flatten().any(|s| !as_typed(s)).then_some(i)
        })
        .collect();
    if respelled.is_empty() {
        return Ok(df);
    }
    // Only those columns are read again, as text, and put in place of the typed ones.
    let text = read(as_text(&respelled))?;
    let mut df = df;
    for (&i, column) in respelled.iter().zip(text.columns()) {
        df.replace_column(i, column.clone())?;
    }
    Ok(df)
}

/// Read `columns` alone, as text.
fn as_text(columns: &[usize]) -> CsvReadOptions {
    CsvReadOptions::default()
        .with_infer_schema_length(Some(0))
        .with_projection(Some(Arc::new(columns.to_vec())))
}

/// The header and the first `rows` records of a CSV text (the whole text when it has fewer).
fn head_of(text: &[u8], delimiter: u8, rows: usize) -> &[u8] {
    let mut records = Records::new(text, delimiter);
    records.by_ref().take(rows + 1).for_each(drop);
    &text[..records.pos]
}

/// The text with each run of line breaks that holds blank lines cut to one line break (or
/// none before the header): pandas skips blank lines, while polars reads each as a row of
/// nulls.
fn without_blank_lines(text: &[u8], runs: &[(usize, usize)]) -> Vec<u8> {
    let mut out = Vec::with_capacity(text.len());
    let mut from = 0;
    for &(start, end) in runs {
        out.extend_from_slice(&text[from..start]);
        if start > 0 {
            out.push(b'\n');
        }
        from = end;
    }
    out.extend_from_slice(&text[from..]);
    out
}

/// UTF-8 without its BOM or, when the bytes are not UTF-8, Windows-1252 transcoded to UTF-8:
/// what browsers read a file labelled Latin-1 (ISO-8859-1) as. It agrees with Latin-1 on every
/// byte but 0x80–0x9F, where Latin-1 has invisible control codes and Windows-1252 the `€ ‘ ’ “ ”
/// – —` that spreadsheets on Windows actually wrote.
fn decode<'a>(bytes: &'a [u8], warnings: &mut Vec<String>) -> Cow<'a, [u8]> {
    let bytes = bytes.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(bytes);
    if std::str::from_utf8(bytes).is_ok() {
        return Cow::Borrowed(bytes);
    }
    warnings.push(
        "the file is not valid UTF-8; it was read as Latin-1 (Windows-1252, as browsers read it)"
            .into(),
    );
    let (text, _) = encoding_rs::WINDOWS_1252.decode_without_bom_handling(bytes);
    Cow::Owned(text.into_owned().into_bytes())
}

/// One record of a CSV text: how many fields it has and the physical line it starts on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Record {
    fields: usize,
    line: usize,
}

/// The records of a CSV text as `csv-core` splits them (RFC 4180: a field is quoted when it
/// starts with `"`, `""` is a quote inside one, `\n`, `\r` or `\r\n` ends a record), counted
/// rather than collected. Blank lines are skipped, as polars skips them. A quoted field still
/// open at the end of the text is an error naming the line its record starts on.
struct Records<'a> {
    text: &'a [u8],
    pos: usize,
    reader: csv_core::Reader,
    done: bool,
    /// Scratch for the fields' bytes and end offsets: only their count matters, so they are
    /// reused whenever they fill up.
    out: Vec<u8>,
    ends: Vec<usize>,
    /// `(start, end)` of each run of line breaks that holds blank lines.
    blank_runs: Vec<(usize, usize)>,
}

impl<'a> Records<'a> {
    fn new(text: &'a [u8], delimiter: u8) -> Self {
        let reader = csv_core::ReaderBuilder::new()
            .delimiter(delimiter)
            .quote(b'"')
            .double_quote(true)
            .build();
        Self {
            text,
            pos: 0,
            reader,
            done: false,
            out: vec![0; 4096],
            ends: vec![0; 256],
            blank_runs: Vec::new(),
        }
    }

    /// Skip the blank lines before a record, so that its line is where its first byte is.
    /// The run of line breaks they stand in (with the previous record's own) is noted when
    /// it holds more than one.
    fn skip_blank_lines(&mut self) {
        let is_break = |b: &u8| *b == b'\n' || *b == b'\r';
        let blank = self.text[self.pos..].iter().take_while(|b| is_break(b));
        let (mut skipped, mut newlines) = (0, 0);
        for &b in blank {
            skipped += 1;
            newlines += u64::from(b == b'\n');
        }
        // Line breaks outside quotes end records, so those just before `pos` are the last
        // record's terminator: csv-core may have taken all of it, part (`\r` of `\r\n`) or
        // none yet.
        let start = self.pos
            - self.text[..self.pos]
                .iter()
                .rev()
                .take_while(|b| is_break(b))
                .count();
        let end = self.pos + skipped;
        let run = &self.text[start..end];
        let breaks = run.iter().filter(|&&b| b == b'\n').count()
            + run
                .windows(2)
                .filter(|w| w[0] == b'\r' && w[1] != b'\n')
                .count()
            + usize::from(run.last() == Some(&b'\r'));
        if skipped > 0 && (breaks > 1 || start == 0) {
            self.blank_runs.push((start, end));
        }
        self.pos = end;
        self.reader.set_line(self.reader.line() + newlines);
    }
}

impl Iterator for Records<'_> {
    type Item = Result<Record, DataError>;

    fn next(&mut self) -> Option<Self::Item> {
        use csv_core::ReadRecordResult::{
            End, InputEmpty, OutputEndsFull, OutputFull, Record as Done,
        };
        if self.done {
            return None;
        }
        self.skip_blank_lines();
        if self.pos == self.text.len() {
            self.done = true;
            return None;
        }
        let line = self.reader.line() as usize;
        let mut fields = 0;
        loop {
            let input = &self.text[self.pos..];
            // At the end of the text, a newline ends the last record, unless it lies inside a
            // quoted field that never closed: then the reader takes it in and wants more.
            let at_end = input.is_empty();
            let input: &[u8] = if at_end { b"\n" } else { input };
            let (result, read, _, ended) =
                self.reader
                    .read_record(input, &mut self.out, &mut self.ends);
            fields += ended;
            if !at_end {
                self.pos += read;
            }
            match result {
                Done => return Some(Ok(Record { fields, line })),
                OutputFull | OutputEndsFull => {}
                InputEmpty if !at_end => {}
                InputEmpty | End => {
                    self.done = true;
                    return Some(Err(DataError::UnterminatedQuote { line }));
                }
            }
        }
    }
}

/// Field counts of the first records for one delimiter.
fn field_counts(text: &[u8], delimiter: u8) -> Vec<usize> {
    Records::new(text, delimiter)
        .take(SNIFF_RECORDS)
        .map_while(Result::ok)
        .map(|r| r.fields)
        .collect()
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
    /// Runs of line breaks that hold blank lines, for [`without_blank_lines`].
    blank_runs: Vec<(usize, usize)>,
}

/// One pass over the file: the header's width, the number of data records, and the first
/// record whose width differs (by physical line number, as an editor shows it).
fn scan(text: &[u8], delimiter: u8) -> Result<Shape, DataError> {
    let mut records = Records::new(text, delimiter);
    let Some(header) = records.next().transpose()? else {
        return Ok(Shape {
            columns: 0,
            rows: 0,
            blank_runs: Vec::new(),
        });
    };
    let mut rows = 0usize;
    for record in records.by_ref() {
        let record = record?;
        if record.fields != header.fields {
            return Err(DataError::RaggedCsv {
                line: record.line,
                expected: header.fields,
                found: record.fields,
            });
        }
        rows += 1;
    }
    Ok(Shape {
        columns: header.fields,
        rows,
        blank_runs: records.blank_runs,
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

    #[test]
    fn records_count_fields_by_rfc_4180_and_name_their_first_line() {
        let records = |text: &[u8]| -> Vec<(usize, usize)> {
            Records::new(text, b',')
                .map(|r| r.map(|r| (r.fields, r.line)).unwrap())
                .collect()
        };
        // Blank lines (LF, CRLF or CR alone) are skipped; a record's line is where it starts.
        assert_eq!(
            records(b"a,b\r\n\r\n\n1,\"x\ny\"\r2,3"),
            [(2, 1), (2, 4), (2, 5)]
        );
        // `""` is a quote inside a quoted field; a quote inside an unquoted one is text.
        assert_eq!(records(b"\"a\"\"b,c\",d\n5\" disk,e\n"), [(2, 1), (2, 2)]);
        // A record of one empty quoted field is a record, not a blank line.
        assert_eq!(records(b"a\n\"\"\n"), [(1, 1), (1, 2)]);
        // More fields than the scratch buffers hold are still all counted.
        let wide = vec!["x"; 1000].join(",");
        assert_eq!(records(wide.as_bytes()), [(1000, 1)]);
        // A quoted field open at the end of the text, with or without a final newline.
        for text in [&b"a\n\"open"[..], b"a\n\"open\n"] {
            let last = Records::new(text, b',').last().unwrap();
            assert!(matches!(
                last,
                Err(DataError::UnterminatedQuote { line: 2 })
            ));
        }
        // A ragged record after blank lines is named by its own line.
        assert!(matches!(
            scan(b"a,b\n1,2\n\n\n3\n", b','),
            Err(DataError::RaggedCsv {
                line: 5,
                expected: 2,
                found: 1
            })
        ));
    }

    #[test]
    fn text_that_is_not_utf8_is_read_as_windows_1252() {
        let mut warnings = Vec::new();
        // 0xE9 and 0xFC are é and ü in Latin-1 and Windows-1252 alike; 0x80 and 0x93/0x94
        // are Windows-1252's euro sign and curly quotes (control codes in ISO-8859-1).
        let text = decode(b"Jos\xe9,M\xfcnchen,\x80 5,\x93hi\x94", &mut warnings);
        assert_eq!(
            std::str::from_utf8(&text).unwrap(),
            "José,München,€ 5,\u{201c}hi\u{201d}"
        );
        assert_eq!(warnings.len(), 1);
        assert!(warnings[0].contains("Latin-1"), "{warnings:?}");
        let mut none = Vec::new();
        assert_eq!(&*decode(b"\xEF\xBB\xBFa,b", &mut none), b"a,b");
        assert!(none.is_empty());
    }
}
