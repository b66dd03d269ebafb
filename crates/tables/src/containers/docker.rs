//! What the docker_* tables share: the daemon's socket (`--docker_socket`), one call that
//! logs why it gave nothing, and the constraints pushed down to the API as its `filters`.
//!
//! As in osquery, an `id` constraint may be a prefix of the id (Docker's own lookups
//! accept one), and the rows then carry that prefix as their `id` so that SQLite, which
//! re-checks every constraint, keeps them. A constraint value that cannot be an id (not
//! hex, longer than 64) matches nothing, so no call is made for it.

use super::engine_api::{self, ApiError, Limits};
use oxquery_table::{QueryContext, TableError};
use serde_json::Value;

/// `GET target` on the Docker daemon, as JSON. `Ok(None)` when there is no answer to use:
/// no daemon (logged at info: a host without Docker is normal), an object that does not
/// exist (info), or a failed or malformed exchange (a warning naming the socket and the
/// call). `Err` only when the query stopped.
pub fn get(ctx: &QueryContext, table: &str, target: &str) -> Result<Option<Value>, TableError> {
    let socket = ctx.settings().docker_socket();
    match engine_api::get_json(socket, target, &Limits::DEFAULT, &|| ctx.is_stopped()) {
        Ok(v) => Ok(Some(v)),
        Err(ApiError::Stopped) => ctx.check().map(|()| None),
        Err(e @ ApiError::NoDaemon(_)) => {
            log::info!("{table}: no Docker daemon at {}: {e}", socket.display());
            Ok(None)
        }
        Err(e @ ApiError::Status { code: 404, .. }) => {
            log::info!("{table}: Docker API {target}: {e}");
            Ok(None)
        }
        Err(e) => {
            log::warn!(
                "{table}: Docker API GET {target} on {}: {e}",
                socket.display()
            );
            Ok(None)
        }
    }
}

/// The array a list call answered, or a warning when the answer has another shape.
pub fn array<'v>(table: &str, what: &str, v: &'v Value) -> &'v [Value] {
    match v.as_array() {
        Some(a) => a,
        None => {
            log::warn!(
                "{table}: Docker API {what}: expected a JSON array, got {}",
                shape(v)
            );
            &[]
        }
    }
}

fn shape(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

/// Whether `s` can be (a prefix of) a Docker id: 1 to 64 hex digits.
pub fn is_id_prefix(s: &str) -> bool {
    !s.is_empty() && s.len() <= 64 && s.bytes().all(|b| b.is_ascii_hexdigit())
}

/// The ids asked for by `=`/`IN` on `column`, lowercased; those that cannot be ids are
/// dropped. `None`: no such constraint.
pub fn asked_ids(ctx: &QueryContext, column: impl Into<usize>) -> Option<Vec<String>> {
    let ids = ctx.eq_texts(column)?;
    Some(
        ids.into_iter()
            .filter(|s| is_id_prefix(s))
            .map(|s| s.to_ascii_lowercase())
            .collect(),
    )
}

/// Whether `s` can be a Docker object name (containers, volumes, networks), a leading `/`
/// allowed: `[a-zA-Z0-9][a-zA-Z0-9_.-]*`. Only such names are sent as filters.
pub fn is_name(s: &str) -> bool {
    let s = s.strip_prefix('/').unwrap_or(s);
    let mut bytes = s.bytes();
    bytes.next().is_some_and(|b| b.is_ascii_alphanumeric())
        && bytes.all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'.' || b == b'-')
        && s.len() <= 255
}

/// The names asked for by `=`/`IN` on `column`; those that cannot be names are dropped.
pub fn asked_names(ctx: &QueryContext, column: impl Into<usize>) -> Option<Vec<String>> {
    let names = ctx.eq_texts(column)?;
    Some(names.into_iter().filter(|s| is_name(s)).collect())
}

/// A `filters` query parameter (`filters={"key":{"v":true},...}`, percent-encoded) with
/// one entry per `(key, values)`; keys with no values are left out. Empty when none.
pub fn filters(pairs: &[(&str, &[String])]) -> String {
    let mut map = serde_json::Map::new();
    for (key, values) in pairs {
        if values.is_empty() {
            continue;
        }
        let set: serde_json::Map<String, Value> = values
            .iter()
            .map(|v| (v.clone(), Value::Bool(true)))
            .collect();
        map.insert((*key).to_owned(), Value::Object(set));
    }
    if map.is_empty() {
        return String::new();
    }
    format!(
        "filters={}",
        percent_encode(&Value::Object(map).to_string())
    )
}

/// Percent-encodes every byte but RFC 3986's unreserved ones.
pub fn percent_encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len() * 3);
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// An id as the tables report it: without `sha256:`, or the asked prefix it starts with.
pub fn reported_id(full: &str, asked: Option<&[String]>) -> String {
    let id = strip_sha256(full);
    asked
        .into_iter()
        .flatten()
        .find(|p| id.starts_with(p.as_str()))
        .map_or_else(|| id.to_owned(), String::clone)
}

/// `s` without Docker's `sha256:` digest prefix.
pub fn strip_sha256(s: &str) -> &str {
    s.strip_prefix("sha256:").unwrap_or(s)
}

/// The text at `key` ('' when absent or not text).
pub fn text(v: &Value, key: &str) -> String {
    v.get(key).and_then(Value::as_str).unwrap_or("").to_owned()
}

/// The integer at `key` (0 when absent or not an integer, as osquery).
pub fn int(v: &Value, key: &str) -> i64 {
    v.get(key).map_or(0, as_int)
}

/// A JSON number as an integer (u64 beyond i64 saturates); 0 otherwise.
pub fn as_int(v: &Value) -> i64 {
    v.as_i64()
        .or_else(|| v.as_u64().map(|u| i64::try_from(u).unwrap_or(i64::MAX)))
        .unwrap_or(0)
}

/// 1 when `key` holds `true`, else 0.
pub fn flag(v: &Value, key: &str) -> i64 {
    i64::from(v.get(key).and_then(Value::as_bool).unwrap_or(false))
}

/// The strings of the array at `key`, joined by `sep` ('' when absent).
pub fn joined(v: &Value, key: &str, sep: &str) -> String {
    v.get(key)
        .and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .filter_map(Value::as_str)
                .collect::<Vec<_>>()
                .join(sep)
        })
        .unwrap_or_default()
}

/// The containers the daemon lists (`/containers/json?all=1`, running or not), narrowed
/// by the `id` and `name` constraints as API filters. `None` when nothing can match or
/// there was no answer.
pub fn list_containers(
    ctx: &QueryContext,
    table: &str,
    ids: Option<&[String]>,
    names: Option<&[String]>,
) -> Result<Option<Vec<Value>>, TableError> {
    if ids.is_some_and(<[String]>::is_empty) || names.is_some_and(<[String]>::is_empty) {
        return Ok(None);
    }
    // Docker matches a name filter against the names without their leading `/`.
    let names: Vec<String> = names
        .unwrap_or_default()
        .iter()
        .map(|n| format!("^/?{}$", n.strip_prefix('/').unwrap_or(n)))
        .collect();
    let filter = filters(&[("id", ids.unwrap_or_default()), ("name", &names)]);
    let target = if filter.is_empty() {
        "/containers/json?all=1".to_owned()
    } else {
        format!("/containers/json?all=1&{filter}")
    };
    let Some(v) = get(ctx, table, &target)? else {
        return Ok(None);
    };
    Ok(Some(array(table, "/containers/json", &v).to_vec()))
}

/// Test support: a host whose `--docker_socket` is the test daemon's, and the daemon.
#[cfg(test)]
pub mod testing {
    use oxquery_table::{Host, TableSettings};
    use oxquery_test_support::docker::TestDocker;
    use std::path::Path;

    /// The shared test daemon, or `None` (a skip, or a failure under CI) when it cannot run.
    pub fn daemon() -> Option<&'static TestDocker> {
        oxquery_test_support::docker::shared()
    }

    /// A host whose tables talk to the daemon at `socket`.
    pub fn host_for(socket: &Path) -> Host {
        Host {
            settings: TableSettings {
                docker_socket: Some(socket.to_path_buf()),
                ..TableSettings::DEFAULT
            },
            ..Host::default()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::testing::host_for;
    use super::*;

    #[test]
    fn filters_are_percent_encoded_json() {
        let ids = vec!["abc".to_owned()];
        assert_eq!(
            filters(&[("id", &ids), ("name", &[])]),
            "filters=%7B%22id%22%3A%7B%22abc%22%3Atrue%7D%7D"
        );
        assert_eq!(filters(&[("id", &[])]), "");
    }

    #[test]
    fn ids_and_names_are_checked_before_they_reach_the_api() {
        assert!(is_id_prefix("0123abcDEF"));
        assert!(!is_id_prefix(""));
        assert!(!is_id_prefix("x1"));
        assert!(!is_id_prefix(&"a".repeat(65)));
        assert!(is_name("/web-1.a_b"));
        assert!(!is_name("a b"));
        assert!(!is_name("(.*)"));
        assert!(!is_name("/"));
    }

    #[test]
    fn a_prefix_asked_for_is_the_reported_id() {
        let asked = vec!["12ab".to_owned()];
        assert_eq!(reported_id("sha256:12abff", Some(&asked)), "12ab");
        assert_eq!(reported_id("sha256:99", Some(&asked)), "99");
        assert_eq!(reported_id("77", None), "77");
    }

    /// A scan of `def` with the host at `socket`; the tables whose id is required get one.
    fn scan(
        def: &oxquery_table::TableDef,
        host: &oxquery_table::Host,
        interrupt: Option<oxquery_table::Interrupt>,
    ) -> (Result<usize, TableError>, Vec<(log::Level, String)>) {
        let mut ctx = QueryContext::everything(def.spec, host);
        if let Some(i) = interrupt {
            ctx = ctx.with_interrupt(i);
        }
        let id = def.spec.columns.iter().position(|c| c.name == "id");
        if let Some(id) = id
            && def.spec.columns[id]
                .options
                .contains(oxquery_table::ColumnOptions::REQUIRED)
        {
            ctx = ctx.with_constraint(id, oxquery_table::Op::Eq, "0123456789ab");
        }
        crate::common::testing::capture_log(|| {
            oxquery_table::Rows::collect(&ctx, def.generate).map(|r| r.len())
        })
    }

    /// The domain's docker_* tables (the lxd_* ones talk to another socket).
    fn docker_tables() -> Vec<&'static oxquery_table::TableDef> {
        super::super::tables()
            .into_iter()
            .filter(|d| d.spec.name.starts_with("docker_"))
            .collect()
    }

    #[test]
    fn hostile_answers_give_no_rows_and_a_warning() {
        let answers: [(&str, &'static [u8]); 5] = [
            ("malformed JSON", b"HTTP/1.1 200 OK\r\nContent-Length: 9\r\n\r\n{\"Id\": [}"),
            (
                "truncated chunked body",
                b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n40\r\n[{\"Id\":\"ab\"",
            ),
            (
                "truncated body",
                b"HTTP/1.1 200 OK\r\nContent-Length: 500\r\n\r\n[{\"Id\":\"ab\"}",
            ),
            ("not HTTP", b"SSH-2.0-OpenSSH_9.2\r\n\r\n"),
            ("server error", b"HTTP/1.1 500 Internal Server Error\r\nContent-Length: 20\r\n\r\n{\"message\":\"boom!\"}"),
        ];
        crate::containers::assert_hostile_answers_warn(
            &answers,
            &docker_tables(),
            host_for,
            |def, host| scan(def, host, None),
        );
    }

    #[test]
    fn wrong_json_shapes_give_no_rows_and_no_panic() {
        let answers: [&'static [u8]; 3] = [
            b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\n{}",
            b"HTTP/1.1 200 OK\r\nContent-Length: 4\r\n\r\n\"x\"\n",
            b"HTTP/1.1 200 OK\r\nContent-Length: 37\r\n\r\n[{\"Id\":5,\"Labels\":[1],\"Ports\":\"no\"}]",
        ];
        crate::containers::assert_odd_shapes_survive(
            &answers,
            &docker_tables(),
            host_for,
            |def, host| scan(def, host, None),
        );
    }

    #[test]
    fn a_silent_daemon_is_left_when_the_query_is_cancelled() {
        let (_dir, path) = crate::containers::hostile_server(None);
        for def in docker_tables() {
            let cancel = oxquery_table::Cancel::new();
            cancel.set_timeout(std::time::Duration::from_millis(100));
            let interrupt = oxquery_table::Interrupt::new(cancel, None);
            let path = path.clone();
            let (rows, _) = crate::common::testing::within_10s(move || {
                scan(def, &host_for(&path), Some(interrupt))
            });
            assert!(
                matches!(rows, Err(TableError::Interrupted(_))),
                "{}: {rows:?}",
                def.spec.name
            );
        }
    }
}
