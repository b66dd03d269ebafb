//! Server verification beyond webpki's (certificates naming the host only in their CN,
//! as osquery's OpenSSL accepts them), against the test server on loopback.

use oxquery_remote::testing::{Response, ServerCert, TestServer};
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
