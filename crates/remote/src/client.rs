//! One HTTPS client for every TLS plugin: osquery's request shape (JSON POST, its
//! headers, optional gzip), its server verification (`--tls_server_certs`, or the system
//! bundle; `verify.rs` for certificates named only by their CN), client
//! certificates, `--proxy_hostname` (and no proxy from the environment, as osquery
//! reads none), and its reading of answers: the status code is not looked at, the body
//! must be a JSON object, and `node_invalid` / `error` in it fail the request.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::Duration;

use oxquery_flags::{Flags, flag};
use rustls::RootCertStore;
use serde_json::Value;

use crate::connector;

/// osquery's timeout for one request, connection included.
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(16);
/// The largest answer read: a hostile or broken server cannot make the agent buffer
/// without bound (a config of this size is already far beyond any real one).
pub const MAX_RESPONSE_BYTES: u64 = 64 << 20;
/// Where Debian and Red Hat keep the system's CA bundle, used when
/// `--tls_server_certs` names no readable file (osquery then uses the system store).
const SYSTEM_BUNDLES: [&str; 2] = [
    "/etc/ssl/certs/ca-certificates.crt",
    "/etc/pki/tls/certs/ca-bundle.crt",
];
/// osquery's proxy port when `--proxy_hostname` names none.
const DEFAULT_PROXY_PORT: u16 = 3128;

/// What the TLS flags say about reaching the server.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TlsSettings {
    /// `--tls_hostname`: `host[:port]`.
    pub hostname: String,
    /// `--tls_server_certs`: the CA bundle that verifies the server.
    pub server_certs: PathBuf,
    /// `--tls_client_cert` and `--tls_client_key`.
    pub client_cert: Option<(PathBuf, PathBuf)>,
    /// `--proxy_hostname`: the `host[:port]` of an HTTP proxy that every request goes
    /// through (CONNECT); none means a direct connection whatever the environment says.
    pub proxy: Option<String>,
    /// `--tls_accept_gzip`.
    pub accept_gzip: bool,
    /// `--tls_dump`: print every request and answer body.
    pub dump: bool,
    pub timeout: Duration,
    /// The `User-Agent` version (`osquery/<version>`).
    pub version: String,
    /// `--tls_session_reuse`: keep connections open between requests...
    pub session_reuse: bool,
    /// ...for at most `--tls_session_timeout`.
    pub session_timeout: Duration,
}

impl TlsSettings {
    pub fn from_flags(flags: &Flags, version: &str) -> TlsSettings {
        let cert = flags.get(flag::tls_client_cert);
        let key = flags.get(flag::tls_client_key);
        TlsSettings {
            hostname: flags.get(flag::tls_hostname).to_owned(),
            server_certs: flags.get(flag::tls_server_certs).to_owned(),
            client_cert: (!cert.as_os_str().is_empty() && !key.as_os_str().is_empty())
                .then(|| (cert.to_owned(), key.to_owned())),
            proxy: Some(flags.get(flag::proxy_hostname))
                .filter(|p| !p.is_empty())
                .map(str::to_owned),
            accept_gzip: flags.get(flag::tls_accept_gzip),
            dump: flags.get(flag::tls_dump),
            timeout: REQUEST_TIMEOUT,
            version: version.to_owned(),
            session_reuse: flags.get(flag::tls_session_reuse),
            session_timeout: Duration::from_secs(u64::from(flags.get(flag::tls_session_timeout))),
        }
    }
}

/// Why a request failed, worded as osquery's status log words it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RequestError {
    /// No answer: connection, TLS or timeout.
    Transport(String),
    /// An answer that is not a JSON object.
    Malformed(String),
    /// `"node_invalid": true`: the node key must go (unless re-enrollment is disabled).
    NodeInvalid(Option<String>),
    /// A top-level `"error"` in the answer.
    Server(String),
}

impl std::fmt::Display for RequestError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            RequestError::Transport(e) => write!(f, "Request failed: {e}"),
            RequestError::Malformed(e) => write!(f, "Request failed: the answer is not JSON: {e}"),
            RequestError::NodeInvalid(None) => write!(f, "Request failed: Invalid node key"),
            RequestError::NodeInvalid(Some(e)) => {
                write!(f, "Request failed: Invalid node key: {e}")
            }
            RequestError::Server(e) => write!(f, "Request failed: {e}"),
        }
    }
}

impl std::error::Error for RequestError {}

/// The client of one TLS server. Cheap to share: requests may run from several threads.
#[derive(Clone)]
pub struct TlsClient {
    agent: ureq::Agent,
    settings: TlsSettings,
}

impl std::fmt::Debug for TlsClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TlsClient")
            .field("hostname", &self.settings.hostname)
            .finish_non_exhaustive()
    }
}

impl TlsClient {
    /// A client for `settings`; fails when the certificates given cannot be read.
    pub fn new(settings: TlsSettings) -> Result<TlsClient, String> {
        if settings.hostname.is_empty() {
            return Err("no TLS server: --tls_hostname is empty".to_owned());
        }
        TlsClient::for_urls(settings)
    }

    /// A client with the TLS flags' verification, certificate and proxy for whole URLs
    /// ([`TlsClient::fetch_url`]), which need no `--tls_hostname`.
    pub fn for_urls(settings: TlsSettings) -> Result<TlsClient, String> {
        let client_cert = match &settings.client_cert {
            Some((cert, key)) => Some(client_cert(cert, key)?),
            None => None,
        };
        let tls = connector::client_config(root_certs(&settings.server_certs)?, client_cert)?;
        let proxy = match &settings.proxy {
            Some(proxy) => Some(proxy_url(proxy)?),
            None => None,
        };
        let config = ureq::Agent::config_builder()
            // Set either way: ureq's default reads HTTPS_PROXY and friends.
            .proxy(proxy)
            .timeout_global(Some(settings.timeout))
            // osquery reads the body whatever the status: fleet servers answer
            // node_invalid with a 401 and a JSON body.
            .http_status_as_error(false)
            .max_redirects(10)
            .user_agent(format!("osquery/{}", settings.version))
            .max_idle_connections_per_host(usize::from(settings.session_reuse))
            .max_idle_age(settings.session_timeout)
            .build();
        Ok(TlsClient {
            agent: connector::agent(config, tls),
            settings,
        })
    }

    pub fn settings(&self) -> &TlsSettings {
        &self.settings
    }

    /// The proxy requests go through (`http://host:port`), if any.
    pub fn proxy(&self) -> Option<String> {
        self.agent
            .config()
            .proxy()
            .map(|p| format!("http://{}:{}", p.host(), p.port()))
    }

    /// The URL of `endpoint` (a path such as `/api/v1/osquery/enroll`, with its query).
    pub fn url(&self, endpoint: &str) -> String {
        let slash = if endpoint.starts_with('/') { "" } else { "/" };
        format!("https://{}{slash}{endpoint}", self.settings.hostname)
    }

    /// POSTs `body` as JSON to `endpoint` (gzip-compressed when `gzip`), with
    /// `Authorization: NodeKey` when a key is given, and returns the answer's JSON object.
    pub fn post(
        &self,
        endpoint: &str,
        body: &Value,
        gzip: bool,
        node_key: Option<&str>,
    ) -> Result<Value, RequestError> {
        let text = serde_json::to_vec(body).map_err(|e| RequestError::Malformed(e.to_string()))?;
        if self.settings.dump {
            eprintln!(
                "TLS request to {endpoint}: {}",
                String::from_utf8_lossy(&text)
            );
        }
        let mut request = self
            .agent
            .post(self.url(endpoint))
            .header("Content-Type", "application/json")
            .header("Accept", "application/json");
        if let Some(key) = node_key.filter(|k| !k.is_empty()) {
            request = request.header("Authorization", format!("NodeKey {key}"));
        }
        if self.settings.accept_gzip {
            request = request.header("Accept-Encoding", "gzip");
        }
        let sent = if gzip {
            request
                .header("Content-Encoding", "gzip")
                .send(&gzip_bytes(&text)[..])
        } else {
            request.send(&text[..])
        };
        self.read_answer(endpoint, sent)
    }

    /// GETs `endpoint` (osquery's node API config request: no body), with
    /// `Authorization: NodeKey`, and returns the answer's JSON object.
    pub fn get(&self, endpoint: &str, node_key: Option<&str>) -> Result<Value, RequestError> {
        if self.settings.dump {
            eprintln!("TLS request to {endpoint}: GET");
        }
        let mut request = self
            .agent
            .get(self.url(endpoint))
            .header("Accept", "application/json");
        if let Some(key) = node_key.filter(|k| !k.is_empty()) {
            request = request.header("Authorization", format!("NodeKey {key}"));
        }
        if self.settings.accept_gzip {
            request = request.header("Accept-Encoding", "gzip");
        }
        self.read_answer(endpoint, request.call())
    }

    /// GETs the whole `url`, or POSTs `body` to it as JSON, and returns the status and at
    /// most `max_body` bytes of the answer (a longer one is an error); never redirected,
    /// so only the URL given is contacted.
    pub fn fetch_url(
        &self,
        url: &str,
        body: Option<&Value>,
        max_body: u64,
    ) -> Result<(u16, Vec<u8>), String> {
        let sent = match body {
            Some(body) => {
                let text = serde_json::to_vec(body).map_err(|e| e.to_string())?;
                self.agent
                    .post(url)
                    .config()
                    .max_redirects(0)
                    .build()
                    .header("Content-Type", "application/json")
                    .send(&text[..])
            }
            None => self.agent.get(url).config().max_redirects(0).build().call(),
        };
        let mut answer = sent.map_err(|e| e.to_string())?;
        let status = answer.status().as_u16();
        Ok((status, read_body(&mut answer, max_body)?))
    }

    /// Reads a bounded answer body and parses it as osquery does.
    fn read_answer(
        &self,
        endpoint: &str,
        sent: Result<ureq::http::Response<ureq::Body>, ureq::Error>,
    ) -> Result<Value, RequestError> {
        let mut answer = sent.map_err(|e| RequestError::Transport(e.to_string()))?;
        let bytes = read_body(&mut answer, MAX_RESPONSE_BYTES).map_err(RequestError::Transport)?;
        if self.settings.dump {
            eprintln!(
                "TLS answer from {endpoint}: {}",
                String::from_utf8_lossy(&bytes)
            );
        }
        parse_answer(&bytes)
    }
}

/// An answer's body, at most `limit` bytes: an error says whether it was over the limit
/// or could not be read (cut short, a silent server).
pub fn read_body(
    answer: &mut ureq::http::Response<ureq::Body>,
    limit: u64,
) -> Result<Vec<u8>, String> {
    answer
        .body_mut()
        .with_config()
        .limit(limit)
        .read_to_vec()
        .map_err(|e| match e {
            ureq::Error::BodyExceedsLimit(limit) => {
                format!("the answer's body is over {limit} bytes")
            }
            other => format!("reading the answer's body: {other}"),
        })
}

/// An agent for plain HTTPS APIs (AWS, the EC2 metadata service): the same ureq/rustls
/// stack as [`TlsClient`], verifying servers with the system's CA bundle, reading any
/// status as an answer, within `timeout`, through `proxy` when one is given (never through
/// a proxy named by the environment: only the flags choose one).
pub fn plain_agent(
    timeout: Duration,
    user_agent: &str,
    proxy: Option<ureq::Proxy>,
) -> Result<ureq::Agent, String> {
    let tls = connector::client_config(root_certs(Path::new(""))?, None)?;
    let config = ureq::Agent::config_builder()
        .timeout_global(Some(timeout))
        .http_status_as_error(false)
        .user_agent(user_agent)
        .proxy(proxy)
        .build();
    Ok(connector::agent(config, tls))
}

/// Reads an answer as osquery does: a JSON object, failing on `node_invalid` or `error`.
pub fn parse_answer(bytes: &[u8]) -> Result<Value, RequestError> {
    let value: Value =
        serde_json::from_slice(bytes).map_err(|e| RequestError::Malformed(e.to_string()))?;
    if !value.is_object() {
        return Err(RequestError::Malformed("not a JSON object".to_owned()));
    }
    if value.get("node_invalid").and_then(Value::as_bool) == Some(true) {
        let error = value
            .get("error")
            .and_then(Value::as_str)
            .map(str::to_owned);
        return Err(RequestError::NodeInvalid(error));
    }
    if let Some(error) = value.get("error") {
        let text = error
            .as_str()
            .map_or_else(|| error.to_string(), str::to_owned);
        return Err(RequestError::Server(text));
    }
    Ok(value)
}

fn gzip_bytes(bytes: &[u8]) -> Vec<u8> {
    let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    // Writing into a Vec cannot fail.
    let _ = encoder.write_all(bytes);
    encoder.finish().unwrap_or_default()
}

/// `--proxy_hostname`'s `host[:port]` as ureq's CONNECT proxy (port 3128 when none is
/// given, as osquery does). Anything else (a scheme, a path, credentials) is refused
/// rather than guessed at.
fn proxy_url(host_port: &str) -> Result<ureq::Proxy, String> {
    let invalid = || format!("--proxy_hostname {host_port}: not host[:port]");
    let (host, port) = match host_port.rsplit_once(':') {
        Some((host, port)) => (host, port.parse::<u16>().map_err(|_| invalid())?),
        None => (host_port, DEFAULT_PROXY_PORT),
    };
    let host_valid = !host.is_empty()
        && host
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-._".contains(&b));
    if !host_valid {
        return Err(invalid());
    }
    ureq::Proxy::new(&format!("http://{host}:{port}"))
        .map_err(|e| format!("--proxy_hostname {host_port}: {e}"))
}

/// The roots that verify the server: the `--tls_server_certs` bundle when it is there
/// (and then only it), else the system's bundle, else the compiled-in Mozilla list.
fn root_certs(server_certs: &Path) -> Result<RootCertStore, String> {
    if !server_certs.as_os_str().is_empty() && server_certs.exists() {
        let certs = connector::read_certs(server_certs)?;
        let mut roots = RootCertStore::empty();
        roots.add_parsable_certificates(certs);
        if roots.is_empty() {
            return Err(format!(
                "--tls_server_certs {}: no certificate in it",
                server_certs.display()
            ));
        }
        return Ok(roots);
    }
    for bundle in SYSTEM_BUNDLES {
        if let Ok(certs) = connector::read_certs(Path::new(bundle)) {
            let mut roots = RootCertStore::empty();
            roots.add_parsable_certificates(certs);
            if !roots.is_empty() {
                return Ok(roots);
            }
        }
    }
    Ok(RootCertStore {
        roots: webpki_roots::TLS_SERVER_ROOTS.to_vec(),
    })
}

fn client_cert(cert: &Path, key: &Path) -> Result<connector::ClientIdentity, String> {
    let chain = connector::read_certs(cert)?;
    if chain.is_empty() {
        return Err(format!(
            "--tls_client_cert {}: no certificate in it",
            cert.display()
        ));
    }
    Ok((chain, connector::read_key(key)?))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn answers_are_read_as_osquery_reads_them() {
        assert_eq!(
            parse_answer(br#"{"node_key":"k"}"#),
            Ok(json!({"node_key": "k"}))
        );
        // Extra keys such as node_invalid: false are fine.
        assert!(parse_answer(br#"{"node_invalid":false,"schedule":{}}"#).is_ok());
        assert_eq!(
            parse_answer(br#"{"node_invalid":true}"#),
            Err(RequestError::NodeInvalid(None))
        );
        assert_eq!(
            parse_answer(br#"{"node_invalid":true,"error":"gone"}"#)
                .unwrap_err()
                .to_string(),
            "Request failed: Invalid node key: gone"
        );
        assert_eq!(
            parse_answer(br#"{"error":"bad secret"}"#)
                .unwrap_err()
                .to_string(),
            "Request failed: bad secret"
        );
        for bad in [&b"[1]"[..], b"", b"{\"a\":", b"\xff\xfe", b"null"] {
            assert!(
                matches!(parse_answer(bad), Err(RequestError::Malformed(_))),
                "{bad:?}"
            );
        }
    }

    #[test]
    fn gzip_round_trips() {
        use std::io::Read;
        let mut out = String::new();
        flate2::read::GzDecoder::new(&gzip_bytes(b"{\"a\":1}")[..])
            .read_to_string(&mut out)
            .unwrap();
        assert_eq!(out, "{\"a\":1}");
    }

    #[test]
    fn proxy_hostname_is_read_from_its_flag() {
        let settings = |args: &[&str]| {
            let flags = oxquery_flags::parse_command_line(args, None).unwrap().flags;
            TlsSettings::from_flags(&flags, "5.23.0")
        };
        assert_eq!(settings(&[]).proxy, None);
        assert_eq!(
            settings(&["--proxy_hostname=proxy.corp:8080"])
                .proxy
                .as_deref(),
            Some("proxy.corp:8080")
        );
    }

    #[test]
    fn proxy_urls_get_osquerys_default_port() {
        let url = |p: &str| proxy_url(p).map(|p| format!("{}:{}", p.host(), p.port()));
        assert_eq!(url("proxy.corp"), Ok("proxy.corp:3128".to_owned()));
        assert_eq!(url("proxy.corp:8080"), Ok("proxy.corp:8080".to_owned()));
        assert_eq!(url("10.0.0.1:3129"), Ok("10.0.0.1:3129".to_owned()));
        for bad in [
            "",
            ":8080",
            "proxy.corp:x",
            "http://proxy.corp",
            "u@proxy.corp",
            "p/x",
        ] {
            assert!(url(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn urls_join_host_and_endpoint() {
        let settings = TlsSettings {
            hostname: "fleet.example:8443".to_owned(),
            server_certs: PathBuf::new(),
            client_cert: None,
            proxy: None,
            accept_gzip: false,
            dump: false,
            timeout: REQUEST_TIMEOUT,
            version: "5.23.0".to_owned(),
            session_reuse: true,
            session_timeout: Duration::from_secs(3600),
        };
        let client = TlsClient::new(settings).unwrap();
        assert_eq!(
            client.url("/api/enroll"),
            "https://fleet.example:8443/api/enroll"
        );
        assert_eq!(
            client.url("config?x=1"),
            "https://fleet.example:8443/config?x=1"
        );
    }
}
