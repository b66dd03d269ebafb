//! osqueryd against a fleet server speaking osquery's TLS API (the test HTTPS server on
//! loopback): it enrolls with the secret and host details, takes its schedule from the
//! config endpoint, logs results to the logger endpoint, answers live queries, survives
//! the server going away or answering garbage, loses no line to a `kill -9` mid-request,
//! and keeps its node key across a restart.

#[allow(dead_code)]
mod daemon_support;

use daemon_support::{Sandbox, wait_until};
use oxquery_remote::testing::{Request, Response, TestServer};
use serde_json::{Value, json};
use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

const LONG: Duration = Duration::from_secs(60);

/// A fleet server: enrolls with the right secret, hands out a config with one query,
/// accepts logs, and offers one live query once.
struct Fleet {
    server: TestServer,
    up: Arc<AtomicBool>,
    enrolled: Arc<AtomicU32>,
    /// Answers the logger endpoint gives, in turn, before it answers normally again.
    log_script: Arc<Mutex<VecDeque<Response>>>,
}

fn fleet() -> Fleet {
    let up = Arc::new(AtomicBool::new(true));
    let enrolled = Arc::new(AtomicU32::new(0));
    let live_given = Arc::new(Mutex::new(false));
    let log_script = Arc::new(Mutex::new(VecDeque::new()));
    let (u, e, script) = (
        Arc::clone(&up),
        Arc::clone(&enrolled),
        Arc::clone(&log_script),
    );
    let server = TestServer::start(move |r: &Request| {
        if !u.load(Ordering::SeqCst) {
            return Response::Close;
        }
        let body = r.json();
        let known = body["node_key"] == "fleet-key";
        match r.path.as_str() {
            "/enroll" if body["enroll_secret"] == "s3cret" => {
                e.fetch_add(1, Ordering::SeqCst);
                Response::Json(json!({"node_key": "fleet-key"}))
            }
            "/enroll" => Response::Json(json!({"error": "bad secret"})),
            _ if !known => Response::Body(401, br#"{"node_invalid": true}"#.to_vec()),
            "/config" => Response::Json(json!({
                "options": {"schedule_splay_percent": 0},
                "schedule": {"fleet_q": {"query": "select 'from fleet' as source, unix_time as t from time", "interval": 1}}
            })),
            "/log" => script
                .lock()
                .unwrap()
                .pop_front()
                .unwrap_or(Response::Json(json!({}))),
            "/read" => {
                let mut given = live_given.lock().unwrap();
                if *given {
                    Response::Json(json!({"queries": {}}))
                } else {
                    *given = true;
                    Response::Json(json!({"queries": {"live1": "select 40 + 2 as answer"}}))
                }
            }
            "/write" => Response::Json(json!({})),
            _ => Response::Body(404, b"{}".to_vec()),
        }
    });
    Fleet {
        server,
        up,
        enrolled,
        log_script,
    }
}

fn tls_args(s: &Sandbox, fleet: &Fleet) -> Vec<String> {
    let mut args = s.enroll_args(&fleet.server);
    args.extend([
        "--config_plugin=tls".into(),
        "--config_tls_endpoint=/config".into(),
        "--config_refresh=2".into(),
        "--logger_plugin=filesystem,tls".into(),
        "--logger_tls_endpoint=/log".into(),
        "--logger_tls_period=1".into(),
        "--disable_distributed=false".into(),
        "--distributed_tls_read_endpoint=/read".into(),
        "--distributed_tls_write_endpoint=/write".into(),
        "--distributed_interval=1".into(),
    ]);
    args
}

/// Every result line the server received.
fn logged(fleet: &Fleet) -> Vec<Value> {
    fleet
        .server
        .requests_to("/log")
        .iter()
        .flat_map(|r| r.json()["data"].as_array().cloned().unwrap_or_default())
        .collect()
}

#[test]
fn enrolls_fetches_its_config_logs_and_answers_live_queries() {
    let fleet = fleet();
    let s = Sandbox::new();
    let args = tls_args(&s, &fleet);
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let mut d = s.start("tls", &args);

    // Results of the fleet's query reach the logger endpoint with the node key.
    assert!(
        wait_until(LONG, || logged(&fleet)
            .iter()
            .any(|l| l["name"] == "fleet_q")),
        "no result reached the server\n{}",
        d.stderr_text()
    );
    // Results and statuses are sent from two threads: the first request may be either.
    let log = fleet
        .server
        .requests_to("/log")
        .into_iter()
        .find(|r| r.json()["log_type"] == "result")
        .unwrap();
    assert_eq!(log.json()["node_key"], "fleet-key");
    assert_eq!(log.header("authorization"), Some("NodeKey fleet-key"));
    let line = logged(&fleet)
        .into_iter()
        .find(|l| l["name"] == "fleet_q")
        .unwrap();
    assert_eq!(line["columns"]["source"], "from fleet");
    // The filesystem logger got the same line.
    assert!(!s.results_of("fleet_q").is_empty());

    // The status log goes there too, in osquery's status shape.
    let statuses = || {
        fleet
            .server
            .requests_to("/log")
            .iter()
            .filter(|r| r.json()["log_type"] == "status")
            .flat_map(|r| r.json()["data"].as_array().cloned().unwrap_or_default())
            .collect::<Vec<Value>>()
    };
    assert!(
        wait_until(LONG, || !statuses().is_empty()),
        "{}",
        d.stderr_text()
    );
    let status = &statuses()[0];
    for key in [
        "hostIdentifier",
        "calendarTime",
        "unixTime",
        "severity",
        "filename",
        "line",
        "message",
        "version",
    ] {
        assert!(status.get(key).is_some(), "{key} missing: {status}");
    }

    // Enrollment: once, with the host's details.
    let enroll = &fleet.server.requests_to("/enroll")[0].json();
    assert_eq!(enroll["platform_type"], "9");
    assert!(
        enroll["host_details"]["os_version"]["name"].is_string(),
        "{enroll}"
    );
    assert!(
        enroll["host_details"]["osquery_info"]["version"].is_string(),
        "{enroll}"
    );
    assert_eq!(fleet.enrolled.load(Ordering::SeqCst), 1);

    // The live query's answer.
    assert!(
        wait_until(LONG, || !fleet.server.requests_to("/write").is_empty()),
        "no live query answer\n{}",
        d.stderr_text()
    );
    let write = fleet.server.requests_to("/write")[0].json();
    assert_eq!(write["queries"]["live1"], json!([{"answer": "42"}]));
    assert_eq!(write["statuses"]["live1"], 0);
    assert_eq!(write["node_key"], "fleet-key");

    // An extension hands the tls logger plugin a line through the manager's `call`
    // (the SDK's client, as an extension's `logString` to one plugin does).
    if let Some(python) = oxquery_test_support::osquery_sdk_python() {
        let line = json!({"name": "from_extension", "action": "added", "columns": {"a": "1"}});
        let out = std::process::Command::new(python)
            .arg(concat!(env!("CARGO_MANIFEST_DIR"), "/tests/sdk/client.py"))
            .arg(s.extensions_socket())
            .args(["call", "logger", "tls"])
            .arg(json!({"string": line.to_string()}).to_string())
            .output()
            .unwrap();
        let answer: Value = serde_json::from_slice(&out.stdout)
            .unwrap_or_else(|_| panic!("{}", String::from_utf8_lossy(&out.stderr)));
        assert_eq!(answer["status"]["code"], 0, "{answer}");
        assert!(
            wait_until(LONG, || logged(&fleet).contains(&line)),
            "the extension's line never reached the server\n{}",
            d.stderr_text()
        );
    }

    // The server goes away: the daemon keeps running and keeps its results.
    fleet.up.store(false, Ordering::SeqCst);
    let before = s.results_of("fleet_q").len();
    assert!(wait_until(LONG, || s.results_of("fleet_q").len() >= before + 3));
    assert!(
        d.exited().is_none(),
        "the daemon stopped\n{}",
        d.stderr_text()
    );
    fleet.up.store(true, Ordering::SeqCst);
    // Every line logged to the file meanwhile reaches the server once it is back.
    let recorded = s.results_of("fleet_q").len();
    let at_server = || {
        logged(&fleet)
            .iter()
            .filter(|l| l["name"] == "fleet_q")
            .count()
    };
    assert!(
        wait_until(LONG, || at_server() >= recorded),
        "{} of {recorded} lines reached the server\n{}",
        at_server(),
        d.stderr_text()
    );
    d.terminate(LONG);

    // A restart keeps the node key: no new enrollment.
    let mut d = s.start("tls2", &args);
    let requests = fleet.server.requests().len();
    assert!(wait_until(LONG, || fleet.server.requests().len() > requests + 2));
    assert_eq!(
        fleet.enrolled.load(Ordering::SeqCst),
        1,
        "{}",
        d.stderr_text()
    );
    d.terminate(LONG);
}

#[test]
fn a_wrong_secret_is_a_clear_failure() {
    let fleet = fleet();
    let s = Sandbox::new();
    let mut args = tls_args(&s, &fleet);
    std::fs::write(s.path().join("secret"), "wrong").unwrap();
    args.push("--tls_enroll_max_attempts=1".into());
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let mut d = s.spawn("wrong", &args);
    assert!(
        wait_until(LONG, || d.stderr_text().contains("bad secret")),
        "{}",
        d.stderr_text()
    );
    d.terminate(LONG);
}

#[test]
fn with_config_backup_a_restart_during_an_outage_runs_the_last_fetched_schedule() {
    let fleet = fleet();
    let s = Sandbox::new();
    let mut args = tls_args(&s, &fleet);
    args.push("--config_enable_backup".into());
    args.push("--config_tls_max_attempts=1".into());
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let mut d = s.start("backup1", &args);
    assert!(
        wait_until(LONG, || !s.results_of("fleet_q").is_empty()),
        "{}",
        d.stderr_text()
    );
    d.terminate(LONG);

    // The server is gone; the daemon starts from the config it fetched last time.
    fleet.up.store(false, Ordering::SeqCst);
    let before = s.results_of("fleet_q").len();
    let mut d = s.start("backup2", &args);
    assert!(
        wait_until(LONG, || s.results_of("fleet_q").len() > before),
        "the backed-up schedule did not run\n{}",
        d.stderr_text()
    );
    assert!(
        d.stderr_text().contains("starting from the backup"),
        "{}",
        d.stderr_text()
    );
    d.terminate(LONG);
}

/// The result lines of `fleet_q` the filesystem logger wrote that the server never got.
fn undelivered(s: &Sandbox, fleet: &Fleet) -> Vec<Value> {
    let at_server = logged(fleet);
    s.results_of("fleet_q")
        .into_iter()
        .map(Value::Object)
        .filter(|line| !at_server.contains(line))
        .collect()
}

#[test]
fn a_hostile_logger_endpoint_delays_delivery_but_loses_nothing() {
    let fleet = fleet();
    // Garbage, a cut-off body, an HTML error page, a revoked key (enroll again), a slow
    // answer, a dropped connection, JSON that is not an object: then normal answers.
    fleet.log_script.lock().unwrap().extend([
        Response::Body(200, b"{not json".to_vec()),
        Response::Truncated(br#"{"ok":"#.to_vec()),
        Response::Body(500, b"<html>oops</html>".to_vec()),
        Response::Body(401, br#"{"node_invalid": true}"#.to_vec()),
        Response::Delayed(Duration::from_secs(3), Box::new(Response::Json(json!({})))),
        Response::Close,
        Response::Json(json!([1, 2])),
    ]);
    let s = Sandbox::new();
    let args = tls_args(&s, &fleet);
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let mut d = s.start("hostile", &args);
    assert!(
        wait_until(LONG, || fleet.log_script.lock().unwrap().is_empty()),
        "the script was not played\n{}",
        d.stderr_text()
    );
    // Lines logged after the script too: the sender is still running.
    let played = s.results_of("fleet_q").len();
    assert!(wait_until(LONG, || s.results_of("fleet_q").len() >= played + 2));
    assert!(
        wait_until(LONG, || undelivered(&s, &fleet).is_empty()),
        "lines never reached the server: {:?}\n{}",
        undelivered(&s, &fleet),
        d.stderr_text()
    );
    assert!(
        d.exited().is_none(),
        "the daemon stopped\n{}",
        d.stderr_text()
    );
    // The revoked key was replaced by enrolling again.
    assert_eq!(
        fleet.enrolled.load(Ordering::SeqCst),
        2,
        "{}",
        d.stderr_text()
    );
    let warnings = s.status_log("WARNING") + &s.status_log("ERROR") + &d.stderr_text();
    assert!(warnings.contains("Request failed"), "{warnings}");
    d.terminate(LONG);
}

#[test]
fn kill_9_while_a_batch_is_in_flight_loses_no_line() {
    let fleet = fleet();
    let s = Sandbox::new();
    let args = tls_args(&s, &fleet);
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let mut d = s.start("inflight1", &args);
    assert!(
        wait_until(LONG, || !logged(&fleet).is_empty()),
        "{}",
        d.stderr_text()
    );
    // The next batch is received but its answer never comes back: the daemon dies
    // waiting for it.
    let before = fleet.server.requests_to("/log").len();
    fleet
        .log_script
        .lock()
        .unwrap()
        .push_back(Response::Delayed(
            Duration::from_secs(20),
            Box::new(Response::Json(json!({}))),
        ));
    assert!(wait_until(LONG, || fleet
        .log_script
        .lock()
        .unwrap()
        .is_empty()));
    // Results and statuses are sent from two threads: every request from `before` on may
    // have been in flight at the kill.
    let in_flight: Vec<Value> = fleet.server.requests_to("/log")[before..]
        .iter()
        .flat_map(|r| r.json()["data"].as_array().cloned().unwrap_or_default())
        .collect();
    d.kill9();

    let mut d = s.start("inflight2", &args);
    let recorded = s.results_of("fleet_q").len();
    assert!(wait_until(LONG, || s.results_of("fleet_q").len() >= recorded + 2));
    assert!(
        wait_until(LONG, || undelivered(&s, &fleet).is_empty()),
        "lines lost: {:?}\n{}",
        undelivered(&s, &fleet),
        d.stderr_text()
    );
    // At least once: the only lines the server got twice are those of the batches in
    // flight when the daemon died.
    let lines = logged(&fleet);
    for (i, line) in lines.iter().enumerate() {
        if lines[..i].contains(line) {
            assert!(
                in_flight.contains(line),
                "a line outside the in-flight batch came twice: {line}"
            );
        }
    }
    d.terminate(LONG);
}

/// The yara table's `sigurl` in the daemon: the config allows the server's rule URLs and
/// sets `yara_sigurl_authenticate`, so the scheduled scan fetches its rules with a POST
/// of the node key the daemon enrolled for, and matches the file the test wrote.
#[test]
fn a_scheduled_yara_scan_fetches_its_rules_with_the_node_key() {
    let host = Arc::new(Mutex::new(String::new()));
    let s = Sandbox::new();
    let target = s.path().join("scanned.bin");
    std::fs::write(&target, b"....e2e-sigurl-marker-93d....").unwrap();
    let (h, scanned) = (Arc::clone(&host), target.display().to_string());
    let server = TestServer::start(move |r: &Request| {
        let body = r.json();
        match r.path.as_str() {
            "/enroll" => Response::Json(json!({"node_key": "fleet-key"})),
            "/config" => {
                let base = format!("https://{}", h.lock().unwrap());
                Response::Json(json!({
                    "options": {"yara_sigurl_authenticate": true, "schedule_splay_percent": 0},
                    "yara": {"signature_urls": [format!("{base}/yara/.*\\.yar")]},
                    "schedule": {"yara_q": {
                        "query": format!(
                            "select matches, count, sigurl from yara_file where path = '{scanned}' \
                             and sigurl = '{base}/yara/remote.yar'"
                        ),
                        "interval": 1
                    }}
                }))
            }
            "/yara/remote.yar" if r.method == "POST" && body["node_key"] == "fleet-key" => {
                Response::Body(
                    200,
                    br#"rule fetched_rule { strings: $m = "e2e-sigurl-marker-93d" condition: $m }"#
                        .to_vec(),
                )
            }
            _ => Response::Body(401, b"{}".to_vec()),
        }
    });
    *host.lock().unwrap() = server.hostname();
    let mut args = s.enroll_args(&server);
    args.extend([
        "--config_plugin=tls".to_owned(),
        "--config_tls_endpoint=/config".to_owned(),
        "--yara_delay=0".to_owned(),
    ]);
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let mut d = s.start("yara", &args);
    assert!(
        wait_until(LONG, || !s.results_of("yara_q").is_empty()),
        "no yara result\n{}",
        d.stderr_text()
    );
    let line = Value::Object(s.results_of("yara_q")[0].clone());
    assert_eq!(line["columns"]["matches"], "fetched_rule", "{line}");
    assert_eq!(line["columns"]["count"], "1", "{line}");
    let fetches = server.requests_to("/yara/remote.yar");
    assert!(!fetches.is_empty());
    assert!(fetches.iter().all(|r| r.method == "POST"));
    d.terminate(LONG);
}
