//! JSON ⇄ DynamoDB attribute values. Items are JSON in the port, so only the JSON-shaped
//! types are written (S, N, BOOL, NULL, L, M); string and number sets, which this platform
//! never writes, are read back as JSON arrays, and binaries are refused.
//!
//! Hand-written rather than `serde_dynamo` (4.3, `aws-sdk-dynamodb+1`), which covers nested
//! maps, lists, null, sets and the item shape alike, because of numbers: it writes a float
//! with Rust's `Display` (`2.0` becomes `N("2")`, `1e300` a 301-digit string) and reads `N`
//! back as an integer whenever it parses as one, so a whole-valued float (`2.0`, a profile's
//! mean of a whole column) comes back as the integer `2`. The port's rule is that an item
//! comes back as written, and the embedded family (JSON text in SQLite) keeps `2.0`; here a
//! number is written in serde_json's own form (`2.0`, `1e300`), which DynamoDB stores as
//! sent, and read back by the same integer-then-float rule, so `2.0` stays a float.

use std::collections::HashMap;

use aws_sdk_dynamodb::types::AttributeValue;
use serde_json::{Map, Number, Value};
use synth_core::{Item, PortError};

pub(crate) type AttrMap = HashMap<String, AttributeValue>;

/// A JSON value as an attribute value.
pub(crate) fn to_attr(v: &Value) -> AttributeValue {
    match v {
        Value::Null => AttributeValue::Null(true),
        Value::Bool(b) => AttributeValue::Bool(*b),
        Value::Number(n) => AttributeValue::N(n.to_string()),
        Value::String(s) => AttributeValue::S(s.clone()),
        Value::Array(a) => AttributeValue::L(a.iter().map(to_attr).collect()),
        Value::Object(m) => AttributeValue::M(
            m.iter()
                .map(|(k, v)| (k.clone(), to_attr(v)))
                .collect::<HashMap<_, _>>(),
        ),
    }
}

/// An attribute value as JSON; numbers become integers when they are integers.
pub(crate) fn from_attr(a: &AttributeValue) -> Result<Value, PortError> {
    Ok(match a {
        AttributeValue::Null(_) => Value::Null,
        AttributeValue::Bool(b) => Value::Bool(*b),
        AttributeValue::N(n) => Value::Number(parse_number(n)?),
        AttributeValue::S(s) => Value::String(s.clone()),
        AttributeValue::L(l) => Value::Array(l.iter().map(from_attr).collect::<Result<_, _>>()?),
        AttributeValue::M(m) => Value::Object(from_attrs(m)?),
        AttributeValue::Ss(ss) => Value::Array(ss.iter().cloned().map(Value::String).collect()),
        AttributeValue::Ns(ns) => Value::Array(
            ns.iter()
                .map(|n| parse_number(n).map(Value::Number))
                .collect::<Result<_, _>>()?,
        ),
        other => {
            return Err(PortError::Backend(format!(
                "stored attribute of an unsupported type: {other:?}"
            )));
        }
    })
}

fn parse_number(n: &str) -> Result<Number, PortError> {
    if let Ok(i) = n.parse::<i64>() {
        return Ok(i.into());
    }
    if let Ok(u) = n.parse::<u64>() {
        return Ok(u.into());
    }
    n.parse::<f64>()
        .ok()
        .and_then(Number::from_f64)
        .ok_or_else(|| PortError::Backend(format!("stored number {n:?} does not fit JSON")))
}

/// A JSON object as an attribute map.
pub(crate) fn to_attrs(m: &Map<String, Value>) -> AttrMap {
    m.iter().map(|(k, v)| (k.clone(), to_attr(v))).collect()
}

/// An attribute map as a JSON object.
pub(crate) fn from_attrs(m: &AttrMap) -> Result<Map<String, Value>, PortError> {
    m.iter()
        .map(|(k, v)| Ok((k.clone(), from_attr(v)?)))
        .collect()
}

/// A stored item from its attribute map.
pub(crate) fn item_from(m: &AttrMap) -> Result<Item, PortError> {
    Ok(Item(from_attrs(m)?))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn round_trip(v: Value) {
        let back = from_attr(&to_attr(&v)).unwrap();
        assert_eq!(back, v, "round trip of {v}");
    }

    #[test]
    fn json_values_round_trip_exactly() {
        round_trip(json!(null));
        round_trip(json!(true));
        round_trip(json!(""));
        round_trip(json!("héllo"));
        round_trip(json!(0));
        round_trip(json!(-42));
        round_trip(json!(i64::MIN));
        round_trip(json!(u64::MAX));
        round_trip(json!(0.1));
        round_trip(json!(2.0));
        round_trip(json!(-1e20));
        round_trip(json!(-2.5e-7));
        round_trip(json!(1.5e300));
        round_trip(json!([1, "a", null, [true, {"x": 2.25}]]));
        round_trip(json!({"a": {"b": {"c": [1, 2, 3]}}, "e": {}, "l": []}));
    }

    #[test]
    fn numbers_are_integers_when_they_can_be() {
        assert_eq!(
            to_attr(&json!(7)),
            AttributeValue::N("7".into()),
            "integers are written without a fraction"
        );
        assert!(from_attr(&AttributeValue::N("7".into())).unwrap().is_i64());
        assert!(
            from_attr(&AttributeValue::N("7.5".into()))
                .unwrap()
                .is_f64()
        );
        assert!(from_attr(&AttributeValue::N("nope".into())).is_err());
        // A whole-valued float keeps its fraction, so it reads back as a float.
        assert_eq!(to_attr(&json!(2.0)), AttributeValue::N("2.0".into()));
        assert!(
            from_attr(&AttributeValue::N("2.0".into()))
                .unwrap()
                .is_f64()
        );
    }

    #[test]
    fn items_round_trip() {
        let Value::Object(m) =
            json!({"pk": "u#1", "sk": "p", "n": 3, "tags": ["a"], "m": {"k": null}})
        else {
            unreachable!()
        };
        assert_eq!(item_from(&to_attrs(&m)).unwrap(), Item(m));
    }
}
