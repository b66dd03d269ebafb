//! A result set as stored under `queries/<name>`: a JSON array of objects whose values
//! keep their types (integers and reals as JSON numbers, text as strings, NULL as null),
//! so a reloaded row compares equal to the row that was stored.
//!
//! The encoding is canonical (keys in name order, one spelling per value), so two rows
//! are equal exactly when their encodings are: [`EncodedRows`] keeps a result set as its
//! stored text with each row's place in it, and the diff compares rows as bytes without
//! building a map per row.

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
        // -0.0 is stored as 0.0: the two compare equal (as in SQLite), so they must be
        // spelt alike.
        Value::Real(r) if *r == 0.0 => Json::Number(Number::from_f64(0.0).expect("finite")),
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
    EncodedRows::from_rows(rows).into_text()
}

fn push_row(out: &mut String, row: &Row) {
    out.push('{');
    for (j, (name, value)) in row.iter().enumerate() {
        if j > 0 {
            out.push(',');
        }
        push_string(out, name);
        out.push(':');
        push_value(out, value);
    }
    out.push('}');
}

/// A result set as osquery stored it under `queries/<name>` (a JSON array of objects;
/// integers and reals as JSON numbers in current osquery, text as strings), in this store's
/// canonical form, so the first diff after a switch from osquery compares equal rows as
/// equal. Values are escaped as a run's rows are (osquery stored them escaped alike, so
/// this changes nothing there). `None` when `bytes` is not such an array.
pub fn from_osquery(bytes: &[u8]) -> Option<EncodedRows> {
    let Json::Array(items) = serde_json::from_slice(bytes).ok()? else {
        return None;
    };
    let mut rows = Vec::with_capacity(items.len());
    for item in items {
        let Json::Object(map) = item else {
            return None;
        };
        let mut row = Row::new();
        for (name, value) in map {
            row.insert(name, from_json(value)?);
        }
        super::escape::escape_row(&mut row);
        rows.push(row);
    }
    Some(EncodedRows::from_rows(&rows))
}

/// A result set in its stored form: the text of `queries/<name>` (`[row,row,...]`) and
/// where each row's object lies in it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EncodedRows {
    text: String,
    spans: Vec<(usize, usize)>,
}

impl Default for EncodedRows {
    fn default() -> Self {
        EncodedRows {
            text: "[]".to_owned(),
            spans: Vec::new(),
        }
    }
}

impl EncodedRows {
    /// Encodes `rows` (already escaped, for differential results).
    pub fn from_rows(rows: &[Row]) -> EncodedRows {
        let mut text = String::with_capacity(rows.len() * 64 + 2);
        let mut spans = Vec::with_capacity(rows.len());
        text.push('[');
        for (i, row) in rows.iter().enumerate() {
            if i > 0 {
                text.push(',');
            }
            let start = text.len();
            push_row(&mut text, row);
            spans.push((start, text.len()));
        }
        text.push(']');
        EncodedRows { text, spans }
    }

    /// Splits a stored value into its rows; `None` when it is not an array of objects.
    /// Values are checked only as far as finding where each object ends; a row that does
    /// not decode is caught when it is decoded (for logging it as removed).
    pub fn parse(bytes: Vec<u8>) -> Option<EncodedRows> {
        let text = String::from_utf8(bytes).ok()?;
        let b = text.as_bytes();
        let mut spans = Vec::new();
        let skip_ws = |mut i: usize| {
            while i < b.len() && b[i].is_ascii_whitespace() {
                i += 1;
            }
            i
        };
        let mut i = skip_ws(0);
        if b.get(i) != Some(&b'[') {
            return None;
        }
        i = skip_ws(i + 1);
        if b.get(i) == Some(&b']') {
            return (skip_ws(i + 1) == b.len()).then_some(EncodedRows { text, spans });
        }
        loop {
            if b.get(i) != Some(&b'{') {
                return None;
            }
            let end = object_end(b, i)?;
            spans.push((i, end));
            i = skip_ws(end);
            match b.get(i) {
                Some(b',') => i = skip_ws(i + 1),
                Some(b']') if skip_ws(i + 1) == b.len() => break,
                _ => return None,
            }
        }
        Some(EncodedRows { text, spans })
    }

    pub fn len(&self) -> usize {
        self.spans.len()
    }

    pub fn is_empty(&self) -> bool {
        self.spans.is_empty()
    }

    /// Row `i`'s stored object.
    pub fn row(&self, i: usize) -> &str {
        let (start, end) = self.spans[i];
        &self.text[start..end]
    }

    /// Row `i` as typed values; `None` if its text is not a stored row.
    pub fn decode_row(&self, i: usize) -> Option<Row> {
        decode_object(self.row(i).as_bytes())
    }

    /// The stored value.
    pub fn text(&self) -> &str {
        &self.text
    }

    pub fn into_text(self) -> String {
        self.text
    }
}

/// The index just past the JSON object starting at `b[start]` (`{`).
fn object_end(b: &[u8], start: usize) -> Option<usize> {
    let mut depth = 0usize;
    let mut i = start;
    while i < b.len() {
        match b[i] {
            b'"' => {
                i += 1;
                while i < b.len() && b[i] != b'"' {
                    i += if b[i] == b'\\' { 2 } else { 1 };
                }
            }
            b'{' | b'[' => depth += 1,
            b'}' | b']' => {
                depth -= 1;
                if depth == 0 {
                    return Some(i + 1);
                }
            }
            _ => {}
        }
        i += 1;
    }
    None
}

/// Parses one stored row object. A hand-written reader: rows are decoded a million at a
/// time to log a large result, and most of their strings need no unescaping.
fn decode_object(bytes: &[u8]) -> Option<Row> {
    let text = std::str::from_utf8(bytes).ok()?;
    let mut r = Reader { text, at: 0 };
    let mut row = Row::new();
    r.expect(b'{')?;
    if r.eat(b'}') {
        return r.end().then_some(row);
    }
    loop {
        let key = r.string()?;
        r.expect(b':')?;
        let value = r.value()?;
        row.insert(key, value);
        if r.eat(b',') {
            continue;
        }
        r.expect(b'}')?;
        return r.end().then_some(row);
    }
}

struct Reader<'a> {
    text: &'a str,
    at: usize,
}

impl Reader<'_> {
    fn skip_ws(&mut self) {
        let b = self.text.as_bytes();
        while self.at < b.len() && b[self.at].is_ascii_whitespace() {
            self.at += 1;
        }
    }

    fn peek(&mut self) -> Option<u8> {
        self.skip_ws();
        self.text.as_bytes().get(self.at).copied()
    }

    fn eat(&mut self, c: u8) -> bool {
        let found = self.peek() == Some(c);
        if found {
            self.at += 1;
        }
        found
    }

    fn expect(&mut self, c: u8) -> Option<()> {
        self.eat(c).then_some(())
    }

    fn end(&mut self) -> bool {
        self.skip_ws();
        self.at == self.text.len()
    }

    /// A JSON string; only one with escapes goes through the full JSON parser.
    fn string(&mut self) -> Option<String> {
        if self.peek() != Some(b'"') {
            return None;
        }
        let b = self.text.as_bytes();
        let start = self.at;
        let mut i = start + 1;
        let mut escaped = false;
        while i < b.len() && b[i] != b'"' {
            if b[i] == b'\\' {
                escaped = true;
                i += 1;
            }
            i += 1;
        }
        if i >= b.len() {
            return None;
        }
        self.at = i + 1;
        let raw = &self.text[start..=i];
        if escaped {
            serde_json::from_str(raw).ok()
        } else {
            Some(raw[1..raw.len() - 1].to_owned())
        }
    }

    fn value(&mut self) -> Option<Value> {
        let b = self.text.as_bytes();
        match self.peek()? {
            b'"' => self.string().map(Value::Text),
            b'{' => {
                // A non-finite real: `{"$real": "inf"}`.
                let end = object_end(b, self.at)?;
                let json: Json = serde_json::from_str(&self.text[self.at..end]).ok()?;
                self.at = end;
                from_json(json)
            }
            c @ (b'n' | b't' | b'f') => {
                let (word, value) = match c {
                    b'n' => ("null", Value::Null),
                    b't' => ("true", Value::Integer(1)),
                    _ => ("false", Value::Integer(0)),
                };
                self.text[self.at..].starts_with(word).then(|| {
                    self.at += word.len();
                    value
                })
            }
            b'-' | b'0'..=b'9' => {
                let start = self.at;
                while self.at < b.len()
                    && matches!(b[self.at], b'-' | b'+' | b'.' | b'e' | b'E' | b'0'..=b'9')
                {
                    self.at += 1;
                }
                let n = &self.text[start..self.at];
                // As serde_json's numbers: an integer that fits i64 is an integer,
                // anything else a real.
                match n.parse::<i64>() {
                    Ok(i) if !n.contains(['.', 'e', 'E']) => Some(Value::Integer(i)),
                    _ => n.parse::<f64>().ok().map(Value::Real),
                }
            }
            _ => None,
        }
    }
}

/// Builds the [`EncodedRows`] of a differential result as the query streams it, before
/// the column names are known: each value escaped and encoded once, in column order;
/// [`RowsBuilder::finish`] then lays the rows out by column name.
#[derive(Debug, Default)]
pub struct RowsBuilder {
    values: String,
    /// Where each value ends in `values`, row after row.
    ends: Vec<usize>,
}

impl RowsBuilder {
    pub fn new() -> RowsBuilder {
        RowsBuilder::default()
    }

    /// Adds one result row (escaped here, as differential values are).
    pub fn push(&mut self, values: &[Value]) {
        for value in values {
            match value {
                Value::Text(s) if !s.bytes().any(|b| b < 0x20) => push_string(&mut self.values, s),
                Value::Text(_) | Value::Blob(_) => {
                    push_value(
                        &mut self.values,
                        &super::escape::escape_value(value.clone()),
                    );
                }
                other => push_value(&mut self.values, other),
            }
            self.ends.push(self.values.len());
        }
    }

    /// The rows, given the query's column names. As in a [`Row`], of two columns with
    /// the same name the later one is kept.
    pub fn finish(self, columns: &[String]) -> EncodedRows {
        let width = columns.len();
        let mut order: Vec<usize> = Vec::with_capacity(width);
        for i in (0..width).rev() {
            if !order.iter().any(|&j| columns[j] == columns[i]) {
                order.push(i);
            }
        }
        order.sort_by(|&a, &b| columns[a].cmp(&columns[b]));
        let keys: Vec<String> = order
            .iter()
            .map(|&i| {
                let mut k = String::new();
                push_string(&mut k, &columns[i]);
                k.push(':');
                k
            })
            .collect();
        let rows = self.ends.len().checked_div(width).unwrap_or(0);
        let mut text = String::with_capacity(
            self.values.len() + rows * (keys.iter().map(String::len).sum::<usize>() + 4) + 2,
        );
        let mut spans = Vec::with_capacity(rows);
        text.push('[');
        for r in 0..rows {
            if r > 0 {
                text.push(',');
            }
            let start = text.len();
            text.push('{');
            for (n, (&i, key)) in order.iter().zip(&keys).enumerate() {
                if n > 0 {
                    text.push(',');
                }
                text.push_str(key);
                let at = r * width + i;
                let from = if at == 0 { 0 } else { self.ends[at - 1] };
                text.push_str(&self.values[from..self.ends[at]]);
            }
            text.push('}');
            spans.push((start, text.len()));
        }
        text.push(']');
        EncodedRows { text, spans }
    }
}

/// Parses stored rows; `None` when the bytes are not a stored result set.
pub fn decode(bytes: &[u8]) -> Option<Vec<Row>> {
    let rows = EncodedRows::parse(bytes.to_vec())?;
    (0..rows.len()).map(|i| rows.decode_row(i)).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Rows built as a query streams them equal rows built as maps and then escaped
    /// and encoded (what the daemon did before).
    #[test]
    fn streamed_rows_encode_like_rows_built_as_maps() {
        let columns: Vec<String> = ["z", "a", "dup", "m", "dup"].map(String::from).into();
        let results = [
            vec![
                Value::Integer(1),
                Value::Text("tab\there".into()),
                Value::Integer(7),
                Value::Blob(vec![b'o', 0xff]),
                Value::Real(-0.0),
            ],
            vec![
                Value::Null,
                Value::Real(f64::NAN),
                Value::Text("first".into()),
                Value::Real(2.5),
                Value::Text("last \"q\"".into()),
            ],
        ];
        let mut builder = RowsBuilder::new();
        for values in &results {
            builder.push(values);
        }
        let streamed = builder.finish(&columns);
        let maps: Vec<Row> = results
            .iter()
            .map(|values| {
                let mut row: Row = columns
                    .iter()
                    .cloned()
                    .zip(values.iter().cloned())
                    .collect();
                super::super::escape::escape_row(&mut row);
                row
            })
            .collect();
        assert_eq!(streamed, EncodedRows::from_rows(&maps));
        assert_eq!(streamed.len(), 2);
        assert_eq!(
            streamed.row(0),
            r#"{"a":"tab\\x09here","dup":0.0,"m":"o\\xFF","z":1}"#
        );
        assert_eq!(RowsBuilder::new().finish(&columns).text(), "[]");
    }

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
        // The hand-written reader against serde_json's, on what another writer may store.
        let odd = br#"[ {"a" : 1.5e3, "b":null, "c":true, "d":"x\u00e9\n", "e":-7,
            "f":{"$real":"-inf"}, "g":18446744073709551615, "h":""} ]"#;
        let items: Vec<std::collections::BTreeMap<String, Json>> =
            serde_json::from_slice(odd).unwrap();
        let by_serde: Vec<Row> = items
            .into_iter()
            .map(|m| {
                m.into_iter()
                    .map(|(k, v)| (k, from_json(v).unwrap()))
                    .collect()
            })
            .collect();
        assert_eq!(decode(odd).unwrap(), by_serde);
        assert!(decode(br#"[{"a":[1]}]"#).is_none());
        assert!(decode(br#"[{"a":1,}]"#).is_none());
        assert!(decode(b"{}").is_none());
        assert!(decode(b"[1]").is_none());
    }
}
