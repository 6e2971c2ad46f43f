use synth_data::{DataError, ReadOptions, apply_metadata, infer_metadata, read_path};
use synth_table::{ColumnData, ColumnMetadata, SdType};

use super::*;

#[test]
fn inferred_metadata_applies_to_its_own_table() {
    let ds = read_path(&shared_data("seattle_weather.csv"), &ReadOptions::default()).unwrap();
    let inf = infer_metadata(&ds.table);
    let t = apply_metadata(ds.table, &inf.metadata).unwrap();
    match col(&t, "date") {
        ColumnData::Datetime(v) => {
            assert_eq!(v[0], Some(1_325_376_000_000_000)); // 2012-01-01
            assert_eq!(v.len(), 1461);
        }
        other => panic!("date not parsed: {other:?}"),
    }
    assert!(matches!(col(&t, "weather"), ColumnData::Str(_)));
}

fn num(repr: Option<&str>) -> ColumnMetadata {
    ColumnMetadata {
        computer_representation: repr.map(str::to_owned),
        ..ColumnMetadata::new(SdType::Numerical)
    }
}

#[test]
fn user_metadata_overrides_and_coerces() {
    let t = table(vec![
        (
            "day",
            ColumnData::Int(vec![Some(20240131), None, Some(20240201)]),
        ),
        ("n", strs(&[Some("1"), Some(" 2 "), None])),
        ("x", strs(&[Some("1.5"), Some("2"), None])),
        ("ok", strs(&[Some("Yes"), Some("no"), None])),
        ("bit", ColumnData::Int(vec![Some(1), Some(0), None])),
        ("rating", ColumnData::Int(vec![Some(5), Some(3), Some(5)])),
        (
            "when",
            strs(&[Some("31/01/2024 10:30"), None, Some("01/02/2024 00:00")]),
        ),
        ("f", ColumnData::Float(vec![Some(3.0), Some(4.0), None])),
    ]);
    let m = meta(vec![
        ("day", dt("%Y%m%d")),
        ("n", num(Some("Int64"))),
        ("x", num(Some("Float"))),
        ("ok", ColumnMetadata::new(SdType::Boolean)),
        ("bit", ColumnMetadata::new(SdType::Boolean)),
        ("rating", ColumnMetadata::new(SdType::Categorical)),
        ("when", dt("%d/%m/%Y %H:%M")),
        ("f", num(Some("Int64"))),
    ]);
    let out = apply_metadata(t, &m).unwrap();
    let day = 86_400_000_000i64;
    assert_eq!(
        col(&out, "day"),
        &ColumnData::Datetime(vec![Some(19753 * day), None, Some(19754 * day)])
    );
    assert_eq!(
        col(&out, "n"),
        &ColumnData::Int(vec![Some(1), Some(2), None])
    );
    assert_eq!(
        col(&out, "x"),
        &ColumnData::Float(vec![Some(1.5), Some(2.0), None])
    );
    // Booleans in words keep their words.
    assert_eq!(col(&out, "ok"), &strs(&[Some("Yes"), Some("no"), None]));
    assert_eq!(
        col(&out, "bit"),
        &ColumnData::Bool(vec![Some(true), Some(false), None])
    );
    assert_eq!(
        col(&out, "rating"),
        &ColumnData::Int(vec![Some(5), Some(3), Some(5)])
    );
    assert_eq!(
        col(&out, "when"),
        &ColumnData::Datetime(vec![
            Some(19753 * day + 37_800_000_000),
            None,
            Some(19754 * day)
        ])
    );
    assert_eq!(
        col(&out, "f"),
        &ColumnData::Int(vec![Some(3), Some(4), None])
    );
}

#[test]
fn contradicting_metadata_is_an_error_naming_the_column() {
    let t = || {
        table(vec![
            ("id", ColumnData::Int(vec![Some(1), Some(1), Some(2)])),
            ("word", strs(&[Some("a"), Some("b"), None])),
            (
                "date",
                strs(&[Some("2024-01-31"), Some("2024-02-30"), None]),
            ),
            ("ymd", ColumnData::Int(vec![Some(20240131), Some(1), None])),
            ("f", ColumnData::Float(vec![Some(1.5), None, None])),
        ])
    };
    let err = apply_metadata(t(), &meta(vec![("ghost", num(None))])).unwrap_err();
    assert!(
        matches!(&err, DataError::UnknownColumn { column } if column == "ghost"),
        "{err}"
    );

    let err = apply_metadata(t(), &meta(vec![("word", num(None))])).unwrap_err();
    match &err {
        DataError::Contradiction {
            column, row, value, ..
        } => assert_eq!((column.as_str(), *row, value.as_str()), ("word", 1, "a")),
        other => panic!("{other}"),
    }
    assert!(err.to_string().contains("\"word\""), "{err}");

    // The column and row each contradiction is found at.
    let contradiction =
        |column: &str, m: ColumnMetadata| match apply_metadata(t(), &meta(vec![(column, m)]))
            .unwrap_err()
        {
            DataError::Contradiction { column, row, .. } => (column, row),
            other => panic!("{other}"),
        };
    // 2024-02-30 does not exist.
    assert_eq!(contradiction("date", dt("%Y-%m-%d")), ("date".into(), 2));
    // Integers are not dates unless told how to read them.
    let datetime = ColumnMetadata::new(SdType::Datetime);
    assert_eq!(contradiction("ymd", datetime).0, "ymd");
    assert_eq!(contradiction("ymd", dt("%Y%m%d")).1, 2);
    assert_eq!(contradiction("f", num(Some("Int64"))).0, "f");
    let boolean = ColumnMetadata::new(SdType::Boolean);
    assert_eq!(contradiction("word", boolean).0, "word");

    let mut m = meta(vec![("id", ColumnMetadata::new(SdType::Id))]);
    m.primary_key = Some("id".into());
    let err = apply_metadata(t(), &m).unwrap_err();
    assert!(
        matches!(&err, DataError::PrimaryKey { column, .. } if column == "id"),
        "{err}"
    );
    m.primary_key = Some("nope".into());
    assert!(matches!(
        apply_metadata(t(), &m),
        Err(DataError::UnknownColumn { .. })
    ));
}
