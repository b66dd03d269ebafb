//! An HTTPS server on loopback for tests: a fresh CA (rcgen) signs a certificate for
//! `localhost` and `127.0.0.1` (or the names a [`ServerCert`] gives); every request is
//! recorded (gzip bodies decoded) and answered by the test's handler, which can also
//! misbehave (truncated bodies, slow or no answers) to test the client's side of
//! outages. [`ConnectProxy`] is an HTTP CONNECT proxy on loopback that records what
//! went through it.

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
    /// Whether the connection's TLS session was resumed rather than negotiated afresh.
    pub resumed: bool,
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

/// The names in the server's certificate.
#[derive(Debug, Clone)]
pub struct ServerCert {
    /// subjectAltName entries (DNS names or IP addresses); none means no
    /// subjectAltName extension at all.
    pub alt_names: Vec<String>,
    /// The subject's common name, if any.
    pub common_name: Option<String>,
}

impl Default for ServerCert {
    /// `localhost` and `127.0.0.1` as subjectAltNames, no CN.
    fn default() -> ServerCert {
        ServerCert {
            alt_names: vec!["localhost".to_owned(), "127.0.0.1".to_owned()],
            common_name: None,
        }
    }
}

impl ServerCert {
    /// A legacy certificate: `cn` as the subject's CN and no subjectAltName.
    pub fn cn_only(cn: &str) -> ServerCert {
        ServerCert {
            alt_names: Vec::new(),
            common_name: Some(cn.to_owned()),
        }
    }
}

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
    leaf_der: Vec<u8>,
}

impl TestServer {
    /// Starts a server answering with `handler`.
    pub fn start(handler: impl Fn(&Request) -> Response + Send + Sync + 'static) -> TestServer {
        TestServer::start_with(ServerCert::default(), handler)
    }

    /// Starts a server whose certificate has the names of `cert`.
    pub fn start_with(
        cert: ServerCert,
        handler: impl Fn(&Request) -> Response + Send + Sync + 'static,
    ) -> TestServer {
        let ca_key = rcgen::KeyPair::generate().expect("CA key");
        let mut ca_params = rcgen::CertificateParams::new(Vec::<String>::new()).expect("CA");
        ca_params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
        ca_params
            .distinguished_name
            .push(rcgen::DnType::CommonName, "oxquery test CA");
        let ca = ca_params.self_signed(&ca_key).expect("CA certificate");
        let issuer = rcgen::Issuer::new(ca_params, ca_key);
        let leaf_key = rcgen::KeyPair::generate().expect("server key");
        let mut leaf_params = rcgen::CertificateParams::new(cert.alt_names).expect("server params");
        leaf_params.distinguished_name = rcgen::DistinguishedName::new();
        if let Some(cn) = cert.common_name {
            leaf_params
                .distinguished_name
                .push(rcgen::DnType::CommonName, cn);
        }
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
            leaf_der: leaf.der().to_vec(),
        }
    }

    /// The port it listens on, on 127.0.0.1.
    pub fn port(&self) -> u16 {
        self.addr.port()
    }

    /// The server's own certificate (DER), for tests that check what it names.
    pub fn leaf_der(&self) -> &[u8] {
        &self.leaf_der
    }

    /// `localhost:<port>`, for `--tls_hostname`.
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
            proxy: None,
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
            node_api: false,
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

/// A fleet server's carve endpoints ([`CarveServer::START`], [`CarveServer::CONTINUE`]):
/// each start opens a session, each block is decoded and kept by its `block_id`, so a
/// test compares the reassembled archive with what it carved. Call
/// [`CarveServer::answer`] from the [`TestServer`] handler.
#[derive(Debug, Default)]
pub struct CarveServer {
    sessions: Mutex<Vec<CarveSession>>,
}

/// One upload as the server saw it.
#[derive(Debug, Clone, Default)]
pub struct CarveSession {
    pub session_id: String,
    /// The start request's body.
    pub start: Value,
    /// Decoded blocks by `block_id`.
    pub blocks: std::collections::BTreeMap<u64, Vec<u8>>,
    /// The `request_id` of every block request, in arrival order.
    pub block_request_ids: Vec<String>,
}

impl CarveSession {
    /// The blocks joined in `block_id` order.
    pub fn data(&self) -> Vec<u8> {
        self.blocks.values().flatten().copied().collect()
    }

    /// Whether every announced block arrived (and no other).
    pub fn complete(&self) -> bool {
        let count = self.start["block_count"].as_u64().unwrap_or(0);
        self.blocks.len() as u64 == count && self.blocks.keys().all(|id| *id < count)
    }
}

impl CarveServer {
    pub const START: &'static str = "/carve/start";
    pub const CONTINUE: &'static str = "/carve/continue";

    /// The answer to a carve request, `None` for any other path. A block for an unknown
    /// session or with data that is not base64 is answered with an `error`.
    pub fn answer(&self, request: &Request) -> Option<Response> {
        use base64::Engine as _;
        let path = request.path.split('?').next().unwrap_or_default();
        let body = request.json();
        let mut sessions = self.sessions.lock().unwrap_or_else(|p| p.into_inner());
        if path == Self::START {
            let session_id = format!("session-{}", sessions.len() + 1);
            sessions.push(CarveSession {
                session_id: session_id.clone(),
                start: body,
                ..CarveSession::default()
            });
            return Some(Response::Json(
                serde_json::json!({ "session_id": session_id }),
            ));
        }
        if path != Self::CONTINUE {
            return None;
        }
        let refuse = |why: &str| Some(Response::Json(serde_json::json!({ "error": why })));
        let Some(session) = sessions
            .iter_mut()
            .find(|s| Some(s.session_id.as_str()) == body["session_id"].as_str())
        else {
            return refuse("unknown session_id");
        };
        let (Some(id), Some(data)) = (body["block_id"].as_u64(), body["data"].as_str()) else {
            return refuse("block_id and data are required");
        };
        let Ok(bytes) = base64::engine::general_purpose::STANDARD.decode(data) else {
            return refuse("data is not base64");
        };
        session.blocks.insert(id, bytes);
        session
            .block_request_ids
            .push(body["request_id"].as_str().unwrap_or_default().to_owned());
        Some(Response::Json(serde_json::json!({ "success": true })))
    }

    /// Every session so far, in start order.
    pub fn sessions(&self) -> Vec<CarveSession> {
        self.sessions
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
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
        request.resumed = tls.conn.handshake_kind() == Some(rustls::HandshakeKind::Resumed);
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
        resumed: false,
    })
}

/// An HTTP CONNECT proxy on loopback: it records each request line it reads (such as
/// `CONNECT 127.0.0.1:443 HTTP/1.1`), tunnels to loopback targets only (anything else
/// gets a 403) and pipes bytes both ways. It stops accepting when dropped.
pub struct ConnectProxy {
    addr: SocketAddr,
    lines: Arc<Mutex<Vec<String>>>,
    stop: Arc<AtomicBool>,
}

impl ConnectProxy {
    pub fn start() -> ConnectProxy {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind loopback");
        listener.set_nonblocking(true).expect("nonblocking");
        let addr = listener.local_addr().expect("address");
        let lines = Arc::new(Mutex::new(Vec::new()));
        let stop = Arc::new(AtomicBool::new(false));
        {
            let (lines, stop) = (Arc::clone(&lines), Arc::clone(&stop));
            std::thread::spawn(move || {
                while !stop.load(Ordering::SeqCst) {
                    match listener.accept() {
                        Ok((client, _)) => {
                            let lines = Arc::clone(&lines);
                            std::thread::spawn(move || tunnel(client, &lines));
                        }
                        Err(_) => std::thread::sleep(Duration::from_millis(5)),
                    }
                }
            });
        }
        ConnectProxy { addr, lines, stop }
    }

    /// `127.0.0.1:<port>`, for `--proxy_hostname`.
    pub fn host_port(&self) -> String {
        self.addr.to_string()
    }

    /// The request lines read so far, one per connection.
    pub fn request_lines(&self) -> Vec<String> {
        self.lines.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }
}

impl Drop for ConnectProxy {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
    }
}

/// Serves one proxy connection: reads the request head byte by byte (so no byte of the
/// tunnelled stream is read ahead), connects, answers 200 and pipes.
fn tunnel(mut client: TcpStream, lines: &Mutex<Vec<String>>) {
    let _ = client.set_nonblocking(false);
    let _ = client.set_read_timeout(Some(Duration::from_secs(30)));
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        if head.len() > 16 << 10 || !matches!(client.read(&mut byte), Ok(1)) {
            return;
        }
        head.push(byte[0]);
    }
    let head = String::from_utf8_lossy(&head);
    let line = head.lines().next().unwrap_or_default().to_owned();
    lines
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .push(line.clone());
    let mut parts = line.split_whitespace();
    let target = match (parts.next(), parts.next()) {
        (Some("CONNECT"), Some(target)) => target.to_owned(),
        _ => {
            let _ = client.write_all(b"HTTP/1.1 405 Method Not Allowed\r\n\r\n");
            return;
        }
    };
    let loopback = target
        .parse::<SocketAddr>()
        .is_ok_and(|a| a.ip().is_loopback())
        || target.starts_with("localhost:");
    let upstream = loopback.then(|| TcpStream::connect(&target).ok()).flatten();
    let Some(upstream) = upstream else {
        let _ = client.write_all(b"HTTP/1.1 403 Forbidden\r\n\r\n");
        return;
    };
    if client
        .write_all(b"HTTP/1.1 200 Connection established\r\n\r\n")
        .is_err()
    {
        return;
    }
    let _ = client.set_read_timeout(None);
    let (Ok(mut client_reader), Ok(mut upstream_writer)) =
        (client.try_clone(), upstream.try_clone())
    else {
        return;
    };
    let forward = std::thread::spawn(move || {
        let _ = std::io::copy(&mut client_reader, &mut upstream_writer);
        let _ = upstream_writer.shutdown(std::net::Shutdown::Write);
    });
    let (mut upstream_reader, mut client_writer) = (upstream, client);
    let _ = std::io::copy(&mut upstream_reader, &mut client_writer);
    let _ = client_writer.shutdown(std::net::Shutdown::Write);
    let _ = forward.join();
}
