use synth_data::{
    DataError, FileFormat, ReadOptions, apply_metadata, read_bytes, write_bytes, write_path,
};
use synth_table::{ColumnData, ColumnMetadata, Metadata, SdType, Table};

use super::*;

fn sample() -> (Table, Metadata) {
    let t = table(vec![
        ("i", ColumnData::Int(vec![Some(1), None, Some(-3)])),
        ("f", ColumnData::Float(vec![Some(0.25), Some(1e6), None])),
        ("b", ColumnData::Bool(vec![Some(true), None, Some(false)])),
        ("s", strs(&[Some("a, \"quoted\""), None, Some("東京")])),
        (
            "d",
            ColumnData::Datetime(vec![Some(1_706_659_200_000_000), None, Some(0)]),
        ),
    ]);
    let m = meta(vec![
        ("i", ColumnMetadata::new(SdType::Numerical)),
        ("f", ColumnMetadata::new(SdType::Numerical)),
        ("b", ColumnMetadata::new(SdType::Boolean)),
        ("s", ColumnMetadata::new(SdType::Text)),
        ("d", dt("%d/%m/%Y")),
    ]);
    (t, m)
}

#[test]
fn every_format_round_trips() {
    let (t, m) = sample();
    for format in [
        FileFormat::Csv,
        FileFormat::Json,
        FileFormat::Ndjson,
        FileFormat::Parquet,
        FileFormat::Xlsx,
    ] {
        let bytes = write_bytes(&t, &m, format).unwrap();
        let ds = read_bytes(&bytes, None, &ReadOptions::default()).unwrap();
        assert_eq!(ds.format, format);
        let back = apply_metadata(ds.table, &m).unwrap();
        assert_eq!(back, t, "{format:?}");
    }
}

#[test]
fn datetimes_are_written_in_their_format() {
    let (t, m) = sample();
    let csv = String::from_utf8(write_bytes(&t, &m, FileFormat::Csv).unwrap()).unwrap();
    assert!(csv.contains("31/01/2024"), "{csv}");
    assert!(csv.starts_with("i,f,b,s,d\n"), "{csv}");
    let json: serde_json::Value =
        serde_json::from_slice(&write_bytes(&t, &m, FileFormat::Json).unwrap()).unwrap();
    assert_eq!(json[0]["d"], "31/01/2024");
    assert_eq!(json[1]["i"], serde_json::Value::Null);
    assert_eq!(json.as_array().unwrap().len(), 3);
}

fn ds_zoned(t: &Table, m: &Metadata) -> Vec<Option<String>> {
    let bytes = write_bytes(t, m, FileFormat::Xlsx).unwrap();
    let ds = read_bytes(&bytes, None, &ReadOptions::default()).unwrap();
    match &ds.table.column("zoned").unwrap().data {
        ColumnData::Str(v) => v.clone(),
        other => panic!("text expected: {other:?}"),
    }
}

/// Excel gets date cells shown in the column's format, which read back as the same instants
/// (to the microsecond: no float noise); a format Excel cannot show stays text.
#[test]
fn excel_gets_date_cells_that_read_back_exactly() {
    let minute = 60_000_000i64;
    let times = vec![
        Some(1_706_659_200_000_000 + 60 * minute),
        None,
        Some(1_706_659_200_000_000 + 817 * minute),
        Some(-2_500_000_000_000_000),
    ];
    let t = table(vec![
        ("at", ColumnData::Datetime(times.clone())),
        ("zoned", ColumnData::Datetime(times.clone())),
    ]);
    let m = meta(vec![
        ("at", dt("%d.%m.%Y %H:%M")),
        ("zoned", dt("%Y-%m-%dT%H:%M:%S%:z")),
    ]);
    let bytes = write_bytes(&t, &m, FileFormat::Xlsx).unwrap();
    let ds = read_bytes(&bytes, None, &ReadOptions::default()).unwrap();
    let at = &ds.table.column("at").unwrap().data;
    // A date before 1900 has no Excel serial: the whole column is text, in its format.
    let ColumnData::Str(at) = at else {
        panic!("{at:?}")
    };
    assert_eq!(at[0].as_deref(), Some("31.01.2024 01:00"));
    assert_eq!(at[3].as_deref(), Some("11.10.1890 19:33"));
    let only_excel_dates = Table::new(vec![synth_table::Column {
        name: "at".into(),
        data: ColumnData::Datetime(times[..3].to_vec()),
    }])
    .unwrap();
    let bytes = write_bytes(&only_excel_dates, &m, FileFormat::Xlsx).unwrap();
    let ds = read_bytes(&bytes, None, &ReadOptions::default()).unwrap();
    assert_eq!(
        ds.table.column("at").unwrap().data,
        ColumnData::Datetime(times[..3].to_vec())
    );
    let zoned = &ds_zoned(&t, &m);
    assert_eq!(zoned[0].as_deref(), Some("2024-01-31T01:00:00+00:00"));
}

#[test]
fn write_path_picks_the_format_by_extension() {
    let (t, m) = sample();
    let dir = tempfile::tempdir().unwrap();
    for name in [
        "out.csv",
        "out.json",
        "out.jsonl",
        "out.parquet",
        "out.xlsx",
    ] {
        let path = dir.path().join(name);
        write_path(&t, &m, &path).unwrap();
        let ds = synth_data::read_path(&path, &ReadOptions::default()).unwrap();
        assert_eq!(Some(ds.format), FileFormat::from_extension(name));
        assert!(ds.warnings.is_empty(), "{name}: {:?}", ds.warnings);
    }
    let err = write_path(&t, &m, &dir.path().join("out.doc")).unwrap_err();
    assert!(matches!(err, DataError::UnsupportedOutput(_)), "{err}");
    // Tab- and pipe-separated names get those separators, and read back alike.
    for (name, sep) in [("out.tsv", '\t'), ("out.psv", '|'), ("out.csv", ',')] {
        let path = dir.path().join(name);
        write_path(&t, &m, &path).unwrap();
        let text = std::fs::read_to_string(&path).unwrap();
        let header = text.lines().next().unwrap();
        assert_eq!(
            header.split(sep).count(),
            t.columns.len(),
            "{name}: {header}"
        );
        let back = synth_data::read_path(&path, &ReadOptions::default()).unwrap();
        assert_eq!(back.table.columns.len(), t.columns.len(), "{name}");
    }
}

/// A boolean column kept in its words (`Yes`/`No`) is written in them to CSV, and as
/// booleans to JSON and Parquet, whose readers take any string as true.
#[test]
fn booleans_in_words_are_booleans_in_typed_formats() {
    let t = table(vec![("member", strs(&[Some("Yes"), Some("No"), None]))]);
    let m = meta(vec![("member", ColumnMetadata::new(SdType::Boolean))]);
    let csv = String::from_utf8(write_bytes(&t, &m, FileFormat::Csv).unwrap()).unwrap();
    assert_eq!(csv, "member\nYes\nNo\n\n");
    let json: serde_json::Value =
        serde_json::from_slice(&write_bytes(&t, &m, FileFormat::Json).unwrap()).unwrap();
    assert_eq!(
        json,
        serde_json::json!([{"member": true}, {"member": false}, {"member": null}])
    );
    let parquet = write_bytes(&t, &m, FileFormat::Parquet).unwrap();
    let back = read_bytes(&parquet, None, &ReadOptions::default()).unwrap();
    assert_eq!(
        back.table.column("member").unwrap().data,
        ColumnData::Bool(vec![Some(true), Some(false), None])
    );
}

/// Formula cells (and a formula-like header) go out behind a `'` in CSV and XLSX, and
/// unchanged in JSON and Parquet; the profile of a table holding them warns.
#[test]
fn formula_cells_are_neutralised_in_spreadsheet_outputs() {
    let t = table(vec![
        (
            "note",
            strs(&[
                Some("=cmd|' /C calc'!A0"),
                Some("+SUM(A1:A9)"),
                Some("@SUM(A1)"),
                Some("-3"),
                Some("plain"),
            ]),
        ),
        (
            "=HYPERLINK(\"x\")",
            ColumnData::Int(vec![Some(1), Some(-2), None, Some(4), Some(5)]),
        ),
    ]);
    let m = meta(vec![
        ("note", ColumnMetadata::new(SdType::Text)),
        ("=HYPERLINK(\"x\")", ColumnMetadata::new(SdType::Numerical)),
    ]);
    let expected = [
        "'=cmd|' /C calc'!A0",
        "'+SUM(A1:A9)",
        "'@SUM(A1)",
        "-3",
        "plain",
    ];
    let round_trip = |format| {
        let bytes = write_bytes(&t, &m, format).unwrap();
        read_bytes(&bytes, None, &ReadOptions::default())
            .unwrap()
            .table
    };
    for format in [FileFormat::Csv, FileFormat::Xlsx] {
        let back = round_trip(format);
        assert_eq!(back.columns[1].name, "'=HYPERLINK(\"x\")", "{format:?}");
        // The metadata beside the file names its columns as the file does.
        let written = synth_data::metadata_as_written(&m, format);
        let names: Vec<&str> = written.columns.iter().map(|(n, _)| n.as_str()).collect();
        let file: Vec<&str> = back.columns.iter().map(|c| c.name.as_str()).collect();
        assert_eq!(names, file, "{format:?}");
        let ColumnData::Str(notes) = &back.columns[0].data else {
            panic!("{format:?}: {:?}", back.columns[0].data);
        };
        let notes: Vec<&str> = notes.iter().map(|n| n.as_deref().unwrap()).collect();
        assert_eq!(notes, expected, "{format:?}");
    }
    for format in [FileFormat::Json, FileFormat::Parquet] {
        let back = round_trip(format);
        assert_eq!(back.columns[1].name, "=HYPERLINK(\"x\")", "{format:?}");
        assert_eq!(back.columns[0].data, t.columns[0].data, "{format:?}");
        assert_eq!(synth_data::metadata_as_written(&m, format), m, "{format:?}");
    }
    let warnings = synth_data::profile(&t, &m, None).warnings;
    assert_eq!(warnings.len(), 2, "{warnings:?}");
    assert!(
        warnings[0].contains("column \"note\": 3 cell(s)"),
        "{warnings:?}"
    );
    assert!(
        warnings[1].contains("\"=HYPERLINK(\\\"x\\\")\""),
        "{warnings:?}"
    );
}
