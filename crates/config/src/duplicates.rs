//! Keys given twice in one JSON object. serde_json keeps the last value without a word,
//! so a config with `"schedule"` twice runs only the second schedule and one with a
//! query name twice runs only the second query. serde_json tells a map visitor neither
//! that a key repeats nor where it is, so this is a light scan of the text serde_json
//! has already accepted (valid JSON, depth bounded): it follows objects and arrays,
//! reads each key and remembers the line it was on.

use std::collections::HashMap;

/// A key that appears again in the same object.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct DuplicateKey {
    /// Key path of the repeated key (`schedule.q1`, `packs.p.queries.q`, `a[2].b`).
    pub path: String,
    /// Line (from 1) of the previous occurrence.
    pub earlier_line: usize,
    /// Line of this occurrence: its value is the one serde_json keeps.
    pub line: usize,
}

enum Frame {
    Object {
        path: String,
        /// Key → line of its last occurrence.
        keys: HashMap<String, usize>,
        /// The key whose value comes next (or came last).
        current: String,
        expecting_key: bool,
    },
    Array {
        path: String,
        index: usize,
    },
}

impl Frame {
    /// The path of the value this container holds now.
    fn child_path(&self) -> String {
        match self {
            Frame::Object { path, current, .. } if path.is_empty() => current.clone(),
            Frame::Object { path, current, .. } => format!("{path}.{current}"),
            Frame::Array { path, index } => format!("{path}[{index}]"),
        }
    }
}

/// Every repeated key of `json`, in text order. `json` must be valid JSON (what serde_json
/// accepted); on anything else the result is incomplete but the scan still ends.
pub(crate) fn duplicate_keys(json: &str) -> Vec<DuplicateKey> {
    let bytes = json.as_bytes();
    let mut found = Vec::new();
    let mut stack: Vec<Frame> = Vec::new();
    let mut line = 1;
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'\n' => line += 1,
            b'{' | b'[' => {
                let path = stack.last().map(Frame::child_path).unwrap_or_default();
                stack.push(if bytes[i] == b'{' {
                    Frame::Object {
                        path,
                        keys: HashMap::new(),
                        current: String::new(),
                        expecting_key: true,
                    }
                } else {
                    Frame::Array { path, index: 0 }
                });
            }
            b'}' | b']' => {
                stack.pop();
            }
            b':' => {
                if let Some(Frame::Object { expecting_key, .. }) = stack.last_mut() {
                    *expecting_key = false;
                }
            }
            b',' => match stack.last_mut() {
                Some(Frame::Object { expecting_key, .. }) => *expecting_key = true,
                Some(Frame::Array { index, .. }) => *index += 1,
                None => {}
            },
            b'"' => {
                let start = i;
                i += 1;
                while i < bytes.len() && bytes[i] != b'"' {
                    // A backslash escapes the next byte (`\"`, `\\`, the first of `\uXXXX`).
                    i += if bytes[i] == b'\\' { 2 } else { 1 };
                }
                let end = (i + 1).min(bytes.len());
                if let Some(Frame::Object {
                    path,
                    keys,
                    current,
                    expecting_key: true,
                }) = stack.last_mut()
                {
                    // Decoded, so `"a"` and `"\u0061"` are the same key, as for serde_json.
                    let key: String = serde_json::from_str(&json[start..end])
                        .unwrap_or_else(|_| json[start..end].to_owned());
                    if let Some(earlier_line) = keys.insert(key.clone(), line) {
                        found.push(DuplicateKey {
                            path: if path.is_empty() {
                                key.clone()
                            } else {
                                format!("{path}.{key}")
                            },
                            earlier_line,
                            line,
                        });
                    }
                    *current = key;
                }
            }
            _ => {}
        }
        i += 1;
    }
    found
}
