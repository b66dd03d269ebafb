//! An extension's table: its schema from the routes it registered, its rows from a
//! `call("table", name, {"action": "generate", "context": ...})` on the extension's
//! socket, converted to typed cells as osquery's virtual table converts them. Its
//! writes go to the extension as osquery sends them: `{"action": "insert" | "update" |
//! "delete", ...}` (see [`change_request`]).

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use oxquery_table::{
    Attributes, ChangeError, Column, ColumnAlias, ColumnOptions, ColumnSet, ColumnType, Constraint,
    Host, Op, QueryContext, RowChange, RowMut, Rows, Table, TableError, TableResult, TableSpec,
    Value,
};
use serde_json::{Value as Json, json};

use crate::client::{AnswerRows, RowEntries};
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
    /// per column, `alias` rows for views, `columnAlias` rows for hidden columns reading
    /// another, an `attributes` row). With `default_index` (`--extensions_default_index`),
    /// a column without options becomes INDEX, so every constraint on it reaches the
    /// extension. `None` when no row declares a column. The table takes writes (osquery
    /// sends them to every extension table; the extension may answer `readonly`).
    pub fn from_routes(
        name: &str,
        routes: &PluginResponse,
        default_index: bool,
        owner: &str,
        link: Arc<Link>,
    ) -> Option<ExtensionTable> {
        let mut columns: Vec<Column> = Vec::new();
        let mut aliases = Vec::new();
        let mut column_aliases: Vec<ColumnAlias> = Vec::new();
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
                    let (Some(alias), Some(target)) = (route.get("name"), route.get("target"))
                    else {
                        continue;
                    };
                    // As osquery declares them: only an alias of a column declared before
                    // it; a name already taken would make the whole schema invalid.
                    let taken = columns.iter().any(|c| c.name.eq_ignore_ascii_case(alias))
                        || column_aliases
                            .iter()
                            .any(|a| a.alias.eq_ignore_ascii_case(alias));
                    if taken || !columns.iter().any(|c| *c.name == **target) {
                        log::debug!(
                            "Extension table {name}: column alias {alias} of {target} ignored \
                             (no such column, or the name is taken)"
                        );
                        continue;
                    }
                    column_aliases.push(ColumnAlias::new(alias.clone(), target.clone()));
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
        .with_aliases(aliases)
        .with_column_aliases(column_aliases);
        spec.keeps_rowid = true;
        spec.writable = true;
        Some(ExtensionTable { spec, link })
    }
}

/// The context a write carries: osquery sends an empty one.
const WRITE_CONTEXT: &str = r#"{"constraints":[]}"#;

/// A written value in `json_value_array`: numbers as JSON numbers, text (and bytes, as
/// text) as strings, NULL as null.
fn json_value(value: &Value) -> Json {
    match value {
        Value::Null => Json::Null,
        Value::Integer(i) => Json::from(*i),
        Value::Real(r) => serde_json::Number::from_f64(*r).map_or(Json::Null, Json::Number),
        Value::Text(t) => Json::from(t.as_str()),
        Value::Blob(b) => Json::from(String::from_utf8_lossy(b)),
    }
}

/// The request osquery's virtual table sends an extension for one row change: `action`,
/// the rowid as `id` (decimal text), for an insert `auto_rowid` (`"true"` with `id`
/// when the statement gave the rowid), for an update `new_id` when the rowid changes,
/// the row's values as `json_value_array` (a JSON array, one entry per column in
/// declaration order), and an empty `context`.
pub fn change_request(change: &RowChange) -> PluginRequest {
    let mut request = PluginRequest::new();
    let values = |values: &[Value]| Json::from(values.iter().map(json_value).collect::<Vec<_>>());
    match change {
        RowChange::Delete { rowid } => {
            request.insert("action".into(), "delete".into());
            request.insert("id".into(), rowid.to_string());
        }
        RowChange::Insert { rowid, values: v } => {
            request.insert("action".into(), "insert".into());
            request.insert("json_value_array".into(), values(v).to_string());
            request.insert("auto_rowid".into(), rowid.is_some().to_string());
            if let Some(rowid) = rowid {
                request.insert("id".into(), rowid.to_string());
            }
        }
        RowChange::Update {
            rowid,
            new_rowid,
            values: v,
        } => {
            request.insert("action".into(), "update".into());
            request.insert("id".into(), rowid.to_string());
            if let Some(new_rowid) = new_rowid {
                request.insert("new_id".into(), new_rowid.to_string());
            }
            request.insert("json_value_array".into(), values(v).to_string());
        }
    }
    request.insert("context".into(), WRITE_CONTEXT.into());
    request
}

/// What the extension's answer to [`change_request`] means, as osquery reads it: one row
/// whose `status` is `success` (an insert's rowid is the statement's, else the row's
/// `id`), `readonly`, `constraint` or `failure` (with its `message`). Anything else is
/// an error without a message, as in osquery.
pub fn change_outcome(
    change: &RowChange,
    response: &PluginResponse,
) -> Result<Option<i64>, ChangeError> {
    let [answer] = response.as_slice() else {
        return Err(ChangeError::Failed(None));
    };
    match answer.get("status").map(String::as_str) {
        Some("success") => {}
        Some("readonly") => return Err(ChangeError::ReadOnly),
        Some("constraint") => return Err(ChangeError::Constraint),
        Some("failure") => return Err(ChangeError::Failed(answer.get("message").cloned())),
        _ => return Err(ChangeError::Failed(None)),
    }
    match change {
        RowChange::Insert {
            rowid: Some(rowid), ..
        } => Ok(Some(*rowid)),
        RowChange::Insert { rowid: None, .. } => answer
            .get("id")
            .and_then(|id| parse_rowid(id))
            .map(Some)
            .ok_or(ChangeError::Failed(None)),
        _ => Ok(None),
    }
}

/// A rowid an extension gives: decimal, as osquery reads it.
fn parse_rowid(text: &str) -> Option<i64> {
    text.trim_start().parse().ok()
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
fn parse_base0(text: &[u8]) -> Option<i64> {
    // Leading white space as `str::trim_start` sees it. Text that starts with any other
    // ASCII byte needs no UTF-8 check: digits are ASCII, so any other byte fails below.
    let t = match text.first() {
        Some(&b) if b.is_ascii() && !char::from(b).is_whitespace() => text,
        _ => std::str::from_utf8(text).ok()?.trim_start().as_bytes(),
    };
    let (negative, t) = match t.first() {
        Some(b'-') => (true, &t[1..]),
        Some(b'+') => (false, &t[1..]),
        _ => (false, t),
    };
    let (radix, digits) = if let Some(hex) = t.strip_prefix(b"0x").or_else(|| t.strip_prefix(b"0X"))
    {
        (16, hex)
    } else if t.len() > 1 && t[0] == b'0' {
        (8, &t[1..])
    } else {
        (10, t)
    };
    if digits.is_empty() {
        return None;
    }
    // Digit by digit in a u64 (no UTF-8 check, no i128): every i64 magnitude fits, and
    // an overflow is no number. Up to 19 decimal digits cannot overflow, so the common
    // case needs no checked arithmetic.
    let mut magnitude: u64 = 0;
    if radix == 10 && digits.len() <= 19 {
        for &b in digits {
            let digit = b.wrapping_sub(b'0');
            if digit > 9 {
                return None;
            }
            magnitude = magnitude * 10 + u64::from(digit);
        }
    } else {
        for &b in digits {
            let digit = char::from(b).to_digit(radix)?;
            magnitude = magnitude
                .checked_mul(u64::from(radix))?
                .checked_add(u64::from(digit))?;
        }
    }
    if negative {
        // Down to i64::MIN, whose magnitude is one more than i64::MAX.
        (magnitude <= i64::MIN.unsigned_abs()).then(|| 0i64.wrapping_sub_unsigned(magnitude))
    } else {
        i64::try_from(magnitude).ok()
    }
}

/// One cell from an extension's text, per osquery's rules for the declared type
/// (`None`: the row has no entry for the column).
pub fn cell(ty: ColumnType, text: Option<&String>) -> Value {
    text.map_or(Value::Null, |text| cell_from_bytes(ty, text.as_bytes()))
}

/// [`cell`] from the bytes the extension sent: numbers are read in place, only TEXT
/// makes a string (bytes that are not UTF-8 become U+FFFD, as SQLite would show them).
fn cell_from_bytes(ty: ColumnType, text: &[u8]) -> Value {
    match ty {
        // from_utf8 first: its check is faster than the lossy conversion's.
        ColumnType::Text | ColumnType::Blob => {
            Value::Text(match oxquery_table::str_from_utf8(text) {
                Ok(text) => text.to_owned(),
                Err(_) => String::from_utf8_lossy(text).into_owned(),
            })
        }
        _ if text.is_empty() => Value::Null,
        // osquery reads INTEGER into a C int.
        ColumnType::Integer => {
            parse_base0(text).map_or(Value::Null, |v| Value::Integer(v as i32 as i64))
        }
        ColumnType::BigInt | ColumnType::UnsignedBigInt => {
            parse_base0(text).map_or(Value::Null, Value::Integer)
        }
        ColumnType::Double => std::str::from_utf8(text)
            .ok()
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
    entries: &RowEntries<'_>,
) {
    for (position, (key, value)) in entries.iter().enumerate() {
        if key == b"rowid" {
            // The row's own rowid, what its UPDATE and DELETE will name; text that is
            // no number makes reading it an error, as in osquery.
            let text = String::from_utf8_lossy(value);
            row.set_rowid(
                parse_rowid(&text).map_or_else(|| Value::Text(text.into_owned()), Value::Integer),
            );
        }
        if let Some(i) = lookup.find(position, key)
            && row.wants(i)
        {
            row.set(i, cell_from_bytes(columns[i].ty, value));
        }
    }
}

/// The most cells an answer's announced row count makes room for ahead: the count is
/// the extension's word (a lie costs at most this), and rows past it still fit.
const ANNOUNCED_CELLS_MAX: usize = 1 << 18;

/// An extension table's answer as it is read: rows made from the entries as they arrive.
struct Answer<'c, 'q> {
    rows: Rows<'static>,
    columns: &'c [Column],
    lookup: ColumnLookup<'c>,
    ctx: &'c QueryContext<'q>,
    scanned: u32,
    /// Why the query stopped reading (cancelled, out of time or memory).
    stopped: Option<TableError>,
}

impl AnswerRows for &mut Answer<'_, '_> {
    fn announced(&mut self, rows: usize) {
        let most = ANNOUNCED_CELLS_MAX / self.rows.width().max(1);
        self.rows.reserve(rows.min(most));
    }

    fn row(&mut self, entries: &RowEntries<'_>) -> bool {
        self.scanned = self.scanned.wrapping_add(1);
        if self.scanned.is_multiple_of(256)
            && let Err(e) = self.ctx.check()
        {
            self.stopped = Some(e);
            return false;
        }
        fill_row(
            &mut self.rows.row(),
            self.columns,
            &mut self.lookup,
            entries,
        );
        true
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
        // They reach SQLite only once the whole answer is read, as in osquery: a scan that
        // handed rows over mid-answer would be suspended while it holds the extension's
        // one connection, and a join of two of the extension's tables (whose inner scan
        // runs on the same thread) would wait for that connection for ever.
        let mut answer = Answer {
            rows: rows.detached(),
            columns: &self.spec.columns,
            lookup: ColumnLookup::new(&self.spec.columns),
            ctx,
            scanned: 0,
            stopped: None,
        };
        self.link
            .call_rows("table", &self.spec.name, &request, &mut answer)
            .map_err(|e| TableError::msg(format!("extension table {}: {e}", self.spec.name)))?;
        let Answer {
            rows: answer,
            stopped,
            ..
        } = answer;
        if let Some(e) = stopped {
            return Err(e);
        }
        ctx.check()?;
        rows.extend(answer.into_values());
        Ok(())
    }

    fn change(&self, change: RowChange) -> Result<Option<i64>, ChangeError> {
        let request = change_request(&change);
        let response = self
            .link
            .call("table", &self.spec.name, &request)
            .map_err(|e| {
                ChangeError::Failed(Some(format!("extension table {}: {e}", self.spec.name)))
            })?;
        change_outcome(&change, &response)
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

    fn entries(pairs: &[(&[u8], &[u8])]) -> crate::client::OwnedEntries {
        let mut row = crate::client::OwnedEntries::default();
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
            fill_row(&mut rows.row(), &spec.columns, &mut lookup, &row.entries());
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
        fill_row(&mut rows.row(), &spec.columns, &mut lookup, &row.entries());
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
        // The ends of i64, and one past them; white space as `str::trim_start` sees it.
        for (text, value) in [
            ("-9223372036854775808", Some(i64::MIN)),
            ("9223372036854775807", Some(i64::MAX)),
            ("0x7fffffffffffffff", Some(i64::MAX)),
            ("-0x8000000000000000", Some(i64::MIN)),
            ("9223372036854775808", None),
            ("-9223372036854775809", None),
            ("18446744073709551616", None),
            ("  +017", Some(15)),
            ("0x", None),
            ("08", None),
            ("\u{a0}\u{b}12", Some(12)),
            ("12\u{a0}", None),
        ] {
            assert_eq!(parse_base0(text.as_bytes()), value, "{text}");
        }
        assert_eq!(parse_base0(b"\xff12"), None);
        assert_eq!(parse_base0(b"12\xff"), None);
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

    fn route(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    fn table(routes: &PluginResponse) -> Option<ExtensionTable> {
        let link = Arc::new(Link::new(
            "/nonexistent".into(),
            std::time::Duration::from_secs(1),
        ));
        ExtensionTable::from_routes("t", routes, false, "test", link)
    }

    #[test]
    fn column_aliases_and_table_aliases_from_routes_declare_as_built_in_ones() {
        let column =
            |name, ty| route(&[("id", "column"), ("name", name), ("type", ty), ("op", "0")]);
        let alias =
            |name, target| route(&[("id", "columnAlias"), ("name", name), ("target", target)]);
        let routes: PluginResponse = vec![
            column("pid", "BIGINT"),
            column("path", "TEXT"),
            route(&[("id", "alias"), ("alias", "t_view")]),
            alias("process_id", "pid"),
            // Ignored: no such target; a name a column has; a name an alias has.
            alias("ghost", "nope"),
            alias("PATH", "pid"),
            alias("process_id", "path"),
            route(&[("id", "columnAlias"), ("name", "no_target")]),
            route(&[("id", "attributes"), ("attributes", "2")]),
        ];
        let spec = table(&routes).unwrap().spec;
        assert_eq!(
            spec.create_statement(),
            "CREATE TABLE t(`pid` BIGINT, `path` TEXT, `process_id` BIGINT HIDDEN)"
        );
        assert_eq!(spec.column_index("Process_ID"), Some(2));
        assert_eq!(spec.resolve(2), Some(0));
        assert_eq!(*spec.aliases, ["t_view"]);
        assert!(spec.attributes.contains(Attributes::CACHEABLE));
        assert!(spec.writable && spec.keeps_rowid);
        assert_eq!(spec.row_width(), 3, "two columns and the rowid");
        // A keyed extension table keeps its rowid (writes name rows by it).
        let keyed = vec![route(&[
            ("id", "column"),
            ("name", "a"),
            ("type", "TEXT"),
            ("op", "1"),
        ])];
        assert_eq!(
            table(&keyed).unwrap().spec.create_statement(),
            "CREATE TABLE t(`a` TEXT, PRIMARY KEY (`a`))"
        );
        assert!(table(&vec![alias("x", "y")]).is_none());
    }

    #[test]
    fn writes_are_osquerys_requests() {
        let values = vec![
            Value::from("it's \"quoted\""),
            Value::Integer(-3),
            Value::Real(1.5),
            Value::Null,
            Value::Blob(b"raw".to_vec()),
        ];
        let text = |request: &PluginRequest| serde_json::to_string(request).unwrap();
        assert_eq!(
            text(&change_request(&RowChange::Insert {
                rowid: None,
                values: values.clone(),
            })),
            r#"{"action":"insert","auto_rowid":"false","context":"{\"constraints\":[]}","#
                .to_owned()
                + r#""json_value_array":"[\"it's \\\"quoted\\\"\",-3,1.5,null,\"raw\"]"}"#
        );
        let insert = change_request(&RowChange::Insert {
            rowid: Some(12),
            values: vec![Value::Integer(1)],
        });
        assert_eq!(insert["auto_rowid"], "true");
        assert_eq!(insert["id"], "12");
        assert_eq!(insert["json_value_array"], "[1]");
        let update = change_request(&RowChange::Update {
            rowid: 4,
            new_rowid: Some(9),
            values: vec![Value::from("a"), Value::Null],
        });
        assert_eq!(
            update.keys().collect::<Vec<_>>(),
            ["action", "context", "id", "json_value_array", "new_id"]
        );
        assert_eq!(
            (&*update["action"], &*update["id"], &*update["new_id"]),
            ("update", "4", "9")
        );
        assert_eq!(update["json_value_array"], r#"["a",null]"#);
        let same_rowid = change_request(&RowChange::Update {
            rowid: 4,
            new_rowid: None,
            values: vec![],
        });
        assert!(!same_rowid.contains_key("new_id"));
        let delete = change_request(&RowChange::Delete { rowid: -7 });
        assert_eq!(
            text(&delete),
            r#"{"action":"delete","context":"{\"constraints\":[]}","id":"-7"}"#
        );
    }

    #[test]
    fn answers_to_writes_read_as_osquery_reads_them() {
        let insert = RowChange::Insert {
            rowid: None,
            values: vec![],
        };
        let given = RowChange::Insert {
            rowid: Some(5),
            values: vec![],
        };
        let delete = RowChange::Delete { rowid: 1 };
        let answer = |pairs: &[(&str, &str)]| vec![route(pairs)];
        let ok = answer(&[("status", "success"), ("id", "33")]);
        assert_eq!(change_outcome(&insert, &ok), Ok(Some(33)));
        // The statement's rowid wins over the answer's.
        assert_eq!(change_outcome(&given, &ok), Ok(Some(5)));
        assert_eq!(change_outcome(&delete, &ok), Ok(None));
        let no_id = answer(&[("status", "success")]);
        assert_eq!(
            change_outcome(&insert, &no_id),
            Err(ChangeError::Failed(None))
        );
        assert_eq!(
            change_outcome(&insert, &answer(&[("status", "success"), ("id", "x1")])),
            Err(ChangeError::Failed(None))
        );
        assert_eq!(
            change_outcome(&delete, &answer(&[("status", "readonly")])),
            Err(ChangeError::ReadOnly)
        );
        assert_eq!(
            change_outcome(&delete, &answer(&[("status", "constraint")])),
            Err(ChangeError::Constraint)
        );
        assert_eq!(
            change_outcome(
                &delete,
                &answer(&[("status", "failure"), ("message", "disk full")])
            ),
            Err(ChangeError::Failed(Some("disk full".into())))
        );
        assert_eq!(
            change_outcome(&delete, &answer(&[("status", "failure")])),
            Err(ChangeError::Failed(None))
        );
        for odd in [
            vec![],
            answer(&[("status", "maybe")]),
            answer(&[]),
            [ok.clone(), ok].concat(),
        ] {
            assert_eq!(
                change_outcome(&delete, &odd),
                Err(ChangeError::Failed(None)),
                "{odd:?}"
            );
        }
    }
}
