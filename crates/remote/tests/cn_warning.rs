//! A certificate named only by its CN is accepted with one warning per client, so an
//! operator learns to reissue it without a warning on every request. (A test binary of
//! its own: the logger it installs is process-wide.)

use std::sync::Mutex;

use oxquery_remote::TlsClient;
use oxquery_remote::testing::{Response, ServerCert, TestServer};
use serde_json::json;

static WARNINGS: Mutex<Vec<String>> = Mutex::new(Vec::new());

struct Recorder;

impl log::Log for Recorder {
    fn enabled(&self, metadata: &log::Metadata) -> bool {
        metadata.level() <= log::Level::Warn
    }

    fn log(&self, record: &log::Record) {
        if self.enabled(record.metadata()) {
            WARNINGS.lock().unwrap().push(record.args().to_string());
        }
    }

    fn flush(&self) {}
}

fn cn_warnings() -> usize {
    WARNINGS
        .lock()
        .unwrap()
        .iter()
        .filter(|w| w.contains("has no subjectAltName"))
        .count()
}

#[test]
fn a_cn_only_certificate_is_warned_about_once_per_client() {
    log::set_logger(&Recorder).unwrap();
    log::set_max_level(log::LevelFilter::Warn);
    let server = TestServer::start_with(ServerCert::cn_only("localhost"), |_| {
        Response::Json(json!({}))
    });
    // Without session reuse every request is a new connection and handshake.
    let mut settings = server.tls_settings();
    settings.session_reuse = false;
    let client = TlsClient::new(settings.clone()).unwrap();
    for _ in 0..3 {
        client.post("/x", &json!({}), false, None).unwrap();
    }
    assert_eq!(server.connections(), 3);
    assert_eq!(cn_warnings(), 1, "{:?}", WARNINGS.lock().unwrap());
    // A certificate with a subjectAltName is not warned about.
    let modern = TestServer::start(|_| Response::Json(json!({})));
    TlsClient::new(modern.tls_settings())
        .unwrap()
        .post("/x", &json!({}), false, None)
        .unwrap();
    assert_eq!(cn_warnings(), 1);
    // Another client (another daemon's) warns again.
    TlsClient::new(settings)
        .unwrap()
        .post("/x", &json!({}), false, None)
        .unwrap();
    assert_eq!(cn_warnings(), 2);
}
