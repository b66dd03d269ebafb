//! File carving end to end: a fleet server (the test HTTPS server with carve endpoints)
//! asks osqueryd for a carve through a distributed query on the `carves` table; the
//! daemon archives the files the test wrote (zstd-compressed), uploads the archive in
//! blocks carrying the query's id, and the `carves` table then reports the archive's
//! digest. The server's reassembled archive is unpacked with the system's zstd and tar
//! and compared with the files; its digest with sha256sum. The shell refuses to carve.

#[allow(dead_code)]
mod daemon_support;

use daemon_support::{Sandbox, wait_until};
use oxquery_remote::testing::{CarveServer, Request, Response, TestServer};
use oxquery_test_support::require_tool;
use serde_json::{Value, json};
use std::process::Command;
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

const LONG: Duration = Duration::from_secs(60);
const CARVE_QUERY_ID: &str = "carve-live-1";

fn content(seed: u32, len: u32) -> Vec<u8> {
    (0..len)
        .map(|i| ((i * 31 + seed * 17) % 251) as u8)
        .collect()
}

/// The rows the server received for live queries whose id starts with `prefix`.
fn answers(server: &TestServer, prefix: &str) -> Vec<Value> {
    server
        .requests_to("/write")
        .iter()
        .flat_map(|r| {
            r.json()["queries"]
                .as_object()
                .cloned()
                .unwrap_or_default()
                .into_iter()
                .filter(|(id, _)| id.starts_with(prefix))
                .flat_map(|(_, rows)| rows.as_array().cloned().unwrap_or_default())
        })
        .collect()
}

#[test]
fn a_distributed_carve_reaches_the_server_whole_with_its_request_id() {
    let (Some(tar), Some(zstd), Some(sha256sum)) = (
        require_tool("tar"),
        require_tool("zstd"),
        require_tool("sha256sum"),
    ) else {
        return;
    };
    let s = Sandbox::new();
    s.write_config("{}");
    let files = s.path().join("to carve");
    std::fs::create_dir_all(files.join("deeper")).unwrap();
    let written = [
        (files.join("a.log"), content(1, 5000)),
        (files.join("deeper/b.bin"), content(2, 1)),
        (files.join("deeper/empty"), Vec::new()),
    ];
    for (path, bytes) in &written {
        std::fs::write(path, bytes).unwrap();
    }
    let carve_sql = format!(
        "select carve_guid, status, carve, request_id from carves where path like '{}/%%' and carve = 1",
        files.display()
    );

    // The server: the carve query at the first read, then a listing of the carves at
    // each read once the upload is complete.
    let carves = Arc::new(CarveServer::default());
    let reads = Arc::new(AtomicU32::new(0));
    let (c, n) = (Arc::clone(&carves), Arc::clone(&reads));
    let server = TestServer::start(move |r: &Request| {
        if let Some(answer) = c.answer(r) {
            return answer;
        }
        match r.path.as_str() {
            "/enroll" => Response::Json(json!({"node_key": "fleet-key"})),
            "/read" => {
                let i = n.fetch_add(1, Ordering::SeqCst);
                if i == 0 {
                    Response::Json(json!({"queries": {CARVE_QUERY_ID: carve_sql.clone()}}))
                } else if c.sessions().iter().any(|s| s.complete()) {
                    Response::Json(json!({"queries": {
                        format!("list-{i}"): "select carve_guid, status, sha256, size, request_id from carves"
                    }}))
                } else {
                    Response::Json(json!({"queries": {}}))
                }
            }
            "/write" => Response::Json(json!({})),
            _ => Response::Body(404, b"{}".to_vec()),
        }
    });
    let mut args = s.enroll_args(&server);
    args.extend([
        "--disable_distributed=false".to_owned(),
        "--distributed_plugin=tls".to_owned(),
        "--distributed_tls_read_endpoint=/read".to_owned(),
        "--distributed_tls_write_endpoint=/write".to_owned(),
        "--distributed_interval=1".to_owned(),
        "--disable_carver=false".to_owned(),
        format!("--carver_start_endpoint={}", CarveServer::START),
        format!("--carver_continue_endpoint={}", CarveServer::CONTINUE),
        "--carver_block_size=1000".to_owned(),
        "--carver_compression=true".to_owned(),
    ]);
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let mut d = s.start("carve", &args);

    // The scheduling query answers its new carve.
    assert!(
        wait_until(LONG, || !answers(&server, CARVE_QUERY_ID).is_empty()),
        "no answer to the carve query\n{}",
        d.stderr_text()
    );
    let scheduled = answers(&server, CARVE_QUERY_ID)[0].clone();
    assert_eq!(scheduled["carve"], "1", "{scheduled}");
    assert_eq!(scheduled["request_id"], CARVE_QUERY_ID);
    let guid = scheduled["carve_guid"].as_str().unwrap().to_owned();

    // The upload: complete, announced with the query's id, every block carrying it.
    assert!(
        wait_until(LONG, || carves.sessions().iter().any(|s| s.complete())),
        "no complete upload\n{}",
        d.stderr_text()
    );
    let session = carves
        .sessions()
        .into_iter()
        .find(|s| s.complete())
        .unwrap();
    assert_eq!(session.start["carve_id"], guid.as_str());
    assert_eq!(session.start["request_id"], CARVE_QUERY_ID);
    assert_eq!(session.start["block_size"], 1000);
    assert_eq!(session.start["node_key"], "fleet-key");
    assert!(
        session
            .block_request_ids
            .iter()
            .all(|id| id == CARVE_QUERY_ID)
    );
    let archive = session.data();
    assert_eq!(session.start["carve_size"], archive.len());

    // Unpacked by the system's tools, the archive holds the files as written.
    let out = tempfile::tempdir().unwrap();
    let zst = out.path().join("carve.tar.zst");
    std::fs::write(&zst, &archive).unwrap();
    let tar_file = out.path().join("carve.tar");
    assert!(
        Command::new(zstd)
            .args(["-q", "-d"])
            .arg(&zst)
            .arg("-o")
            .arg(&tar_file)
            .status()
            .unwrap()
            .success()
    );
    let root = out.path().join("x");
    std::fs::create_dir(&root).unwrap();
    assert!(
        Command::new(tar)
            .arg("-xf")
            .arg(&tar_file)
            .arg("-C")
            .arg(&root)
            .status()
            .unwrap()
            .success()
    );
    for (path, bytes) in &written {
        let inside = root.join(path.strip_prefix("/").unwrap());
        assert_eq!(
            &std::fs::read(&inside).unwrap(),
            bytes,
            "{}",
            path.display()
        );
    }

    // The carves table reports the upload's digest and size once it succeeded.
    let succeeded = || {
        answers(&server, "list-")
            .into_iter()
            .find(|row| row["carve_guid"] == guid.as_str() && row["status"] == "SUCCESS")
    };
    assert!(
        wait_until(LONG, || succeeded().is_some()),
        "the carve never showed SUCCESS\n{}",
        d.stderr_text()
    );
    let row = succeeded().unwrap();
    let digest = Command::new(sha256sum).arg(&zst).output().unwrap().stdout;
    assert_eq!(
        row["sha256"].as_str().unwrap(),
        String::from_utf8_lossy(&digest[..64])
    );
    assert_eq!(row["size"], archive.len().to_string());
    assert_eq!(row["request_id"], CARVE_QUERY_ID);
    d.terminate(LONG);
}

#[test]
fn the_shell_refuses_to_carve() {
    let dir = tempfile::tempdir().unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_osqueryi"))
        .arg(format!(
            "--database_path={}",
            dir.path().join("db").display()
        ))
        .arg("--flagfile=/dev/null")
        .arg("--json")
        .arg("--disable_carver=false")
        .arg("--carver_disable_function=false")
        .arg(
            "select (select count(*) from carves where path = '/etc/hostname' and carve = 1) as n, \
             carve(path) as r from (select '/etc/hostname' as path)",
        )
        .output()
        .unwrap();
    let stdout: Value = serde_json::from_slice(&out.stdout).unwrap_or(Value::Null);
    assert_eq!(
        stdout,
        json!([{"n": "0", "r": "Carve Failed:"}]),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("osqueryd"), "{stderr}");
}
