//! The client against the test HTTPS server on loopback.

use oxquery_remote::testing::{Response, TestServer};
use oxquery_remote::{RequestError, TlsClient, TlsSettings};
use serde_json::json;
use std::path::PathBuf;
use std::time::Duration;

fn settings(server: &TestServer) -> TlsSettings {
    server.tls_settings()
}

#[test]
fn posts_json_with_osquery_headers_and_reads_the_answer() {
    let server = TestServer::start(|r| match r.path.as_str() {
        "/enroll" => Response::Json(json!({"node_key": "abc"})),
        _ => Response::Body(404, b"{\"error\":\"no such endpoint\"}".to_vec()),
    });
    let client = TlsClient::new(settings(&server)).unwrap();
    let answer = client
        .post("/enroll", &json!({"enroll_secret": "s"}), false, None)
        .unwrap();
    assert_eq!(answer, json!({"node_key": "abc"}));
    let sent = &server.requests_to("/enroll")[0];
    assert_eq!(sent.method, "POST");
    assert_eq!(sent.header("content-type"), Some("application/json"));
    assert_eq!(sent.header("accept"), Some("application/json"));
    assert_eq!(sent.header("user-agent"), Some("osquery/5.23.0"));
    assert_eq!(sent.header("authorization"), None);
    assert_eq!(sent.json(), json!({"enroll_secret": "s"}));

    // The status is not looked at; the body's error is.
    let err = client
        .post("/other", &json!({}), false, Some("k1"))
        .unwrap_err();
    assert_eq!(err, RequestError::Server("no such endpoint".to_owned()));
    let sent = &server.requests_to("/other")[0];
    assert_eq!(sent.header("authorization"), Some("NodeKey k1"));
}

#[test]
fn gzip_bodies_arrive_whole() {
    let server = TestServer::start(|_| Response::Json(json!({})));
    let client = TlsClient::new(settings(&server)).unwrap();
    let data: Vec<_> = (0..500).map(|i| json!({"line": i})).collect();
    let body = json!({"node_key": "k", "log_type": "result", "data": data});
    client.post("/log", &body, true, None).unwrap();
    let sent = &server.requests_to("/log")[0];
    assert_eq!(sent.header("content-encoding"), Some("gzip"));
    assert_eq!(sent.json(), body);
}

#[test]
fn the_server_is_verified_against_the_given_ca_only() {
    let server = TestServer::start(|_| Response::Json(json!({})));
    let other = TestServer::start(|_| Response::Json(json!({})));
    let mut wrong = settings(&server);
    wrong.server_certs = other.ca_path().to_owned();
    let err = TlsClient::new(wrong)
        .unwrap()
        .post("/x", &json!({}), false, None)
        .unwrap_err();
    assert!(matches!(err, RequestError::Transport(_)), "{err}");
    assert!(
        server.requests().is_empty(),
        "a request got through an unverified connection"
    );
    // A missing bundle file falls back to the system's roots, which do not know our CA.
    let mut system = settings(&server);
    system.server_certs = PathBuf::from("/nonexistent/certs.pem");
    assert!(
        TlsClient::new(system)
            .unwrap()
            .post("/x", &json!({}), false, None)
            .is_err()
    );
}

#[test]
fn a_client_certificate_is_presented_when_given() {
    let server = TestServer::start(|_| Response::Json(json!({})));
    let mut with_cert = settings(&server);
    let (cert, key) = server.client_cert();
    with_cert.client_cert = Some((cert.to_owned(), key.to_owned()));
    TlsClient::new(with_cert)
        .unwrap()
        .post("/with", &json!({}), false, None)
        .unwrap();
    assert!(server.requests_to("/with")[0].client_certified);
    TlsClient::new(settings(&server))
        .unwrap()
        .post("/without", &json!({}), false, None)
        .unwrap();
    assert!(!server.requests_to("/without")[0].client_certified);
    // Unreadable client files are a clear error at set-up.
    let mut missing = settings(&server);
    missing.client_cert = Some(("/nonexistent.pem".into(), "/nonexistent.key".into()));
    assert!(
        TlsClient::new(missing)
            .unwrap_err()
            .contains("/nonexistent.pem")
    );
}

#[test]
fn broken_answers_are_errors_never_hangs() {
    let server = TestServer::start(|r| match r.path.as_str() {
        "/truncated" => Response::Truncated(b"{\"node_key\":".to_vec()),
        "/close" => Response::Close,
        "/slow" => Response::Delayed(Duration::from_secs(8), Box::new(Response::Json(json!({})))),
        "/invalid" => Response::Json(json!({"node_invalid": true})),
        _ => Response::Body(200, b"<html>oops</html>".to_vec()),
    });
    let client = TlsClient::new(settings(&server)).unwrap();
    let post = |path| client.post(path, &json!({}), false, None).unwrap_err();
    assert!(matches!(post("/truncated"), RequestError::Transport(_)));
    assert!(matches!(post("/close"), RequestError::Transport(_)));
    assert!(matches!(post("/html"), RequestError::Malformed(_)));
    assert_eq!(post("/invalid"), RequestError::NodeInvalid(None));
    // The 5 s timeout of these settings ends the wait for an 8 s answer.
    assert!(matches!(post("/slow"), RequestError::Transport(_)));
}

#[test]
fn connections_are_reused_unless_session_reuse_is_off() {
    let server = TestServer::start(|_| Response::Json(json!({})));
    let client = TlsClient::new(settings(&server)).unwrap();
    for _ in 0..3 {
        client.post("/x", &json!({}), false, None).unwrap();
    }
    assert_eq!(server.connections(), 1);
    let mut fresh = settings(&server);
    fresh.session_reuse = false;
    let client = TlsClient::new(fresh).unwrap();
    for _ in 0..3 {
        client.post("/x", &json!({}), false, None).unwrap();
    }
    assert_eq!(server.connections(), 4);
    // The second client's later connections resume the TLS session of its first (the
    // session cache belongs to a client).
    let resumed: Vec<bool> = server.requests().iter().map(|r| r.resumed).collect();
    assert_eq!(resumed, [false, false, false, false, true, true]);
}
