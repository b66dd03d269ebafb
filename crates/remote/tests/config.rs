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
