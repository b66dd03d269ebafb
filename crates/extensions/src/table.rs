//! An extension's table: its schema from the routes it registered, its rows from a
//! `call("table", name, {"action": "generate", "context": ...})` on the extension's
//! socket, converted to typed cells as osquery's virtual table converts them.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use oxquery_table::{
    Attributes, Column, ColumnOptions, ColumnSet, ColumnType, Constraint, Host, Op, QueryContext,
    RowMut, Rows, Table, TableError, TableResult, TableSpec, Value,
};
use serde_json::{Value as Json, json};

use crate::client::RowEntries;
use crate::link::Link;
use crate::{PluginRequest, PluginResponse};

/// A table an extension provides.
pub struct ExtensionTable {
    spec: TableSpec,
    link: Arc<Link>,
}

impl std::fmt::Debug for ExtensionTable {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ExtensionTable")
            .field("name", &self.spec.name)
            .field("link", &self.link.path())
            .finish()
    }
}

/// osquery's type names; anything else is treated as TEXT.
fn column_type(name: &str) -> ColumnType {
    match name {
        "INTEGER" => ColumnType::Integer,
        "BIGINT" => ColumnType::BigInt,
        "UNSIGNED BIGINT" => ColumnType::UnsignedBigInt,
        "DOUBLE" => ColumnType::Double,
        "BLOB" => ColumnType::Blob,
        _ => ColumnType::Text,
    }
}

/// The option bits of a route's `op` (osquery's bits only; a bad number is DEFAULT).
fn column_options(op: Option<&String>) -> ColumnOptions {
    let bits = op.and_then(|o| o.trim().parse::<i64>().ok()).unwrap_or(0) as u32 & 0xfff;
    [
        ColumnOptions::INDEX,
        ColumnOptions::REQUIRED,
        ColumnOptions::ADDITIONAL,
        ColumnOptions::OPTIMIZED,
        ColumnOptions::HIDDEN,
        ColumnOptions::COLLATE_BINARY,
        ColumnOptions::COLLATE_NOCASE,
        ColumnOptions::COLLATE_RTRIM,
        ColumnOptions::COLLATE_VERSION,
        ColumnOptions::COLLATE_VERSION_ARCH,
        ColumnOptions::COLLATE_VERSION_DPKG,
        ColumnOptions::COLLATE_VERSION_RHEL,
    ]
    .into_iter()
    .filter(|o| bits & o.bits() != 0)
    .fold(ColumnOptions::empty(), ColumnOptions::with)
}

fn attributes(bits: Option<&String>) -> Attributes {
    let bits = bits.and_then(|b| b.trim().parse::<i64>().ok()).unwrap_or(0) as u32;
    [
        Attributes::UTILITY,
        Attributes::CACHEABLE,
        Attributes::EVENT_BASED,
        Attributes::USER_BASED,
        Attributes::KERNEL_REQUIRED,
    ]
    .into_iter()
    .filter(|a| bits & a.bits() != 0)
    .fold(Attributes::NONE, Attributes::with)
}

impl ExtensionTable {
    /// The table `name` as the extension `owner` described it in its routes (one row
    /// per column, `alias` rows for views, an `attributes` row). With `default_index`
    /// (`--extensions_default_index`), a column without options becomes INDEX, so every
    /// constraint on it reaches the extension. `None` when no row declares a column.
    pub fn from_routes(
        name: &str,
        routes: &PluginResponse,
        default_index: bool,
        owner: &str,
        link: Arc<Link>,
    ) -> Option<ExtensionTable> {
        let mut columns = Vec::new();
        let mut aliases = Vec::new();
        let mut attrs = Attributes::NONE;
        for route in routes {
            match route.get("id").map(String::as_str) {
                Some("column") => {
                    let (Some(column), Some(ty)) = (route.get("name"), route.get("type")) else {
                        continue;
                    };
                    let mut options = column_options(route.get("op"));
                    if default_index && options == ColumnOptions::empty() {
                        options = ColumnOptions::INDEX;
                    }
                    columns.push(Column::new(
                        column.clone(),
                        column_type(ty),
                        options,
                        format!("Provided by the extension {owner}"),
                    ));
                }
                Some("alias") => aliases.extend(route.get("alias").cloned()),
                Some("attributes") => attrs = attributes(route.get("attributes")),
                Some("columnAlias") => {
                    log::debug!(
                        "Extension table {name}: column aliases are not supported; {:?} ignored",
                        route.get("name")
                    );
                }
                _ => {}
            }
        }
        if columns.is_empty() {
            return None;
        }
        let mut spec = TableSpec::new(
            name.to_owned(),
            format!("Provided by the extension {owner}."),
            columns,
            attrs,
        )
        .with_aliases(aliases);
        spec.keeps_rowid = true;
        Some(ExtensionTable { spec, link })
    }
}

/// A constraint value as SQLite's `sqlite3_value_text` gives it: what osquery sends.
fn expression(value: &Value) -> Option<String> {
    match value {
        Value::Null => None,
        Value::Integer(i) => Some(i.to_string()),
        Value::Real(r) => Some(oxquery_engine::format_real(*r)),
        Value::Text(t) => Some(t.clone()),
        Value::Blob(b) => Some(String::from_utf8_lossy(b).into_owned()),
    }
}

/// The context JSON osquery's virtual table sends with `generate`: one entry per column,
/// sorted by name, with the constraints forwarded on it (operator code and value text;
/// empty values are left out, as osquery does) and its type as affinity; the used
/// columns' names and osquery's used-column bitset (bit 63 stands for columns 63 on).
pub fn context_json(ctx: &QueryContext<'_>) -> String {
    let spec = ctx.spec();
    let mut by_name: BTreeMap<&str, (usize, Vec<Json>)> = BTreeMap::new();
    for (i, column) in spec.columns.iter().enumerate() {
        by_name.entry(&column.name).or_insert((i, Vec::new()));
    }
    for constraint in ctx.constraints() {
        let Some(column) = spec.columns.get(constraint.column) else {
            continue;
        };
        let Some(expr) = expression(&constraint.value).filter(|e| !e.is_empty()) else {
            continue;
        };
        if let Some((_, list)) = by_name.get_mut(&*column.name) {
            list.push(json!({"op": constraint.op.code(), "expr": expr}));
        }
    }
    let constraints: Vec<Json> = by_name
        .into_iter()
        .map(|(name, (i, list))| {
            json!({"name": name, "list": list, "affinity": spec.columns[i].ty.sql_name()})
        })
        .collect();
    let mut used: Vec<&str> = ctx
        .used()
        .iter()
        .filter_map(|i| spec.columns.get(i).map(|c| &*c.name))
        .collect();
    used.sort_unstable();
    used.dedup();
    let bitset = ctx
        .used()
        .iter()
        .fold(0u64, |bits, i| bits | 1u64 << i.min(63));
    json!({"constraints": constraints, "colsUsed": used, "colsUsedBitset": bitset}).to_string()
}

/// The [`QueryContext`] a context JSON (as [`context_json`] writes it, and the SDKs
/// send it to the core) describes for `spec`: its constraints on known columns and
/// operators (values with the column's affinity), and its used columns (all when it names
/// none). Anything unreadable is left out.
pub fn context_from_json<'a>(spec: &'a TableSpec, text: &str, host: &'a Host) -> QueryContext<'a> {
    let json: Json = serde_json::from_str(text).unwrap_or(Json::Null);
    let mut constraints = Vec::new();
    for entry in json["constraints"].as_array().into_iter().flatten() {
        let Some(column) = entry["name"].as_str().and_then(|n| spec.column_index(n)) else {
            continue;
        };
        let Some(column) = spec.resolve(column) else {
            continue;
        };
        for item in entry["list"].as_array().into_iter().flatten() {
            let op = item["op"].as_u64().and_then(|o| u8::try_from(o).ok());
            let (Some(op), Some(expr)) = (op.and_then(Op::from_code), item["expr"].as_str()) else {
                continue;
            };
            let value = if spec.columns[column].ty.is_integer() {
                expr.trim()
                    .parse::<i64>()
                    .map_or_else(|_| Value::from(expr), Value::Integer)
            } else {
                Value::from(expr)
            };
            constraints.push(Constraint { column, op, value });
        }
    }
    let used = match json["colsUsed"].as_array() {
        Some(names) => {
            let mut used = ColumnSet::none(spec.columns.len());
            for name in names.iter().filter_map(Json::as_str) {
                if let Some(c) = spec.column_index(name).and_then(|c| spec.resolve(c)) {
                    used.insert(c);
                }
            }
            used
        }
        None => ColumnSet::all(spec.columns.len()),
    };
    QueryContext::new(spec, constraints, used, host)
}

/// C's `strtoll(text, &end, 0)` over the whole text: optional leading white space and
/// sign, `0x` hexadecimal, a leading `0` octal; `None` when anything is left over or
/// the value does not fit.
fn parse_base0(text: &str) -> Option<i64> {
    let t = text.trim_start();
    let (negative, t) = match t.as_bytes().first() {
        Some(b'-') => (true, &t[1..]),
        Some(b'+') => (false, &t[1..]),
        _ => (false, t),
    };
    let (radix, digits) = if let Some(hex) = t.strip_prefix("0x").or_else(|| t.strip_prefix("0X")) {
        (16, hex)
    } else if t.len() > 1 && t.starts_with('0') {
        (8, &t[1..])
    } else {
        (10, t)
    };
    if digits.is_empty() || !digits.chars().all(|c| c.is_digit(radix)) {
        return None;
    }
    let magnitude = i128::from_str_radix(digits, radix).ok()?;
    let value = if negative { -magnitude } else { magnitude };
    i64::try_from(value).ok()
}

/// One cell from an extension's text, per osquery's rules for the declared type
/// (`None`: the row has no entry for the column).
pub fn cell(ty: ColumnType, text: Option<&String>) -> Value {
    text.map_or(Value::Null, |text| cell_from_bytes(ty, text.as_bytes()))
}

/// [`cell`] from the bytes the extension sent: numbers are read in place, only TEXT
/// makes a string (bytes that are not UTF-8 become U+FFFD, as SQLite would show them).
fn cell_from_bytes(ty: ColumnType, text: &[u8]) -> Value {
    let number = || std::str::from_utf8(text).ok();
    match ty {
        // from_utf8 first: its check is faster than the lossy conversion's.
        ColumnType::Text | ColumnType::Blob => Value::Text(match std::str::from_utf8(text) {
            Ok(text) => text.to_owned(),
            Err(_) => String::from_utf8_lossy(text).into_owned(),
        }),
        _ if text.is_empty() => Value::Null,
        // osquery reads INTEGER into a C int.
        ColumnType::Integer => number()
            .and_then(parse_base0)
            .map_or(Value::Null, |v| Value::Integer(v as i32 as i64)),
        ColumnType::BigInt | ColumnType::UnsignedBigInt => number()
            .and_then(parse_base0)
            .map_or(Value::Null, Value::Integer),
        ColumnType::Double => number()
            .and_then(|t| t.parse::<f64>().ok())
            .map_or(Value::Null, Value::Real),
    }
}

/// Finds the column an entry's key names; made once per scan. The SDKs send every row's
/// entries in the same order, so the column found at an entry's position in the last row
/// is tried first, and the map is asked only when that guess is wrong.
struct ColumnLookup<'a> {
    names: Vec<&'a [u8]>,
    by_name: HashMap<&'a [u8], usize>,
    /// By entry position: the column the last row's entry there named.
    last: Vec<Option<usize>>,
}

impl<'a> ColumnLookup<'a> {
    fn new(columns: &'a [Column]) -> ColumnLookup<'a> {
        let names: Vec<&[u8]> = columns.iter().map(|c| c.name.as_bytes()).collect();
        let mut by_name = HashMap::with_capacity(names.len());
        for (i, name) in names.iter().enumerate() {
            // A name declared twice is the first column's, as a search from the start finds.
            by_name.entry(*name).or_insert(i);
        }
        ColumnLookup {
            names,
            by_name,
            last: Vec::new(),
        }
    }

    fn find(&mut self, position: usize, key: &[u8]) -> Option<usize> {
        if let Some(&Some(column)) = self.last.get(position)
            && self.names[column] == key
        {
            return Some(column);
        }
        let found = self.by_name.get(key).copied();
        if position >= self.last.len() {
            self.last.resize(position + 1, None);
        }
        self.last[position] = found;
        found
    }
}

/// One row's cells from its entries: a key that names no column is skipped, a cell
/// the query does not use is not converted.
fn fill_row(
    row: &mut RowMut<'_>,
    columns: &[Column],
    lookup: &mut ColumnLookup<'_>,
    entries: &RowEntries,
) {
    for (position, (key, value)) in entries.iter().enumerate() {
        if let Some(i) = lookup.find(position, key)
            && row.wants(i)
        {
            row.set(i, cell_from_bytes(columns[i].ty, value));
        }
    }
}

impl Table for ExtensionTable {
    fn spec(&self) -> &TableSpec {
        &self.spec
    }

    fn generate(&self, ctx: &QueryContext<'_>, rows: &mut Rows<'_>) -> TableResult {
        ctx.check()?;
        let mut request = PluginRequest::new();
        request.insert("action".into(), "generate".into());
        request.insert("context".into(), context_json(ctx));
        // Rows are made as the answer is read: no map per row, no string but TEXT cells'.
        let columns = &self.spec.columns;
        let mut lookup = ColumnLookup::new(columns);
        let mut scanned = 0u32;
        let mut stopped = None;
        self.link
            .call_rows("table", &self.spec.name, &request, |entries| {
                scanned = scanned.wrapping_add(1);
                if scanned.is_multiple_of(256)
                    && let Err(e) = ctx.check()
                {
                    stopped = Some(e);
                    return false;
                }
                fill_row(&mut rows.row(), columns, &mut lookup, entries);
                true
            })
            .map_err(|e| TableError::msg(format!("extension table {}: {e}", self.spec.name)))?;
        if let Some(e) = stopped {
            return Err(e);
        }
        ctx.check()?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec() -> TableSpec {
        let routes: PluginResponse = [
            ("pid", "BIGINT", "0"),
            ("name", "TEXT", "16"),
            ("a", "DOUBLE", "1"),
        ]
        .iter()
        .map(|(n, t, o)| {
            [("id", "column"), ("name", n), ("type", t), ("op", o)]
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect()
        })
        .collect();
        let link = Arc::new(Link::new(
            "/nonexistent".into(),
            std::time::Duration::from_secs(1),
        ));
        ExtensionTable::from_routes("t", &routes, true, "test", link)
            .unwrap()
            .spec
    }

    #[test]
    fn the_context_is_osquerys_json_and_reads_back() {
        let spec = spec();
        // Default columns become INDEX; HIDDEN stays as declared.
        assert!(spec.columns[0].options.contains(ColumnOptions::INDEX));
        assert!(!spec.columns[1].options.contains(ColumnOptions::INDEX));
        let host = Host::default();
        let ctx = QueryContext::everything(&spec, &host)
            .with_constraint(0usize, Op::Eq, 42_i64)
            .with_constraint(0usize, Op::Gt, 7_i64)
            .with_constraint(1usize, Op::Like, "")
            .with_constraint(2usize, Op::Lt, 1.5)
            .using([0usize, 2]);
        let text = context_json(&ctx);
        assert_eq!(
            text,
            r#"{"constraints":[{"name":"a","list":[{"op":16,"expr":"1.5"}],"affinity":"DOUBLE"},"#
                .to_owned()
                + r#"{"name":"name","list":[],"affinity":"TEXT"},"#
                + r#"{"name":"pid","list":[{"op":2,"expr":"42"},{"op":4,"expr":"7"}],"affinity":"BIGINT"}],"#
                + r#""colsUsed":["a","pid"],"colsUsedBitset":5}"#
        );
        let back = context_from_json(&spec, &text, &host);
        assert_eq!(back.constraints().len(), 3);
        assert_eq!(back.eq_integers(0usize), Some(vec![42]));
        assert!(back.is_used(0usize) && back.is_used(2usize) && !back.is_used(1usize));
    }

    fn entries(pairs: &[(&[u8], &[u8])]) -> RowEntries {
        let mut row = RowEntries::default();
        for (key, value) in pairs {
            row.push(key, value);
        }
        row
    }

    #[test]
    fn cells_go_to_the_columns_their_keys_name_in_any_order() {
        let spec = spec();
        let mut lookup = ColumnLookup::new(&spec.columns);
        let mut rows = Rows::new(3, ColumnSet::all(3));
        let sent = [
            entries(&[(b"pid", b"7"), (b"name", b"init"), (b"a", b"0.5")]),
            // Another order, a key that names no column, a number that is not one,
            // text that is not UTF-8, a key sent twice (the last one counts).
            entries(&[
                (b"a", b"1.5x"),
                (b"nope", b"1"),
                (b"name", b"b\xffd"),
                (b"pid", b"0x10"),
                (b"pid", b"12a"),
            ]),
            entries(&[]),
            entries(&[(b"pid", b"8"), (b"name", b"x"), (b"a", b"")]),
        ];
        for row in &sent {
            fill_row(&mut rows.row(), &spec.columns, &mut lookup, row);
        }
        let got: Vec<Vec<Value>> = rows.iter().map(<[Value]>::to_vec).collect();
        assert_eq!(
            got,
            vec![
                vec![Value::Integer(7), Value::from("init"), Value::Real(0.5)],
                vec![Value::Null, Value::from("b\u{fffd}d"), Value::Null],
                vec![Value::Null, Value::Null, Value::Null],
                vec![Value::Integer(8), Value::from("x"), Value::Null],
            ]
        );
    }

    #[test]
    fn unused_columns_are_not_filled() {
        let spec = spec();
        let mut lookup = ColumnLookup::new(&spec.columns);
        let mut used = ColumnSet::none(3);
        used.insert(1);
        let mut rows = Rows::new(3, used);
        let row = entries(&[(b"pid", b"7"), (b"name", b"init"), (b"a", b"0.5")]);
        fill_row(&mut rows.row(), &spec.columns, &mut lookup, &row);
        assert_eq!(
            rows.get(0).unwrap(),
            &[Value::Null, Value::from("init"), Value::Null]
        );
    }

    #[test]
    fn numbers_follow_osquerys_base_0_and_full_consumption_rules() {
        let s = |t: &str| Some(t.to_owned());
        assert_eq!(
            cell(ColumnType::BigInt, s("0x10").as_ref()),
            Value::Integer(16)
        );
        assert_eq!(
            cell(ColumnType::BigInt, s("010").as_ref()),
            Value::Integer(8)
        );
        assert_eq!(
            cell(ColumnType::BigInt, s("-12").as_ref()),
            Value::Integer(-12)
        );
        assert_eq!(cell(ColumnType::BigInt, s("12a").as_ref()), Value::Null);
        assert_eq!(cell(ColumnType::BigInt, s("").as_ref()), Value::Null);
        assert_eq!(cell(ColumnType::BigInt, None), Value::Null);
        assert_eq!(
            cell(ColumnType::BigInt, s("99999999999999999999").as_ref()),
            Value::Null
        );
        assert_eq!(
            cell(ColumnType::Integer, s("4294967297").as_ref()),
            Value::Integer(1)
        );
        assert_eq!(
            cell(ColumnType::Double, s("1.5").as_ref()),
            Value::Real(1.5)
        );
        assert_eq!(cell(ColumnType::Double, s("1.5x").as_ref()), Value::Null);
        assert_eq!(cell(ColumnType::Text, s("").as_ref()), Value::from(""));
    }
}
