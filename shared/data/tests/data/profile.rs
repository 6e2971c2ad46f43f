use synth_data::{ReadOptions, apply_metadata, infer_metadata, profile, read_path};
use synth_table::{ColumnData, ColumnMetadata, SdType};

use super::*;

#[test]
fn numeric_categorical_and_datetime_statistics() {
    let mut nums: Vec<Option<i64>> = (1..=100).map(Some).collect();
    nums.push(None);
    let cats: Vec<Option<&str>> = (0..101)
        .map(|i| {
            if i == 100 {
                None
            } else {
                Some(["a", "b", "b", "c"][i % 4])
            }
        })
        .collect();
    let day = 86_400_000_000i64;
    let days: Vec<Option<i64>> = (0..101).map(|i| Some(i * day)).collect();
    let t = table(vec![
        ("n", ColumnData::Int(nums)),
        ("c", strs(&cats)),
        ("d", ColumnData::Datetime(days)),
    ]);
    let m = meta(vec![
        ("n", ColumnMetadata::new(SdType::Numerical)),
        ("c", ColumnMetadata::new(SdType::Categorical)),
        ("d", dt("%Y-%m-%d")),
    ]);
    let p = profile(&t, &m, None);
    assert_eq!((p.n_rows, p.n_columns), (101, 3));
    let n = &p.columns[0];
    assert_eq!((n.count, n.nulls, n.distinct), (100, 1, 100));
    let s = n.numeric.as_ref().unwrap();
    assert_eq!((s.min, s.max, s.mean), (1.0, 100.0, 50.5));
    assert!((s.std.unwrap() - 29.011_491).abs() < 1e-5, "{:?}", s.std);
    let median = s.quantiles.iter().find(|q| q.q == 0.5).unwrap().value;
    assert_eq!(median, 50.5);
    assert!(n.top.is_empty());

    let c = &p.columns[1];
    assert_eq!((c.count, c.nulls, c.distinct), (100, 1, 3));
    assert_eq!(c.top[0].value, "b");
    assert_eq!(c.top[0].count, 50);
    assert_eq!(c.top[0].frequency, 0.5);
    assert_eq!(c.top.len(), 3);
    assert!(c.numeric.is_none());

    let d = p.columns[2].datetime.as_ref().unwrap();
    assert_eq!(
        (d.min.as_str(), d.max.as_str()),
        ("1970-01-01", "1970-04-11")
    );
    assert_eq!(d.mean, "1970-02-20");

    assert_eq!(p.preview.len(), 20);
    assert_eq!(p.preview[0].get("n"), Some(&serde_json::json!(1)));
    assert_eq!(
        p.preview[0].get("d"),
        Some(&serde_json::json!("1970-01-01"))
    );
    // Preview rows keep the table's column order.
    let text = serde_json::to_string(&p.preview[0]).unwrap();
    assert_eq!(text, r#"{"n":1,"c":"a","d":"1970-01-01"}"#);
    let json = serde_json::to_value(&p).unwrap();
    assert_eq!(json["columns"][0]["numeric"]["max"], 100.0);
    assert!(json["columns"][0].get("top").is_none());
}

#[test]
fn penguins_profile_carries_inference() {
    let ds = read_path(&shared_data("penguins.csv"), &ReadOptions::default()).unwrap();
    let inf = infer_metadata(&ds.table);
    let t = apply_metadata(ds.table, &inf.metadata).unwrap();
    let p = profile(&t, &inf.metadata, Some(&inf));
    let sex = p.columns.iter().find(|c| c.name == "sex").unwrap();
    assert_eq!(sex.sdtype, SdType::Categorical);
    assert!(sex.nulls > 0);
    assert_eq!(sex.distinct, 2);
    assert!(sex.confidence.is_some() && sex.reason.is_some());
    let mass = p.columns.iter().find(|c| c.name == "body_mass_g").unwrap();
    let s = mass.numeric.as_ref().unwrap();
    assert_eq!((s.min, s.max), (2700.0, 6300.0));
    assert_eq!(mass.nulls, 2);
    assert_eq!(mass.decimals, Some(0));
    let bill = p
        .columns
        .iter()
        .find(|c| c.name == "bill_length_mm")
        .unwrap();
    assert_eq!(bill.decimals, Some(1));
    assert_eq!(p.n_rows, 344);
}

/// Values near f64's limits (and infinities, which are no value) still give a profile that
/// survives JSON, as ingestion sends it between processes.
#[test]
fn magnitudes_near_the_limits_profile_to_finite_figures() {
    let text = "big,n\n3.5e305,1\n-1e305,2\n8.7e307,3\ninf,4\n1.5,5\n";
    let ds = read_str(text, "huge.csv").unwrap();
    let ColumnData::Float(big) = col(&ds.table, "big") else {
        panic!("numbers: {:?}", col(&ds.table, "big"))
    };
    assert_eq!(big[3], None, "inf is no value");
    let inf = infer_metadata(&ds.table);
    let t = apply_metadata(ds.table, &inf.metadata).unwrap();
    let p = profile(&t, &inf.metadata, Some(&inf));
    let json = serde_json::to_string(&p).unwrap();
    let back: synth_table::Profile = serde_json::from_str(&json).unwrap();
    let big = back.columns.iter().find(|c| c.name == "big").unwrap();
    let mean = big.numeric.as_ref().unwrap().mean;
    assert!(
        (mean - (3.5e305 - 1e305 + 8.7e307 + 1.5) / 4.0).abs() < 1e295,
        "{mean}"
    );
}
