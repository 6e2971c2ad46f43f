use synth_core::table::{ColumnData, ColumnMetadata, Metadata, SdType, Table};
use synth_data::{
    DataError, FileFormat, ReadOptions, apply_metadata, read_bytes, write_bytes, write_path,
};

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
    let mut d = ColumnMetadata::new(SdType::Datetime);
    d.datetime_format = Some("%d/%m/%Y".into());
    let m = Metadata::new(vec![
        ("i".into(), ColumnMetadata::new(SdType::Numerical)),
        ("f".into(), ColumnMetadata::new(SdType::Numerical)),
        ("b".into(), ColumnMetadata::new(SdType::Boolean)),
        ("s".into(), ColumnMetadata::new(SdType::Text)),
        ("d".into(), d),
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
}
