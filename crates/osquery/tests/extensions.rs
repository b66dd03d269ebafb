//! The extension manager of `osqueryd` and `osqueryi`, driven by the real PyPI `osquery`
//! SDK (the library osquery users write clients and extensions with), unchanged: its
//! client's calls, a Python table extension our SQL queries and joins, extensions that
//! die or never answer, and clients that send garbage.

#[allow(dead_code)]
mod daemon_support;

use daemon_support::Sandbox;
use oxquery_test_support::{osquery_sdk_python, poll, wait_until};
use serde_json::Value;
use std::io::{Read, Write};
use std::os::unix::fs::PermissionsExt;
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

const SHELL: &str = env!("CARGO_BIN_EXE_osqueryi");
/// Generous: nothing here is timed, only bounded.
const PATIENCE: Duration = Duration::from_secs(60);

fn script(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/sdk")
        .join(name)
}

/// One call through the SDK's client; its answer as JSON.
fn sdk(python: &Path, socket: &Path, args: &[&str]) -> Value {
    let out = Command::new(python)
        .arg(script("client.py"))
        .arg(socket)
        .args(args)
        .output()
        .expect("running the SDK client");
    assert!(
        out.status.success(),
        "client.py {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).expect("client.py prints JSON")
}

fn rows(answer: &Value) -> Vec<serde_json::Map<String, Value>> {
    assert_eq!(answer["status"]["code"], 0, "{answer}");
    answer["response"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r.as_object().unwrap().clone())
        .collect()
}

/// Waits until the manager at `socket` lists an extension named `name` (as the SDK's
/// client sees the list): its uuid and what the manager says of it.
fn registered(
    python: &Path,
    socket: &Path,
    name: &str,
    d: &daemon_support::Daemon,
) -> (String, Value) {
    poll(PATIENCE, || {
        let list = sdk(python, socket, &["extensions"]);
        list.as_object()?
            .iter()
            .find(|(_, info)| info["name"] == name)
            .map(|(uuid, info)| (uuid.clone(), info.clone()))
    })
    .unwrap_or_else(|| panic!("extension {name} never registered\n{}", d.stderr_text()))
}

/// A daemon serving its manager at the sandbox's socket, extension checks every second.
fn daemon(sandbox: &Sandbox, extra: &[&str]) -> daemon_support::Daemon {
    sandbox.write_config("{}");
    let mut args = vec![
        "--disable_watchdog",
        "--extensions_interval=1",
        "--thrift_timeout=2",
    ];
    args.extend_from_slice(extra);
    let d = sandbox.start("osqueryd", &args);
    let socket = sandbox.extensions_socket();
    assert!(
        wait_until(PATIENCE, || socket.exists()),
        "no manager socket\n{}",
        d.stderr_text()
    );
    d
}

/// Kills and reaps a child when dropped.
struct Reaped(Child);
impl Drop for Reaped {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[test]
fn the_sdk_client_queries_the_daemon() {
    let Some(python) = osquery_sdk_python() else {
        return;
    };
    let sandbox = Sandbox::new();
    let d = daemon(&sandbox, &[]);
    let socket = sandbox.extensions_socket();
    let mode = std::fs::metadata(&socket).unwrap().permissions().mode();
    assert_eq!(mode & 0o777, 0o600, "the socket is owner-only");

    let ping = sdk(&python, &socket, &["ping"]);
    assert_eq!(
        ping,
        serde_json::json!({"code": 0, "message": "pong", "uuid": 0})
    );

    // The daemon's own pid, through SQL over the socket.
    let info = rows(&sdk(
        &python,
        &socket,
        &["query", "select pid, extensions from osquery_info"],
    ));
    assert_eq!(info.len(), 1);
    assert_eq!(info[0]["pid"], d.pid().to_string());
    assert_eq!(info[0]["extensions"], "active");

    // Types as strings: integers decimal, reals osquery's way, NULL as --nullvalue.
    let typed = rows(&sdk(
        &python,
        &socket,
        &["query", "select 1 as i, 2.5 as r, null as n, 'x' as t"],
    ));
    assert_eq!(
        typed,
        vec![serde_json::from_str(r#"{"i":"1","r":"2.5","n":"","t":"x"}"#).unwrap()]
    );
    let bad = sdk(&python, &socket, &["query", "select * from no_such_table"]);
    assert_eq!(bad["status"]["code"], 1);
    assert_eq!(bad["status"]["message"], "no such table: no_such_table");

    let columns = rows(&sdk(
        &python,
        &socket,
        &["columns", "select 1, pid, name from processes"],
    ));
    let columns: Vec<(String, String)> = columns
        .iter()
        .map(|c| {
            let (k, v) = c.iter().next().unwrap();
            (k.clone(), v.as_str().unwrap().to_owned())
        })
        .collect();
    assert_eq!(
        columns,
        [
            ("1".to_owned(), "INTEGER".to_owned()),
            ("pid".to_owned(), "BIGINT".to_owned()),
            ("name".to_owned(), "TEXT".to_owned())
        ]
    );

    // Every flag, with its value as given on the command line.
    let options = sdk(&python, &socket, &["options"]);
    assert_eq!(
        options["extensions_socket"]["value"],
        socket.display().to_string()
    );
    assert_eq!(options["extensions_interval"]["value"], "1");
    assert_eq!(options["thrift_timeout"]["type"], "uint32");
    assert_eq!(options["disable_extensions"]["default_value"], "false");

    // `call` reaches the core's own tables, as osquery's table plugins answer it.
    let generated = rows(&sdk(
        &python,
        &socket,
        &[
            "call",
            "table",
            "osquery_info",
            r#"{"action": "generate", "context": "{\"constraints\":[],\"colsUsed\":[\"pid\"]}"}"#,
        ],
    ));
    assert_eq!(generated.len(), 1);
    assert_eq!(generated[0]["pid"], d.pid().to_string());
    assert_eq!(generated[0].len(), 1, "only the used column: {generated:?}");
    let columns = rows(&sdk(
        &python,
        &socket,
        &["call", "table", "osquery_info", r#"{"action": "columns"}"#],
    ));
    assert!(
        columns
            .iter()
            .any(|c| c["name"] == "pid" && c["type"] == "INTEGER" && c["id"] == "column"),
        "{columns:?}"
    );
    let unknown = sdk(
        &python,
        &socket,
        &["call", "table", "no_such_table", r#"{"action": "columns"}"#],
    );
    assert_eq!(unknown["status"]["code"], 1);
    assert_eq!(
        unknown["status"]["message"],
        "Cannot call registry item: no_such_table"
    );

    assert_eq!(
        sdk(&python, &socket, &["extensions"]),
        serde_json::json!({})
    );
    let core = rows(&sdk(
        &python,
        &socket,
        &[
            "query",
            "select uuid, name, path, type from osquery_extensions",
        ],
    ));
    assert_eq!(core.len(), 1);
    assert_eq!(core[0]["uuid"], "0");
    assert_eq!(core[0]["type"], "core");
    assert_eq!(core[0]["path"], socket.display().to_string());
}

#[test]
fn a_python_table_extension_is_queried_joined_and_sees_its_constraints() {
    let Some(python) = osquery_sdk_python() else {
        return;
    };
    let sandbox = Sandbox::new();
    let d = daemon(&sandbox, &[]);
    let socket = sandbox.extensions_socket();
    let contexts = sandbox.path().join("contexts.jsonl");
    let extension = Reaped(
        Command::new(&python)
            .arg(script("table_extension.py"))
            .arg("--socket")
            .arg(&socket)
            .args(["--interval", "1"])
            .env("PROBE_CONTEXT_LOG", &contexts)
            .stdin(Stdio::null())
            .spawn()
            .expect("starting the Python extension"),
    );
    let ext_pid = extension.0.id().to_string();

    // Registered: listed by the manager, in osquery_extensions and osquery_registry.
    let (uuid, info) = registered(&python, &socket, "py_probe_ext", &d);
    assert_eq!(
        sdk(&python, &socket, &["extensions"])
            .as_object()
            .unwrap()
            .len(),
        1
    );
    assert_eq!(info["version"], "1.2.3");
    assert_eq!(info["sdk_version"], "3.0.7");
    let ext_socket = format!("{}.{uuid}", socket.display());
    assert!(Path::new(&ext_socket).exists());
    let listed = rows(&sdk(
        &python,
        &socket,
        &[
            "query",
            "select uuid, name, version, path, type from osquery_extensions where type = 'extension'",
        ],
    ));
    assert_eq!(listed.len(), 1);
    assert_eq!(listed[0]["uuid"], uuid);
    assert_eq!(listed[0]["path"], ext_socket);
    let registry = rows(&sdk(
        &python,
        &socket,
        &[
            "query",
            "select owner_uuid, internal, active from osquery_registry where registry = 'table' and name = 'py_probe'",
        ],
    ));
    assert_eq!(registry.len(), 1, "{registry:?}");
    assert_eq!(registry[0]["owner_uuid"], uuid);
    assert_eq!(registry[0]["internal"], "0");

    // Its rows, typed by its declared columns: the extension's own pid, found again in
    // `processes` (an independent reader of /proc) by a join.
    let joined = rows(&sdk(
        &python,
        &socket,
        &[
            "query",
            "select p.pid, p.parent, e.ratio from py_probe e join processes p on p.pid = e.pid where e.label = 'self'",
        ],
    ));
    assert_eq!(joined.len(), 1, "{joined:?}");
    assert_eq!(joined[0]["pid"], ext_pid);
    assert_eq!(joined[0]["parent"], std::process::id().to_string());
    assert_eq!(joined[0]["ratio"], "0.5");
    // An empty numeric value is NULL, a missing column too.
    let nulls = rows(&sdk(
        &python,
        &socket,
        &[
            "query",
            "select label, ratio is null as no_ratio, typeof(pid) as t from py_probe order by label",
        ],
    ));
    assert_eq!(nulls.len(), 3);
    assert_eq!(nulls[0]["label"], "init");
    assert_eq!(nulls[0]["no_ratio"], "1");
    assert_eq!(nulls[1]["label"], "parent");
    assert_eq!(nulls[1]["no_ratio"], "1");
    assert_eq!(nulls[2]["no_ratio"], "0");
    assert_eq!(nulls[2]["t"], "integer");

    // The WHERE constraint reached the extension in osquery's context JSON (with
    // --extensions_default_index, every column is an index).
    let seen: Vec<Value> = std::fs::read_to_string(&contexts)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let constrained = seen
        .iter()
        .find(|c| {
            c["constraints"].as_array().unwrap().iter().any(|k| {
                k["name"] == "label" && k["list"] == serde_json::json!([{"op": 2, "expr": "self"}])
            })
        })
        .unwrap_or_else(|| panic!("no context with label = 'self': {seen:?}"));
    let names: Vec<&str> = constrained["constraints"]
        .as_array()
        .unwrap()
        .iter()
        .map(|k| k["name"].as_str().unwrap())
        .collect();
    assert_eq!(
        names,
        ["label", "pid", "ratio"],
        "one entry per column, by name"
    );
    assert_eq!(constrained["constraints"][1]["affinity"], "INTEGER");
    assert_eq!(
        constrained["colsUsed"],
        serde_json::json!(["label", "pid", "ratio"])
    );
    assert_eq!(constrained["colsUsedBitset"], 7);

    // A second extension with the same name is refused, as osquery refuses it.
    let again = sdk(
        &python,
        &socket,
        &["register", "py_probe_ext", "3.0.7", r#"{"table": {}}"#],
    );
    assert_eq!(again["code"], 1);
    assert_eq!(again["message"], "Duplicate extension registered");
    let old = sdk(&python, &socket, &["register", "old", "1.5.0", "{}"]);
    assert_eq!(old["message"], "Incompatible extension SDK version");
    let clash = sdk(
        &python,
        &socket,
        &[
            "register",
            "clash",
            "3.0.7",
            r#"{"table": {"processes": [{"id": "column", "name": "x", "type": "TEXT", "op": "0"}]}}"#,
        ],
    );
    assert_eq!(
        clash["message"],
        "Failed adding registry: Duplicate registry item: processes"
    );
}

#[test]
fn a_dead_extension_and_a_silent_one_are_removed_and_the_daemon_keeps_serving() {
    let Some(python) = osquery_sdk_python() else {
        return;
    };
    let sandbox = Sandbox::new();
    let d = daemon(&sandbox, &[]);
    let socket = sandbox.extensions_socket();
    let contexts = sandbox.path().join("contexts.jsonl");
    let mut extension = Reaped(
        Command::new(&python)
            .arg(script("table_extension.py"))
            .arg("--socket")
            .arg(&socket)
            .args(["--interval", "1"])
            .env("PROBE_CONTEXT_LOG", &contexts)
            .stdin(Stdio::null())
            .spawn()
            .expect("starting the Python extension"),
    );
    let tables = |python: &Path| {
        rows(&sdk(
            python,
            &socket,
            &[
                "query",
                "select name from osquery_registry where registry = 'table' and owner_uuid != 0",
            ],
        ))
        .len()
    };
    registered(&python, &socket, "py_probe_ext", &d);
    assert_eq!(
        tables(&python),
        1,
        "the extension's table is there once it is"
    );
    // kill -9: its socket file stays, but nothing answers there any more.
    extension.0.kill().unwrap();
    extension.0.wait().unwrap();
    assert!(
        wait_until(PATIENCE, || tables(&python) == 0),
        "the dead extension's table stayed\n{}",
        d.stderr_text()
    );
    assert_eq!(
        sdk(&python, &socket, &["extensions"]),
        serde_json::json!({})
    );

    // An extension that registers, then serves a socket that accepts and never answers.
    let registered = sdk(
        &python,
        &socket,
        &[
            "register",
            "silent",
            "3.0.7",
            r#"{"table": {"silent_t": [{"id": "column", "name": "a", "type": "TEXT", "op": "0"}]}}"#,
        ],
    );
    assert_eq!(registered["code"], 0, "{registered}");
    let uuid = registered["uuid"].as_i64().unwrap();
    let silent = UnixListener::bind(format!("{}.{uuid}", socket.display())).unwrap();
    let held = std::thread::spawn(move || {
        // Accept and hold every connection without a byte in reply.
        let mut kept = Vec::new();
        for stream in silent.incoming() {
            match stream {
                Ok(s) => kept.push(s),
                Err(_) => break,
            }
            if kept.len() > 8 {
                break;
            }
        }
        kept
    });
    assert!(
        wait_until(PATIENCE, || tables(&python) == 0),
        "the silent extension's table stayed\n{}",
        d.stderr_text()
    );
    let deregistered = sdk(&python, &socket, &["deregister", &uuid.to_string()]);
    assert_eq!(deregistered["message"], "No extension UUID found");
    drop(held);
    // Still serving.
    let one = rows(&sdk(&python, &socket, &["query", "select 1 as one"]));
    assert_eq!(one[0]["one"], "1");
}

#[test]
fn garbage_and_oversized_frames_close_only_their_connection() {
    let Some(python) = osquery_sdk_python() else {
        return;
    };
    let sandbox = Sandbox::new();
    let _d = daemon(&sandbox, &["--thrift_string_size_limit=1000"]);
    let socket = sandbox.extensions_socket();
    let closed = |bytes: &[u8]| {
        let mut stream = UnixStream::connect(&socket).unwrap();
        stream.set_read_timeout(Some(PATIENCE)).unwrap();
        stream.write_all(bytes).unwrap();
        let mut answer = Vec::new();
        // The server closes the connection: the read ends (an exception reply may come
        // first for an unknown method).
        let _ = stream.read_to_end(&mut answer);
        answer
    };
    // A text protocol's request.
    closed(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n");
    // A strict header whose name claims 2 GiB.
    closed(b"\x80\x01\x00\x01\x7f\xff\xff\xff");
    // A query whose SQL string is over --thrift_string_size_limit.
    let mut big = b"\x80\x01\x00\x01\x00\x00\x00\x05query\x00\x00\x00\x00\x0b\x00\x01".to_vec();
    big.extend_from_slice(&5000u32.to_be_bytes());
    big.extend(std::iter::repeat_n(b'x', 5000));
    closed(&big);
    // An unknown method gets an exception and the connection is closed.
    let answer = closed(b"\x80\x01\x00\x01\x00\x00\x00\x04nope\x00\x00\x00\x00\x00");
    assert!(
        answer.windows(4).any(|w| w == b"nope"),
        "an exception naming the method: {answer:?}"
    );
    // The next client is served.
    let one = rows(&sdk(&python, &socket, &["query", "select 1 as one"]));
    assert_eq!(one[0]["one"], "1");
}

#[test]
fn the_interactive_shell_serves_its_socket_and_removes_it_at_exit() {
    let Some(python) = osquery_sdk_python() else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let socket = dir.path().join("shell.em");
    let config = dir.path().join("shell.conf");
    std::fs::write(&config, r#"{"schedule": {}}"#).unwrap();
    // stdin is a pipe, so the shell defaults to --disable_extensions; asked explicitly.
    let mut shell = Reaped(
        Command::new(SHELL)
            .arg("--flagfile=/dev/null")
            .arg("--disable_extensions=false")
            .arg(format!("--extensions_socket={}", socket.display()))
            .arg(format!("--config_path={}", config.display()))
            .env("HOME", dir.path())
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );
    assert!(wait_until(PATIENCE, || socket.exists()), "no shell socket");
    let info = rows(&sdk(
        &python,
        &socket,
        &["query", "select pid from osquery_info"],
    ));
    assert_eq!(info[0]["pid"], shell.0.id().to_string());
    assert_eq!(sdk(&python, &socket, &["ping"])["message"], "pong");
    // The shell's own filesystem config plugin answers too.
    let generated = rows(&sdk(
        &python,
        &socket,
        &["call", "config", "filesystem", r#"{"action": "genConfig"}"#],
    ));
    assert_eq!(generated.len(), 1);
    assert_eq!(
        generated[0][&config.display().to_string()],
        r#"{"schedule": {}}"#
    );
    drop(shell.0.stdin.take());
    let status = shell.0.wait().unwrap();
    assert!(status.success());
    assert!(!socket.exists(), "the socket is removed at exit");
}

#[test]
fn a_socket_path_that_is_not_a_socket_leaves_extensions_disabled() {
    let sandbox = Sandbox::new();
    std::fs::write(sandbox.extensions_socket(), b"not a socket").unwrap();
    sandbox.write_config("{}");
    let d = sandbox.start("osqueryd", &["--disable_watchdog"]);
    let said = wait_until(PATIENCE, || {
        d.stderr_text()
            .contains("Extensions disabled: cannot start extension manager")
    });
    assert!(said, "{}", d.stderr_text());
    assert_eq!(
        std::fs::read(sandbox.extensions_socket()).unwrap(),
        b"not a socket"
    );
}

/// A wrapper the daemon starts as an extension: runs one of the SDK plugin scripts
/// (tests/extensions/) under the SDK's Python with `env` set, passing on the daemon's
/// `--socket`/`--timeout`/`--interval`.
fn plugin_wrapper(dir: &Path, name: &str, python: &Path, env: &[(&str, &Path)]) -> PathBuf {
    let plugin = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/extensions")
        .join(format!("{name}.py"));
    let mut text = String::from("#!/bin/sh\n");
    for (key, value) in env {
        text.push_str(&format!("export {key}='{}'\n", value.display()));
    }
    text.push_str(&format!(
        "exec '{}' '{}' \"$@\"\n",
        python.display(),
        plugin.display()
    ));
    let path = dir.join(format!("{name}.ext"));
    std::fs::write(&path, text).unwrap();
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
    path
}

#[test]
fn python_config_and_logger_plugins_serve_the_daemon() {
    let Some(python) = osquery_sdk_python() else {
        return;
    };
    let sandbox = Sandbox::new();
    let dir = sandbox.path().join("ext");
    std::fs::create_dir(&dir).unwrap();
    // The schedule comes only from the Python config plugin.
    let served = dir.join("served.conf");
    std::fs::write(
        &served,
        r#"{"schedule": {"from_plugin": {"query": "select 7 as seven, 'plugin' as origin", "interval": 1}}}"#,
    )
    .unwrap();
    let config_calls = dir.join("config_calls.jsonl");
    let logger_calls = dir.join("logger_calls.jsonl");
    let config_ext = plugin_wrapper(
        &dir,
        "config_plugin",
        &python,
        &[
            ("OXQUERY_TEST_CONFIG_FILE", &served),
            ("OXQUERY_TEST_CALLS", &config_calls),
        ],
    );
    let logger_ext = plugin_wrapper(
        &dir,
        "logger_plugin",
        &python,
        &[("OXQUERY_TEST_LOGGER_OUT", &logger_calls)],
    );
    let autoload = dir.join("extensions.load");
    std::fs::write(
        &autoload,
        format!("{}\n{}\n", config_ext.display(), logger_ext.display()),
    )
    .unwrap();
    sandbox.write_config(r#"{"schedule": {"from_file": {"query": "select 1", "interval": 1}}}"#);
    let d = sandbox.start(
        "osqueryd",
        &[
            "--disable_watchdog",
            "--extensions_interval=1",
            &format!("--extensions_autoload={}", autoload.display()),
            "--extensions_require=oxquery_test_config,oxquery_test_logger",
            "--extensions_timeout=30",
            "--config_plugin=test_config",
            "--logger_plugin=filesystem,test_logger",
        ],
    );

    // The scheduled query the plugin's config names runs, and its result line reaches
    // the Python logger byte for byte as the filesystem logger writes it.
    let line = poll(PATIENCE, || {
        sandbox
            .results_of("from_plugin")
            .into_iter()
            .next()
            .map(|row| serde_json::to_string(&Value::Object(row)).unwrap())
    })
    .unwrap_or_else(|| panic!("no result from the plugin's schedule\n{}", d.stderr_text()));
    assert!(sandbox.results_of("from_file").is_empty());
    let received = poll(PATIENCE, || {
        let text = std::fs::read_to_string(&logger_calls).ok()?;
        text.lines()
            .filter_map(|l| serde_json::from_str::<Value>(l).ok())
            .filter_map(|call| call["request"]["string"].as_str().map(str::to_owned))
            .find(|s| s.contains("from_plugin"))
    })
    .unwrap_or_else(|| panic!("the logger plugin got no result\n{}", d.stderr_text()));
    let sent: Value = serde_json::from_str(&received).unwrap();
    let written: Value = serde_json::from_str(&line).unwrap();
    assert_eq!(sent["name"], "from_plugin");
    assert_eq!(sent["columns"], written["columns"]);
    assert_eq!(written["columns"]["seven"], "7");
    assert_eq!(written["columns"]["origin"], "plugin");

    // The config plugin was asked as osquery asks it.
    let calls = std::fs::read_to_string(&config_calls).unwrap();
    assert!(
        calls
            .lines()
            .any(|l| serde_json::from_str::<Value>(l).unwrap()["action"] == "genConfig"),
        "{calls}"
    );
    // Both plugins are listed as the extensions' and active. The daemon's own filesystem
    // plugins are listed too: the config one not in use, the logger one in use (the
    // logger list names it).
    let socket = sandbox.extensions_socket();
    let registry = rows(&sdk(
        &python,
        &socket,
        &[
            "query",
            "select registry, name, owner_uuid, active from osquery_registry \
             where name in ('test_config', 'test_logger', 'filesystem') \
             and registry in ('config', 'logger') order by registry, owner_uuid != 0",
        ],
    ));
    let listed: Vec<(&str, &str, bool, &str)> = registry
        .iter()
        .map(|row| {
            (
                row["registry"].as_str().unwrap(),
                row["name"].as_str().unwrap(),
                row["owner_uuid"] != "0",
                row["active"].as_str().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        listed,
        [
            ("config", "filesystem", false, "0"),
            ("config", "test_config", true, "1"),
            ("logger", "filesystem", false, "1"),
            ("logger", "test_logger", true, "1"),
        ],
        "{registry:?}"
    );
}

#[test]
fn the_shell_connected_to_the_daemon_runs_its_queries_there() {
    let sandbox = Sandbox::new();
    let d = daemon(&sandbox, &[]);
    let out = Command::new(SHELL)
        .arg("--disable_extensions")
        .arg(format!(
            "--connect={}",
            sandbox.extensions_socket().display()
        ))
        .args(["--json", "select pid, extensions from osquery_info"])
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    let stdout = String::from_utf8(out.stdout).unwrap();
    // osquery's shell says where it is connected first, then prints the results.
    let json = &stdout[stdout.find('[').expect("a JSON result")..];
    let answer: Value = serde_json::from_str(json).unwrap();
    assert_eq!(answer[0]["pid"], d.pid().to_string(), "{stdout}");
    assert_eq!(answer[0]["extensions"], "active");
}

#[test]
fn the_sdk_client_calls_the_daemons_own_config_and_logger_plugins() {
    let Some(python) = osquery_sdk_python() else {
        return;
    };
    let sandbox = Sandbox::new();
    let d = daemon(&sandbox, &[]);
    let socket = sandbox.extensions_socket();
    // The filesystem config plugin reads --config_path when asked: the text written now.
    let config_text = r#"{"options": {"host_identifier": "hostname"}, "schedule": {}}"#;
    std::fs::write(sandbox.config(), config_text).unwrap();
    let config = rows(&sdk(
        &python,
        &socket,
        &["call", "config", "filesystem", r#"{"action": "genConfig"}"#],
    ));
    let expected: serde_json::Map<String, Value> = [(
        sandbox.config().display().to_string(),
        Value::from(config_text),
    )]
    .into_iter()
    .collect();
    assert_eq!(config, vec![expected]);
    let pack = sandbox.path().join("pack.conf");
    std::fs::write(&pack, r#"{"queries": {}}"#).unwrap();
    let packed = rows(&sdk(
        &python,
        &socket,
        &[
            "call",
            "config",
            "filesystem",
            &serde_json::json!({"action": "genPack", "name": "p", "value": pack}).to_string(),
        ],
    ));
    assert_eq!(packed[0]["p"], r#"{"queries": {}}"#);

    // A line an extension hands the filesystem logger lands in its results log, and a
    // snapshot line in its snapshots log; an empty item is the active logger plugin.
    let marker = format!(r#"{{"name":"from_the_sdk","pid":{}}}"#, std::process::id());
    let logged = sdk(
        &python,
        &socket,
        &[
            "call",
            "logger",
            "filesystem",
            &serde_json::json!({ "string": marker }).to_string(),
        ],
    );
    assert_eq!(logged["status"]["code"], 0, "{logged}");
    let snapshot = marker.replace("from_the_sdk", "snapshot_from_the_sdk");
    let active = sdk(
        &python,
        &socket,
        &[
            "call",
            "logger",
            "",
            &serde_json::json!({ "snapshot": snapshot }).to_string(),
        ],
    );
    assert_eq!(active["status"]["code"], 0, "{active}");
    let file_has = |path: PathBuf, line: &str| {
        std::fs::read_to_string(path).is_ok_and(|text| text.lines().any(|l| l == line))
    };
    assert!(
        wait_until(PATIENCE, || file_has(sandbox.results_log(), &marker)),
        "the line never reached the results log\n{}",
        d.stderr_text()
    );
    assert!(
        wait_until(PATIENCE, || file_has(sandbox.snapshots_log(), &snapshot)),
        "the snapshot line never reached the snapshots log\n{}",
        d.stderr_text()
    );
    assert!(!file_has(sandbox.results_log(), &snapshot));

    // osquery's refusals, code and message.
    let status = |answer: Value| {
        (
            answer["status"]["code"].as_i64().unwrap(),
            answer["status"]["message"].as_str().unwrap().to_owned(),
        )
    };
    assert_eq!(
        status(sdk(
            &python,
            &socket,
            &["call", "no_such_registry", "x", "{}"]
        )),
        (1, "Unknown registry requested: no_such_registry".to_owned())
    );
    assert_eq!(
        status(sdk(
            &python,
            &socket,
            &[
                "call",
                "config",
                "no_such_plugin",
                r#"{"action": "genConfig"}"#
            ]
        )),
        (1, "Cannot call registry item: no_such_plugin".to_owned())
    );
    assert_eq!(
        status(sdk(
            &python,
            &socket,
            &["call", "config", "filesystem", r#"{"action": "shout"}"#]
        )),
        (1, "Config plugin action unknown: shout".to_owned())
    );
    assert_eq!(
        status(sdk(
            &python,
            &socket,
            &["call", "logger", "filesystem", r#"{"health": "{}"}"#]
        )),
        (1, "Unsupported call to logger plugin".to_owned())
    );
}

#[test]
fn a_python_logger_plugin_gets_event_rows_and_the_status_lines_logged_before_it_started() {
    let Some(python) = osquery_sdk_python() else {
        return;
    };
    let sandbox = Sandbox::new();
    let dir = sandbox.path().join("ext");
    std::fs::create_dir(&dir).unwrap();
    let watched = sandbox.path().join("watched");
    std::fs::create_dir(&watched).unwrap();
    let logger_calls = dir.join("logger_calls.jsonl");
    // The plugin asks for status lines and event rows (features 1 | 2).
    let logger_ext = plugin_wrapper(
        &dir,
        "logger_plugin",
        &python,
        &[
            ("OXQUERY_TEST_LOGGER_OUT", &logger_calls),
            ("OXQUERY_TEST_LOGGER_FEATURES", Path::new("3")),
        ],
    );
    let autoload = dir.join("extensions.load");
    std::fs::write(&autoload, format!("{}\n", logger_ext.display())).unwrap();
    // A pack glob matching nothing: a warning the daemon logs while it starts, before its
    // logger plugins are set up.
    let no_packs = sandbox.path().join("no_packs/%.conf");
    sandbox.write_config(
        &serde_json::json!({
            "file_paths": {"watched": [format!("{}/%%", watched.display())]},
            "packs": {"*": no_packs.display().to_string()},
        })
        .to_string(),
    );
    let d = sandbox.start(
        "osqueryd",
        &[
            "--disable_watchdog",
            "--extensions_interval=1",
            &format!("--extensions_autoload={}", autoload.display()),
            "--extensions_require=oxquery_test_logger",
            "--extensions_timeout=30",
            "--logger_plugin=filesystem,test_logger",
            "--disable_events=false",
            "--enable_file_events=true",
        ],
    );
    let socket = sandbox.extensions_socket();
    assert!(
        wait_until(PATIENCE, || socket.exists()),
        "no manager socket\n{}",
        d.stderr_text()
    );
    registered(&python, &socket, "oxquery_test_logger", &d);
    let requests = || -> Vec<Value> {
        std::fs::read_to_string(&logger_calls)
            .unwrap_or_default()
            .lines()
            .filter_map(|l| serde_json::from_str::<Value>(l).ok())
            .map(|call| call["request"].clone())
            .collect()
    };

    // The warning logged before the plugin was set up reaches it in osquery's status
    // shape.
    let warned = format!("No pack files match {}", no_packs.display());
    let entry = poll(PATIENCE, || {
        requests()
            .iter()
            .filter(|r| r["status"] == "true")
            .filter_map(|r| serde_json::from_str::<Value>(r["log"].as_str()?).ok())
            .flat_map(|log| log.as_array().cloned().unwrap_or_default())
            .find(|line| line["m"].as_str().is_some_and(|m| m.contains(&warned)))
    })
    .unwrap_or_else(|| {
        panic!(
            "the start-up warning never reached the plugin: {:?}\n{}",
            requests(),
            d.stderr_text()
        )
    });
    assert_eq!(entry["s"], 1, "a warning: {entry}");
    for key in ["f", "i", "h", "c", "u"] {
        assert!(entry.get(key).is_some(), "{key} in {entry}");
    }

    // Files created in the watched directory reach the plugin as event rows, one call
    // each, as the file_events table gives them.
    let mut created = Vec::new();
    let event = poll(PATIENCE, || {
        let file = watched.join(format!("probe-{}", created.len()));
        std::fs::write(&file, b"x").unwrap();
        created.push(file.display().to_string());
        std::thread::sleep(Duration::from_millis(300));
        requests()
            .iter()
            .filter_map(|r| serde_json::from_str::<Value>(r["event"].as_str()?).ok())
            .find(|row| {
                row["action"] == "CREATED"
                    && row["target_path"]
                        .as_str()
                        .is_some_and(|p| created.iter().any(|c| c == p))
            })
    })
    .unwrap_or_else(|| {
        panic!(
            "no event row reached the plugin: {:?}\n{}",
            requests(),
            d.stderr_text()
        )
    });
    assert_eq!(event["category"], "watched", "{event}");
    let eid = event["eid"].as_str().unwrap();
    assert!(
        eid.len() == 10 && eid.bytes().all(|b| b.is_ascii_digit()),
        "{event}"
    );
    let time: u64 = event["time"].as_str().unwrap().parse().unwrap();
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    assert!(time <= now && time + 600 > now, "{event}");
}
