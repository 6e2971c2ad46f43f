use std::fmt::Write;

use synth_data::{ReadOptions, infer_metadata, read_path};
use synth_table::{ColumnData, Metadata, SdType};

use super::*;

/// Inference on each shared dataset must agree with the SDV metadata shipped beside it.
#[test]
fn shared_datasets_match_their_sdv_metadata() {
    for name in ["diamonds", "penguins", "seattle_weather"] {
        let ds = read_path(
            &shared_data(&format!("{name}.csv")),
            &ReadOptions::default(),
        )
        .unwrap();
        let expected = Metadata::from_json(
            &std::fs::read_to_string(shared_data(&format!("{name}.json"))).unwrap(),
        )
        .unwrap();
        let inferred = infer_metadata(&ds.table);
        assert_eq!(
            inferred.metadata.columns.len(),
            expected.columns.len(),
            "{name}"
        );
        for ((got_name, got), (want_name, want)) in
            inferred.metadata.columns.iter().zip(&expected.columns)
        {
            assert_eq!(got_name, want_name, "{name}");
            let why = &inferred
                .columns
                .iter()
                .find(|c| &c.name == got_name)
                .unwrap()
                .reason;
            assert_eq!(got.sdtype, want.sdtype, "{name}.{got_name}: {why}");
            assert_eq!(
                got.computer_representation, want.computer_representation,
                "{name}.{got_name}"
            );
            assert_eq!(
                got.datetime_format, want.datetime_format,
                "{name}.{got_name}"
            );
        }
        assert_eq!(inferred.metadata.primary_key, None, "{name}");
    }
}

fn sdtype(inf: &synth_data::Inference, col: &str) -> SdType {
    inf.columns.iter().find(|c| c.name == col).unwrap().sdtype
}

fn reason<'a>(inf: &'a synth_data::Inference, col: &str) -> &'a str {
    &inf.columns.iter().find(|c| c.name == col).unwrap().reason
}

#[test]
fn each_sdtype_is_recognised_with_a_reason() {
    let n = 200;
    let mut csv =
        String::from("id,code,ymd,price,score,when,stamp,euro,flag,email,phone,comment,city,zip\n");
    let cities = ["Paris", "Lyon", "Nice", "Lille"];
    for i in 0..n {
        let (id, code, ymd, price, score) = (
            1000 + i,
            i % 3 + 1,
            20240101 + (i * 37) % 200,
            (i * 37) % 150 + 5,
            i as f64 / 8.0,
        );
        let (day, month, hour) = (i % 28 + 1, i % 12 + 1, i % 24);
        let flag = if i % 3 == 0 { "yes" } else { "no" };
        let city = cities[i as usize % 4];
        let zip = 1000 + i;
        // Columns: id,code,ymd,price,score,when,stamp,euro,flag,email,phone,comment,city,zip
        writeln!(
            csv,
            "{id},{code},{ymd},{price},{score},2024-{month:02}-{day:02},\
             2024-03-{day:02}T{hour:02}:15:00,{day:02}/{month:02}/2023,{flag},\
             user{i}@example.com,+1 (555) 01{:02}-{i:04},\
             \"Customer {i} wrote that the delivery was late, again, sadly\",{city},0{zip}",
            i % 100
        )
        .unwrap();
    }
    let ds = read_str(&csv, "all.csv").unwrap();
    let inf = infer_metadata(&ds.table);
    let expect = [
        ("id", SdType::Id),
        ("code", SdType::Categorical),
        ("ymd", SdType::Numerical),
        ("price", SdType::Numerical),
        ("score", SdType::Numerical),
        ("when", SdType::Datetime),
        ("stamp", SdType::Datetime),
        ("euro", SdType::Datetime),
        ("flag", SdType::Boolean),
        ("email", SdType::Email),
        ("phone", SdType::Phone),
        ("comment", SdType::Text),
        ("city", SdType::Categorical),
        ("zip", SdType::Id),
    ];
    for (c, want) in expect {
        assert_eq!(sdtype(&inf, c), want, "{c}: {}", reason(&inf, c));
        let ci = inf.columns.iter().find(|x| x.name == c).unwrap();
        assert!(ci.confidence > 0.0 && ci.confidence <= 1.0, "{c}");
        assert!(!ci.reason.is_empty(), "{c}");
    }
    let meta = &inf.metadata;
    assert_eq!(meta.primary_key.as_deref(), Some("id"));
    assert_eq!(
        meta.column("when").unwrap().datetime_format.as_deref(),
        Some("%Y-%m-%d")
    );
    assert_eq!(
        meta.column("stamp").unwrap().datetime_format.as_deref(),
        Some("%Y-%m-%dT%H:%M:%S")
    );
    assert_eq!(
        meta.column("euro").unwrap().datetime_format.as_deref(),
        Some("%d/%m/%Y")
    );
    assert_eq!(
        meta.column("price")
            .unwrap()
            .computer_representation
            .as_deref(),
        Some("Int64")
    );
    assert_eq!(
        meta.column("score")
            .unwrap()
            .computer_representation
            .as_deref(),
        Some("Float")
    );
    assert!(
        reason(&inf, "score").contains("3 decimals"),
        "{}",
        reason(&inf, "score")
    );
    assert!(reason(&inf, "code").contains("3 distinct"));
    assert_eq!(meta.column("email").unwrap().pii, Some(true));
    assert_eq!(meta.column("phone").unwrap().pii, Some(true));
    assert_eq!(meta.column("city").unwrap().pii, None);
    // Integers that happen to look like yyyymmdd stay numbers.
    assert!(meta.column("ymd").unwrap().datetime_format.is_none());
}

#[test]
fn categorical_stored_as_numbers_follows_the_distinct_rule() {
    // 4 distinct values in 100 rows (4%) → categories; in 40 rows (10%) → a quantity.
    let many: Vec<Option<i64>> = (0..100).map(|i| Some(i % 4)).collect();
    let few: Vec<Option<i64>> = (0..40).map(|i| Some(i % 4)).collect();
    let floats: Vec<Option<f64>> = (0..100).map(|i| Some((i % 3) as f64 + 0.5)).collect();
    let t = table(vec![("rating", ColumnData::Int(many))]);
    assert_eq!(sdtype(&infer_metadata(&t), "rating"), SdType::Categorical);
    let t = table(vec![("rating", ColumnData::Int(few))]);
    assert_eq!(sdtype(&infer_metadata(&t), "rating"), SdType::Numerical);
    let t = table(vec![("level", ColumnData::Float(floats))]);
    assert_eq!(sdtype(&infer_metadata(&t), "level"), SdType::Categorical);
    // Same rule when the numbers arrive as text (e.g. from JSON strings).
    let text: Vec<Option<&str>> = (0..100).map(|i| Some(["1", "2"][i % 2])).collect();
    let t = table(vec![("grade", strs(&text))]);
    let inf = infer_metadata(&t);
    assert_eq!(sdtype(&inf, "grade"), SdType::Categorical);
    assert!(reason(&inf, "grade").contains("stored as text"));
}

/// An SDV pitfall: dates stored as integers (20240131) are dates, and only when every value
/// is a real calendar day.
#[test]
fn integer_coded_dates_are_datetimes() {
    let csv = "day,code,sku\n20240131,20240131,12345678\n20240201,20240230,23456789\n\
               20240301,20240301,34567890\n,20240302,45678901\n";
    let ds = read_str(csv, "days.csv").unwrap();
    let inf = infer_metadata(&ds.table);
    assert_eq!(
        sdtype(&inf, "day"),
        SdType::Datetime,
        "{}",
        reason(&inf, "day")
    );
    let day = inf.metadata.column("day").unwrap();
    assert_eq!(day.datetime_format.as_deref(), Some("%Y%m%d"));
    assert!(reason(&inf, "day").contains("YYYYMMDD"));
    // February 30th is no date; 8-digit codes are no dates.
    assert_ne!(sdtype(&inf, "code"), SdType::Datetime);
    assert_ne!(sdtype(&inf, "sku"), SdType::Datetime);
    // Applied, the column holds datetimes and writes back as it was spelled.
    let t = synth_data::apply_metadata(ds.table, &inf.metadata).unwrap();
    let ColumnData::Datetime(days) = col(&t, "day") else {
        panic!("datetimes")
    };
    assert_eq!(days.iter().flatten().count(), 3);
    let out = synth_data::write_bytes(&t, &inf.metadata, synth_data::FileFormat::Csv).unwrap();
    let text = String::from_utf8(out).unwrap();
    assert!(
        text.contains("20240131") && text.contains("20240301"),
        "{text}"
    );
}

#[test]
fn mixed_date_formats_are_not_one_datetime_format() {
    let values: Vec<Option<&str>> = (0..50)
        .map(|i| {
            Some(if i % 2 == 0 {
                "2024-01-31"
            } else {
                "31.01.2024"
            })
        })
        .chain([None])
        .collect();
    let t = table(vec![("d", strs(&values))]);
    let inf = infer_metadata(&t);
    assert_ne!(sdtype(&inf, "d"), SdType::Datetime);
    assert!(
        reason(&inf, "d").contains("mixed formats"),
        "{}",
        reason(&inf, "d")
    );
}

#[test]
fn unicode_text_and_all_missing_columns() {
    let words: Vec<String> = (0..30)
        .map(|i| format!("Ça a été une journée très {i} agréable à Zürich, vraiment"))
        .collect();
    let t = table(vec![
        (
            "note",
            ColumnData::Str(words.into_iter().map(Some).collect()),
        ),
        ("empty", ColumnData::Str(vec![None; 30])),
    ]);
    let inf = infer_metadata(&t);
    assert_eq!(sdtype(&inf, "note"), SdType::Text);
    assert_eq!(sdtype(&inf, "empty"), SdType::Categorical);
    assert!(inf.columns[1].confidence < 0.5);
}

#[test]
fn thousands_of_distinct_strings_are_not_categories() {
    let many: Vec<Option<String>> = (0..3000).map(|i| Some(format!("w{}", i % 1200))).collect();
    let some: Vec<Option<String>> = (0..3000).map(|i| Some(format!("w{}", i % 100))).collect();
    let t = table(vec![
        ("many", ColumnData::Str(many)),
        ("some", ColumnData::Str(some)),
    ]);
    let inf = infer_metadata(&t);
    assert_eq!(
        sdtype(&inf, "many"),
        SdType::Text,
        "{}",
        reason(&inf, "many")
    );
    assert_eq!(sdtype(&inf, "some"), SdType::Categorical);
}

#[test]
fn a_few_spellings_of_a_missing_number_are_missing_in_a_column_of_numbers() {
    let mut text = String::from("price,weight,size,code\n");
    for i in 0..100 {
        // 3 rows of `unknown` and `-` among prices; 10 of `?` among weights (too many); an
        // oddly written number among sizes (not missing); codes with few numbers.
        let price = match i {
            7 | 50 => "unknown".to_owned(),
            90 => "-".to_owned(),
            _ => format!("{}.5", i * 3),
        };
        let weight = if i % 10 == 0 {
            "?".to_owned()
        } else {
            i.to_string()
        };
        let size = if i == 3 {
            "12kg".to_owned()
        } else {
            format!("{i}.25")
        };
        let code = if i % 2 == 0 {
            "n/a".to_owned()
        } else {
            format!("A{i}")
        };
        writeln!(text, "{price},{weight},{size},{code}").unwrap();
    }
    let ds = read_str(&text, "m.csv").unwrap();
    let inf = infer_metadata(&ds.table);
    assert_eq!(sdtype(&inf, "price"), SdType::Numerical);
    assert!(reason(&inf, "price").contains(r#"["-", "unknown"] (3 rows) read as missing"#));
    for column in ["weight", "size", "code"] {
        assert_ne!(sdtype(&inf, column), SdType::Numerical, "{column}");
    }
    let t = synth_data::apply_metadata(ds.table.clone(), &inf.metadata).unwrap();
    let ColumnData::Float(prices) = col(&t, "price") else {
        panic!("prices are numbers: {:?}", col(&t, "price"))
    };
    assert_eq!((prices[7], prices[8], prices[90]), (None, Some(24.5), None));
    // The user's own metadata reads them alike; but not a column of more text than that.
    let mut own = inf.metadata.clone();
    own.columns
        .retain(|(name, _)| name == "price" || name == "weight");
    own.columns[1].1 = ColumnMetadata::new(SdType::Numerical);
    let err = synth_data::apply_metadata(ds.table, &own).unwrap_err();
    assert!(err.to_string().contains("weight"), "{err}");
}

#[test]
fn numbers_written_for_people_are_numbers() {
    // Prices with a currency sign and thousands commas, counts with thousands commas, shares
    // in percent, unique per row (which text would take for a key); and a European file.
    let mut text = String::from("price,count,share,label\n");
    for i in 0..200 {
        writeln!(
            text,
            "\"${},{:03}.{:02}\",\"{},{:03}\",{}.{}%,item {}",
            1 + i % 9,
            i,
            i % 100,
            100 + (i * 37) % 200,
            i,
            i % 100,
            i % 10,
            i % 7
        )
        .unwrap();
    }
    let ds = read_str(&text, "money.csv").unwrap();
    let inf = infer_metadata(&ds.table);
    for column in ["price", "count", "share"] {
        assert_eq!(
            sdtype(&inf, column),
            SdType::Numerical,
            "{column}: {}",
            reason(&inf, column)
        );
    }
    assert!(
        reason(&inf, "price").contains(r#"written like "$1,000.00""#),
        "{}",
        reason(&inf, "price")
    );
    let t = synth_data::apply_metadata(ds.table, &inf.metadata).unwrap();
    let ColumnData::Float(prices) = col(&t, "price") else {
        panic!("{:?}", col(&t, "price"))
    };
    assert_eq!(prices[12], Some(4012.12));
    let ColumnData::Int(counts) = col(&t, "count") else {
        panic!("{:?}", col(&t, "count"))
    };
    assert_eq!(counts[5], Some(285_005));

    let euro = "Datum;Betrag\n01.02.2023;372,70\n02.02.2023;1323,26\n03.02.2023;5,5\n";
    let mut euro = euro.to_owned();
    for i in 0..40 {
        writeln!(euro, "{:02}.03.2023;{},{}", 1 + i % 28, 10 + i * 7, i % 10).unwrap();
    }
    let ds = read_str(&euro, "euro.csv").unwrap();
    let inf = infer_metadata(&ds.table);
    let why = reason(&inf, "Betrag");
    assert_eq!(sdtype(&inf, "Betrag"), SdType::Numerical, "{why}");
    let t = synth_data::apply_metadata(ds.table, &inf.metadata).unwrap();
    let ColumnData::Float(amounts) = col(&t, "Betrag") else {
        panic!("{:?}", col(&t, "Betrag"))
    };
    assert_eq!(&amounts[..3], [Some(372.7), Some(1323.26), Some(5.5)]);
}

#[test]
fn times_in_one_zone_keep_their_offset_and_several_zones_are_utc() {
    let mut one = String::from("ts\n");
    let mut two = String::from("ts\n");
    for i in 0..30 {
        writeln!(one, "2022-04-{:02}T11:{:02}:00+02:00", 1 + i % 28, i).unwrap();
        let zone = if i % 2 == 0 { "+01:00" } else { "+02:00" };
        writeln!(two, "2022-04-{:02}T11:{:02}:00{zone}", 1 + i % 28, i).unwrap();
    }
    let ds = read_str(&one, "one.csv").unwrap();
    let inf = infer_metadata(&ds.table);
    let format = inf.metadata.column("ts").unwrap().datetime_format.clone();
    assert_eq!(format.as_deref(), Some("%Y-%m-%dT%H:%M:%S+02:00"));
    let t = synth_data::apply_metadata(ds.table, &inf.metadata).unwrap();
    let out = synth_data::write_bytes(&t, &inf.metadata, synth_data::FileFormat::Csv).unwrap();
    assert_eq!(String::from_utf8(out).unwrap(), one, "written back as read");

    let ds = read_str(&two, "two.csv").unwrap();
    let inf = infer_metadata(&ds.table);
    let format = inf.metadata.column("ts").unwrap().datetime_format.clone();
    assert_eq!(format.as_deref(), Some("%Y-%m-%dT%H:%M:%S%:z"));
}
