//! The stored form of one event: a version byte, the event time, then each cell as a
//! tag and its bytes. Binary rather than osquery's JSON because event values are bytes
//! (paths, arguments) that JSON cannot carry unchanged, and because it is cheap to write
//! at tens of thousands of events a second.

use oxquery_table::Value;

const VERSION: u8 = 1;
const NULL: u8 = 0;
const INTEGER: u8 = 1;
const REAL: u8 = 2;
const TEXT: u8 = 3;
const BLOB: u8 = 4;

/// Encodes an event row.
pub fn encode(time: i64, values: &[Value]) -> Vec<u8> {
    let mut out = Vec::with_capacity(16 + values.len() * 8);
    out.push(VERSION);
    out.extend_from_slice(&time.to_le_bytes());
    out.extend_from_slice(&(values.len() as u32).to_le_bytes());
    for value in values {
        match value {
            Value::Null => out.push(NULL),
            Value::Integer(i) => {
                out.push(INTEGER);
                out.extend_from_slice(&i.to_le_bytes());
            }
            Value::Real(f) => {
                out.push(REAL);
                out.extend_from_slice(&f.to_le_bytes());
            }
            Value::Text(s) => bytes(&mut out, TEXT, s.as_bytes()),
            Value::Blob(b) => bytes(&mut out, BLOB, b),
        }
    }
    out
}

fn bytes(out: &mut Vec<u8>, tag: u8, data: &[u8]) {
    out.push(tag);
    out.extend_from_slice(&(data.len() as u32).to_le_bytes());
    out.extend_from_slice(data);
}

/// Decodes a row of `width` cells; `None` when the bytes are not one (a damaged store).
pub fn decode(data: &[u8], width: usize) -> Option<(i64, Vec<Value>)> {
    let mut input = Reader(data);
    if input.take(1)?[0] != VERSION {
        return None;
    }
    let time = i64::from_le_bytes(input.take(8)?.try_into().ok()?);
    let count = u32::from_le_bytes(input.take(4)?.try_into().ok()?) as usize;
    if count != width {
        return None;
    }
    let mut values = Vec::with_capacity(width);
    for _ in 0..count {
        let value = match input.take(1)?[0] {
            NULL => Value::Null,
            INTEGER => Value::Integer(i64::from_le_bytes(input.take(8)?.try_into().ok()?)),
            REAL => Value::Real(f64::from_le_bytes(input.take(8)?.try_into().ok()?)),
            tag @ (TEXT | BLOB) => {
                let len = u32::from_le_bytes(input.take(4)?.try_into().ok()?) as usize;
                let data = input.take(len)?.to_vec();
                if tag == TEXT {
                    Value::Text(String::from_utf8(data).ok()?)
                } else {
                    Value::Blob(data)
                }
            }
            _ => return None,
        };
        values.push(value);
    }
    input.0.is_empty().then_some((time, values))
}

struct Reader<'a>(&'a [u8]);

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Option<&'a [u8]> {
        if self.0.len() < n {
            return None;
        }
        let (head, rest) = self.0.split_at(n);
        self.0 = rest;
        Some(head)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_kind_of_value_round_trips_and_damage_is_refused() {
        let values = vec![
            Value::Null,
            Value::Integer(-7),
            Value::Real(1.5),
            Value::Text("é/path".into()),
            Value::Blob(b"a\xffb".to_vec()),
        ];
        let data = encode(1_700_000_000, &values);
        assert_eq!(decode(&data, 5), Some((1_700_000_000, values)));
        assert_eq!(decode(&data, 4), None, "another width");
        for cut in 0..data.len() {
            assert_eq!(decode(&data[..cut], 5), None, "truncated at {cut}");
        }
        let mut longer = data.clone();
        longer.push(0);
        assert_eq!(decode(&longer, 5), None, "trailing bytes");
        let mut huge = encode(0, &[Value::Text("x".into())]);
        huge[14..18].copy_from_slice(&u32::MAX.to_le_bytes());
        assert_eq!(decode(&huge, 1), None, "a length past the end");
    }
}
