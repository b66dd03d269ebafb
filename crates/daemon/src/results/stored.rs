//! A result set as stored under `queries/<name>`: a JSON array of objects whose values
//! keep their types (integers and reals as JSON numbers, text as strings, NULL as null),
//! so a reloaded row compares equal to the row that was stored.

use crate::item::Row;
use oxquery_table::Value;
use serde_json::{Map, Number, Value as Json};

/// Non-finite reals have no JSON number; this one-key object stands for them, so a
/// column that yields `inf` does not change type (and "change") on every run.
const NON_FINITE_KEY: &str = "$real";

fn to_json(value: &Value) -> Json {
    match value {
        Value::Null => Json::Null,
        Value::Integer(i) => Json::Number((*i).into()),
        Value::Real(r) => match Number::from_f64(*r) {
            Some(n) => Json::Number(n),
            None => {
                let mut m = Map::new();
                m.insert(NON_FINITE_KEY.into(), Json::String(r.to_string()));
                Json::Object(m)
            }
        },
        Value::Text(s) => Json::String(s.clone()),
        // Differential rows are escaped before they are stored, so BLOBs do not reach here;
        // should one, it is kept as escaped text rather than failing the query.
        Value::Blob(b) => Json::String(super::escape::escape_bytes(b)),
    }
}

fn from_json(json: Json) -> Option<Value> {
    Some(match json {
        Json::Null => Value::Null,
        Json::Number(n) => match n.as_i64() {
            Some(i) => Value::Integer(i),
            None => Value::Real(n.as_f64()?),
        },
        Json::String(s) => Value::Text(s),
        Json::Bool(b) => Value::Integer(i64::from(b)),
        Json::Object(m) => {
            let text = m.get(NON_FINITE_KEY)?.as_str()?;
            Value::Real(text.parse().ok()?)
        }
        Json::Array(_) => return None,
    })
}

/// Serializes rows for the store.
pub fn encode(rows: &[Row]) -> String {
    let array: Vec<Json> = rows
        .iter()
        .map(|row| {
            Json::Object(
                row.iter()
                    .map(|(name, value)| (name.clone(), to_json(value)))
                    .collect(),
            )
        })
        .collect();
    Json::Array(array).to_string()
}

/// Parses stored rows; `None` when the bytes are not a stored result set.
pub fn decode(bytes: &[u8]) -> Option<Vec<Row>> {
    let Json::Array(items) = serde_json::from_slice(bytes).ok()? else {
        return None;
    };
    items
        .into_iter()
        .map(|item| match item {
            Json::Object(m) => m
                .into_iter()
                .map(|(k, v)| Some((k, from_json(v)?)))
                .collect::<Option<Row>>(),
            _ => None,
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn typed_values_round_trip() {
        let row: Row = [
            ("i", Value::Integer(-42)),
            ("big", Value::Integer(i64::MAX)),
            ("r", Value::Real(1.0)),
            ("f", Value::Real(0.1)),
            ("inf", Value::Real(f64::INFINITY)),
            ("t", Value::Text("1".into())),
            ("n", Value::Null),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v))
        .collect();
        let text = encode(std::slice::from_ref(&row));
        assert!(text.contains(r#""i":-42"#), "{text}");
        assert!(text.contains(r#""r":1.0"#), "{text}");
        assert!(text.contains(r#""t":"1""#), "{text}");
        assert_eq!(decode(text.as_bytes()).unwrap(), [row]);
        assert_eq!(decode(b"[]").unwrap(), Vec::<Row>::new());
        assert!(decode(b"{}").is_none());
        assert!(decode(b"[1]").is_none());
    }
}
