use rust_xlsxwriter::Workbook;
use synth_data::{DataError, FileFormat, ReadOptions, read_bytes, write_bytes};
use synth_table::{ColumnData, Metadata};

use super::*;

#[test]
fn csv_with_bom_quoted_delimiters_and_unicode() {
    let text = "\u{FEFF}name;note;city;n\n\"Smith; J\";\"said \"\"hi, there\"\"\";Zürich;1\n\
                Ünal;\"two\nlines\";東京;2\n";
    let ds = read_str(text, "people.csv").unwrap();
    assert_eq!(ds.format, FileFormat::Csv);
    assert!(ds.warnings.is_empty(), "{:?}", ds.warnings);
    // The BOM must not stick to the first column's name.
    assert_eq!(names(&ds.table), ["name", "note", "city", "n"]);
    assert_eq!(
        col(&ds.table, "name"),
        &strs(&[Some("Smith; J"), Some("Ünal")])
    );
    assert_eq!(
        col(&ds.table, "note"),
        &strs(&[Some("said \"hi, there\""), Some("two\nlines")])
    );
    assert_eq!(
        col(&ds.table, "city"),
        &strs(&[Some("Zürich"), Some("東京")])
    );
    assert_eq!(
        col(&ds.table, "n"),
        &ColumnData::Int(vec![Some(1), Some(2)])
    );
}

#[test]
fn csv_tab_and_pipe_delimiters() {
    let tsv = read_str("a\tb\n1\tx y\n2\tz\n", "t.tsv").unwrap();
    assert_eq!(names(&tsv.table), ["a", "b"]);
    assert_eq!(col(&tsv.table, "b"), &strs(&[Some("x y"), Some("z")]));
    let psv = read_str("a|b|c\n1.5|x, y|true\n2|z|false\n", "p.csv").unwrap();
    assert_eq!(
        col(&psv.table, "a"),
        &ColumnData::Float(vec![Some(1.5), Some(2.0)])
    );
    assert_eq!(col(&psv.table, "b"), &strs(&[Some("x, y"), Some("z")]));
    assert_eq!(
        col(&psv.table, "c"),
        &ColumnData::Bool(vec![Some(true), Some(false)])
    );
}

#[test]
fn csv_every_null_form_is_missing() {
    let text = "num,word\n1.5,a\n,\nNA,NA\nnull,null\nNaN,NaN\nNone,None\nN/A,N/A\n2.5,b\n";
    let ds = read_str(text, "n.csv").unwrap();
    assert_eq!(
        col(&ds.table, "num"),
        &ColumnData::Float(vec![
            Some(1.5),
            None,
            None,
            None,
            None,
            None,
            None,
            Some(2.5)
        ])
    );
    let word = col(&ds.table, "word");
    assert_eq!(word.null_count(), 6);
    assert_eq!(
        word,
        &strs(&[Some("a"), None, None, None, None, None, None, Some("b")])
    );
}

#[test]
fn csv_in_latin1_is_decoded_with_a_warning() {
    let bytes = b"name,city\nJos\xe9,M\xfcnchen\n";
    let ds = read_bytes(bytes, Some("l.csv"), &ReadOptions::default()).unwrap();
    assert_eq!(col(&ds.table, "name"), &strs(&[Some("José")]));
    assert_eq!(col(&ds.table, "city"), &strs(&[Some("München")]));
    assert!(
        ds.warnings.iter().any(|w| w.contains("Latin-1")),
        "{:?}",
        ds.warnings
    );
}

#[test]
fn csv_whose_types_change_after_the_first_rows_still_reads() {
    let mut text = String::from("x\n");
    for i in 0..10_050 {
        text.push_str(&format!("{i}\n"));
    }
    text.push_str("0.5\n");
    let ds = read_str(&text, "x.csv").unwrap();
    match col(&ds.table, "x") {
        ColumnData::Float(v) => assert_eq!(v.last(), Some(&Some(0.5))),
        other => panic!("expected floats, got {other:?}"),
    }
}

#[test]
fn json_array_and_ndjson() {
    let json = r#"[{"a": 1, "b": "x", "c": true, "d": 1.5},
                   {"a": 2, "b": "NA", "c": null, "d": null},
                   {"a": null, "b": "ü", "c": false, "d": 3}]"#;
    let ds = read_str(json, "t.json").unwrap();
    assert_eq!(ds.format, FileFormat::Json);
    assert_eq!(
        col(&ds.table, "a"),
        &ColumnData::Int(vec![Some(1), Some(2), None])
    );
    assert_eq!(col(&ds.table, "b"), &strs(&[Some("x"), None, Some("ü")]));
    assert_eq!(
        col(&ds.table, "c"),
        &ColumnData::Bool(vec![Some(true), None, Some(false)])
    );
    assert_eq!(
        col(&ds.table, "d"),
        &ColumnData::Float(vec![Some(1.5), None, Some(3.0)])
    );

    let nd = "{\"a\": 1, \"b\": \"x\"}\n{\"a\": 2, \"b\": null}\n";
    let ds = read_str(nd, "t.jsonl").unwrap();
    assert_eq!(ds.format, FileFormat::Ndjson);
    assert_eq!(
        col(&ds.table, "a"),
        &ColumnData::Int(vec![Some(1), Some(2)])
    );
    assert_eq!(col(&ds.table, "b"), &strs(&[Some("x"), None]));
}

fn workbook() -> Vec<u8> {
    let mut book = Workbook::new();
    let first = book.add_worksheet();
    first.set_name("Data").unwrap();
    first.write_string(0, 0, "qty").unwrap();
    first.write_string(0, 1, "price").unwrap();
    first.write_string(0, 2, "label").unwrap();
    first.write_string(0, 3, "ok").unwrap();
    for (r, (q, p, l, ok)) in [
        (Some(1.0), 2.5, "a", true),
        (None, 3.25, "NA", false),
        (Some(3.0), 4.0, "café", true),
    ]
    .into_iter()
    .enumerate()
    {
        let r = r as u32 + 1;
        if let Some(q) = q {
            first.write_number(r, 0, q).unwrap();
        }
        first.write_number(r, 1, p).unwrap();
        first.write_string(r, 2, l).unwrap();
        first.write_boolean(r, 3, ok).unwrap();
    }
    let second = book.add_worksheet();
    second.set_name("Other").unwrap();
    second.write_string(0, 0, "z").unwrap();
    second.write_number(1, 0, 7.0).unwrap();
    book.save_to_buffer().unwrap()
}

#[test]
fn xlsx_first_sheet_named_sheet_and_missing_sheet() {
    let bytes = workbook();
    let ds = read_file(&bytes, "book.xlsx", &ReadOptions::default()).unwrap();
    assert_eq!(ds.format, FileFormat::Xlsx);
    assert_eq!(names(&ds.table), ["qty", "price", "label", "ok"]);
    assert_eq!(
        col(&ds.table, "qty"),
        &ColumnData::Int(vec![Some(1), None, Some(3)])
    );
    assert_eq!(
        col(&ds.table, "price"),
        &ColumnData::Float(vec![Some(2.5), Some(3.25), Some(4.0)])
    );
    assert_eq!(
        col(&ds.table, "label"),
        &strs(&[Some("a"), None, Some("café")])
    );
    assert_eq!(
        col(&ds.table, "ok"),
        &ColumnData::Bool(vec![Some(true), Some(false), Some(true)])
    );

    let opts = ReadOptions {
        sheet: Some("Other".into()),
        ..Default::default()
    };
    let other = read_bytes(&bytes, Some("book.xlsx"), &opts).unwrap();
    assert_eq!(col(&other.table, "z"), &ColumnData::Int(vec![Some(7)]));

    let opts = ReadOptions {
        sheet: Some("Nope".into()),
        ..Default::default()
    };
    match read_bytes(&bytes, Some("book.xlsx"), &opts) {
        Err(DataError::SheetNotFound { sheet, available }) => {
            assert_eq!(sheet, "Nope");
            assert_eq!(available, ["Data", "Other"]);
        }
        other => panic!("expected SheetNotFound, got {other:?}"),
    }
}

#[test]
fn parquet_round_trips_types_and_datetimes() {
    let t = table(vec![
        ("i", ColumnData::Int(vec![Some(1), None])),
        ("f", ColumnData::Float(vec![Some(0.5), None])),
        ("b", ColumnData::Bool(vec![None, Some(true)])),
        ("s", strs(&[Some("ü"), None])),
        (
            "t",
            ColumnData::Datetime(vec![Some(1_706_659_200_000_000), None]),
        ),
    ]);
    let bytes = write_bytes(&t, &Metadata::default(), FileFormat::Parquet).unwrap();
    let ds = read_file(&bytes, "t.parquet", &ReadOptions::default()).unwrap();
    assert_eq!(ds.format, FileFormat::Parquet);
    assert_eq!(ds.table, t);
}

#[test]
fn format_comes_from_content_and_a_mismatch_is_a_warning() {
    let ds = read_str("a,b\n1,2\n", "data.json").unwrap();
    assert_eq!(ds.format, FileFormat::Csv);
    assert!(
        ds.warnings[0].contains("json") && ds.warnings[0].contains("csv"),
        "{:?}",
        ds.warnings
    );
    let t = table(vec![("a", ColumnData::Int(vec![Some(1)]))]);
    let pq = write_bytes(&t, &Metadata::default(), FileFormat::Parquet).unwrap();
    let ds = read_bytes(&pq, Some("data.csv"), &ReadOptions::default()).unwrap();
    assert_eq!(ds.format, FileFormat::Parquet);
    assert_eq!(ds.warnings.len(), 1);
    // An explicit format wins over the content.
    let opts = ReadOptions {
        format: Some(FileFormat::Csv),
        ..Default::default()
    };
    let ds = read_bytes(b"[1]\n[2]\n", None, &opts).unwrap();
    assert_eq!(ds.format, FileFormat::Csv);
    assert_eq!(names(&ds.table), ["[1]"]);
}

#[test]
fn xlsx_date_cells_become_datetimes() {
    use rust_xlsxwriter::{ExcelDateTime, Format};
    let mut book = Workbook::new();
    let sheet = book.add_worksheet();
    let date = Format::new().set_num_format("yyyy-mm-dd");
    sheet.write_string(0, 0, "when").unwrap();
    let d = ExcelDateTime::from_ymd(2024, 1, 31).unwrap();
    sheet.write_datetime_with_format(1, 0, &d, &date).unwrap();
    let t = ExcelDateTime::from_ymd(2024, 2, 1)
        .unwrap()
        .and_hms(12, 30, 0)
        .unwrap();
    sheet.write_datetime_with_format(2, 0, &t, &date).unwrap();
    // Dates before 1900 are text in Excel: a column mixing them with date cells is text,
    // each date cell in ISO 8601 rather than its serial number.
    sheet.write_string(0, 1, "born").unwrap();
    sheet.write_string(1, 1, "19.04.1897").unwrap();
    sheet.write_datetime_with_format(2, 1, &t, &date).unwrap();
    let bytes = book.save_to_buffer().unwrap();
    let ds = read_bytes(&bytes, Some("d.xlsx"), &ReadOptions::default()).unwrap();
    let day = 86_400_000_000i64;
    assert_eq!(
        col(&ds.table, "when"),
        &ColumnData::Datetime(vec![Some(19753 * day), Some(19754 * day + 45_000_000_000)])
    );
    assert_eq!(
        col(&ds.table, "born"),
        &ColumnData::Str(vec![
            Some("19.04.1897".into()),
            Some("2024-02-01 12:30:00".into())
        ])
    );
}

#[test]
fn nested_json_values_are_a_clear_error() {
    let err = read_str(r#"[{"a": 1, "b": {"c": 2}}]"#, "n.json").unwrap_err();
    assert!(
        matches!(
            err,
            DataError::UnsupportedColumn { .. } | DataError::Malformed { .. }
        ),
        "{err}"
    );
    assert!(
        err.to_string().contains('b') || err.to_string().contains("struct"),
        "{err}"
    );
}

#[test]
fn rare_null_spellings_in_number_columns_still_give_numbers() {
    let ds = read_str("x\n1.5\nnone\n#N/A\n2\n", "x.csv").unwrap();
    assert_eq!(
        col(&ds.table, "x"),
        &strs(&[Some("1.5"), None, None, Some("2")])
    );
    let inf = synth_data::infer_metadata(&ds.table);
    assert_eq!(
        inf.metadata
            .column("x")
            .unwrap()
            .computer_representation
            .as_deref(),
        Some("Float")
    );
    let t = synth_data::apply_metadata(ds.table, &inf.metadata).unwrap();
    assert_eq!(
        col(&t, "x"),
        &ColumnData::Float(vec![Some(1.5), None, None, Some(2.0)])
    );
}

#[test]
fn csv_blank_lines_are_skipped_not_rows_of_nulls() {
    let a = |v: &[i64]| ColumnData::Int(v.iter().map(|&x| Some(x)).collect());
    for text in [
        "a,b\n1,x\n2,y\n3,x\n\n",
        "a,b\n1,x\n\n\n2,y\n3,x\n",
        "\n\na,b\n1,x\n2,y\n3,x",
        "a,b\r\n1,x\r\n\r\n2,y\r\n3,x\r\n\r\n",
    ] {
        let ds = read_str(text, "b.csv").unwrap();
        assert_eq!(col(&ds.table, "a"), &a(&[1, 2, 3]), "{text:?}");
        assert_eq!(col(&ds.table, "b").null_count(), 0, "{text:?}");
    }
    // One column: a blank line is skipped too (as pandas does); a quoted empty field is a
    // value, and a line break inside quotes is text.
    let ds = read_str("a\n1\n\n2\n\n", "one.csv").unwrap();
    assert_eq!(col(&ds.table, "a"), &a(&[1, 2]));
    let ds = read_str("a,b\n1,\"x\n\ny\"\n\n2,\"\"\n", "q.csv").unwrap();
    assert_eq!(col(&ds.table, "b"), &strs(&[Some("x\n\ny"), None]));
    assert_eq!(col(&ds.table, "a"), &a(&[1, 2]));
}

#[test]
fn csv_codes_with_leading_zeros_and_booleans_in_words_keep_their_text() {
    let text =
        "zip,n,flag,bit,neg\n02139,1,True,true,-007\n94105,2,False,false,5\n00501,3,True,true,6\n";
    let ds = read_str(text, "z.csv").unwrap();
    assert_eq!(
        col(&ds.table, "zip"),
        &strs(&[Some("02139"), Some("94105"), Some("00501")])
    );
    assert_eq!(
        col(&ds.table, "flag"),
        &strs(&[Some("True"), Some("False"), Some("True")])
    );
    assert_eq!(
        col(&ds.table, "neg"),
        &strs(&[Some("-007"), Some("5"), Some("6")])
    );
    // What polars' types spell as they were written stays typed.
    assert_eq!(
        col(&ds.table, "n"),
        &ColumnData::Int(vec![Some(1), Some(2), Some(3)])
    );
    assert_eq!(
        col(&ds.table, "bit"),
        &ColumnData::Bool(vec![Some(true), Some(false), Some(true)])
    );
}

#[test]
fn csv_integers_beyond_i64_are_read_as_text_rather_than_refused() {
    let ds = read_str("big,n\n18446744073709551615,1\n1,2\n", "u.csv").unwrap();
    assert_eq!(
        col(&ds.table, "big"),
        &strs(&[Some("18446744073709551615"), Some("1")])
    );
    // Identifiers, whose every digit counts: not numbers to round to a float.
    let inf = synth_data::infer_metadata(&ds.table);
    assert_ne!(
        inf.metadata.column("big").unwrap().sdtype,
        synth_table::SdType::Numerical
    );
}

#[test]
fn utf16_text_with_a_byte_order_mark_is_read() {
    let text = "name,n\nZürich,1\n東京,2\n";
    let le: Vec<u8> = [0xFF, 0xFE]
        .into_iter()
        .chain(text.encode_utf16().flat_map(u16::to_le_bytes))
        .collect();
    let be: Vec<u8> = [0xFE, 0xFF]
        .into_iter()
        .chain(text.encode_utf16().flat_map(u16::to_be_bytes))
        .collect();
    let utf8 = read_str(text, "u.csv").unwrap().table;
    assert_eq!(col(&utf8, "name"), &strs(&[Some("Zürich"), Some("東京")]));
    for bytes in [le, be] {
        let ds = read_bytes(&bytes, Some("u.csv"), &ReadOptions::default()).unwrap();
        assert_eq!((ds.format, &ds.table), (FileFormat::Csv, &utf8));
    }
    let json: Vec<u8> = [0xFF, 0xFE]
        .into_iter()
        .chain(r#"[{"a": 1}]"#.encode_utf16().flat_map(u16::to_le_bytes))
        .collect();
    let ds = read_bytes(&json, Some("u.json"), &ReadOptions::default()).unwrap();
    assert_eq!(ds.format, FileFormat::Json);
}

#[test]
fn a_malformed_file_is_named_by_its_format() {
    let err = read_str(r#"[{"a": 1}, {"a": "#, "t.json").unwrap_err();
    assert!(err.to_string().starts_with("not valid JSON: "), "{err}");
    let err = read_str("{\"a\": 1}\n{\"a\": \n", "t.ndjson").unwrap_err();
    assert!(err.to_string().starts_with("not valid NDJSON: "), "{err}");
}

#[test]
fn a_repeated_column_name_is_renamed_with_a_warning() {
    let ds = read_str("a,a,b\n1,2,3\n4,5,6\n", "d.csv").unwrap();
    assert_eq!(names(&ds.table), ["a", "a_duplicated_0", "b"]);
    assert_eq!(ds.warnings.len(), 1, "{:?}", ds.warnings);
    assert!(
        ds.warnings[0].contains("\"a_duplicated_0\""),
        "{:?}",
        ds.warnings
    );
}

#[test]
fn blank_header_cells_name_their_columns_by_place() {
    let ds = read_str(",a,,\n1,2,3,4\n5,6,7,8\n", "blank.csv").unwrap();
    assert_eq!(names(&ds.table), ["column_1", "a", "column_3", "column_4"]);
    assert_eq!(ds.warnings.len(), 3, "{:?}", ds.warnings);
    assert!(
        ds.warnings[0].contains("column 1 has no name"),
        "{:?}",
        ds.warnings
    );
    assert_eq!(
        col(&ds.table, "column_3"),
        &ColumnData::Int(vec![Some(3), Some(7)])
    );
    // A name already taken is not reused.
    let ds = read_str("column_2,\n1,2\n", "taken.csv").unwrap();
    assert_eq!(names(&ds.table), ["column_2", "column_2_"]);
}
