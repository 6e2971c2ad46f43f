//! Fixtures shared by the models' unit tests.

use synth_table::{Column, ColumnData, ColumnMetadata, Metadata, SdType, Table};

/// A small table with a numerical, a categorical and a boolean column, nulls included.
pub(crate) fn table(n: usize) -> (Table, Metadata) {
    let t = Table::new(vec![
        Column {
            name: "size".into(),
            data: ColumnData::Float(
                (0..n)
                    .map(|i| (i % 10 != 0).then_some((i % 4) as f64 * 10.0 + (i % 7) as f64 * 0.5))
                    .collect(),
            ),
        },
        Column {
            name: "kind".into(),
            data: ColumnData::Str(
                (0..n)
                    .map(|i| (i % 13 != 0).then(|| ["a", "b", "c"][i % 3].to_owned()))
                    .collect(),
            ),
        },
        Column {
            name: "ok".into(),
            data: ColumnData::Bool((0..n).map(|i| Some(i % 4 == 0)).collect()),
        },
    ])
    .unwrap();
    let m = Metadata::new(vec![
        ("size".into(), ColumnMetadata::new(SdType::Numerical)),
        ("kind".into(), ColumnMetadata::new(SdType::Categorical)),
        ("ok".into(), ColumnMetadata::new(SdType::Boolean)),
    ]);
    (t, m)
}
