//! A table's profile: per-column statistics and the first rows, as computed after an upload
//! (by the data crate) and served to the user.

use serde::de::{Deserializer, MapAccess, Visitor};
use serde::ser::{SerializeMap, Serializer};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::SdType;

/// A table's profile: per-column statistics plus the first rows.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Profile {
    pub n_rows: usize,
    pub n_columns: usize,
    pub columns: Vec<ColumnProfile>,
    /// The first rows as JSON objects (column name → value); datetimes in their format.
    pub preview: Vec<PreviewRow>,
    /// What the user should know about the values (e.g. cells that read as formulas).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub warnings: Vec<String>,
}

/// One row of a preview: (column, value) pairs in column order, serialised as a JSON object
/// (a `serde_json::Map` would sort the columns by name).
#[derive(Debug, Clone, PartialEq)]
pub struct PreviewRow(pub Vec<(String, Value)>);

impl PreviewRow {
    /// The value of a column in this row.
    pub fn get(&self, column: &str) -> Option<&Value> {
        self.0.iter().find(|(n, _)| n == column).map(|(_, v)| v)
    }
}

/// A row's schema: an object of any cells (the columns are the dataset's own).
#[cfg(feature = "openapi")]
impl utoipa::PartialSchema for PreviewRow {
    fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
        use utoipa::openapi::schema::{AdditionalProperties, ObjectBuilder};
        ObjectBuilder::new()
            .description(Some(
                "One row: column name → value (null when missing), in the table's column order",
            ))
            .additional_properties(Some(AdditionalProperties::FreeForm(true)))
            .into()
    }
}

#[cfg(feature = "openapi")]
impl utoipa::ToSchema for PreviewRow {}

impl Serialize for PreviewRow {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut m = s.serialize_map(Some(self.0.len()))?;
        for (k, v) in &self.0 {
            m.serialize_entry(k, v)?;
        }
        m.end()
    }
}

impl<'de> Deserialize<'de> for PreviewRow {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct Row;
        impl<'de> Visitor<'de> for Row {
            type Value = PreviewRow;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("a row as a map of column name to value")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<PreviewRow, A::Error> {
                let mut cells = Vec::new();
                while let Some(cell) = map.next_entry::<String, Value>()? {
                    cells.push(cell);
                }
                Ok(PreviewRow(cells))
            }
        }
        d.deserialize_map(Row)
    }
}

/// One column's statistics; which parts are present depends on its sdtype.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ColumnProfile {
    pub name: String,
    pub sdtype: SdType,
    /// From inference, when the profile was given one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub confidence: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// Non-missing values.
    pub count: usize,
    pub nulls: usize,
    /// Distinct non-missing values.
    pub distinct: usize,
    /// Numerical columns.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub numeric: Option<NumericSummary>,
    /// Decimal places of a numerical column (0 for integers), so generated values can be
    /// rounded like the real ones; SDV metadata has no field for it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub decimals: Option<u32>,
    /// Datetime columns, rendered in the column's datetime format.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub datetime: Option<DatetimeSummary>,
    /// Categorical and boolean columns.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub top: Vec<CategoryCount>,
}

/// Summary statistics of a numerical column.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct NumericSummary {
    pub min: f64,
    pub max: f64,
    pub mean: f64,
    /// Sample standard deviation; absent with a single value.
    pub std: Option<f64>,
    pub quantiles: Vec<Quantile>,
}

/// A quantile `q` (0..1) and its value.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Quantile {
    pub q: f64,
    pub value: f64,
}

/// Summary statistics of a datetime column.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct DatetimeSummary {
    pub min: String,
    pub max: String,
    pub mean: String,
    pub quantiles: Vec<DatetimeQuantile>,
}

/// A quantile `q` (0..1) of a datetime column, in the column's format.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct DatetimeQuantile {
    pub q: f64,
    pub value: String,
}

/// A category and how often it occurs.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct CategoryCount {
    pub value: String,
    pub count: usize,
    /// count / non-missing values.
    pub frequency: f64,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_preview_row_keeps_its_column_order_both_ways() {
        let row = PreviewRow(vec![
            ("z".into(), Value::from(1)),
            ("a".into(), Value::from("x")),
        ]);
        let json = serde_json::to_string(&row).unwrap();
        assert_eq!(json, r#"{"z":1,"a":"x"}"#);
        let back: PreviewRow = serde_json::from_str(&json).unwrap();
        assert_eq!(back, row);
    }
}
