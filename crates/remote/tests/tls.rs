//! Server verification beyond webpki's (certificates naming the host only in their CN,
//! as osquery's OpenSSL accepts them) and `--proxy_hostname`, against the test server
//! and the CONNECT proxy on loopback.

use oxquery_remote::testing::{ConnectProxy, Response, ServerCert, TestServer};
use oxquery_remote::{RequestError, TlsClient, TlsSettings};
use serde_json::json;
use x509_parser::oid_registry::OID_X509_EXT_SUBJECT_ALT_NAME;

fn ok_server(cert: ServerCert) -> TestServer {
    TestServer::start_with(cert, |_| Response::Json(json!({"ok": true})))
}

fn post(settings: TlsSettings, path: &str) -> Result<serde_json::Value, RequestError> {
    TlsClient::new(settings)
        .unwrap()
        .post(path, &json!({}), false, None)
}

/// The subjectAltName extension and common names of the server's certificate.
fn names(server: &TestServer) -> (bool, Vec<String>) {
    let (_, cert) = x509_parser::parse_x509_certificate(server.leaf_der()).unwrap();
    let has_san = cert
        .extensions()
        .iter()
        .any(|e| e.oid == OID_X509_EXT_SUBJECT_ALT_NAME);
    let cns = cert
        .subject()
        .iter_common_name()
        .map(|cn| cn.as_str().unwrap().to_owned())
        .collect();
    (has_san, cns)
}

/// A refusal of the server's certificate (not some other transport failure), with no
/// request reaching the server.
fn assert_certificate_refused(
    server: &TestServer,
    result: Result<serde_json::Value, RequestError>,
) {
    match result {
        Err(RequestError::Transport(e)) => assert!(
            e.to_lowercase().contains("certificate"),
            "not a certificate refusal: {e}"
        ),
        other => panic!("expected a certificate refusal, got {other:?}"),
    }
    assert!(
        server.requests().is_empty(),
        "a request got through an unverified connection"
    );
}

#[test]
fn a_certificate_naming_the_host_only_in_its_cn_is_accepted() {
    let server = ok_server(ServerCert::cn_only("localhost"));
    assert_eq!(names(&server), (false, vec!["localhost".to_owned()]));
    assert_eq!(
        post(server.tls_settings(), "/cn").unwrap(),
        json!({"ok": true})
    );
    // The host is compared without regard to case, as OpenSSL does.
    let mut upper = server.tls_settings();
    upper.hostname = format!("LocalHost:{}", server.port());
    post(upper, "/upper").unwrap();
    assert_eq!(server.requests_to("/cn").len(), 1);
    assert_eq!(server.requests_to("/upper").len(), 1);
}

#[test]
fn a_cn_only_certificate_for_another_host_is_refused() {
    let server = ok_server(ServerCert::cn_only("fleet.example.com"));
    assert_eq!(
        names(&server),
        (false, vec!["fleet.example.com".to_owned()])
    );
    assert_certificate_refused(&server, post(server.tls_settings(), "/x"));
}

#[test]
fn a_subject_alt_name_for_another_host_is_refused_whatever_the_cn_says() {
    let server = ok_server(ServerCert {
        alt_names: vec!["fleet.example.com".to_owned()],
        common_name: Some("localhost".to_owned()),
    });
    assert_eq!(names(&server), (true, vec!["localhost".to_owned()]));
    assert_certificate_refused(&server, post(server.tls_settings(), "/x"));
}

#[test]
fn a_cn_only_certificate_from_an_untrusted_ca_is_refused() {
    let server = ok_server(ServerCert::cn_only("localhost"));
    let other = ok_server(ServerCert::cn_only("localhost"));
    let mut settings = server.tls_settings();
    settings.server_certs = other.ca_path().to_owned();
    assert_certificate_refused(&server, post(settings, "/x"));
}

#[test]
fn an_address_is_matched_only_by_an_ip_subject_alt_name_as_openssl_does() {
    // OpenSSL's address check (X509_check_ip_asc, which osquery uses for an address)
    // never reads the CN.
    let server = ok_server(ServerCert::cn_only("127.0.0.1"));
    let mut by_address = server.tls_settings();
    by_address.hostname = format!("127.0.0.1:{}", server.port());
    assert_certificate_refused(&server, post(by_address, "/x"));
    // The control: the default certificate names 127.0.0.1 as an IP subjectAltName.
    let server = ok_server(ServerCert::default());
    let mut by_address = server.tls_settings();
    by_address.hostname = format!("127.0.0.1:{}", server.port());
    post(by_address, "/ip").unwrap();
    assert_eq!(server.requests_to("/ip").len(), 1);
}

#[test]
fn requests_go_through_the_connect_proxy_when_one_is_given() {
    let server = ok_server(ServerCert::default());
    let proxy = ConnectProxy::start();
    let mut settings = server.tls_settings();
    settings.hostname = format!("127.0.0.1:{}", server.port());
    settings.proxy = Some(proxy.host_port());
    let client = TlsClient::new(settings).unwrap();
    assert_eq!(
        client.proxy(),
        Some(format!("http://{}", proxy.host_port()))
    );
    for _ in 0..2 {
        client.post("/proxied", &json!({}), false, None).unwrap();
    }
    assert_eq!(server.requests_to("/proxied").len(), 2);
    // One tunnel, reused for both requests, to the server's address and port.
    assert_eq!(
        proxy.request_lines(),
        vec![format!("CONNECT 127.0.0.1:{} HTTP/1.1", server.port())]
    );
    assert_eq!(server.connections(), 1);
}

#[test]
fn a_proxy_that_refuses_the_tunnel_fails_the_request() {
    let server = ok_server(ServerCert::default());
    let proxy = ConnectProxy::start();
    let mut settings = server.tls_settings();
    // The test proxy tunnels to loopback only.
    settings.hostname = "fleet.invalid:443".to_owned();
    settings.proxy = Some(proxy.host_port());
    let err = post(settings, "/x").unwrap_err();
    assert!(matches!(err, RequestError::Transport(_)), "{err}");
    assert_eq!(
        proxy.request_lines(),
        vec!["CONNECT fleet.invalid:443 HTTP/1.1"]
    );
}

#[test]
fn a_proxy_without_a_port_uses_osquerys_3128() {
    let mut settings = ok_server(ServerCert::default()).tls_settings();
    settings.proxy = Some("proxy.example".to_owned());
    let client = TlsClient::new(settings).unwrap();
    assert_eq!(client.proxy().as_deref(), Some("http://proxy.example:3128"));
}

/// Set in the child process of `proxy_environment_variables_are_ignored`.
const CHILD_ENV: &str = "OXQUERY_TEST_PROXY_CHILD";

#[test]
fn proxy_environment_variables_are_ignored() {
    if let Ok(target) = std::env::var(CHILD_ENV) {
        // The child: its environment names the proxy, and ureq would take it from there...
        assert!(ureq::Proxy::try_from_env().is_some());
        // ...but the client does not.
        let (hostname, ca) = target.split_once('|').unwrap();
        let mut settings = TestServer::start(|_| Response::Json(json!({}))).tls_settings();
        settings.hostname = hostname.to_owned();
        settings.server_certs = ca.into();
        let client = TlsClient::new(settings).unwrap();
        assert_eq!(client.proxy(), None);
        client.post("/direct", &json!({}), false, None).unwrap();
        return;
    }
    // Environment variables are set in a child process: setting them in this
    // multithreaded test process would race with other tests.
    let server = ok_server(ServerCert::default());
    let proxy = ConnectProxy::start();
    let proxy_url = format!("http://{}", proxy.host_port());
    let mut child = std::process::Command::new(std::env::current_exe().unwrap());
    child
        .args([
            "--exact",
            "proxy_environment_variables_are_ignored",
            "--nocapture",
        ])
        .env(
            CHILD_ENV,
            format!("127.0.0.1:{}|{}", server.port(), server.ca_path().display()),
        );
    for name in [
        "HTTPS_PROXY",
        "https_proxy",
        "HTTP_PROXY",
        "http_proxy",
        "ALL_PROXY",
        "all_proxy",
    ] {
        child.env(name, &proxy_url);
    }
    for name in ["NO_PROXY", "no_proxy"] {
        child.env_remove(name);
    }
    let out = child.output().unwrap();
    assert!(
        out.status.success(),
        "child failed: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("1 passed"),
        "the child did not run the test"
    );
    assert_eq!(server.requests_to("/direct").len(), 1);
    assert_eq!(proxy.request_lines(), Vec::<String>::new());
}
