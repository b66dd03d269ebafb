//! What the lxd_* tables share: the daemon's socket (`--lxd_socket`), one call that
//! unwraps LXD's response envelope and logs why it gave nothing, and the checks on names
//! the queries put into request paths.
//!
//! LXD answers every call with an envelope `{"type":"sync","status_code":200,...,
//! "metadata":...}` (`"type":"error"` with `error` and `error_code` on failure); the tables
//! use its `metadata`. Lists are asked with `?recursion=1`, which gives the objects
//! themselves instead of their URLs, so one call serves a whole table; per-object calls
//! (an instance's state, a network's counters, a pool's resources) are made only when the
//! query uses their columns.

use super::engine_api::{self, ApiError, Limits};
use oxquery_table::{QueryContext, TableError};
use serde_json::Value;

pub use super::docker::{flag, int, percent_encode, text};

/// `GET target` on the LXD daemon: the `metadata` of its answer. `Ok(None)` when there is
/// no answer to use: no daemon (logged at info: a host without LXD is normal), an object
/// that does not exist (info), or a failed or malformed exchange (a warning naming the
/// socket and the call). `Err` only when the query stopped.
pub fn get(ctx: &QueryContext, table: &str, target: &str) -> Result<Option<Value>, TableError> {
    let socket = ctx.settings().lxd_socket();
    let answer = match engine_api::get_json(socket, target, &Limits::DEFAULT, &|| ctx.is_stopped())
    {
        Ok(v) => v,
        Err(ApiError::Stopped) => return ctx.check().map(|()| None),
        Err(e @ ApiError::NoDaemon(_)) => {
            log::info!("{table}: no LXD daemon at {}: {e}", socket.display());
            return Ok(None);
        }
        Err(e @ ApiError::Status { code: 404, .. }) => {
            log::info!("{table}: LXD API {target}: {e}");
            return Ok(None);
        }
        Err(e) => {
            log::warn!("{table}: LXD API GET {target} on {}: {e}", socket.display());
            return Ok(None);
        }
    };
    match answer.get("type").and_then(Value::as_str) {
        Some("sync") => Ok(Some(answer.get("metadata").cloned().unwrap_or(Value::Null))),
        Some("error") => {
            log::warn!(
                "{table}: LXD API GET {target} on {}: error {}: {}",
                socket.display(),
                int(&answer, "error_code"),
                text(&answer, "error")
            );
            Ok(None)
        }
        _ => {
            log::warn!(
                "{table}: LXD API GET {target} on {}: not an LXD sync response",
                socket.display()
            );
            Ok(None)
        }
    }
}

/// The objects a `?recursion=1` list call answered, or a warning when the answer has
/// another shape.
pub fn list(ctx: &QueryContext, table: &str, path: &str) -> Result<Vec<Value>, TableError> {
    let Some(v) = get(ctx, table, &format!("{path}?recursion=1"))? else {
        return Ok(Vec::new());
    };
    match v {
        Value::Array(a) => Ok(a),
        _ => {
            log::warn!("{table}: LXD API {path}: expected a JSON array of objects");
            Ok(Vec::new())
        }
    }
}

/// Whether `s` can be an LXD instance name: 1 to 63 letters, digits and `-` (LXD's rule
/// for host names). Only such names reach a request path; others match nothing.
pub fn is_instance_name(s: &str) -> bool {
    !s.is_empty() && s.len() <= 63 && s.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
}

/// The instance names asked for by `=`/`IN` on `column`; those that cannot be names are
/// dropped. `None`: no such constraint.
pub fn asked_instances(ctx: &QueryContext, column: impl Into<usize>) -> Option<Vec<String>> {
    let names = ctx.eq_texts(column)?;
    Some(names.into_iter().filter(|s| is_instance_name(s)).collect())
}

/// `/1.0/instances/<name>`: the instance, for the tables that ask for named instances.
pub fn instance(ctx: &QueryContext, table: &str, name: &str) -> Result<Option<Value>, TableError> {
    get(
        ctx,
        table,
        &format!("/1.0/instances/{}", percent_encode(name)),
    )
}

/// The text value of `key` in the object at `object` ('' when either is absent); LXD's
/// config maps hold text values.
pub fn text_in(v: &Value, object: &str, key: &str) -> String {
    v.get(object).map(|o| text(o, key)).unwrap_or_default()
}

/// A config or device value as text: LXD sends text, but a number or boolean is shown as
/// JSON would write it rather than dropped.
pub fn value_text(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        Value::Null => String::new(),
        other => other.to_string(),
    }
}

/// Test support: a real LXD daemon of the tests' own, and a host whose `--lxd_socket` is
/// its socket.
#[cfg(test)]
pub mod testing;

#[cfg(test)]
mod tests {
    use super::*;
    use oxquery_table::{Host, TableSettings};

    #[test]
    fn instance_names_are_checked_before_they_reach_a_path() {
        assert!(is_instance_name("c1"));
        assert!(is_instance_name("web-01"));
        assert!(!is_instance_name(""));
        assert!(!is_instance_name("../images"));
        assert!(!is_instance_name("a b"));
        assert!(!is_instance_name("x?recursion=1"));
        assert!(!is_instance_name(&"a".repeat(64)));
    }

    fn host_for(socket: &std::path::Path) -> Host {
        Host {
            settings: TableSettings {
                lxd_socket: Some(socket.to_path_buf()),
                ..TableSettings::DEFAULT
            },
            ..Host::default()
        }
    }

    /// A scan of `def`; the tables whose name is required get one.
    fn scan(
        def: &oxquery_table::TableDef,
        host: &Host,
        interrupt: Option<oxquery_table::Interrupt>,
    ) -> (Result<usize, TableError>, Vec<(log::Level, String)>) {
        let mut ctx = QueryContext::everything(def.spec, host);
        if let Some(i) = interrupt {
            ctx = ctx.with_interrupt(i);
        }
        if def.spec.has_required() {
            let name = def.spec.columns.iter().position(|c| c.name == "name");
            ctx = ctx.with_constraint(name.unwrap(), oxquery_table::Op::Eq, "c1");
        }
        crate::common::testing::capture_log(|| {
            oxquery_table::Rows::collect(&ctx, def.generate).map(|r| r.len())
        })
    }

    fn lxd_tables() -> Vec<&'static oxquery_table::TableDef> {
        super::super::tables()
            .into_iter()
            .filter(|d| d.spec.name.starts_with("lxd_"))
            .collect()
    }

    #[test]
    fn hostile_answers_give_no_rows_and_a_warning() {
        let answers: [(&str, &'static [u8]); 7] = [
            (
                "malformed JSON",
                b"HTTP/1.1 200 OK\r\nContent-Length: 14\r\n\r\n{\"metadata\": [",
            ),
            (
                "truncated chunked body",
                b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n40\r\n{\"type\":\"sync\",\"metadata\":[",
            ),
            (
                "truncated body",
                b"HTTP/1.1 200 OK\r\nContent-Length: 500\r\n\r\n{\"type\":\"sync\",\"metadata\":[]}",
            ),
            ("not HTTP", b"SSH-2.0-OpenSSH_9.2\r\n\r\n"),
            (
                "server error",
                b"HTTP/1.1 500 Internal Server Error\r\nContent-Length: 63\r\n\r\n{\"type\":\"error\",\"error\":\"boom!\",\"error_code\":500,\"metadata\":{}}",
            ),
            (
                "error envelope with status 200",
                b"HTTP/1.1 200 OK\r\nContent-Length: 49\r\n\r\n{\"type\":\"error\",\"error\":\"boom!\",\"error_code\":500}",
            ),
            (
                "no envelope",
                b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\n[]",
            ),
        ];
        crate::containers::assert_hostile_answers_warn(
            &answers,
            &lxd_tables(),
            host_for,
            |def, host| scan(def, host, None),
        );
    }

    #[test]
    fn wrong_json_shapes_give_no_rows_and_no_panic() {
        let answers: [&'static [u8]; 4] = [
            b"HTTP/1.1 200 OK\r\nContent-Length: 32\r\n\r\n{\"type\":\"sync\",\"metadata\":null}",
            b"HTTP/1.1 200 OK\r\nContent-Length: 31\r\n\r\n{\"type\":\"sync\",\"metadata\":\"x\"}",
            b"HTTP/1.1 200 OK\r\nContent-Length: 33\r\n\r\n{\"type\":\"sync\",\"metadata\":[1,2]}",
            b"HTTP/1.1 200 OK\r\nContent-Length: 61\r\n\r\n{\"type\":\"sync\",\"metadata\":{\"config\":[1],\"expanded_devices\":7}}",
        ];
        crate::containers::assert_odd_shapes_survive(
            &answers,
            &lxd_tables(),
            host_for,
            |def, host| scan(def, host, None),
        );
    }

    #[test]
    fn a_missing_socket_gives_no_rows_at_once() {
        let dir = tempfile::tempdir().unwrap();
        let host = host_for(&dir.path().join("no-such.socket"));
        for def in lxd_tables() {
            let (rows, logged) = scan(def, &host, None);
            assert_eq!(rows.unwrap(), 0, "{}", def.spec.name);
            assert!(
                logged.iter().all(|(l, _)| *l > log::Level::Warn),
                "{}: {logged:?}",
                def.spec.name
            );
        }
    }

    /// Without a cancellation, the client's idle limit (10 s) ends the wait: one table
    /// only, and a generous guard so a hang fails the test instead of blocking it.
    #[test]
    fn a_silent_daemon_gives_no_rows_and_a_warning_within_the_limits() {
        let (_dir, path) = crate::containers::hostile_server(None);
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let host = host_for(&path);
            let _ = tx.send(scan(&super::super::lxd_certificates::TABLE, &host, None));
        });
        let (rows, logged) = rx
            .recv_timeout(Limits::DEFAULT.total * 2)
            .expect("the scan outlived the client's limits");
        assert_eq!(rows.unwrap(), 0);
        assert!(
            logged
                .iter()
                .any(|(l, m)| *l == log::Level::Warn && m.contains("lxd_certificates")),
            "{logged:?}"
        );
    }

    #[test]
    fn a_silent_daemon_is_left_when_the_query_is_cancelled() {
        let (_dir, path) = crate::containers::hostile_server(None);
        for def in lxd_tables() {
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
