//! Test helpers: read a CSV with SDV metadata into a `Table` without polars.

#![allow(dead_code)]

use chrono::{NaiveDate, NaiveDateTime};
use synth_table::{Column, ColumnData, Metadata, SdType, Table};

/// The shared datasets beside the repository (`/work/shared/data` for `/work/main`).
pub fn shared_data(name: &str) -> String {
    format!("{}/../../../shared/data/{name}", env!("CARGO_MANIFEST_DIR"))
}

pub fn fixture(name: &str) -> String {
    format!("{}/tests/fixtures/{name}", env!("CARGO_MANIFEST_DIR"))
}

pub fn metadata(path: &str) -> Metadata {
    Metadata::from_json(&std::fs::read_to_string(path).expect("metadata file")).expect("metadata")
}

/// Numbers become Int (Int64 columns) or Float, datetimes are parsed with the metadata's
/// format into µs, booleans into Bool, everything else Str; an empty cell is `None`.
pub fn read_csv(path: &str, meta: &Metadata) -> Table {
    let mut reader = csv::Reader::from_path(path).expect("csv file");
    let headers: Vec<String> = reader
        .headers()
        .unwrap()
        .iter()
        .map(str::to_owned)
        .collect();
    let mut cells: Vec<Vec<Option<String>>> = vec![Vec::new(); headers.len()];
    for record in reader.records() {
        let record = record.expect("csv record");
        for (i, v) in record.iter().enumerate() {
            cells[i].push((!v.is_empty()).then(|| v.to_owned()));
        }
    }
    let columns = headers
        .into_iter()
        .zip(cells)
        .map(|(name, raw)| {
            let cm = meta.column(&name).expect("column in metadata");
            let data = match cm.sdtype {
                SdType::Numerical if cm.computer_representation.as_deref() == Some("Int64") => {
                    ColumnData::Int(
                        raw.iter()
                            .map(|v| v.as_ref().map(|s| s.parse().unwrap()))
                            .collect(),
                    )
                }
                SdType::Numerical => ColumnData::Float(
                    raw.iter()
                        .map(|v| v.as_ref().map(|s| s.parse().unwrap()))
                        .collect(),
                ),
                SdType::Datetime => {
                    let fmt = cm.datetime_format.as_deref().unwrap_or("%Y-%m-%d %H:%M:%S");
                    ColumnData::Datetime(
                        raw.iter()
                            .map(|v| v.as_ref().map(|s| parse_datetime(s, fmt)))
                            .collect(),
                    )
                }
                SdType::Boolean => ColumnData::Bool(
                    raw.iter()
                        .map(|v| {
                            v.as_ref()
                                .map(|s| matches!(s.to_lowercase().as_str(), "true" | "1"))
                        })
                        .collect(),
                ),
                _ => ColumnData::Str(raw),
            };
            Column { name, data }
        })
        .collect();
    Table::new(columns).expect("table")
}

fn parse_datetime(s: &str, fmt: &str) -> i64 {
    let dt = NaiveDateTime::parse_from_str(s, fmt).unwrap_or_else(|_| {
        NaiveDate::parse_from_str(s, fmt)
            .unwrap_or_else(|e| panic!("{s:?} with {fmt:?}: {e}"))
            .and_hms_opt(0, 0, 0)
            .unwrap()
    });
    dt.and_utc().timestamp_micros()
}

/// The real and synthetic tables and metadata of a shared dataset and its fixture.
pub fn dataset(name: &str) -> (Table, Table, Metadata) {
    let meta = metadata(&shared_data(&format!("{name}.json")));
    let real = read_csv(&shared_data(&format!("{name}.csv")), &meta);
    let synth = read_csv(&fixture(&format!("{name}_synthetic.csv")), &meta);
    (real, synth, meta)
}
