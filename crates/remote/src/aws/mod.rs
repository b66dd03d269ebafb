//! The AWS services osquery's `aws_kinesis` and `aws_firehose` loggers talk to, over the
//! project's one HTTP stack ([`crate::client::plain_agent`]) with the `--aws_*` flags:
//!
//! * [`sign`]: SigV4 through the AWS SDK's `aws-sigv4`;
//! * [`credentials`]: osquery's provider chain (flags, STS, profiles, environment, the
//!   instance profile) with caching and refresh before expiry; [`imds`] the EC2 instance
//!   metadata client it uses;
//! * [`kinesis`] and [`firehose`]: the record APIs and their limits;
//! * here: settings, regions and endpoints (`--aws_enforce_fips`, the
//!   `--aws_*_endpoint` overrides), the proxy flags, and [`AwsClient`], one signed JSON
//!   request to one service.
//!
//! The environment is read once into an [`AwsEnv`] by the caller, so tests hand their own.

pub mod credentials;
pub mod firehose;
pub mod imds;
pub mod kinesis;
pub mod sign;
#[cfg(feature = "testing")]
pub mod testing;

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::AtomicBool;
use std::time::{Duration, SystemTime};

use oxquery_flags::{Flags, flag};
use serde_json::Value;

pub use credentials::{CredentialChain, CredentialSettings, Credentials};
pub use imds::{ImdsClient, ImdsSettings};

/// The longest AWS answer read (a PutRecords answer for 500 records is tens of KiB).
const MAX_ANSWER_BYTES: u64 = 8 << 20;
/// The timeout of one AWS request, as osquery's HTTP client has it.
pub const AWS_TIMEOUT: Duration = crate::client::REQUEST_TIMEOUT;
/// osquery's region when neither a flag nor the profile names one.
pub const DEFAULT_REGION: &str = "us-east-1";

/// The process environment as the AWS SDK reads it, taken once.
#[derive(Debug, Clone, Default)]
pub struct AwsEnv {
    vars: BTreeMap<String, String>,
}

impl AwsEnv {
    pub fn from_process() -> AwsEnv {
        AwsEnv {
            vars: std::env::vars()
                .filter(|(k, _)| k.starts_with("AWS_") || k == "HOME")
                .collect(),
        }
    }

    /// An environment with just these variables (tests).
    pub fn from_pairs<'a>(pairs: impl IntoIterator<Item = (&'a str, &'a str)>) -> AwsEnv {
        AwsEnv {
            vars: pairs
                .into_iter()
                .map(|(k, v)| (k.to_owned(), v.to_owned()))
                .collect(),
        }
    }

    /// A variable's value; an empty one counts as unset, as in the SDK.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.vars
            .get(name)
            .map(String::as_str)
            .filter(|v| !v.is_empty())
    }

    /// `~/.aws/<file>`, or the variable naming it.
    fn aws_file(&self, var: &str, file: &str) -> Option<PathBuf> {
        if let Some(path) = self.get(var) {
            return Some(PathBuf::from(path));
        }
        self.get("HOME")
            .map(|home| PathBuf::from(home).join(".aws").join(file))
    }
}

/// What the `--aws_*` flags shared by every AWS client say.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AwsSettings {
    /// `--aws_region`.
    pub region: String,
    /// `--aws_profile_name`: its region when no flag names one.
    pub profile_name: String,
    /// `--aws_enforce_fips`.
    pub fips: bool,
    /// `--aws_enable_proxy` with `--aws_proxy_*`, as a proxy URL.
    pub proxy: Option<String>,
    /// `--aws_debug`: each request and answer is logged at verbose.
    pub debug: bool,
    pub credentials: CredentialSettings,
    pub imds: ImdsSettings,
}

impl AwsSettings {
    pub fn from_flags(flags: &Flags, env: &AwsEnv) -> AwsSettings {
        AwsSettings {
            region: flags.get(flag::aws_region).to_owned(),
            profile_name: flags.get(flag::aws_profile_name).to_owned(),
            fips: flags.get(flag::aws_enforce_fips),
            proxy: flags.get(flag::aws_enable_proxy).then(|| {
                proxy_url(
                    flags.get(flag::aws_proxy_scheme),
                    flags.get(flag::aws_proxy_host),
                    flags.get(flag::aws_proxy_port),
                    flags.get(flag::aws_proxy_username),
                    flags.get(flag::aws_proxy_password),
                )
            }),
            debug: flags.get(flag::aws_debug),
            credentials: CredentialSettings::from_flags(flags),
            imds: ImdsSettings::from_flags(flags, env),
        }
    }

    /// The region of a service: its own flag (`--aws_kinesis_region`...), else
    /// `--aws_region`, else the profile's in the config file, else us-east-1. A profile
    /// named by `--aws_profile_name` without a region is an error, as in osquery.
    pub fn region(&self, service_region: &str, env: &AwsEnv) -> Result<String, String> {
        if !service_region.is_empty() {
            return Ok(service_region.to_owned());
        }
        if !self.region.is_empty() {
            return Ok(self.region.clone());
        }
        match credentials::profile_region(env, &self.profile_name) {
            Ok(region) => Ok(region),
            Err(e) if !self.profile_name.is_empty() => Err(e),
            Err(_) => Ok(DEFAULT_REGION.to_owned()),
        }
    }
}

/// The proxy URL of the `--aws_proxy_*` flags (user and password percent-encoded).
pub fn proxy_url(scheme: &str, host: &str, port: u32, user: &str, password: &str) -> String {
    let scheme = if scheme.is_empty() { "https" } else { scheme };
    let auth = if user.is_empty() {
        String::new()
    } else if password.is_empty() {
        format!("{}@", form_encode(user))
    } else {
        format!("{}:{}@", form_encode(user), form_encode(password))
    };
    let port = if port == 0 {
        String::new()
    } else {
        format!(":{port}")
    };
    format!("{scheme}://{auth}{host}{port}")
}

/// Where a service's requests go: the override (`--aws_kinesis_endpoint`..., a URL or a
/// bare host for HTTPS), else the SDK's variables `AWS_ENDPOINT_URL_<SERVICE>` and
/// `AWS_ENDPOINT_URL`, else the regional endpoint (`<service>-fips` with
/// `--aws_enforce_fips`; `amazonaws.com.cn` in China's regions).
pub fn endpoint(service: &str, over: &str, env: &AwsEnv, region: &str, fips: bool) -> String {
    let from_env = env
        .get(&format!(
            "AWS_ENDPOINT_URL_{}",
            service.to_ascii_uppercase()
        ))
        .or_else(|| env.get("AWS_ENDPOINT_URL"));
    if let Some(given) = Some(over).filter(|o| !o.is_empty()).or(from_env) {
        let url = if given.contains("://") {
            given.to_owned()
        } else {
            format!("https://{given}")
        };
        return url.trim_end_matches('/').to_owned();
    }
    let suffix = if region.starts_with("cn-") {
        "amazonaws.com.cn"
    } else {
        "amazonaws.com"
    };
    let fips = if fips { "-fips" } else { "" };
    format!("https://{service}{fips}.{region}.{suffix}")
}

/// One HTTP exchange's answer.
#[derive(Debug, Clone)]
pub struct Answer {
    pub status: u16,
    pub body: Vec<u8>,
}

/// The HTTP side of every AWS client: one agent (proxy applied), and `--aws_debug`.
#[derive(Clone)]
pub struct AwsHttp {
    agent: ureq::Agent,
    debug: bool,
}

impl std::fmt::Debug for AwsHttp {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AwsHttp").finish_non_exhaustive()
    }
}

impl AwsHttp {
    pub fn new(settings: &AwsSettings, version: &str) -> Result<AwsHttp, String> {
        let proxy = match &settings.proxy {
            Some(url) => {
                Some(ureq::Proxy::new(url).map_err(|e| format!("--aws_proxy_* flags: {e}"))?)
            }
            None => None,
        };
        let agent = crate::client::plain_agent(AWS_TIMEOUT, &format!("osquery/{version}"), proxy)?;
        Ok(AwsHttp {
            agent,
            debug: settings.debug,
        })
    }

    /// Sends one request and reads the answer, whatever its status.
    pub fn send(
        &self,
        method: &str,
        url: &str,
        headers: &[(String, String)],
        body: &[u8],
    ) -> Result<Answer, String> {
        if self.debug {
            let target = headers
                .iter()
                .find(|(n, _)| n.eq_ignore_ascii_case("x-amz-target"))
                .map_or("", |(_, v)| v.as_str());
            log::info!(
                "AWS request: {method} {url} {target} ({} bytes)",
                body.len()
            );
        }
        let sent = match method {
            "GET" => {
                let mut request = self.agent.get(url);
                for (name, value) in headers {
                    request = request.header(name.as_str(), value.as_str());
                }
                request.call()
            }
            "PUT" | "POST" => {
                let mut request = if method == "PUT" {
                    self.agent.put(url)
                } else {
                    self.agent.post(url)
                };
                for (name, value) in headers {
                    request = request.header(name.as_str(), value.as_str());
                }
                request.send(body)
            }
            other => return Err(format!("unsupported HTTP method {other}")),
        };
        let mut answer = sent.map_err(|e| {
            if self.debug {
                log::info!("AWS request to {url} failed: {e}");
            }
            e.to_string()
        })?;
        let status = answer.status().as_u16();
        let body = crate::client::read_body(&mut answer, MAX_ANSWER_BYTES)?;
        if self.debug {
            log::info!(
                "AWS answer from {url}: {status}, {}",
                String::from_utf8_lossy(&body[..body.len().min(1024)])
            );
        }
        Ok(Answer { status, body })
    }
}

/// Why an AWS request failed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AwsError {
    /// No answer (connection, TLS, timeout).
    Transport(String),
    /// No credentials could be found or fetched.
    Credentials(String),
    /// An error answer: its HTTP status, AWS error code and message.
    Service {
        status: u16,
        code: String,
        message: String,
    },
}

impl AwsError {
    /// Whether trying again later can succeed: throttling, AWS's own failures, no answer.
    /// Expired credentials count too: the next attempt fetches new ones.
    pub fn retryable(&self) -> bool {
        match self {
            AwsError::Transport(_) | AwsError::Credentials(_) => true,
            AwsError::Service { status, code, .. } => {
                *status >= 500 || *status == 429 || is_throttling(code) || is_expired(code)
            }
        }
    }

    pub fn code(&self) -> &str {
        match self {
            AwsError::Service { code, .. } => code,
            _ => "",
        }
    }
}

/// Error codes that mean "slow down" (per-record ones in PutRecords answers too).
pub fn is_throttling(code: &str) -> bool {
    matches!(
        code,
        "ProvisionedThroughputExceededException"
            | "ThrottlingException"
            | "Throttling"
            | "LimitExceededException"
            | "ServiceUnavailableException"
            | "ServiceUnavailable"
            | "InternalFailure"
            | "KMSThrottlingException"
            | "RequestLimitExceeded"
    )
}

fn is_expired(code: &str) -> bool {
    matches!(
        code,
        "ExpiredTokenException" | "ExpiredToken" | "RequestExpired"
    )
}

impl std::fmt::Display for AwsError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            AwsError::Transport(e) => write!(f, "no answer from AWS: {e}"),
            AwsError::Credentials(e) => write!(f, "no AWS credentials: {e}"),
            AwsError::Service {
                status,
                code,
                message,
            } => write!(f, "AWS answered {status} {code}: {message}"),
        }
    }
}

impl std::error::Error for AwsError {}

/// A client of one AWS JSON service (Kinesis, Firehose) at one endpoint.
#[derive(Debug, Clone)]
pub struct AwsClient {
    http: AwsHttp,
    credentials: Arc<CredentialChain>,
    /// The endpoint URL, without a trailing slash.
    endpoint: String,
    region: String,
    /// The signing name (`kinesis`, `firehose`).
    service: &'static str,
}

impl AwsClient {
    pub fn new(
        http: AwsHttp,
        credentials: Arc<CredentialChain>,
        endpoint: String,
        region: String,
        service: &'static str,
    ) -> AwsClient {
        AwsClient {
            http,
            credentials,
            endpoint,
            region,
            service,
        }
    }

    pub fn endpoint(&self) -> &str {
        &self.endpoint
    }

    /// One call of the JSON 1.1 protocol: `target` (`Kinesis_20131202.PutRecords`) with
    /// `body`, signed; the answer's JSON, or the error it names.
    pub fn call_json(
        &self,
        target: &str,
        body: &Value,
        stop: &AtomicBool,
    ) -> Result<Value, AwsError> {
        let bytes = serde_json::to_vec(body).map_err(|e| AwsError::Transport(e.to_string()))?;
        let credentials = self.credentials.get(stop).map_err(AwsError::Credentials)?;
        let url = format!("{}/", self.endpoint);
        let host = host_of(&url);
        let unsigned = [
            ("host", host.as_str()),
            ("content-type", "application/x-amz-json-1.1"),
            ("x-amz-target", target),
        ];
        let signature = sign::signature_headers(
            &sign::Unsigned {
                method: "POST",
                url: &url,
                headers: &unsigned,
                body: &bytes,
            },
            &credentials,
            &self.region,
            self.service,
            SystemTime::now(),
        )
        .map_err(AwsError::Credentials)?;
        // ureq writes Host itself from the URL, the same value as signed.
        let mut headers: Vec<(String, String)> = unsigned[1..]
            .iter()
            .map(|(n, v)| ((*n).to_owned(), (*v).to_owned()))
            .collect();
        headers.extend(signature);
        let answer = self
            .http
            .send("POST", &url, &headers, &bytes)
            .map_err(AwsError::Transport)?;
        let value: Value = serde_json::from_slice(&answer.body).unwrap_or(Value::Null);
        if answer.status == 200 {
            if value.is_object() {
                return Ok(value);
            }
            return Err(AwsError::Service {
                status: answer.status,
                code: "MalformedAnswer".to_owned(),
                message: String::from_utf8_lossy(&answer.body[..answer.body.len().min(200)])
                    .into_owned(),
            });
        }
        let error = json_error(answer.status, &value, &answer.body);
        if is_expired(error.code()) {
            self.credentials.invalidate();
        }
        Err(error)
    }
}

impl AwsClient {
    /// One call of the Query protocol (EC2, STS): the form `body` (`Action=...&Version=...`)
    /// posted, signed; the answer's XML text, or the error it names (`Code`, `Message`).
    pub fn call_query(&self, body: &str, stop: &AtomicBool) -> Result<String, AwsError> {
        let credentials = self.credentials.get(stop).map_err(AwsError::Credentials)?;
        let url = format!("{}/", self.endpoint);
        let host = host_of(&url);
        let content_type = "application/x-www-form-urlencoded; charset=utf-8";
        let unsigned = [("host", host.as_str()), ("content-type", content_type)];
        let signature = sign::signature_headers(
            &sign::Unsigned {
                method: "POST",
                url: &url,
                headers: &unsigned,
                body: body.as_bytes(),
            },
            &credentials,
            &self.region,
            self.service,
            SystemTime::now(),
        )
        .map_err(AwsError::Credentials)?;
        let mut headers = vec![("content-type".to_owned(), content_type.to_owned())];
        headers.extend(signature);
        let answer = self
            .http
            .send("POST", &url, &headers, body.as_bytes())
            .map_err(AwsError::Transport)?;
        let text = String::from_utf8_lossy(&answer.body).into_owned();
        if answer.status == 200 {
            return Ok(text);
        }
        let code = credentials::xml_value(&text, "Code")
            .unwrap_or_else(|| format!("HTTP{}", answer.status));
        if is_expired(&code) {
            self.credentials.invalidate();
        }
        Err(AwsError::Service {
            status: answer.status,
            code,
            message: credentials::xml_value(&text, "Message").unwrap_or_default(),
        })
    }
}

/// The error an answer of the JSON protocol names: `__type` (after any `#`) and
/// `message`/`Message`.
fn json_error(status: u16, value: &Value, body: &[u8]) -> AwsError {
    let code = value
        .get("__type")
        .and_then(Value::as_str)
        .map(|t| t.rsplit('#').next().unwrap_or(t).to_owned())
        .unwrap_or_else(|| format!("HTTP{status}"));
    let message = value
        .get("message")
        .or_else(|| value.get("Message"))
        .and_then(Value::as_str)
        .map_or_else(
            || String::from_utf8_lossy(&body[..body.len().min(200)]).into_owned(),
            str::to_owned,
        );
    AwsError::Service {
        status,
        code,
        message,
    }
}

/// A service's record limits, as osquery applies them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Records per request.
    pub records: usize,
    /// A record at least this big (with its newline) is dropped.
    pub record_bytes: usize,
    /// Bytes of records per request (below this).
    pub batch_bytes: usize,
    /// Each record ends with a newline (Firehose: S3 objects stay line-separated).
    pub newline: bool,
}

/// What a record-put request said about each record: `None` accepted, `Some(code)`
/// refused (to be sent again, or given up on).
pub type PutAnswer = Vec<Option<String>>;

/// A stream that takes log records: Kinesis or Firehose.
pub trait RecordStream: Send + Sync {
    /// The logger plugin's name (`aws_kinesis`, `aws_firehose`).
    fn plugin(&self) -> &'static str;
    fn stream_name(&self) -> &str;
    fn limits(&self) -> Limits;
    /// One request with `records` (within [`RecordStream::limits`]).
    fn put(&self, records: &[Vec<u8>], stop: &AtomicBool) -> Result<PutAnswer, AwsError>;
    /// Whether the stream exists and takes records (Describe...): `Ok(status)` when it
    /// does, `Err` saying why not.
    fn check(&self, stop: &AtomicBool) -> Result<String, AwsError>;
}

/// The per-record results of a put answer, under `list`, each failed one with
/// `ErrorCode`; a missing or short list fails every record it does not cover.
fn per_record(answer: &Value, list: &str, count: usize) -> PutAnswer {
    let results = answer.get(list).and_then(Value::as_array);
    (0..count)
        .map(|i| match results.and_then(|r| r.get(i)) {
            Some(r) => r
                .get("ErrorCode")
                .and_then(Value::as_str)
                .filter(|c| !c.is_empty())
                .map(str::to_owned),
            None => Some("MissingResult".to_owned()),
        })
        .collect()
}

/// `host[:port]` of a URL, as signed.
pub fn host_of(url: &str) -> String {
    let rest = url.split_once("://").map_or(url, |(_, r)| r);
    let authority = rest.split(['/', '?']).next().unwrap_or(rest);
    let authority = authority.rsplit('@').next().unwrap_or(authority);
    // The default port is not part of the Host header.
    let default = if url.starts_with("http://") {
        ":80"
    } else {
        ":443"
    };
    authority
        .strip_suffix(default)
        .unwrap_or(authority)
        .to_owned()
}

/// `application/x-www-form-urlencoded` text of a value (the Query protocol's bodies):
/// unreserved characters as they are, every other byte as `%XX`.
pub fn form_encode(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for b in text.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn endpoints_follow_region_fips_and_overrides() {
        let env = AwsEnv::default();
        assert_eq!(
            endpoint("kinesis", "", &env, "eu-west-1", false),
            "https://kinesis.eu-west-1.amazonaws.com"
        );
        assert_eq!(
            endpoint("firehose", "", &env, "us-gov-west-1", true),
            "https://firehose-fips.us-gov-west-1.amazonaws.com"
        );
        assert_eq!(
            endpoint("sts", "", &env, "cn-north-1", false),
            "https://sts.cn-north-1.amazonaws.com.cn"
        );
        assert_eq!(
            endpoint("kinesis", "kinesis.internal:8443", &env, "us-east-1", true),
            "https://kinesis.internal:8443"
        );
        assert_eq!(
            endpoint(
                "kinesis",
                "http://127.0.0.1:5000/",
                &env,
                "us-east-1",
                false
            ),
            "http://127.0.0.1:5000"
        );
        let env = AwsEnv::from_pairs([
            ("AWS_ENDPOINT_URL", "http://127.0.0.1:1"),
            ("AWS_ENDPOINT_URL_STS", "http://127.0.0.1:2"),
        ]);
        assert_eq!(
            endpoint("sts", "", &env, "us-east-1", false),
            "http://127.0.0.1:2"
        );
        assert_eq!(
            endpoint("kinesis", "", &env, "us-east-1", false),
            "http://127.0.0.1:1"
        );
        // The flag wins over the environment.
        assert_eq!(
            endpoint("kinesis", "http://127.0.0.1:3", &env, "us-east-1", false),
            "http://127.0.0.1:3"
        );
    }

    #[test]
    fn hosts_as_signed() {
        assert_eq!(
            host_of("https://kinesis.us-east-1.amazonaws.com/"),
            "kinesis.us-east-1.amazonaws.com"
        );
        assert_eq!(host_of("http://127.0.0.1:5000/"), "127.0.0.1:5000");
        assert_eq!(host_of("http://127.0.0.1:80/"), "127.0.0.1");
        assert_eq!(host_of("https://h:443/x?y"), "h");
    }

    #[test]
    fn proxy_urls_from_flags() {
        assert_eq!(
            proxy_url("http", "proxy.lan", 3128, "", ""),
            "http://proxy.lan:3128"
        );
        assert_eq!(
            proxy_url("", "p", 8080, "me", "p@ss:w"),
            "https://me:p%40ss%3Aw@p:8080"
        );
    }

    #[test]
    fn errors_of_the_json_protocol() {
        let body = br#"{"__type":"com.amazonaws.kinesis#ProvisionedThroughputExceededException","message":"slow down"}"#;
        let value = serde_json::from_slice(body).unwrap();
        let e = json_error(400, &value, body);
        assert_eq!(e.code(), "ProvisionedThroughputExceededException");
        assert!(e.retryable());
        let body = br#"{"__type":"ResourceNotFoundException","Message":"no stream"}"#;
        let e = json_error(400, &serde_json::from_slice(body).unwrap(), body);
        assert!(!e.retryable());
        assert_eq!(
            e.to_string(),
            "AWS answered 400 ResourceNotFoundException: no stream"
        );
        let e = json_error(503, &Value::Null, b"<html>");
        assert_eq!(e.code(), "HTTP503");
        assert!(e.retryable());
    }

    #[test]
    fn form_encoding() {
        assert_eq!(
            form_encode("arn:aws:iam::123456789012:role/x y"),
            "arn%3Aaws%3Aiam%3A%3A123456789012%3Arole%2Fx%20y"
        );
    }
}
