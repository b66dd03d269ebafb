//! An HTTPS server on loopback for tests: a fresh CA (rcgen) signs a certificate for
//! `localhost` and `127.0.0.1`; every request is recorded (gzip bodies decoded) and
//! answered by the test's handler, which can also misbehave (truncated bodies, slow or
//! no answers) to test the client's side of outages.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use serde_json::Value;

/// One request the server read.
#[derive(Debug, Clone)]
pub struct Request {
    pub method: String,
    /// Path and query.
    pub path: String,
    /// Header names lower-cased.
    pub headers: Vec<(String, String)>,
    /// The body, decompressed when it came gzip-encoded.
    pub body: Vec<u8>,
    /// Whether the client presented a certificate the CA signed.
    pub client_certified: bool,
}

impl Request {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }

    /// The body as JSON (`Value::Null` when it is not).
    pub fn json(&self) -> Value {
        serde_json::from_slice(&self.body).unwrap_or(Value::Null)
    }
}

/// How the server answers one request.
#[derive(Debug, Clone)]
pub enum Response {
    /// This status and body.
    Body(u16, Vec<u8>),
    /// A JSON body with status 200.
    Json(Value),
    /// Headers promising more body than is sent, then the connection closes.
    Truncated(Vec<u8>),
    /// The connection closes without an answer.
    Close,
    /// Waits, then answers.
    Delayed(Duration, Box<Response>),
}

type Handler = dyn Fn(&Request) -> Response + Send + Sync;

/// The running server; it stops when dropped.
pub struct TestServer {
    addr: SocketAddr,
    ca_pem: String,
    requests: Arc<Mutex<Vec<Request>>>,
    connections: Arc<AtomicUsize>,
    stop: Arc<AtomicBool>,
    _dir: tempfile::TempDir,
    ca_path: PathBuf,
    client: (PathBuf, PathBuf),
}

impl TestServer {
    /// Starts a server answering with `handler`.
    pub fn start(handler: impl Fn(&Request) -> Response + Send + Sync + 'static) -> TestServer {
        let ca_key = rcgen::KeyPair::generate().expect("CA key");
        let mut ca_params = rcgen::CertificateParams::new(Vec::<String>::new()).expect("CA");
        ca_params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
        ca_params
            .distinguished_name
            .push(rcgen::DnType::CommonName, "oxquery test CA");
        let ca = ca_params.self_signed(&ca_key).expect("CA certificate");
        let issuer = rcgen::Issuer::new(ca_params, ca_key);
        let leaf_key = rcgen::KeyPair::generate().expect("server key");
        let leaf_params =
            rcgen::CertificateParams::new(vec!["localhost".to_owned(), "127.0.0.1".to_owned()])
                .expect("server params");
        let leaf = leaf_params
            .signed_by(&leaf_key, &issuer)
            .expect("server certificate");
        // A client certificate the tests may present.
        let client_key = rcgen::KeyPair::generate().expect("client key");
        let client = rcgen::CertificateParams::new(vec!["oxquery-client".to_owned()])
            .expect("client params")
            .signed_by(&client_key, &issuer)
            .expect("client certificate");

        let dir = tempfile::tempdir().expect("temp dir");
        let ca_path = dir.path().join("ca.pem");
        std::fs::write(&ca_path, ca.pem()).expect("write CA");
        let client_cert = dir.path().join("client.pem");
        let client_key_path = dir.path().join("client.key");
        std::fs::write(&client_cert, client.pem()).expect("write client cert");
        std::fs::write(&client_key_path, client_key.serialize_pem()).expect("write client key");

        // ring, as the client under test uses (rustls deprecates it only for lacking
        // post-quantum key exchange, which a loopback test does not need).
        #[allow(deprecated)]
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        // Client certificates are asked for, checked against the CA, and optional.
        let mut roots = rustls::RootCertStore::empty();
        roots
            .add(CertificateDer::from(ca.der().to_vec()))
            .expect("CA root");
        let verifier = rustls::server::WebPkiClientVerifier::builder_with_provider(
            Arc::new(roots),
            Arc::clone(&provider),
        )
        .allow_unauthenticated()
        .build()
        .expect("client verifier");
        let config = rustls::ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .expect("protocol versions")
            .with_client_cert_verifier(verifier)
            .with_single_cert(
                vec![CertificateDer::from(leaf.der().to_vec())],
                PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(leaf_key.serialize_der())),
            )
            .expect("server config");
        let config = Arc::new(config);

        let listener = TcpListener::bind("127.0.0.1:0").expect("bind loopback");
        listener.set_nonblocking(true).expect("nonblocking");
        let addr = listener.local_addr().expect("address");
        let requests = Arc::new(Mutex::new(Vec::new()));
        let stop = Arc::new(AtomicBool::new(false));
        let connections = Arc::new(AtomicUsize::new(0));
        let handler: Arc<Handler> = Arc::new(handler);
        {
            let (requests, stop) = (Arc::clone(&requests), Arc::clone(&stop));
            let connections = Arc::clone(&connections);
            std::thread::spawn(move || {
                while !stop.load(Ordering::SeqCst) {
                    match listener.accept() {
                        Ok((stream, _)) => {
                            connections.fetch_add(1, Ordering::SeqCst);
                            let (config, handler, requests) = (
                                Arc::clone(&config),
                                Arc::clone(&handler),
                                Arc::clone(&requests),
                            );
                            std::thread::spawn(move || {
                                serve(stream, config, &*handler, &requests);
                            });
                        }
                        Err(_) => std::thread::sleep(Duration::from_millis(5)),
                    }
                }
            });
        }
        TestServer {
            addr,
            ca_pem: ca.pem(),
            requests,
            connections,
            stop,
            _dir: dir,
            ca_path,
            client: (client_cert, client_key_path),
        }
    }

    /// `127.0.0.1:<port>`, for `--tls_hostname`.
    pub fn hostname(&self) -> String {
        format!("localhost:{}", self.addr.port())
    }

    /// The CA certificate file, for `--tls_server_certs`.
    pub fn ca_path(&self) -> &Path {
        &self.ca_path
    }

    pub fn ca_pem(&self) -> &str {
        &self.ca_pem
    }

    /// A client certificate and key signed by the CA.
    pub fn client_cert(&self) -> (&Path, &Path) {
        (&self.client.0, &self.client.1)
    }

    /// Client settings that trust this server (5 s timeout, connections reused).
    pub fn tls_settings(&self) -> crate::TlsSettings {
        crate::TlsSettings {
            hostname: self.hostname(),
            server_certs: self.ca_path().to_owned(),
            client_cert: None,
            accept_gzip: false,
            dump: false,
            timeout: Duration::from_secs(5),
            version: "5.23.0".to_owned(),
            session_reuse: true,
            session_timeout: Duration::from_secs(3600),
        }
    }

    /// Enrollment settings for this server: `/enroll`, no secret, one attempt.
    pub fn enroll_settings(&self) -> crate::EnrollSettings {
        crate::EnrollSettings {
            endpoint: "/enroll".to_owned(),
            secret_path: PathBuf::new(),
            secret_env: String::new(),
            secret_field: "enroll_secret".to_owned(),
            max_attempts: 1,
            max_interval: 1,
            disabled: false,
            keep_invalid_key: false,
            always: false,
            host_identifier: "h".to_owned(),
            secret_always: false,
        }
    }

    /// Node keys over `store` for this server, with [`TestServer::enroll_settings`].
    pub fn node_keys(&self, store: Arc<Mutex<oxquery_store::Store>>) -> crate::NodeKeys {
        let client = crate::TlsClient::new(self.tls_settings()).expect("a client");
        crate::NodeKeys::new(
            client,
            self.enroll_settings(),
            store,
            Box::new(|| serde_json::json!({})),
        )
    }

    /// How many connections the server accepted.
    pub fn connections(&self) -> usize {
        self.connections.load(Ordering::SeqCst)
    }

    /// Every request read so far.
    pub fn requests(&self) -> Vec<Request> {
        self.requests
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    /// The requests to `path` (ignoring any query).
    pub fn requests_to(&self, path: &str) -> Vec<Request> {
        self.requests()
            .into_iter()
            .filter(|r| r.path.split('?').next() == Some(path))
            .collect()
    }
}

impl Drop for TestServer {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
    }
}

fn serve(
    stream: TcpStream,
    config: Arc<rustls::ServerConfig>,
    handler: &Handler,
    requests: &Mutex<Vec<Request>>,
) {
    let _ = stream.set_nonblocking(false);
    let _ = stream.set_read_timeout(Some(Duration::from_secs(30)));
    let Ok(conn) = rustls::ServerConnection::new(config) else {
        return;
    };
    let mut tls = rustls::StreamOwned::new(conn, stream);
    // Keep-alive: one request after another until the client closes.
    loop {
        let Some(mut request) = read_request(&mut tls) else {
            return;
        };
        request.client_certified = tls.conn.peer_certificates().is_some_and(|c| !c.is_empty());
        requests
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push(request.clone());
        if !answer(&mut tls, handler(&request)) {
            return;
        }
    }
}

/// Writes `response`; false when the connection must close.
pub(crate) fn answer(out: &mut impl Write, response: Response) -> bool {
    let (status, body, declared) = match response {
        Response::Body(status, body) => {
            let n = body.len();
            (status, body, n)
        }
        Response::Json(v) => {
            let body = v.to_string().into_bytes();
            let n = body.len();
            (200, body, n)
        }
        Response::Truncated(body) => {
            let n = body.len() * 2 + 10;
            (200, body, n)
        }
        Response::Close => return false,
        Response::Delayed(wait, inner) => {
            std::thread::sleep(wait);
            return answer(out, *inner);
        }
    };
    let head = format!(
        "HTTP/1.1 {status} X\r\nContent-Type: application/json\r\nContent-Length: {declared}\r\n\r\n"
    );
    let ok = out.write_all(head.as_bytes()).is_ok() && out.write_all(&body).is_ok();
    let _ = out.flush();
    ok && declared == body.len()
}

pub(crate) fn read_request(stream: &mut impl Read) -> Option<Request> {
    let mut reader = BufReader::new(stream);
    let mut line = String::new();
    reader.read_line(&mut line).ok()?;
    let mut parts = line.split_whitespace();
    let method = parts.next()?.to_owned();
    let path = parts.next()?.to_owned();
    let mut headers = Vec::new();
    loop {
        let mut h = String::new();
        if reader.read_line(&mut h).ok()? == 0 {
            return None;
        }
        let h = h.trim_end();
        if h.is_empty() {
            break;
        }
        let (name, value) = h.split_once(':')?;
        headers.push((name.trim().to_ascii_lowercase(), value.trim().to_owned()));
    }
    let header = |name: &str| {
        headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.clone())
    };
    let mut body = Vec::new();
    if let Some(len) = header("content-length").and_then(|v| v.parse::<usize>().ok()) {
        body.resize(len, 0);
        reader.read_exact(&mut body).ok()?;
    } else if header("transfer-encoding").is_some_and(|v| v.eq_ignore_ascii_case("chunked")) {
        loop {
            let mut size = String::new();
            reader.read_line(&mut size).ok()?;
            let n = usize::from_str_radix(size.trim(), 16).ok()?;
            let mut chunk = vec![0; n + 2];
            reader.read_exact(&mut chunk).ok()?;
            if n == 0 {
                break;
            }
            body.extend_from_slice(&chunk[..n]);
        }
    }
    if header("content-encoding").is_some_and(|v| v.eq_ignore_ascii_case("gzip")) {
        let mut plain = Vec::new();
        flate2::read::GzDecoder::new(&body[..])
            .read_to_end(&mut plain)
            .ok()?;
        body = plain;
    }
    // The reader may hold bytes of the next request: a client pipelining requests is
    // not something osquery's protocol does, so they are not kept.
    Some(Request {
        method,
        path,
        headers,
        body,
        client_certified: false,
    })
}
