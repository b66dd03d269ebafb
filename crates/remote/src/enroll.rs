//! Enrollment and the node key: the key a fleet server hands out at enrollment, kept in
//! the store (`configurations/nodeKey`, with `nodeKeyTime`, osquery's keys, so a host
//! keeps its identity across restarts), asked for lazily by the first request that needs
//! it, dropped when the server says it is invalid (unless `--disable_reenrollment`), and
//! replaced by enrolling again on the next request.

use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use oxquery_flags::{Flags, flag};
use oxquery_store::{Domain, Store};
use serde_json::{Value, json};

use crate::client::{RequestError, TlsClient};

/// osquery's store keys.
pub const NODE_KEY: &str = "nodeKey";
pub const NODE_KEY_TIME: &str = "nodeKeyTime";

/// What the enrollment flags say.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EnrollSettings {
    /// `--enroll_tls_endpoint`.
    pub endpoint: String,
    /// `--enroll_secret_path`.
    pub secret_path: PathBuf,
    /// `--enroll_secret_env`: the name of the variable holding the secret.
    pub secret_env: String,
    /// `--tls_enroll_override`: the request field carrying the secret.
    pub secret_field: String,
    /// `--tls_enroll_max_attempts` (0: until it works or the daemon stops).
    pub max_attempts: u64,
    /// `--tls_enroll_max_interval`, seconds.
    pub max_interval: u64,
    /// `--disable_enrollment`.
    pub disabled: bool,
    /// `--disable_reenrollment`.
    pub keep_invalid_key: bool,
    /// `--enroll_always`.
    pub always: bool,
    /// The host identifier sent with the request.
    pub host_identifier: String,
    /// `--tls_secret_always`: every request's URL carries `<secret_field>=<secret>`.
    pub secret_always: bool,
    /// `--tls_node_api`: endpoints hang under the node (`/<node_key><endpoint>`) and the
    /// config is fetched with a GET.
    pub node_api: bool,
}

impl EnrollSettings {
    pub fn from_flags(flags: &Flags, host_identifier: &str) -> EnrollSettings {
        EnrollSettings {
            endpoint: flags.get(flag::enroll_tls_endpoint).to_owned(),
            secret_path: flags.get(flag::enroll_secret_path).to_owned(),
            secret_env: flags.get(flag::enroll_secret_env).to_owned(),
            secret_field: flags.get(flag::tls_enroll_override).to_owned(),
            max_attempts: flags.get(flag::tls_enroll_max_attempts),
            max_interval: flags.get(flag::tls_enroll_max_interval),
            disabled: flags.get(flag::disable_enrollment),
            keep_invalid_key: flags.get(flag::disable_reenrollment),
            always: flags.get(flag::enroll_always),
            host_identifier: host_identifier.to_owned(),
            secret_always: flags.get(flag::tls_secret_always),
            node_api: flags.get(flag::tls_node_api),
        }
    }
}

/// The largest secret file read: secrets are short, and the file is one a user may
/// point at anything.
const MAX_SECRET_BYTES: u64 = 64 * 1024;

/// The enrollment secret: the file's text (trailing whitespace trimmed, as osquery
/// does), or the environment variable's value when no file is given.
pub fn read_secret(settings: &EnrollSettings) -> Result<String, String> {
    if !settings.secret_path.as_os_str().is_empty() {
        use std::io::Read;
        let file = std::fs::File::open(&settings.secret_path).map_err(|e| {
            format!(
                "Cannot read the enroll secret {}: {e}",
                settings.secret_path.display()
            )
        })?;
        let mut text = String::new();
        file.take(MAX_SECRET_BYTES)
            .read_to_string(&mut text)
            .map_err(|e| {
                format!(
                    "Cannot read the enroll secret {}: {e}",
                    settings.secret_path.display()
                )
            })?;
        return Ok(text.trim_end().to_owned());
    }
    if !settings.secret_env.is_empty() {
        return std::env::var(&settings.secret_env)
            .map(|v| v.trim_end().to_owned())
            .map_err(|_| {
                format!(
                    "The enroll secret variable {} is not set",
                    settings.secret_env
                )
            });
    }
    Ok(String::new())
}

/// The enroll request's body, as osquery builds it (`platform_type` 9 is Linux's
/// bitmask: posix and linux).
pub fn enroll_request(settings: &EnrollSettings, secret: &str, host_details: Value) -> Value {
    let mut body = serde_json::Map::new();
    body.insert(settings.secret_field.clone(), Value::from(secret));
    body.insert(
        "host_identifier".to_owned(),
        Value::from(settings.host_identifier.as_str()),
    );
    body.insert("platform_type".to_owned(), Value::from("9"));
    body.insert("host_details".to_owned(), host_details);
    Value::Object(body)
}

/// The node key in the answer: `node_key`, or `id` as some servers name it.
fn node_key_of(answer: &Value) -> Option<String> {
    ["node_key", "id"]
        .iter()
        .find_map(|k| answer.get(*k).and_then(Value::as_str))
        .filter(|k| !k.is_empty())
        .map(str::to_owned)
}

/// The node key of this host: read from the store, or obtained by enrolling.
pub struct NodeKeys {
    client: TlsClient,
    settings: EnrollSettings,
    store: Arc<Mutex<Store>>,
    /// The facts sent as `host_details`, gathered when an enrollment happens.
    host_details: Box<dyn Fn() -> Value + Send + Sync>,
    /// One enrollment at a time: plugins asking at once wait for the first one's key.
    enrolling: Mutex<()>,
}

impl NodeKeys {
    pub fn new(
        client: TlsClient,
        settings: EnrollSettings,
        store: Arc<Mutex<Store>>,
        host_details: Box<dyn Fn() -> Value + Send + Sync>,
    ) -> NodeKeys {
        let keys = NodeKeys {
            client,
            settings,
            store,
            host_details,
            enrolling: Mutex::new(()),
        };
        if keys.settings.always {
            keys.forget();
        }
        keys
    }

    pub fn client(&self) -> &TlsClient {
        &self.client
    }

    /// The store the key (and the config backup) live in.
    pub fn store(&self) -> std::sync::MutexGuard<'_, Store> {
        self.store.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The stored key, if any.
    pub fn stored(&self) -> Option<String> {
        match self.store().get_text(Domain::Configurations, NODE_KEY) {
            Ok(key) => key.filter(|k| !k.is_empty()),
            Err(e) => {
                log::warn!("Cannot read the node key: {e}");
                None
            }
        }
    }

    /// Deletes the stored key (the next request enrolls again).
    pub fn forget(&self) {
        let store = self.store();
        for key in [NODE_KEY, NODE_KEY_TIME] {
            if let Err(e) = store.delete(Domain::Configurations, key) {
                log::warn!("Cannot delete the node key: {e}");
            }
        }
    }

    /// What a request that failed with `error` does to the key: an invalid key is
    /// forgotten, so the next attempt enrolls again (unless `--disable_reenrollment`).
    pub fn after_failure(&self, error: &RequestError) {
        if matches!(error, RequestError::NodeInvalid(_)) {
            if self.settings.keep_invalid_key {
                log::warn!(
                    "The server says the node key is invalid; keeping it (--disable_reenrollment)"
                );
            } else {
                log::warn!("The server says the node key is invalid; enrolling again");
                self.forget();
            }
        }
    }

    /// The node key: the stored one, or a new one from enrolling (retried with growing
    /// waits, `min(attempt², --tls_enroll_max_interval)` seconds, up to
    /// `--tls_enroll_max_attempts`; `stop` ends the waiting).
    pub fn get(&self, stop: &AtomicBool) -> Result<String, String> {
        if let Some(key) = self.stored() {
            return Ok(key);
        }
        let _one_at_a_time = self.enrolling.lock().unwrap_or_else(|p| p.into_inner());
        // Another plugin may have enrolled while this one waited.
        if let Some(key) = self.stored() {
            return Ok(key);
        }
        if self.settings.disabled {
            return Err(
                "Enrollment is disabled (--disable_enrollment) and there is no node key".to_owned(),
            );
        }
        let secret = read_secret(&self.settings)?;
        let mut attempt: u64 = 1;
        loop {
            match self.enroll_once(&secret) {
                Ok(key) => return Ok(key),
                Err(e) => {
                    log::warn!(
                        "Failed enrollment request to {} (attempt {attempt}): {e}",
                        self.client.url(&self.settings.endpoint)
                    );
                    if self.settings.max_attempts != 0 && attempt >= self.settings.max_attempts {
                        return Err(format!("Failed to enroll after {attempt} attempts: {e}"));
                    }
                }
            }
            let wait = (attempt * attempt).min(self.settings.max_interval.max(1));
            if !sleep_unless_stopped(Duration::from_secs(wait), stop) {
                return Err("Enrollment stopped: the daemon is stopping".to_owned());
            }
            attempt += 1;
        }
    }

    fn enroll_once(&self, secret: &str) -> Result<String, String> {
        let body = enroll_request(&self.settings, secret, (self.host_details)());
        let answer = self
            .client
            .post(&self.settings.endpoint, &body, false, None)
            .map_err(|e| e.to_string())?;
        let key = node_key_of(&answer).ok_or("the answer has no node_key")?;
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_secs());
        let store = self.store();
        store
            .put(Domain::Configurations, NODE_KEY, key.as_bytes())
            .and_then(|()| {
                store.put(
                    Domain::Configurations,
                    NODE_KEY_TIME,
                    now.to_string().as_bytes(),
                )
            })
            .map_err(|e| format!("cannot store the node key: {e}"))?;
        log::info!("Enrolled with {}", self.client.url(&self.settings.endpoint));
        Ok(key)
    }

    /// POSTs `body` (with `node_key` added) to `endpoint`, enrolling first when there is
    /// no key, and retrying up to `attempts` times with `i²`-second waits; an invalid key
    /// is forgotten and the next attempt enrolls again.
    pub fn post_with_key(
        &self,
        endpoint: &str,
        body: Value,
        gzip: bool,
        attempts: u64,
        stop: &AtomicBool,
    ) -> Result<Value, String> {
        self.call_with_key(endpoint, Some((body, gzip)), attempts, stop)
    }

    /// As [`NodeKeys::post_with_key`], a GET without a body (the node API's config).
    pub fn get_with_key(
        &self,
        endpoint: &str,
        attempts: u64,
        stop: &AtomicBool,
    ) -> Result<Value, String> {
        self.call_with_key(endpoint, None, attempts, stop)
    }

    /// Whether `--tls_node_api` is on.
    pub fn node_api(&self) -> bool {
        self.settings.node_api
    }

    fn call_with_key(
        &self,
        endpoint: &str,
        mut post: Option<(Value, bool)>,
        attempts: u64,
        stop: &AtomicBool,
    ) -> Result<Value, String> {
        let attempts = attempts.max(1);
        let secret = if self.settings.secret_always {
            Some(read_secret(&self.settings)?)
        } else {
            None
        };
        let mut last = String::new();
        for i in 1..=attempts {
            let key = self.get(stop)?;
            let path = self.path_for(endpoint, &key, secret.as_deref());
            let answer = match &mut post {
                Some((body, gzip)) => {
                    if let Some(map) = body.as_object_mut() {
                        map.insert("node_key".to_owned(), Value::from(key.as_str()));
                    }
                    self.client.post(&path, body, *gzip, Some(&key))
                }
                None => self.client.get(&path, Some(&key)),
            };
            match answer {
                Ok(answer) => return Ok(answer),
                Err(e) => {
                    self.after_failure(&e);
                    last = e.to_string();
                }
            }
            if i < attempts && !sleep_unless_stopped(Duration::from_secs(i * i), stop) {
                break;
            }
        }
        Err(last)
    }

    /// The request path of `endpoint` for a node holding `key`: under the node with
    /// `--tls_node_api`, with the secret in the query with `--tls_secret_always`.
    fn path_for(&self, endpoint: &str, key: &str, secret: Option<&str>) -> String {
        let mut path = if self.settings.node_api {
            let slash = if endpoint.starts_with('/') || endpoint.is_empty() {
                ""
            } else {
                "/"
            };
            format!("/{key}{slash}{endpoint}")
        } else {
            endpoint.to_owned()
        };
        if let Some(secret) = secret {
            path = with_secret(&path, &self.settings.secret_field, secret);
        }
        path
    }
}

/// `endpoint` with `<field>=<secret>` added to its query (the secret percent-encoded;
/// the field is `--tls_enroll_override`, as in the enroll request).
fn with_secret(endpoint: &str, field: &str, secret: &str) -> String {
    let mut encoded = String::with_capacity(secret.len());
    for b in secret.bytes() {
        if b.is_ascii_alphanumeric() || b"-_.~".contains(&b) {
            encoded.push(char::from(b));
        } else {
            encoded.push_str(&format!("%{b:02X}"));
        }
    }
    let joiner = if endpoint.contains('?') { '&' } else { '?' };
    format!("{endpoint}{joiner}{field}={encoded}")
}

/// The first row of a table as strings, the shape of each `host_details` member.
pub fn host_details(tables: [(&str, Value); 4]) -> Value {
    let mut details = serde_json::Map::new();
    for (name, row) in tables {
        details.insert(name.to_owned(), row);
    }
    json!(details)
}

/// Sleeps `wait` in short steps; false as soon as `stop` is set.
pub fn sleep_unless_stopped(wait: Duration, stop: &AtomicBool) -> bool {
    let end = Instant::now() + wait;
    while !stop.load(Ordering::SeqCst) {
        let left = end.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return true;
        }
        std::thread::sleep(left.min(Duration::from_millis(100)));
    }
    false
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings() -> EnrollSettings {
        EnrollSettings {
            endpoint: "/enroll".to_owned(),
            secret_path: PathBuf::new(),
            secret_env: String::new(),
            secret_field: "enroll_secret".to_owned(),
            max_attempts: 2,
            max_interval: 1,
            disabled: false,
            keep_invalid_key: false,
            always: false,
            host_identifier: "host-a".to_owned(),
            secret_always: false,
            node_api: false,
        }
    }

    #[test]
    fn the_secret_joins_the_query_encoded() {
        assert_eq!(
            with_secret("/config", "enroll_secret", "a b&c"),
            "/config?enroll_secret=a%20b%26c"
        );
        assert_eq!(with_secret("/log?x=1", "secret", "s"), "/log?x=1&secret=s");
    }

    #[test]
    fn the_request_has_osquery_fields_and_the_override_name() {
        let details = json!({"os_version": {"name": "Debian"}});
        let body = enroll_request(&settings(), "s3cret", details.clone());
        assert_eq!(
            body,
            json!({"enroll_secret": "s3cret", "host_identifier": "host-a", "platform_type": "9", "host_details": details})
        );
        let mut renamed = settings();
        renamed.secret_field = "secret".to_owned();
        assert_eq!(enroll_request(&renamed, "x", json!({}))["secret"], "x");
    }

    #[test]
    fn secrets_come_from_the_file_trimmed_or_the_variable() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("secret");
        std::fs::write(&path, "abc \n").unwrap();
        let mut s = settings();
        s.secret_path = path;
        assert_eq!(read_secret(&s).unwrap(), "abc");
        s.secret_path = dir.path().join("missing");
        assert!(read_secret(&s).unwrap_err().contains("missing"));
        let mut s = settings();
        s.secret_env = "OXQUERY_TEST_NO_SUCH_SECRET_VARIABLE".to_owned();
        assert!(read_secret(&s).is_err());
        assert_eq!(read_secret(&settings()).unwrap(), "");
    }

    #[test]
    fn the_key_is_node_key_or_id() {
        assert_eq!(node_key_of(&json!({"node_key": "a"})).as_deref(), Some("a"));
        assert_eq!(node_key_of(&json!({"id": "b"})).as_deref(), Some("b"));
        assert_eq!(node_key_of(&json!({"node_key": ""})), None);
        assert_eq!(node_key_of(&json!({"node_key": 5})), None);
    }
}
