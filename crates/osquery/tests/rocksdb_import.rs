//! A host switching from osquery: `--database_path` is the RocksDB directory osquery left
//! (written here by RocksDB's own `ldb` tool in osquery's layout). osqueryd takes over its
//! node key (the fleet server sees no new enrollment), its instance identity
//! (`osquery_info.instance_id`, the `instance` host identifier) and its differential state
//! (the first run logs only rows osquery had not logged), and leaves osquery's files as
//! they were. Built with the `rocksdb` feature only.
#![cfg(feature = "rocksdb")]

#[allow(dead_code)]
mod daemon_support;

use daemon_support::{Sandbox, wait_until};
use oxquery_remote::testing::{Request, Response, TestServer};
use serde_json::{Value, json};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

const LONG: Duration = Duration::from_secs(60);
const UUID: &str = "3e1f0b5c-7a2d-4c8e-9f61-0d2b4a6c8e10";
const OSQUERY_KEY: &str = "key-osquery-enrolled-with";

/// `rows` logs three rows; osquery had stored the first two after its 5th change.
const SCHEDULE: &str =
    "select 1 as n, 'one' as word union all select 2, 'two' union all select 3, 'three'";
const OSQUERY_ROWS: &str = r#"[{"n":1,"word":"one"},{"n":2,"word":"two"}]"#;

/// A fleet server that knows osquery's node key and the one it hands out when enrolling.
fn fleet(enrolled: Arc<AtomicU32>) -> TestServer {
    TestServer::start(move |r: &Request| {
        let body = r.json();
        let known = body["node_key"] == OSQUERY_KEY || body["node_key"] == "fresh-key";
        match r.path.as_str() {
            "/enroll" if body["enroll_secret"] == "s3cret" => {
                enrolled.fetch_add(1, Ordering::SeqCst);
                Response::Json(json!({"node_key": "fresh-key"}))
            }
            "/enroll" => Response::Json(json!({"error": "bad secret"})),
            _ if !known => Response::Body(401, br#"{"node_invalid": true}"#.to_vec()),
            "/config" => Response::Json(json!({
                "options": {"schedule_splay_percent": 0},
                "schedule": {
                    "rows": {"query": SCHEDULE, "interval": 1},
                    "identity": {"query": "select instance_id from osquery_info", "interval": 1}
                }
            })),
            "/log" => Response::Json(json!({})),
            _ => Response::Body(404, b"{}".to_vec()),
        }
    })
}

fn args(s: &Sandbox, server: &TestServer) -> Vec<String> {
    let mut args = s.enroll_args(server);
    args.extend([
        "--host_identifier=instance".into(),
        "--config_plugin=tls".into(),
        "--config_tls_endpoint=/config".into(),
        "--logger_plugin=filesystem,tls".into(),
        "--logger_tls_endpoint=/log".into(),
        "--logger_tls_period=1".into(),
    ]);
    args
}

fn snapshot(dir: &Path) -> BTreeMap<PathBuf, Vec<u8>> {
    std::fs::read_dir(dir)
        .unwrap()
        .map(|e| {
            let path = e.unwrap().path();
            let bytes = std::fs::read(&path).unwrap();
            (path, bytes)
        })
        .collect()
}

/// The `columns` of every result line of `name`, with its action and counter.
fn logged(s: &Sandbox, name: &str) -> Vec<(String, u64, Value)> {
    s.results_of(name)
        .into_iter()
        .map(|l| {
            (
                l["action"].as_str().unwrap_or_default().to_owned(),
                l["counter"].as_u64().unwrap(),
                l["columns"].clone(),
            )
        })
        .collect()
}

#[test]
fn a_host_switching_from_osquery_keeps_its_enrollment_identity_and_diff_state() {
    let Some(ldb) = oxquery_test_support::require_tool("ldb") else {
        return;
    };
    let enrolled = Arc::new(AtomicU32::new(0));
    let server = fleet(Arc::clone(&enrolled));

    // The host as osquery left it.
    let s = Sandbox::new();
    let rocksdb = s.database();
    oxquery_test_support::write_osquery_rocksdb(
        &ldb,
        &rocksdb,
        &[
            ("configurations", "nodeKey", OSQUERY_KEY),
            ("configurations", "nodeKeyTime", "1700000000"),
            ("configurations", "instance_uuid_v1", UUID),
            ("configurations", "results_version", "2"),
            ("queries", "rows", OSQUERY_ROWS),
            ("queries", "rowsepoch", "0"),
            ("queries", "rowscounter", "5"),
            ("queries", "query.rows", SCHEDULE),
        ],
    )
    .unwrap();
    let before = snapshot(&rocksdb);
    let args = args(&s, &server);
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let mut d = s.start("switched", &args);
    assert!(
        wait_until(LONG, || !s.results_of("identity").is_empty()
            && !s.results_of("rows").is_empty()),
        "{}",
        d.stderr_text()
    );
    let stderr = d.stderr_text();
    assert!(
        stderr.contains(&format!(
            "Imported from osquery's database {} (left unchanged): the node key; the instance identity {UUID}; the differential results of 1 queries (rows)",
            rocksdb.display()
        )),
        "{stderr}"
    );

    // The fleet server sees the host it knew: osquery's node key, no enrollment.
    assert!(
        wait_until(LONG, || !server.requests_to("/log").is_empty()),
        "{}",
        d.stderr_text()
    );
    assert_eq!(enrolled.load(Ordering::SeqCst), 0, "{}", d.stderr_text());
    assert!(server.requests_to("/enroll").is_empty());
    for r in server.requests_to("/config") {
        assert_eq!(r.json()["node_key"], OSQUERY_KEY);
    }
    assert_eq!(
        server.requests_to("/log")[0].json()["node_key"],
        OSQUERY_KEY
    );

    // Its identity: osquery_info.instance_id and the `instance` host identifier.
    let identity = s.results_of("identity");
    assert_eq!(identity[0]["columns"]["instance_id"], UUID);
    assert_eq!(identity[0]["hostIdentifier"], UUID);

    // Only the row osquery had not seen, counted on from osquery's counter.
    let rows = logged(&s, "rows");
    assert_eq!(
        rows,
        vec![("added".to_owned(), 6, json!({"n": "3", "word": "three"}))],
        "{}",
        d.stderr_text()
    );
    assert_eq!(d.terminate(LONG).0.code(), Some(0));
    assert_eq!(snapshot(&rocksdb), before, "osquery's files changed");

    // The same host without osquery's database: it enrolls, gets a new identity and
    // logs every row as added.
    let fresh = Sandbox::new();
    let args = self::args(&fresh, &server);
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let mut d = fresh.start("fresh", &args);
    assert!(
        wait_until(LONG, || !fresh.results_of("identity").is_empty()
            && !fresh.results_of("rows").is_empty()),
        "{}",
        d.stderr_text()
    );
    assert_eq!(enrolled.load(Ordering::SeqCst), 1);
    let identity = fresh.results_of("identity");
    assert_ne!(identity[0]["columns"]["instance_id"], UUID);
    let mut rows = logged(&fresh, "rows");
    rows.sort_by_key(|(_, _, c)| c["n"].as_str().unwrap_or_default().to_owned());
    assert_eq!(
        rows,
        ["one", "two", "three"]
            .iter()
            .zip(1..)
            .map(|(w, n)| (
                "added".to_owned(),
                0,
                json!({"n": n.to_string(), "word": w})
            ))
            .collect::<Vec<_>>()
    );
    assert_eq!(d.terminate(LONG).0.code(), Some(0));
}
