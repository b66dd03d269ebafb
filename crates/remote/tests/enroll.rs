//! Enrollment and node-key requests against the test HTTPS server.

use oxquery_remote::TlsClient;
use oxquery_remote::enroll::{EnrollSettings, NODE_KEY, NodeKeys};
use oxquery_remote::testing::{Response, TestServer};
use oxquery_store::{Domain, Store};
use serde_json::{Value, json};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::sync::{Arc, Mutex};

fn client(server: &TestServer) -> TlsClient {
    TlsClient::new(server.tls_settings()).unwrap()
}

fn settings(secret: &std::path::Path) -> EnrollSettings {
    EnrollSettings {
        secret_path: secret.to_owned(),
        max_attempts: 3,
        host_identifier: "host-a".to_owned(),
        ..fleet_enroll()
    }
}

fn fleet_enroll() -> EnrollSettings {
    // Only the settings, from a server that is never asked.
    TestServer::start(|_| Response::Close).enroll_settings()
}

fn details() -> Box<dyn Fn() -> Value + Send + Sync> {
    Box::new(
        || json!({"os_version": {"name": "Debian"}, "osquery_info": {}, "system_info": {}, "platform_info": {}}),
    )
}

/// A server that hands out `key-<n>` for the right secret and accepts config requests
/// only with the newest key.
fn fleet() -> (TestServer, Arc<AtomicU32>) {
    let issued = Arc::new(AtomicU32::new(0));
    let n = Arc::clone(&issued);
    let server = TestServer::start(move |r| {
        let body = r.json();
        match r.path.as_str() {
            "/enroll" if body["enroll_secret"] == "s3cret" => {
                let k = n.fetch_add(1, Ordering::SeqCst) + 1;
                Response::Json(json!({"node_key": format!("key-{k}")}))
            }
            "/enroll" => Response::Json(json!({"error": "bad secret"})),
            "/config" => {
                let newest = format!("key-{}", n.load(Ordering::SeqCst));
                if body["node_key"] == newest.as_str() {
                    Response::Json(json!({"schedule": {}, "node_invalid": false}))
                } else {
                    Response::Body(401, br#"{"node_invalid": true}"#.to_vec())
                }
            }
            _ => Response::Close,
        }
    });
    (server, issued)
}

#[test]
fn enrolls_once_stores_the_key_and_sends_it() {
    let (server, issued) = fleet();
    let dir = tempfile::tempdir().unwrap();
    let secret = dir.path().join("secret");
    std::fs::write(&secret, "s3cret\n").unwrap();
    let store = Arc::new(Mutex::new(Store::open(&dir.path().join("db")).unwrap()));
    let keys = NodeKeys::new(
        client(&server),
        settings(&secret),
        Arc::clone(&store),
        details(),
    );
    let stop = AtomicBool::new(false);
    assert_eq!(keys.get(&stop).unwrap(), "key-1");
    assert_eq!(keys.get(&stop).unwrap(), "key-1");
    assert_eq!(issued.load(Ordering::SeqCst), 1);
    let enroll = &server.requests_to("/enroll")[0].json();
    assert_eq!(enroll["host_identifier"], "host-a");
    assert_eq!(enroll["platform_type"], "9");
    assert_eq!(enroll["host_details"]["os_version"]["name"], "Debian");
    assert_eq!(
        store
            .lock()
            .unwrap()
            .get_text(Domain::Configurations, NODE_KEY)
            .unwrap()
            .as_deref(),
        Some("key-1")
    );

    let config = keys
        .post_with_key("/config", json!({}), false, 3, &stop)
        .unwrap();
    assert_eq!(config["schedule"], json!({}));
    let sent = &server.requests_to("/config")[0];
    assert_eq!(sent.json()["node_key"], "key-1");
    assert_eq!(sent.header("authorization"), Some("NodeKey key-1"));

    // A restart keeps the key: a new NodeKeys over the same store does not enroll.
    drop(keys);
    let keys = NodeKeys::new(
        client(&server),
        settings(&secret),
        Arc::clone(&store),
        details(),
    );
    assert_eq!(keys.get(&stop).unwrap(), "key-1");
    assert_eq!(issued.load(Ordering::SeqCst), 1);
    // --enroll_always enrolls again at start.
    let mut always = settings(&secret);
    always.always = true;
    let keys = NodeKeys::new(client(&server), always, Arc::clone(&store), details());
    assert_eq!(keys.get(&stop).unwrap(), "key-2");
}

#[test]
fn an_invalid_key_is_replaced_by_enrolling_again() {
    let (server, issued) = fleet();
    let dir = tempfile::tempdir().unwrap();
    let secret = dir.path().join("secret");
    std::fs::write(&secret, "s3cret").unwrap();
    let store = Arc::new(Mutex::new(Store::in_memory().unwrap()));
    // A key the server no longer knows.
    store
        .lock()
        .unwrap()
        .put(Domain::Configurations, NODE_KEY, b"stale")
        .unwrap();
    let keys = NodeKeys::new(
        client(&server),
        settings(&secret),
        Arc::clone(&store),
        details(),
    );
    let stop = AtomicBool::new(false);
    let config = keys
        .post_with_key("/config", json!({}), false, 3, &stop)
        .unwrap();
    assert_eq!(config["schedule"], json!({}));
    assert_eq!(issued.load(Ordering::SeqCst), 1);
    let sent: Vec<_> = server
        .requests_to("/config")
        .iter()
        .map(|r| r.json()["node_key"].clone())
        .collect();
    assert_eq!(sent, [json!("stale"), json!("key-1")]);

    // With --disable_reenrollment the key stays and the request fails.
    store
        .lock()
        .unwrap()
        .put(Domain::Configurations, NODE_KEY, b"stale")
        .unwrap();
    let mut keep = settings(&secret);
    keep.keep_invalid_key = true;
    let keys = NodeKeys::new(client(&server), keep, Arc::clone(&store), details());
    let err = keys
        .post_with_key("/config", json!({}), false, 2, &stop)
        .unwrap_err();
    assert!(err.contains("Invalid node key"), "{err}");
    assert_eq!(keys.stored().as_deref(), Some("stale"));
}

#[test]
fn a_wrong_secret_fails_after_the_attempts_and_stop_ends_waiting() {
    let (server, issued) = fleet();
    let dir = tempfile::tempdir().unwrap();
    let secret = dir.path().join("secret");
    std::fs::write(&secret, "wrong").unwrap();
    let store = Arc::new(Mutex::new(Store::in_memory().unwrap()));
    let mut s = settings(&secret);
    s.max_attempts = 2;
    let keys = NodeKeys::new(client(&server), s.clone(), Arc::clone(&store), details());
    let err = keys.get(&AtomicBool::new(false)).unwrap_err();
    assert!(
        err.contains("bad secret") && err.contains("2 attempts"),
        "{err}"
    );
    assert_eq!(server.requests_to("/enroll").len(), 2);
    assert_eq!(issued.load(Ordering::SeqCst), 0);
    // Forever (0 attempts), until the daemon stops.
    s.max_attempts = 0;
    let keys = NodeKeys::new(client(&server), s, store, details());
    let stop = AtomicBool::new(true);
    assert!(keys.get(&stop).unwrap_err().contains("stopping"));
    // --disable_enrollment never asks.
    let mut off = settings(&PathBuf::new());
    off.disabled = true;
    let before = server.requests().len();
    let keys = NodeKeys::new(
        client(&server),
        off,
        Arc::new(Mutex::new(Store::in_memory().unwrap())),
        details(),
    );
    assert!(keys.get(&AtomicBool::new(false)).is_err());
    assert_eq!(server.requests().len(), before);
}
