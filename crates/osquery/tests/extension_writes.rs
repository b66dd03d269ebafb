//! Extension tables beyond reading, with the real PyPI `osquery` SDK: a column alias and
//! a table alias an extension's routes declare, and `INSERT`/`UPDATE`/`DELETE` sent to
//! an extension as osquery sends them (checked against the requests the extension
//! logged and the rows it then returns).

#[allow(dead_code)]
mod daemon_support;

use daemon_support::Sandbox;
use oxquery_test_support::{osquery_sdk_python, poll, wait_until};
use serde_json::{Value, json};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

/// Generous: nothing here is timed, only bounded.
const PATIENCE: Duration = Duration::from_secs(60);

fn script(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/sdk")
        .join(name)
}

/// A query through the SDK's client: its status and rows as JSON.
fn query(python: &Path, socket: &Path, sql: &str) -> Value {
    let out = Command::new(python)
        .arg(script("client.py"))
        .arg(socket)
        .args(["query", sql])
        .output()
        .expect("running the SDK client");
    assert!(
        out.status.success(),
        "client.py query {sql:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).expect("client.py prints JSON")
}

/// The rows of a query that must succeed.
fn rows(python: &Path, socket: &Path, sql: &str) -> Vec<Value> {
    let answer = query(python, socket, sql);
    assert_eq!(answer["status"]["code"], 0, "{sql}: {answer}");
    answer["response"].as_array().unwrap().clone()
}

/// The message of a query that must fail.
fn failure(python: &Path, socket: &Path, sql: &str) -> String {
    let answer = query(python, socket, sql);
    assert_ne!(answer["status"]["code"], 0, "{sql} should fail: {answer}");
    answer["status"]["message"].as_str().unwrap().to_owned()
}

/// A daemon serving its manager at the sandbox's socket, extension checks every second.
fn daemon(sandbox: &Sandbox) -> daemon_support::Daemon {
    sandbox.write_config("{}");
    let d = sandbox.start(
        "osqueryd",
        &[
            "--disable_watchdog",
            "--extensions_interval=1",
            "--thrift_timeout=5",
        ],
    );
    assert!(
        wait_until(PATIENCE, || sandbox.extensions_socket().exists()),
        "no manager socket\n{}",
        d.stderr_text()
    );
    d
}

/// A Python extension started as osquery starts one; killed and reaped when dropped.
struct Extension(Child);

impl Extension {
    fn start(python: &Path, name: &str, socket: &Path, env: &[(&str, &Path)]) -> Extension {
        let mut command = Command::new(python);
        command
            .arg(script(name))
            .arg("--socket")
            .arg(socket)
            .args(["--interval", "1"])
            .stdin(Stdio::null());
        for (key, value) in env {
            command.env(key, value);
        }
        Extension(command.spawn().expect("starting the Python extension"))
    }
}

impl Drop for Extension {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Waits until `table` answers a query (the extension registered it).
fn wait_for_table(python: &Path, socket: &Path, table: &str, d: &daemon_support::Daemon) {
    let sql = format!("select count(*) as n from {table}");
    poll(PATIENCE, || {
        (query(python, socket, &sql)["status"]["code"] == 0).then_some(())
    })
    .unwrap_or_else(|| panic!("{table} never appeared\n{}", d.stderr_text()));
}

#[test]
fn a_python_table_with_a_column_alias_is_queried_by_the_alias() {
    let Some(python) = osquery_sdk_python() else {
        return;
    };
    let sandbox = Sandbox::new();
    let d = daemon(&sandbox);
    let socket = sandbox.extensions_socket();
    let extension = Extension::start(&python, "alias_extension.py", &socket, &[]);
    wait_for_table(&python, &socket, "py_aliased", &d);
    let ext_pid = extension.0.id().to_string();

    // The alias reads its target: the extension's own pid, which `processes` (reading
    // /proc) knows as a child of this test.
    let joined = rows(
        &python,
        &socket,
        "select a.process_id, a.pid, p.parent from py_aliased a \
         join processes p on p.pid = a.process_id where a.label = 'self'",
    );
    assert_eq!(
        joined,
        [json!({"process_id": ext_pid, "pid": ext_pid, "parent": std::process::id().to_string()})]
    );
    // A constraint on the alias selects by its target.
    let parent = rows(
        &python,
        &socket,
        &format!(
            "select label from py_aliased where process_id = {}",
            std::process::id()
        ),
    );
    assert_eq!(parent, [json!({"label": "parent"})]);
    // The alias is hidden: `*` has the real columns only, as the table-alias view has.
    let star = rows(
        &python,
        &socket,
        "select * from py_aliased where label = 'self'",
    );
    assert_eq!(star, [json!({"pid": ext_pid, "label": "self"})]);
    let view = rows(
        &python,
        &socket,
        "select * from py_aliased_view order by label",
    );
    assert_eq!(view.len(), 2);
    assert_eq!(view[1], json!({"pid": ext_pid, "label": "self"}));
    let declared = rows(
        &python,
        &socket,
        "select name, type, hidden from pragma_table_xinfo('py_aliased')",
    );
    assert_eq!(
        declared,
        [
            json!({"name": "pid", "type": "BIGINT", "hidden": "0"}),
            json!({"name": "label", "type": "TEXT", "hidden": "0"}),
            json!({"name": "process_id", "type": "BIGINT", "hidden": "1"}),
        ]
    );

    // SDK 3.1.1's plugins answer no writes: the INSERT fails, the extension and the
    // daemon keep serving.
    let refused = failure(
        &python,
        &socket,
        "insert into py_aliased (pid, label) values (1, 'x')",
    );
    assert!(refused.contains("py_aliased"), "{refused}");
    assert_eq!(
        rows(&python, &socket, "select count(*) as n from py_aliased"),
        [json!({"n": "2"})]
    );
}

#[test]
fn two_scans_of_one_extension_in_one_query_both_finish() {
    let Some(python) = osquery_sdk_python() else {
        return;
    };
    let sandbox = Sandbox::new();
    let d = daemon(&sandbox);
    let socket = sandbox.extensions_socket();
    let _extension = Extension::start(&python, "alias_extension.py", &socket, &[]);
    wait_for_table(&python, &socket, "py_counted", &d);
    wait_for_table(&python, &socket, "py_aliased", &d);

    // Each scan has more rows than a first batch, so the outer scan is still open while
    // the inner one calls the same extension over its one connection.
    let joined = rows(
        &python,
        &socket,
        "select count(*) as n, sum(b.n) as total from py_counted a join py_counted b on a.n = b.n",
    );
    assert_eq!(joined, [json!({"n": "100", "total": "5050"})]);
    let crossed = rows(
        &python,
        &socket,
        "select count(*) as n from py_counted c cross join py_aliased a",
    );
    assert_eq!(crossed, [json!({"n": "200"})]);
}

#[test]
fn a_writable_python_table_takes_inserts_updates_and_deletes() {
    let Some(python) = osquery_sdk_python() else {
        return;
    };
    let sandbox = Sandbox::new();
    let d = daemon(&sandbox);
    let socket = sandbox.extensions_socket();
    let log = sandbox.path().join("writes.jsonl");
    let _extension = Extension::start(
        &python,
        "writable_extension.py",
        &socket,
        &[("WRITES_LOG", &log)],
    );
    wait_for_table(&python, &socket, "py_notes", &d);
    let requests = || -> Vec<Value> {
        std::fs::read_to_string(&log)
            .unwrap_or_default()
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect()
    };
    let context = r#"{"constraints":[]}"#;
    let read_back = || {
        rows(
            &python,
            &socket,
            "select rowid, title, body, stars, weight from py_notes order by rowid",
        )
    };

    assert!(
        rows(
            &python,
            &socket,
            "insert into py_notes (title, body, stars, weight) values ('first', 'hello', 3, 0.5)",
        )
        .is_empty()
    );
    assert!(
        rows(
            &python,
            &socket,
            "insert into py_notes (rowid, title, body, stars, weight) values (10, 'second', 'x', 1, 2.25)",
        )
        .is_empty()
    );
    assert_eq!(
        requests(),
        [
            json!({"action": "insert", "auto_rowid": "false", "context": context,
                   "json_value_array": r#"["first","hello",3,0.5]"#}),
            json!({"action": "insert", "auto_rowid": "true", "id": "10", "context": context,
                   "json_value_array": r#"["second","x",1,2.25]"#}),
        ]
    );
    // The rows the extension now returns, with the rowids it gave them.
    assert_eq!(
        read_back(),
        [
            json!({"rowid": "1", "title": "first", "body": "hello", "stars": "3", "weight": "0.5"}),
            json!({"rowid": "10", "title": "second", "body": "x", "stars": "1", "weight": "2.25"}),
        ]
    );

    // UPDATE and DELETE name the rows by those rowids.
    rows(
        &python,
        &socket,
        "update py_notes set stars = 5 where title = 'first'",
    );
    rows(
        &python,
        &socket,
        "update py_notes set rowid = 20 where rowid = 10",
    );
    rows(&python, &socket, "delete from py_notes where stars = 5");
    assert_eq!(
        requests()[2..],
        [
            json!({"action": "update", "id": "1", "context": context,
                   "json_value_array": r#"["first","hello",5,0.5]"#}),
            json!({"action": "update", "id": "10", "new_id": "20", "context": context,
                   "json_value_array": r#"["second","x",1,2.25]"#}),
            json!({"action": "delete", "id": "1", "context": context}),
        ]
    );
    assert_eq!(
        read_back(),
        [json!({"rowid": "20", "title": "second", "body": "x", "stars": "1", "weight": "2.25"})]
    );

    // The extension's refusals are osquery's errors; a value of the wrong type (or NULL,
    // every column being an index under --extensions_default_index) never reaches it.
    let insert = |title: &str| {
        failure(
            &python,
            &socket,
            &format!(
                "insert into py_notes (title, body, stars, weight) values ('{title}', 'b', 1, 1.5)"
            ),
        )
    };
    assert_eq!(insert("readonly"), "table py_notes may not be modified");
    assert_eq!(insert("taken"), "constraint failed");
    assert_eq!(insert("refused"), "refused by the extension");
    let sent = requests().len();
    for sql in [
        "insert into py_notes (title, body, stars, weight) values ('t', 'b', 'three', 1.5)",
        "insert into py_notes (title, body, stars) values ('t', 'b', 1)",
    ] {
        assert_eq!(failure(&python, &socket, sql), "datatype mismatch", "{sql}");
    }
    assert_eq!(requests().len(), sent);
    assert_eq!(read_back().len(), 1);
}
