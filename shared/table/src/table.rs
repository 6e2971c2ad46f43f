//! A table in memory and its metadata — the hand-off between the data crate (which reads,
//! infers and writes files) and the engine (which learns and samples), so neither depends
//! on the other. Metadata is SDV's single-table format, so users can bring what they have.

use std::fmt;

use serde::de::{MapAccess, Visitor};
use serde::ser::SerializeMap;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// SDV's semantic type of a column.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "lowercase")]
pub enum SdType {
    Numerical,
    Categorical,
    Boolean,
    Datetime,
    /// Unique per row (a key): regenerated, never learned.
    Id,
    /// Free text.
    Text,
    Email,
    #[serde(rename = "phone_number")]
    Phone,
}

impl SdType {
    /// Every sdtype, in the order clients see them.
    pub const ALL: [SdType; 8] = [
        SdType::Numerical,
        SdType::Categorical,
        SdType::Boolean,
        SdType::Datetime,
        SdType::Id,
        SdType::Text,
        SdType::Email,
        SdType::Phone,
    ];

    /// The name SDV's metadata gives it (`numerical`, `phone_number`, …).
    pub fn as_str(self) -> &'static str {
        match self {
            SdType::Numerical => "numerical",
            SdType::Categorical => "categorical",
            SdType::Boolean => "boolean",
            SdType::Datetime => "datetime",
            SdType::Id => "id",
            SdType::Text => "text",
            SdType::Email => "email",
            SdType::Phone => "phone_number",
        }
    }

    /// Whether the column is personal data unless its metadata says otherwise: emails, phone
    /// numbers, and free text (mostly unique values, each of which can name the row it came
    /// from: notes, comments, addresses, names).
    pub fn is_pii(self) -> bool {
        matches!(self, SdType::Email | SdType::Phone | SdType::Text)
    }

    /// Whether the column has a distribution to learn, condition on and score (numbers,
    /// categories, booleans, datetimes), unlike keys, free text and personal data.
    pub fn is_statistical(self) -> bool {
        matches!(
            self,
            SdType::Numerical | SdType::Categorical | SdType::Boolean | SdType::Datetime
        )
    }
}

/// One column's metadata, as SDV writes it. A key SDV does not define is refused, as SDV
/// refuses it, so a misspelt one is an error rather than a setting quietly lost.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct ColumnMetadata {
    pub sdtype: SdType,
    /// `Int64` or `Float` for numerical columns.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub computer_representation: Option<String>,
    /// strftime format of datetime columns, e.g. `%Y-%m-%d`: in chrono's spelling here, in
    /// Python's (SDV's) in JSON (see [`crate::datetime::sdv_format`]).
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        with = "crate::datetime::sdv_format"
    )]
    pub datetime_format: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pii: Option<bool>,
    /// SDV's pattern of an id column's values; kept as given (generated keys are unique
    /// and shaped like the real ones, not drawn from the pattern).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub regex_format: Option<String>,
    /// SDV's order of a categorical column's values (`order_by` or an `order` list); kept
    /// as given (categories are learned without an order).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub order_by: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "openapi", schema(value_type = Option<Vec<Object>>))]
    pub order: Option<Vec<serde_json::Value>>,
}

impl ColumnMetadata {
    /// Whether the column holds personal data, never learned or copied (generated in the
    /// real values' shapes): `pii` as given, else whether its sdtype is personal. Booleans
    /// and datetimes have no shape to generate from and are learned whatever `pii` says.
    pub fn is_personal(&self) -> bool {
        let shaped = !matches!(self.sdtype, SdType::Boolean | SdType::Datetime);
        shaped && self.pii.unwrap_or(self.sdtype.is_pii())
    }

    pub fn new(sdtype: SdType) -> Self {
        Self {
            sdtype,
            computer_representation: None,
            datetime_format: None,
            pii: None,
            regex_format: None,
            order_by: None,
            order: None,
        }
    }

    /// A number of this column as the data writes it: a datetime (microseconds since the
    /// epoch) in the column's format, anything else as the number.
    pub fn show(&self, value: f64) -> String {
        match self.sdtype {
            SdType::Datetime => crate::datetime::format(
                value.round() as i64,
                self.datetime_format
                    .as_deref()
                    .unwrap_or(crate::datetime::DEFAULT_DATETIME_FORMAT),
            ),
            _ => value.to_string(),
        }
    }
}

pub const METADATA_SPEC_VERSION: &str = "SINGLE_TABLE_V1";

/// A table's metadata in SDV's single-table format; column order is kept.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Metadata {
    #[serde(serialize_with = "ordered_ser", deserialize_with = "ordered_de")]
    /// Column name → its metadata, in the table's column order.
    #[cfg_attr(
        feature = "openapi",
        schema(value_type = std::collections::HashMap<String, ColumnMetadata>)
    )]
    pub columns: Vec<(String, ColumnMetadata)>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub primary_key: Option<String>,
    #[serde(rename = "METADATA_SPEC_VERSION", default = "spec_version")]
    pub spec_version: String,
}

fn spec_version() -> String {
    METADATA_SPEC_VERSION.to_owned()
}

impl Metadata {
    pub fn new(columns: Vec<(String, ColumnMetadata)>) -> Self {
        Self {
            columns,
            primary_key: None,
            spec_version: spec_version(),
        }
    }

    pub fn column(&self, name: &str) -> Option<&ColumnMetadata> {
        self.columns.iter().find(|(n, _)| n == name).map(|(_, c)| c)
    }

    /// A number of `column` as the data writes it ([`ColumnMetadata::show`]); as the number
    /// for a column the metadata does not describe.
    pub fn show(&self, column: &str, value: f64) -> String {
        self.column(column)
            .map_or_else(|| value.to_string(), |m| m.show(value))
    }

    /// Puts the columns in the order `table` has them (those it lacks last). A store that
    /// keeps metadata as a JSON map (DynamoDB, or any `serde_json::Value`) loses the order;
    /// the table keeps it, and what is generated from it should too.
    pub fn order_like(&mut self, table: &Table) {
        let position = |name: &str| {
            table
                .columns
                .iter()
                .position(|c| c.name == name)
                .unwrap_or(usize::MAX)
        };
        self.columns.sort_by_key(|(name, _)| position(name));
    }

    /// Parse SDV metadata JSON (also accepts the multi-table wrapper with one table).
    pub fn from_json(text: &str) -> Result<Self, String> {
        #[derive(Deserialize)]
        struct MultiTable {
            tables: std::collections::HashMap<String, Metadata>,
        }
        crate::json::check_depth(text.as_bytes(), crate::json::MAX_DOCUMENT_DEPTH)
            .map_err(|e| format!("invalid SDV metadata: {e}"))?;
        // Parsed straight into the types, so column order survives.
        match serde_json::from_str::<Metadata>(text) {
            Ok(m) => Ok(m),
            Err(single) => match serde_json::from_str::<MultiTable>(text) {
                Ok(multi) if multi.tables.len() == 1 => {
                    Ok(multi.tables.into_values().next().expect("one table"))
                }
                Ok(_) => Err("metadata describes several tables; give one".into()),
                Err(_) => Err(format!("invalid SDV metadata: {single}")),
            },
        }
    }
}

fn ordered_ser<S: Serializer>(cols: &[(String, ColumnMetadata)], s: S) -> Result<S::Ok, S::Error> {
    let mut m = s.serialize_map(Some(cols.len()))?;
    for (k, v) in cols {
        m.serialize_entry(k, v)?;
    }
    m.end()
}

fn ordered_de<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<(String, ColumnMetadata)>, D::Error> {
    struct V;
    impl<'de> Visitor<'de> for V {
        type Value = Vec<(String, ColumnMetadata)>;
        fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
            f.write_str("a map of column name to column metadata")
        }
        fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
            let mut out = Vec::new();
            while let Some((k, v)) = map.next_entry::<String, ColumnMetadata>()? {
                out.push((k, v));
            }
            Ok(out)
        }
    }
    d.deserialize_map(V)
}

/// The values of one column; `None` is a missing value.
#[derive(Debug, Clone, PartialEq)]
pub enum ColumnData {
    Float(Vec<Option<f64>>),
    Int(Vec<Option<i64>>),
    Bool(Vec<Option<bool>>),
    Str(Vec<Option<String>>),
    /// Microseconds since the Unix epoch (UTC).
    Datetime(Vec<Option<i64>>),
}

impl ColumnData {
    pub fn len(&self) -> usize {
        match self {
            ColumnData::Float(v) => v.len(),
            ColumnData::Int(v) | ColumnData::Datetime(v) => v.len(),
            ColumnData::Bool(v) => v.len(),
            ColumnData::Str(v) => v.len(),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    pub fn null_count(&self) -> usize {
        match self {
            ColumnData::Float(v) => v.iter().filter(|x| x.is_none()).count(),
            ColumnData::Int(v) | ColumnData::Datetime(v) => {
                v.iter().filter(|x| x.is_none()).count()
            }
            ColumnData::Bool(v) => v.iter().filter(|x| x.is_none()).count(),
            ColumnData::Str(v) => v.iter().filter(|x| x.is_none()).count(),
        }
    }
}

/// A named column.
#[derive(Debug, Clone, PartialEq)]
pub struct Column {
    pub name: String,
    pub data: ColumnData,
}

/// A table: columns of equal length, in order.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Table {
    pub columns: Vec<Column>,
}

impl Table {
    /// A table, checking that every column has the same length and a unique name.
    pub fn new(columns: Vec<Column>) -> Result<Self, String> {
        if let Some(first) = columns.first() {
            let n = first.data.len();
            if let Some(bad) = columns.iter().find(|c| c.data.len() != n) {
                return Err(format!(
                    "column {:?} has {} rows, expected {n}",
                    bad.name,
                    bad.data.len()
                ));
            }
        }
        let mut seen = std::collections::HashSet::new();
        if let Some(dup) = columns.iter().find(|c| !seen.insert(c.name.as_str())) {
            return Err(format!("duplicate column name {:?}", dup.name));
        }
        Ok(Self { columns })
    }

    pub fn n_rows(&self) -> usize {
        self.columns.first().map_or(0, |c| c.data.len())
    }

    pub fn column(&self, name: &str) -> Option<&Column> {
        self.columns.iter().find(|c| c.name == name)
    }

    /// The table restricted to `rows` (indices, in that order; repeats allowed).
    pub fn take_rows(&self, rows: &[usize]) -> Table {
        fn take<T: Clone>(v: &[T], rows: &[usize]) -> Vec<T> {
            rows.iter().map(|&i| v[i].clone()).collect()
        }
        let columns = self
            .columns
            .iter()
            .map(|c| Column {
                name: c.name.clone(),
                data: match &c.data {
                    ColumnData::Float(v) => ColumnData::Float(take(v, rows)),
                    ColumnData::Int(v) => ColumnData::Int(take(v, rows)),
                    ColumnData::Bool(v) => ColumnData::Bool(take(v, rows)),
                    ColumnData::Str(v) => ColumnData::Str(take(v, rows)),
                    ColumnData::Datetime(v) => ColumnData::Datetime(take(v, rows)),
                },
            })
            .collect();
        Table { columns }
    }

    /// Adds `more`'s rows below these; an empty table takes `more` as it is. The two must
    /// have the same columns, in order, of the same types.
    pub fn append(&mut self, more: Table) -> Result<(), String> {
        if self.columns.is_empty() {
            *self = more;
            return Ok(());
        }
        if self.columns.len() != more.columns.len() {
            return Err(format!(
                "cannot append {} columns to {}",
                more.columns.len(),
                self.columns.len()
            ));
        }
        for (c, m) in self.columns.iter_mut().zip(more.columns) {
            if c.name != m.name {
                return Err(format!("column {:?} is not {:?}", m.name, c.name));
            }
            match (&mut c.data, m.data) {
                (ColumnData::Float(a), ColumnData::Float(b)) => a.extend(b),
                (ColumnData::Int(a), ColumnData::Int(b))
                | (ColumnData::Datetime(a), ColumnData::Datetime(b)) => a.extend(b),
                (ColumnData::Bool(a), ColumnData::Bool(b)) => a.extend(b),
                (ColumnData::Str(a), ColumnData::Str(b)) => a.extend(b),
                _ => return Err(format!("column {:?} changes type", c.name)),
            }
        }
        Ok(())
    }

    /// The first `n` rows (all of them when there are fewer).
    pub fn head(&self, n: usize) -> Table {
        let rows: Vec<usize> = (0..self.n_rows().min(n)).collect();
        self.take_rows(&rows)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_sdtype_is_named_as_sdv_names_it() {
        for t in SdType::ALL {
            assert_eq!(serde_json::to_value(t).unwrap(), t.as_str());
        }
    }

    #[test]
    fn sdv_column_keys_round_trip_and_others_are_refused() {
        let sdv = serde_json::json!({
            "id": {"sdtype": "id", "regex_format": "C[0-9]{4}"},
            "size": {"sdtype": "categorical", "order": ["S", "M", "L"]},
            "grade": {"sdtype": "categorical", "order_by": "alphabetical"},
            "email": {"sdtype": "email", "pii": true},
        });
        let columns: std::collections::BTreeMap<String, ColumnMetadata> =
            serde_json::from_value(sdv.clone()).unwrap();
        assert_eq!(serde_json::to_value(&columns).unwrap(), sdv);
        let typo = serde_json::json!({"sdtype": "numerical", "computer_represntation": "Int64"});
        let e = serde_json::from_value::<ColumnMetadata>(typo).unwrap_err();
        assert!(e.to_string().contains("computer_represntation"), "{e}");
    }

    #[test]
    fn datetime_formats_are_python_spelt_in_json_and_chrono_spelt_inside() {
        use crate::datetime::{DateFormatter, sdv_format};
        let pairs = [
            ("%Y-%m-%d %H:%M:%S.%f", "%Y-%m-%d %H:%M:%S%.f"),
            ("%Y-%m-%dT%H:%M:%S%z", "%Y-%m-%dT%H:%M:%S%:z"),
            ("%Y%m%d%H%M%S%f", "%Y%m%d%H%M%S%6f"),
            ("%d.%m.%Y %I:%M %p", "%d.%m.%Y %I:%M %p"),
            ("100%% on %Y-%m-%d", "100%% on %Y-%m-%d"),
        ];
        for (python, chrono) in pairs {
            assert_eq!(sdv_format::from_python(python), chrono, "{python}");
            assert_eq!(sdv_format::to_python(chrono), python, "{chrono}");
            let json = serde_json::json!({"sdtype": "datetime", "datetime_format": python});
            let meta: ColumnMetadata = serde_json::from_value(json.clone()).unwrap();
            assert_eq!(meta.datetime_format.as_deref(), Some(chrono));
            assert_eq!(serde_json::to_value(&meta).unwrap(), json);
        }
        // chrono's spellings (metadata stored before) read as they are; its own fields are
        // written as Python's nearest.
        assert_eq!(sdv_format::from_python("%H:%M:%S%.f"), "%H:%M:%S%.f");
        assert_eq!(sdv_format::to_python("%H:%M:%S%.3f"), "%H:%M:%S.%f");
        assert_eq!(sdv_format::to_python("%+"), "%Y-%m-%dT%H:%M:%S%z");
        // What chrono makes of the translation is what Python would write.
        let t = 1_706_702_400_123_456;
        let f = sdv_format::from_python("%Y-%m-%d %H:%M:%S.%f%z");
        assert_eq!(
            DateFormatter::new(&f).format(t),
            "2024-01-31 12:00:00.123456+00:00"
        );
    }

    #[test]
    fn a_number_is_shown_as_its_column_writes_it() {
        let mut when = ColumnMetadata::new(SdType::Datetime);
        let noon = 86_400_000_000.0 * 19_753.5;
        assert_eq!(when.show(noon), "2024-01-31 12:00:00");
        when.datetime_format = Some("%d/%m/%Y".into());
        assert_eq!(when.show(noon), "31/01/2024");
        assert_eq!(ColumnMetadata::new(SdType::Numerical).show(35.5), "35.5");
        assert_eq!(ColumnMetadata::new(SdType::Numerical).show(4.0), "4");
    }

    #[test]
    fn metadata_round_trips_sdv_json_in_column_order() {
        let text = r#"{"columns": {"zeta": {"sdtype": "numerical", "computer_representation": "Int64"},
            "alpha": {"sdtype": "datetime", "datetime_format": "%Y-%m-%d"},
            "id": {"sdtype": "id"}, "tel": {"sdtype": "phone_number", "pii": true}},
            "primary_key": "id", "METADATA_SPEC_VERSION": "SINGLE_TABLE_V1"}"#;
        let m = Metadata::from_json(text).unwrap();
        let names: Vec<_> = m.columns.iter().map(|(n, _)| n.as_str()).collect();
        assert_eq!(names, ["zeta", "alpha", "id", "tel"]);
        assert_eq!(m.column("tel").unwrap().sdtype, SdType::Phone);
        let out = serde_json::to_string(&m).unwrap();
        assert!(out.find("zeta").unwrap() < out.find("alpha").unwrap());
        assert_eq!(Metadata::from_json(&out).unwrap(), m);
        let wrapped = format!(r#"{{"tables": {{"t": {text}}}}}"#);
        assert_eq!(Metadata::from_json(&wrapped).unwrap(), m);
        assert!(Metadata::from_json(r#"{"columns": {"a": {"sdtype": "weird"}}}"#).is_err());
    }

    #[test]
    fn metadata_takes_the_tables_column_order() {
        let col = |name: &str| Column {
            name: name.into(),
            data: ColumnData::Int(vec![Some(1)]),
        };
        let table = Table::new(vec![col("b"), col("a"), col("c")]).unwrap();
        let meta = |n: &str| (n.to_owned(), ColumnMetadata::new(SdType::Numerical));
        let mut m = Metadata::new(vec![meta("a"), meta("extra"), meta("c"), meta("b")]);
        m.order_like(&table);
        let names: Vec<_> = m.columns.iter().map(|(n, _)| n.as_str()).collect();
        assert_eq!(names, ["b", "a", "c", "extra"]);
    }

    #[test]
    fn deeply_nested_metadata_is_refused_before_parsing() {
        let deep = format!(
            "{{\"columns\": {}{}}}",
            "{\"a\": ".repeat(100_000),
            "}".repeat(100_000)
        );
        let err = Metadata::from_json(&deep).unwrap_err();
        assert!(err.contains("nested more than 32 levels"), "{err}");
    }

    #[test]
    fn tables_check_their_shape() {
        let a = Column {
            name: "a".into(),
            data: ColumnData::Int(vec![Some(1), None]),
        };
        let b = Column {
            name: "b".into(),
            data: ColumnData::Bool(vec![Some(true)]),
        };
        assert!(Table::new(vec![a.clone(), b]).is_err());
        assert!(Table::new(vec![a.clone(), a.clone()]).is_err());
        let t = Table::new(vec![a]).unwrap();
        assert_eq!((t.n_rows(), t.columns[0].data.null_count()), (2, 1));
        let picked = t.take_rows(&[1, 0, 1]);
        assert_eq!(
            picked.columns[0].data,
            ColumnData::Int(vec![None, Some(1), None])
        );
        assert_eq!(t.head(1).columns[0].data, ColumnData::Int(vec![Some(1)]));
        assert_eq!(t.head(9).n_rows(), 2);
    }
}
