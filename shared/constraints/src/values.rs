//! Cells and number lines: what the rules compare. Numerical and datetime columns are read
//! as `f64` on one line (datetimes as microseconds since the epoch, exact below 2^53: about
//! 285 years either side of 1970); discrete cells as hashable [`Cell`]s.

use serde::{Deserialize, Serialize};
use synth_table::{ColumnData, ColumnMetadata, SdType};

use crate::spec::Scalar;

/// One cell of any column, comparable and hashable (floats by their bits).
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Cell {
    Null,
    Str(String),
    Bool(bool),
    Int(i64),
    Float(u64),
    Datetime(i64),
}

impl Cell {
    pub fn of(data: &ColumnData, row: usize) -> Cell {
        match data {
            ColumnData::Str(v) => v[row].clone().map_or(Cell::Null, Cell::Str),
            ColumnData::Bool(v) => v[row].map_or(Cell::Null, Cell::Bool),
            ColumnData::Int(v) => v[row].map_or(Cell::Null, Cell::Int),
            ColumnData::Float(v) => v[row].map_or(Cell::Null, |f| Cell::Float(f.to_bits())),
            ColumnData::Datetime(v) => v[row].map_or(Cell::Null, Cell::Datetime),
        }
    }

    /// The cell as the CLI and the API spell a condition's value.
    pub fn text(&self) -> Option<String> {
        match self {
            Cell::Null => None,
            Cell::Str(s) => Some(s.clone()),
            Cell::Bool(b) => Some(b.to_string()),
            Cell::Int(i) | Cell::Datetime(i) => Some(i.to_string()),
            Cell::Float(bits) => Some(f64::from_bits(*bits).to_string()),
        }
    }
}

/// Which of the table's column types a column has.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Shape {
    Str,
    Bool,
    Int,
    Float,
    Datetime,
}

impl Shape {
    pub fn of(data: &ColumnData) -> Shape {
        match data {
            ColumnData::Str(_) => Shape::Str,
            ColumnData::Bool(_) => Shape::Bool,
            ColumnData::Int(_) => Shape::Int,
            ColumnData::Float(_) => Shape::Float,
            ColumnData::Datetime(_) => Shape::Datetime,
        }
    }
}

/// Builds a column of the shape from cells (a cell of another type is a null).
pub fn column_of(shape: Shape, cells: impl Iterator<Item = Cell>) -> ColumnData {
    // The cells that match `$cell` as values, every other one as a null.
    macro_rules! collect {
        ($column:ident, $cell:pat => $value:expr) => {
            ColumnData::$column(
                cells
                    .map(|c| match c {
                        $cell => Some($value),
                        _ => None,
                    })
                    .collect(),
            )
        };
    }
    match shape {
        Shape::Str => collect!(Str, Cell::Str(s) => s),
        Shape::Bool => collect!(Bool, Cell::Bool(b) => b),
        Shape::Int => collect!(Int, Cell::Int(i) => i),
        Shape::Float => collect!(Float, Cell::Float(bits) => f64::from_bits(bits)),
        Shape::Datetime => collect!(Datetime, Cell::Datetime(t) => t),
    }
}

/// A numerical or datetime column on the number line; `None` for other columns.
pub fn numbers(data: &ColumnData) -> Option<Vec<Option<f64>>> {
    match data {
        ColumnData::Float(v) => Some(v.clone()),
        ColumnData::Int(v) | ColumnData::Datetime(v) => {
            Some(v.iter().map(|x| x.map(|x| x as f64)).collect())
        }
        ColumnData::Bool(_) | ColumnData::Str(_) => None,
    }
}

/// How a number-line column is written back: its type and the step its values keep.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub enum Kind {
    /// Rounded to `decimals` places when every real value had at most 6.
    Float {
        decimals: Option<u32>,
    },
    Int,
    /// Whole multiples of `unit` microseconds (a day, an hour, … 1).
    Datetime {
        unit: i64,
    },
}

impl Kind {
    /// The kind of a real column, learned from its values.
    pub fn of(data: &ColumnData) -> Option<Kind> {
        match data {
            ColumnData::Float(v) => Some(Kind::Float {
                decimals: decimals(v.iter().flatten().copied()),
            }),
            ColumnData::Int(_) => Some(Kind::Int),
            ColumnData::Datetime(v) => Some(Kind::Datetime {
                unit: datetime_unit(v.iter().flatten().copied()),
            }),
            ColumnData::Bool(_) | ColumnData::Str(_) => None,
        }
    }

    /// The smallest step between two values (1 for integers, the unit for datetimes, the
    /// last decimal for floats that keep some, 0 for other floats).
    pub fn step(self) -> f64 {
        match self {
            Kind::Float { decimals: Some(d) } => 10f64.powi(-(d as i32)),
            Kind::Float { decimals: None } => 0.0,
            Kind::Int => 1.0,
            Kind::Datetime { unit } => unit as f64,
        }
    }

    /// A number put back on the column's grid.
    pub fn snap(self, x: f64) -> f64 {
        match self {
            Kind::Float { decimals: Some(d) } => {
                let scale = 10f64.powi(d as i32);
                (x * scale).round() / scale
            }
            Kind::Float { decimals: None } => x,
            Kind::Int => x.round(),
            Kind::Datetime { unit } => (x / unit as f64).round() * unit as f64,
        }
    }

    /// The grid point nearest `x` within `low..=high` (either side open when `None`): the
    /// nearest one, or the first inside when the nearest falls out. Outside when no grid
    /// point lies within.
    pub fn snap_within(self, x: f64, low: Option<f64>, high: Option<f64>) -> f64 {
        let mut s = self.snap(x);
        if let Some(l) = low.filter(|l| s < *l) {
            s = self.round_with(l, f64::ceil);
        }
        if let Some(h) = high.filter(|h| s > *h) {
            s = self.round_with(h, f64::floor);
        }
        s
    }

    fn round_with(self, x: f64, round: fn(f64) -> f64) -> f64 {
        match self {
            Kind::Float { decimals: Some(d) } => {
                let scale = 10f64.powi(d as i32);
                let scaled = x * scale;
                // A value already on the grid (up to float error) stays there.
                if (scaled - scaled.round()).abs() < 1e-12 * scaled.abs().max(1.0) {
                    scaled.round() / scale
                } else {
                    round(scaled) / scale
                }
            }
            Kind::Float { decimals: None } => x,
            Kind::Int => round(x),
            Kind::Datetime { unit } => round(x / unit as f64) * unit as f64,
        }
    }

    /// A column of this kind from numbers (snapped).
    pub fn column(self, values: impl Iterator<Item = Option<f64>>) -> ColumnData {
        let snapped = values.map(|v| v.filter(|x| x.is_finite()).map(|x| self.snap(x)));
        match self {
            Kind::Float { .. } => ColumnData::Float(snapped.collect()),
            Kind::Int => ColumnData::Int(snapped.map(|v| v.map(|x| x as i64)).collect()),
            Kind::Datetime { .. } => {
                ColumnData::Datetime(snapped.map(|v| v.map(|x| x as i64)).collect())
            }
        }
    }
}

/// The fewest decimals (at most 6) that write every value exactly, or `None`.
fn decimals(values: impl Iterator<Item = f64>) -> Option<u32> {
    let mut most = 0;
    for v in values {
        let d = (0..=6u32).find(|&d| {
            let scaled = v * 10f64.powi(d as i32);
            (scaled - scaled.round()).abs() <= 1e-9 * scaled.abs().max(1.0)
        })?;
        most = most.max(d);
    }
    Some(most)
}

const DATETIME_UNITS: [i64; 6] = [
    86_400_000_000,
    3_600_000_000,
    60_000_000,
    1_000_000,
    1_000,
    1,
];

fn datetime_unit(values: impl Iterator<Item = i64> + Clone) -> i64 {
    DATETIME_UNITS
        .into_iter()
        .find(|&u| values.clone().all(|v| v % u == 0))
        .unwrap_or(1)
}

/// A scalar bound on a column's number line: numbers as they are; for a datetime column,
/// a date or date-time string (in the column's own format, or ISO 8601).
pub fn scalar(value: &Scalar, column: &str, meta: &ColumnMetadata) -> Result<f64, String> {
    match (value, meta.sdtype) {
        (Scalar::Number(n), SdType::Numerical) if n.is_finite() => Ok(*n),
        (Scalar::Text(t), SdType::Numerical) => t
            .trim()
            .parse::<f64>()
            .ok()
            .filter(|n| n.is_finite())
            .ok_or_else(|| format!("{t:?} is not a number (column {column:?})")),
        (Scalar::Text(t), SdType::Datetime) => datetime(t, meta.datetime_format.as_deref())
            .ok_or_else(|| format!("{t:?} is not a date or date-time (column {column:?})")),
        (Scalar::Number(_), SdType::Datetime) => Err(format!(
            "column {column:?} is a datetime: give the bound as a date string"
        )),
        (v, t) => Err(format!("{v:?} is not a bound for {t:?} column {column:?}")),
    }
}

fn datetime(text: &str, format: Option<&str>) -> Option<f64> {
    use chrono::{NaiveDate, NaiveDateTime};
    let text = text.trim();
    let formats =
        format
            .into_iter()
            .chain(["%Y-%m-%dT%H:%M:%S%.f", "%Y-%m-%d %H:%M:%S%.f", "%Y-%m-%d"]);
    for f in formats {
        if let Ok(t) = NaiveDateTime::parse_from_str(text, f) {
            return Some(t.and_utc().timestamp_micros() as f64);
        }
        if let Ok(d) = NaiveDate::parse_from_str(text, f) {
            return Some(d.and_hms_opt(0, 0, 0)?.and_utc().timestamp_micros() as f64);
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kinds_learn_decimals_and_datetime_units() {
        let k = Kind::of(&ColumnData::Float(vec![Some(1.25), Some(3.5), None])).unwrap();
        assert_eq!(k, Kind::Float { decimals: Some(2) });
        assert_eq!(k.snap(1.23456), 1.23);
        let k = Kind::of(&ColumnData::Float(vec![Some(std::f64::consts::PI)])).unwrap();
        assert_eq!(k, Kind::Float { decimals: None });
        let hour = 3_600_000_000;
        let k = Kind::of(&ColumnData::Datetime(vec![Some(hour * 5), Some(hour * 30)])).unwrap();
        assert_eq!(k, Kind::Datetime { unit: hour });
        assert_eq!(k.snap((hour * 2) as f64 + 1e9), (hour * 2) as f64);
    }

    #[test]
    fn datetime_bounds_read_the_columns_format_and_iso() {
        let mut meta = ColumnMetadata::new(SdType::Datetime);
        meta.datetime_format = Some("%d/%m/%Y".into());
        let day = scalar(&Scalar::Text("02/01/1970".into()), "d", &meta).unwrap();
        assert_eq!(day, 86_400_000_000.0);
        let iso = scalar(&Scalar::Text("1970-01-01T01:00:00".into()), "d", &meta).unwrap();
        assert_eq!(iso, 3_600_000_000.0);
        assert!(scalar(&Scalar::Number(5.0), "d", &meta).is_err());
        let num = ColumnMetadata::new(SdType::Numerical);
        assert_eq!(
            scalar(&Scalar::Text(" 2.5".into()), "x", &num).unwrap(),
            2.5
        );
        assert!(scalar(&Scalar::Text("abc".into()), "x", &num).is_err());
    }
}
