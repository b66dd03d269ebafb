//! Multiset difference of two result sets, in time linear in their size.

use super::stored::EncodedRows;
use crate::item::Row;
use oxquery_table::Value;
use std::collections::HashMap;
use std::hash::{Hash, Hasher};

/// Rows that appeared and rows that disappeared between two runs.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Diff {
    /// Rows of the current run without an equal leftover in the previous one, in current
    /// order.
    pub added: Vec<Row>,
    /// Previous rows left unmatched, in previous order.
    pub removed: Vec<Row>,
}

impl Diff {
    pub fn is_empty(&self) -> bool {
        self.added.is_empty() && self.removed.is_empty()
    }
}

/// A row compared by every column name and typed value. `Value`'s own equality is not an
/// equivalence (NaN), so reals compare by bits, with -0.0 folded into 0.0 as SQLite does.
struct Key<'a>(&'a Row);

fn real_bits(r: f64) -> u64 {
    if r == 0.0 { 0 } else { r.to_bits() }
}

fn same_value(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Real(x), Value::Real(y)) => real_bits(*x) == real_bits(*y),
        _ => a == b,
    }
}

impl Hash for Key<'_> {
    fn hash<H: Hasher>(&self, h: &mut H) {
        h.write_usize(self.0.len());
        for (name, value) in self.0 {
            name.hash(h);
            // The variant tag keeps Integer(1) and Text("1") apart: types are kept.
            match value {
                Value::Null => h.write_u8(0),
                Value::Integer(i) => {
                    h.write_u8(1);
                    h.write_i64(*i);
                }
                Value::Real(r) => {
                    h.write_u8(2);
                    h.write_u64(real_bits(*r));
                }
                Value::Text(s) => {
                    h.write_u8(3);
                    s.hash(h);
                }
                Value::Blob(b) => {
                    h.write_u8(4);
                    b.hash(h);
                }
            }
        }
    }
}

impl PartialEq for Key<'_> {
    fn eq(&self, other: &Self) -> bool {
        self.0.len() == other.0.len()
            && self
                .0
                .iter()
                .zip(other.0)
                .all(|((an, av), (bn, bv))| an == bn && same_value(av, bv))
    }
}

impl Eq for Key<'_> {}

/// The multiset difference `current − previous` (added) and `previous − current`
/// (removed). Duplicates count: two equal rows before and three now add one.
pub fn diff(previous: &[Row], current: &[Row]) -> Diff {
    let mut left: HashMap<Key<'_>, usize> = HashMap::with_capacity(previous.len());
    for row in previous {
        *left.entry(Key(row)).or_default() += 1;
    }
    let mut out = Diff::default();
    for row in current {
        match left.get_mut(&Key(row)) {
            Some(n) if *n > 0 => *n -= 1,
            _ => out.added.push(row.clone()),
        }
    }
    // Usually almost everything matched; skip the second pass when nothing is left over.
    if out.added.len() + previous.len() == current.len() {
        return out;
    }
    for row in previous {
        if let Some(n) = left.get_mut(&Key(row))
            && *n > 0
        {
            *n -= 1;
            out.removed.push(row.clone());
        }
    }
    out
}

/// Rows that appeared and disappeared, as indices: `added` into the current rows (in
/// their order), `removed` into the previous ones (in theirs).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct EncodedDiff {
    pub added: Vec<usize>,
    pub removed: Vec<usize>,
}

/// [`diff`] over stored encodings, which are canonical: equal rows have equal bytes. A
/// previous row stored by an older version in another spelling is matched by decoding it
/// again, which costs only for rows that did not match as bytes.
pub fn diff_encoded(previous: &EncodedRows, current: &EncodedRows) -> EncodedDiff {
    let mut left: HashMap<&str, usize> = HashMap::with_capacity(previous.len());
    for i in 0..previous.len() {
        *left.entry(previous.row(i)).or_default() += 1;
    }
    let mut out = EncodedDiff::default();
    for i in 0..current.len() {
        match left.get_mut(current.row(i)) {
            Some(n) if *n > 0 => *n -= 1,
            _ => out.added.push(i),
        }
    }
    if out.added.len() + previous.len() == current.len() {
        return out;
    }
    for i in 0..previous.len() {
        if let Some(n) = left.get_mut(previous.row(i))
            && *n > 0
        {
            *n -= 1;
            out.removed.push(i);
        }
    }
    drop(left);
    if out.added.is_empty() || out.removed.is_empty() {
        return out;
    }
    // Re-spell the removed rows canonically; one that now equals an added row is neither.
    let mut added: HashMap<&str, Vec<usize>> = HashMap::new();
    for &i in out.added.iter().rev() {
        added.entry(current.row(i)).or_default().push(i);
    }
    let mut matched = std::collections::HashSet::new();
    out.removed.retain(|&i| {
        let Some(row) = previous.decode_row(i) else {
            return true;
        };
        let respelt = EncodedRows::from_rows(std::slice::from_ref(&row));
        if respelt.row(0) == previous.row(i) {
            return true;
        }
        match added.get_mut(respelt.row(0)).and_then(Vec::pop) {
            Some(j) => {
                matched.insert(j);
                false
            }
            None => true,
        }
    });
    out.added.retain(|i| !matched.contains(i));
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(pairs: &[(&str, Value)]) -> Row {
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), v.clone()))
            .collect()
    }

    #[test]
    fn duplicates_count_and_order_is_kept() {
        let a = row(&[("x", Value::Integer(1))]);
        let b = row(&[("x", Value::Integer(2))]);
        let c = row(&[("x", Value::Integer(3))]);
        let d = diff(
            &[a.clone(), a.clone(), b.clone()],
            &[c.clone(), a.clone(), c.clone()],
        );
        assert_eq!(d.added, [c.clone(), c]);
        assert_eq!(d.removed, [a, b]);
    }

    #[test]
    fn typed_values_and_column_names_must_match() {
        let int = row(&[("x", Value::Integer(1))]);
        let text = row(&[("x", Value::Text("1".into()))]);
        let real = row(&[("x", Value::Real(1.0))]);
        let other_name = row(&[("y", Value::Integer(1))]);
        let d = diff(
            std::slice::from_ref(&int),
            &[text.clone(), real.clone(), other_name.clone()],
        );
        assert_eq!(d.added, [text, real, other_name]);
        assert_eq!(d.removed, [int]);
    }

    #[test]
    fn unchanged_sets_give_nothing_whatever_the_order() {
        let rows: Vec<Row> = (0..50)
            .map(|i| row(&[("i", Value::Integer(i % 7)), ("r", Value::Real(0.5))]))
            .collect();
        let mut shuffled = rows.clone();
        shuffled.reverse();
        assert!(diff(&rows, &shuffled).is_empty());
        let nan = row(&[("r", Value::Real(f64::NAN)), ("z", Value::Real(-0.0))]);
        let nan2 = row(&[("r", Value::Real(f64::NAN)), ("z", Value::Real(0.0))]);
        assert!(diff(&[nan], &[nan2]).is_empty());
    }

    /// The encoded diff agrees with the typed one on every case above.
    #[test]
    fn encoded_diff_matches_the_typed_diff() {
        let r = |i: i64, t: &str| {
            row(&[
                ("i", Value::Integer(i)),
                ("t", Value::Text(t.into())),
                ("z", Value::Real(if i % 2 == 0 { -0.0 } else { 0.5 })),
            ])
        };
        let previous = vec![r(1, "a"), r(1, "a"), r(2, "b\"c"), r(3, "c"), r(4, "é")];
        let current = vec![r(5, "e"), r(1, "a"), r(4, "é"), r(5, "e"), r(3, "c")];
        let typed = diff(&previous, &current);
        let (p, c) = (
            EncodedRows::from_rows(&previous),
            EncodedRows::from_rows(&current),
        );
        let d = diff_encoded(&p, &c);
        let added: Vec<Row> = d.added.iter().map(|&i| c.decode_row(i).unwrap()).collect();
        let removed: Vec<Row> = d
            .removed
            .iter()
            .map(|&i| p.decode_row(i).unwrap())
            .collect();
        assert_eq!((added, removed), (typed.added, typed.removed));
        assert!(diff_encoded(&c, &c).added.is_empty());
    }

    #[test]
    fn a_row_stored_in_another_spelling_is_still_the_same_row() {
        // Whitespace and -0.0, as another writer might have stored them.
        let stored = br#"[{"i": 1, "r": -0.0}, {"i":2,"r":0.5}]"#.to_vec();
        let p = EncodedRows::parse(stored).unwrap();
        let now = [
            row(&[("i", Value::Integer(1)), ("r", Value::Real(0.0))]),
            row(&[("i", Value::Integer(3)), ("r", Value::Real(0.5))]),
        ];
        let c = EncodedRows::from_rows(&now);
        let d = diff_encoded(&p, &c);
        assert_eq!((d.added, d.removed), (vec![1], vec![1]));
    }

    #[test]
    fn extra_column_is_a_different_row() {
        let a = row(&[("x", Value::Integer(1))]);
        let b = row(&[("x", Value::Integer(1)), ("y", Value::Null)]);
        let d = diff(std::slice::from_ref(&a), std::slice::from_ref(&b));
        assert_eq!((d.added, d.removed), (vec![b], vec![a]));
    }
}
