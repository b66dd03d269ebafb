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

fn push_value(out: &mut String, value: &Value) {
    use std::fmt::Write as _;
    match value {
        Value::Null => out.push_str("null"),
        Value::Integer(i) => {
            let _ = write!(out, "{i}");
        }
        Value::Text(s) => push_string(out, s),
        // Rare: reals and BLOBs (which escaping already turned into text) go the slow way.
        other => out.push_str(&to_json(other).to_string()),
    }
}

/// A JSON string literal, as osquery's writer escapes it (the store's bytes are what
/// `--database_dump` prints).
fn push_string(out: &mut String, s: &str) {
    oxquery_format::json::push_str(out, s);
}

/// Serializes rows for the store.
pub fn encode(rows: &[Row]) -> String {
    let mut out = String::with_capacity(rows.len() * 128 + 2);
    out.push('[');
    for (i, row) in rows.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        out.push('{');
        for (j, (name, value)) in row.iter().enumerate() {
            if j > 0 {
                out.push(',');
            }
            push_string(&mut out, name);
            out.push(':');
            push_value(&mut out, value);
        }
        out.push('}');
    }
    out.push(']');
    out
}

/// Parses stored rows; `None` when the bytes are not a stored result set.
pub fn decode(bytes: &[u8]) -> Option<Vec<Row>> {
    // Straight into sorted maps: no intermediate JSON object per row.
    let items: Vec<std::collections::BTreeMap<String, Json>> =
        serde_json::from_slice(bytes).ok()?;
    items
        .into_iter()
        .map(|m| {
            m.into_iter()
                .map(|(k, v)| Some((k, from_json(v)?)))
                .collect::<Option<Row>>()
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
        // The hand-written encoder produces what a JSON parser reads back unchanged.
        let tricky: Row = [("q\"k".to_owned(), Value::Text("a\\b\"c\u{1f}é".into()))]
            .into_iter()
            .collect();
        let text = encode(&[tricky.clone(), tricky.clone()]);
        // Escaped as osquery's writer does (upper-case hex).
        assert!(text.contains(r#"{"q\"k":"a\\b\"c\u001Fé"}"#), "{text}");
        assert_eq!(decode(text.as_bytes()).unwrap(), [tricky.clone(), tricky]);
        assert_eq!(decode(b"[]").unwrap(), Vec::<Row>::new());
        assert!(decode(b"{}").is_none());
        assert!(decode(b"[1]").is_none());
    }
}
