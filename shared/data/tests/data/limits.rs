use std::io::Write;

use synth_data::{DataError, FileFormat, Limits, ReadOptions, read_bytes};

use super::*;

/// Read options whose limits are the defaults as `set` changes them.
fn limited(set: impl FnOnce(&mut Limits)) -> ReadOptions {
    let mut opts = ReadOptions::default();
    set(&mut opts.limits);
    opts
}

#[test]
fn file_size_limit_is_checked_for_bytes_and_paths() {
    let opts = limited(|l| l.max_bytes = 10);
    let text = b"a,b\n1,2\n3,4\n";
    let err = read_bytes(text, Some("x.csv"), &opts).unwrap_err();
    assert!(
        matches!(
            err,
            DataError::FileTooLarge {
                size: 12,
                limit: 10
            }
        ),
        "{err}"
    );
    assert!(err.to_string().contains("MAX_FILE_SIZE_MB"));
    let err = read_file(text, "x.csv", &opts).unwrap_err();
    assert!(matches!(err, DataError::FileTooLarge { .. }), "{err}");
    assert_eq!(
        Limits::default().with_max_file_size_mb(2).max_bytes,
        2 * 1024 * 1024
    );
}

#[test]
fn row_limit_for_csv_and_json() {
    let opts = limited(|l| l.max_rows = 2);
    let err = read_bytes(b"a\n1\n2\n3\n", None, &opts).unwrap_err();
    assert!(matches!(err, DataError::TooManyRows { limit: 2 }), "{err}");
    assert!(read_bytes(b"a\n1\n2\n", None, &opts).is_ok());
    let err = read_bytes(br#"[{"a":1},{"a":2},{"a":3}]"#, None, &opts).unwrap_err();
    assert!(matches!(err, DataError::TooManyRows { .. }), "{err}");
}

#[test]
fn column_limit() {
    let opts = limited(|l| l.max_columns = 2);
    let err = read_bytes(b"a,b,c\n1,2,3\n", None, &opts).unwrap_err();
    assert!(
        matches!(err, DataError::TooManyColumns { count: 3, limit: 2 }),
        "{err}"
    );
    let err = read_bytes(br#"{"a":1,"b":2,"c":3}"#, None, &opts).unwrap_err();
    assert!(matches!(err, DataError::TooManyColumns { .. }), "{err}");
}

#[test]
fn cell_length_limit_names_column_and_row() {
    let opts = limited(|l| l.max_cell_chars = 5);
    // Five multi-byte characters fit; six do not.
    assert!(read_bytes("a,b\nx,ééééé\n".as_bytes(), None, &opts).is_ok());
    let err = read_bytes("a,b\nx,y\nz,éééééé\n".as_bytes(), None, &opts).unwrap_err();
    match err {
        DataError::CellTooLong {
            column,
            row,
            chars,
            limit,
        } => assert_eq!((column.as_str(), row, chars, limit), ("b", 2, 6, 5)),
        other => panic!("expected CellTooLong, got {other}"),
    }
}

fn zip_of(entries: &[(&str, Vec<u8>)]) -> Vec<u8> {
    let mut zip = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
    let opts = zip::write::SimpleFileOptions::default()
        .compression_method(zip::CompressionMethod::Deflated);
    for (name, data) in entries {
        zip.start_file(*name, opts).unwrap();
        zip.write_all(data).unwrap();
    }
    zip.finish().unwrap().into_inner()
}

#[test]
fn xlsx_zip_bomb_is_refused_from_the_central_directory() {
    // 20 MB of one byte deflates ~1000:1, far past any real sheet's ratio.
    let bomb = zip_of(&[("xl/worksheets/sheet1.xml", vec![b'a'; 20 << 20])]);
    assert!(bomb.len() < 200_000);
    let err = read_bytes(&bomb, Some("bomb.xlsx"), &ReadOptions::default()).unwrap_err();
    assert!(matches!(err, DataError::XlsxRatio { .. }), "{err}");
    assert!(err.to_string().contains("zip bomb"));

    let opts = limited(|l| l.max_xlsx_uncompressed = 1 << 20);
    let err = read_bytes(&bomb, Some("bomb.xlsx"), &opts).unwrap_err();
    assert!(
        matches!(err, DataError::XlsxTooLarge { uncompressed, limit } if uncompressed == 20 << 20 && limit == 1 << 20),
        "{err}"
    );
}

#[test]
fn empty_and_header_only_files() {
    for (bytes, name) in [
        (&b""[..], "e.csv"),
        (b"  \n\n", "e.csv"),
        (b"\xEF\xBB\xBF", "e.csv"),
    ] {
        let err = read_bytes(bytes, Some(name), &ReadOptions::default()).unwrap_err();
        assert!(matches!(err, DataError::Empty), "{name}: {err}");
    }
    let err = read_str("a,b,c\n", "h.csv").unwrap_err();
    assert!(matches!(err, DataError::HeaderOnly), "{err}");
    let err = read_str("[]", "h.json").unwrap_err();
    assert!(
        matches!(err, DataError::HeaderOnly | DataError::Empty),
        "{err}"
    );
    let mut book = rust_xlsxwriter::Workbook::new();
    book.add_worksheet().write_string(0, 0, "only").unwrap();
    let bytes = book.save_to_buffer().unwrap();
    let err = read_bytes(&bytes, Some("h.xlsx"), &ReadOptions::default()).unwrap_err();
    assert!(matches!(err, DataError::HeaderOnly), "{err}");
}

#[test]
fn a_misnamed_file_that_does_not_read_says_both_formats() {
    let err = read_str("just a line of notes\n", "junk.xlsx").unwrap_err();
    match &err {
        DataError::Misnamed {
            claimed: "xlsx",
            read_as: "csv",
            source,
        } => assert!(matches!(**source, DataError::HeaderOnly), "{err}"),
        other => panic!("{other}"),
    }
    assert!(err.to_string().contains("says xlsx"), "{err}");
    // A misnamed file that reads is read, with a warning.
    let ok = read_str("a,b\n1,2\n", "table.xlsx").unwrap();
    assert_eq!(ok.format, FileFormat::Csv);
    assert_eq!(ok.warnings.len(), 1, "{:?}", ok.warnings);
}

#[test]
fn ragged_csv_reports_the_first_bad_line() {
    let err = read_str("a,b\n1,2\n3,4\n5\n6,7,8\n", "r.csv").unwrap_err();
    assert!(
        matches!(
            err,
            DataError::RaggedCsv {
                line: 4,
                expected: 2,
                found: 1
            }
        ),
        "{err}"
    );
    assert!(err.to_string().contains("line 4"));
    let err = read_str("a,b\n1,\"open\n", "q.csv").unwrap_err();
    assert!(
        matches!(err, DataError::UnterminatedQuote { line: 2 }),
        "{err}"
    );
}

#[test]
fn malformed_json_parquet_and_xlsx() {
    for (bytes, format) in [
        (&br#"[{"a": 1}, {"a": "#[..], FileFormat::Json),
        (b"{\"a\": 1}\n{oops\n", FileFormat::Ndjson),
        (b"PAR1 definitely not parquet", FileFormat::Parquet),
        (b"PK\x03\x04 not a zip", FileFormat::Xlsx),
    ] {
        let err = read_bytes(bytes, None, &ReadOptions::default()).unwrap_err();
        assert!(
            matches!(&err, DataError::Malformed { format: f, .. } if *f == format),
            "{format:?}: {err}"
        );
    }
    let err = read_bytes(b"\x00\x01\x02binary", None, &ReadOptions::default()).unwrap_err();
    assert!(matches!(err, DataError::UnknownFormat), "{err}");
}

/// Nested JSON at and past the limit, in every shape a table reader meets: bare arrays,
/// objects in cells, NDJSON lines. Each runs on a thread with a small stack (256 KiB):
/// were the depth not refused before parsing, the deepest would overflow it and abort.
#[test]
fn deeply_nested_json_is_refused_before_parsing() {
    let deep = |n: usize, open: &str, close: &str| format!("{}{}", open.repeat(n), close.repeat(n));
    let limit = Limits::default().max_json_depth;
    let cases: Vec<(String, &str)> = vec![
        (deep(1_000, "[", "]"), "array"),
        (deep(100_000, "[", "]"), "array"),
        (format!("[{{\"a\": {}}}]", deep(5_000, "[", "]")), "cell"),
        (
            format!(
                "[{{\"a\": {}1{}}}]",
                "{\"b\": ".repeat(2_000),
                "}".repeat(2_000)
            ),
            "objects",
        ),
        (
            format!("{{\"a\": 1}}\n{{\"a\": {}}}\n", deep(10_000, "[", "]")),
            "ndjson",
        ),
        (deep(limit + 1, "[", "]"), "just past"),
    ];
    for (doc, shape) in cases {
        let handle = std::thread::Builder::new()
            .stack_size(256 * 1024)
            .spawn(move || read_bytes(doc.as_bytes(), Some("d.json"), &ReadOptions::default()))
            .unwrap();
        let err = handle.join().expect("refused, not crashed").unwrap_err();
        assert!(
            matches!(err, DataError::TooDeep { limit: l } if l == limit),
            "{shape}: {err}"
        );
        assert!(
            err.to_string().contains("nested more than 64 levels"),
            "{err}"
        );
    }
    // At the limit, the scan lets it through to the parser, which answers on its own.
    let at = format!("[{{\"a\": {}}}]", deep(limit - 2, "[", "]"));
    let err = read_bytes(at.as_bytes(), Some("d.json"), &ReadOptions::default()).unwrap_err();
    assert!(!matches!(err, DataError::TooDeep { .. }), "{err}");
    // Brackets in strings are data, not nesting.
    let text = format!("[{{\"a\": \"{}\"}}]", "[".repeat(10_000));
    let read = read_bytes(text.as_bytes(), Some("d.json"), &ReadOptions::default()).unwrap();
    assert_eq!(read.table.n_rows(), 1);
}
