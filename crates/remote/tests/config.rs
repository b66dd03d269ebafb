//! The tls config plugin against the test HTTPS server.

use oxquery_remote::config::{ConfigSettings, fetch_config};
use oxquery_remote::testing::{Response, TestServer};
use oxquery_store::Store;
use serde_json::{Value, json};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

#[test]
fn the_config_is_the_answer_and_an_outage_an_error() {
    let up = Arc::new(AtomicBool::new(true));
    let state = Arc::clone(&up);
    let server = TestServer::start(move |r| match r.path.as_str() {
        "/enroll" => Response::Json(json!({"node_key": "k"})),
        "/config" if state.load(Ordering::SeqCst) => Response::Json(
            json!({"schedule": {"q": {"query": "select 1", "interval": 10}}, "node_invalid": false}),
        ),
        _ => Response::Close,
    });
    let store = Arc::new(Mutex::new(Store::in_memory().unwrap()));
    let keys = server.node_keys(store);
    let settings = ConfigSettings {
        endpoint: "/config".to_owned(),
        max_attempts: 2,
    };
    let stop = AtomicBool::new(false);
    let text = fetch_config(&keys, &settings, &stop).unwrap();
    let config: Value = serde_json::from_str(&text).unwrap();
    assert_eq!(
        config,
        json!({"schedule": {"q": {"query": "select 1", "interval": 10}}})
    );
    assert_eq!(
        server.requests_to("/config")[0].json(),
        json!({"node_key": "k"})
    );

    up.store(false, Ordering::SeqCst);
    let error = fetch_config(&keys, &settings, &stop).unwrap_err();
    assert!(error.starts_with("Request failed"), "{error}");
    // Two attempts were made.
    assert_eq!(server.requests_to("/config").len(), 3);
}

#[test]
fn the_node_api_gets_the_config_under_the_node_and_unwraps_it() {
    let server = TestServer::start(|r| match (r.method.as_str(), r.path.as_str()) {
        ("POST", "/enroll") => Response::Json(json!({"node_key": "node-7"})),
        ("GET", "/node-7/config") => Response::Json(json!({
            "config": "{\"schedule\":{\"q\":{\"query\":\"select 1\",\"interval\":10}}}"
        })),
        ("POST", "/node-7/log") => Response::Json(json!({})),
        _ => Response::Close,
    });
    let store = Arc::new(Mutex::new(Store::in_memory().unwrap()));
    let mut enroll = server.enroll_settings();
    enroll.node_api = true;
    let keys = oxquery_remote::NodeKeys::new(
        oxquery_remote::TlsClient::new(server.tls_settings()).unwrap(),
        enroll,
        store,
        Box::new(|| json!({})),
    );
    let settings = ConfigSettings {
        endpoint: "/config".to_owned(),
        max_attempts: 1,
    };
    let stop = AtomicBool::new(false);
    let text = fetch_config(&keys, &settings, &stop).unwrap();
    assert_eq!(
        serde_json::from_str::<Value>(&text).unwrap(),
        json!({"schedule": {"q": {"query": "select 1", "interval": 10}}})
    );
    let get = &server.requests_to("/node-7/config")[0];
    assert!(get.body.is_empty());
    assert_eq!(get.header("authorization"), Some("NodeKey node-7"));
    // Other plugins' POSTs go under the node too, the key still in the body.
    keys.post_with_key("/log", json!({"data": []}), false, 1, &stop)
        .unwrap();
    assert_eq!(
        server.requests_to("/node-7/log")[0].json()["node_key"],
        "node-7"
    );
}
