use synth_data::{LoadOptions, ReadOptions, Source, load, read_path};
use synth_table::{ColumnData, ColumnMetadata, FileFormat, SdType};

use super::*;

fn bytes<'a>(text: &'a str, name: &'a str) -> Source<'a> {
    Source::Bytes {
        bytes: text.as_bytes(),
        filename: Some(name),
    }
}

#[test]
fn load_infers_types_and_keeps_the_reader_findings() {
    let text = "when,n,city\n2024-01-02,1,Paris\n2024-02-03,2,Lyon\n";
    let loaded = load(bytes(text, "t.json"), &LoadOptions::default()).unwrap();
    assert_eq!(loaded.format, FileFormat::Csv);
    // The reader's warning (the name says JSON, the content is CSV) is kept.
    assert!(
        loaded.warnings[0].contains("read as csv"),
        "{:?}",
        loaded.warnings
    );
    let when = loaded.metadata.column("when").unwrap();
    assert_eq!(when.sdtype, SdType::Datetime);
    // Applied: the datetime text is parsed.
    assert!(matches!(
        col(&loaded.table, "when"),
        ColumnData::Datetime(_)
    ));
    assert!(loaded.inference.is_some());
    assert!(loaded.profile.is_none() && loaded.compatible_sdtypes.is_empty());
}

#[test]
fn values_read_as_missing_are_said_with_their_spellings_and_rows() {
    // 60 ages, three of them written as a missing one (`oops` twice, `-` once).
    let age = |i: usize| match i {
        7 | 30 => "oops".to_owned(),
        12 => "-".to_owned(),
        _ => (20 + i % 50).to_string(),
    };
    let rows: Vec<String> = (0..60).map(|i| format!("{},c{}", age(i), i % 3)).collect();
    let text = format!("age,city\n{}\n", rows.join("\n"));
    let loaded = load(bytes(&text, "t.csv"), &LoadOptions::default()).unwrap();
    assert_eq!(
        loaded.metadata.column("age").unwrap().sdtype,
        SdType::Numerical
    );
    assert_eq!(col(&loaded.table, "age").null_count(), 3);
    assert_eq!(
        loaded.warnings,
        [r#"column "age": 3 values read as missing, written "-", "oops""#]
    );
    // A column of plain numbers says nothing.
    let clean = load(bytes("n\n1\n2\n3\n", "t.csv"), &LoadOptions::default()).unwrap();
    assert!(clean.warnings.is_empty(), "{:?}", clean.warnings);
}

#[test]
fn load_types_by_the_metadata_given_without_inferring() {
    let m = meta(vec![
        ("a", ColumnMetadata::new(SdType::Categorical)),
        ("b", ColumnMetadata::new(SdType::Numerical)),
    ]);
    let opts = LoadOptions {
        metadata: Some(m.clone()),
        ..LoadOptions::default()
    };
    let loaded = load(bytes("a,b\n1,\"2\"\n3,4\n", "t.csv"), &opts).unwrap();
    assert_eq!(loaded.metadata, m);
    assert!(loaded.inference.is_none());
    // Metadata the data contradicts is the reader's error.
    let wrong = LoadOptions {
        metadata: Some(meta(vec![("a", ColumnMetadata::new(SdType::Boolean))])),
        ..LoadOptions::default()
    };
    let err = load(bytes("a\n7\n", "t.csv"), &wrong).unwrap_err();
    assert!(err.to_string().contains("\"a\""), "{err}");
}

#[test]
fn load_profiles_and_lists_what_each_column_allows() {
    let path = shared_data("penguins.csv");
    let opts = LoadOptions {
        profile: true,
        compatible_sdtypes: true,
        ..LoadOptions::default()
    };
    let loaded = load(Source::Path(&path), &opts).unwrap();
    let read = read_path(&path, &ReadOptions::default()).unwrap();
    let profile = loaded.profile.as_ref().unwrap();
    assert_eq!(profile.n_rows, read.table.n_rows());
    // The profile carries inference's confidence and reason.
    assert!(profile.columns.iter().all(|c| c.reason.is_some()));
    let allowed = |c: &str| &loaded.compatible_sdtypes[c];
    assert_eq!(loaded.compatible_sdtypes.len(), loaded.table.columns.len());
    // Text allows the text types and categories but not numbers.
    assert!(allowed("species").contains(&SdType::Categorical));
    assert!(allowed("species").contains(&SdType::Text));
    assert!(!allowed("species").contains(&SdType::Numerical));
    // Numbers allow numbers and categories, not an id (they repeat) nor PII.
    let mass = allowed("body_mass_g");
    assert!(mass.contains(&SdType::Numerical) && mass.contains(&SdType::Categorical));
    assert!(!mass.contains(&SdType::Id) && !mass.contains(&SdType::Email));
}

#[test]
fn compatible_sdtypes_are_judged_on_the_columns_as_read() {
    let text = "id,day,flag\n1,2024-01-02,yes\n2,2024-01-03,no\n3,,yes\n";
    let opts = LoadOptions {
        compatible_sdtypes: true,
        ..LoadOptions::default()
    };
    let loaded = load(bytes(text, "t.csv"), &opts).unwrap();
    let allowed = &loaded.compatible_sdtypes;
    // Distinct integers may be an id; dates in text may stay a datetime or be categories.
    assert!(allowed["id"].contains(&SdType::Id));
    assert!(allowed["day"].contains(&SdType::Datetime));
    assert!(!allowed["day"].contains(&SdType::Numerical));
    // yes/no is a boolean, and two repeating values are no id.
    assert!(allowed["flag"].contains(&SdType::Boolean));
    assert!(!allowed["flag"].contains(&SdType::Id));
}

#[test]
fn a_table_loaded_and_written_back_keeps_the_spelling_of_its_values() {
    let text = "zip,flag,answer,at,seen\n\
                02139,True,yes,2024-01-31T10:20:30+01:00,2024-01-31\n\
                94105,False,No,2024-02-01T08:00:00-05:00,2024-02-01 10:27:00\n\
                00501,True,yes,2024-02-02T00:00:00Z,2024-02-02 23:59:59\n";
    let loaded = load(bytes(text, "t.csv"), &LoadOptions::default()).unwrap();
    let sdtype = |c: &str| loaded.metadata.column(c).unwrap().sdtype;
    assert_eq!(sdtype("zip"), SdType::Categorical);
    assert_eq!(sdtype("flag"), SdType::Boolean);
    assert_eq!(sdtype("answer"), SdType::Boolean);
    assert_eq!(sdtype("at"), SdType::Datetime);
    assert_eq!(sdtype("seen"), SdType::Datetime);
    let out = synth_data::write_bytes(&loaded.table, &loaded.metadata, FileFormat::Csv).unwrap();
    let out = String::from_utf8(out).unwrap();
    let rows: Vec<&str> = out.lines().collect();
    assert_eq!(
        rows,
        [
            "zip,flag,answer,at,seen",
            // Offsets are written as UTC's; a bare date among datetimes is its midnight.
            "02139,True,yes,2024-01-31T09:20:30+00:00,2024-01-31 00:00:00",
            "94105,False,No,2024-02-01T13:00:00+00:00,2024-02-01 10:27:00",
            "00501,True,yes,2024-02-02T00:00:00+00:00,2024-02-02 23:59:59",
        ]
    );
}
