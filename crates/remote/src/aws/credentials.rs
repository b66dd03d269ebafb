//! AWS credentials, found as osquery's provider chain finds them (utils/aws/aws_util.cpp):
//!
//! 1. `--aws_session_token` with `--aws_access_key_id`/`--aws_secret_access_key`
//!    (temporary credentials given whole), or with `--aws_sts_arn_role` the role assumed
//!    through STS (`--aws_sts_region`, `--aws_sts_session_name`, `--aws_sts_timeout`),
//!    signed with the credentials of the steps below;
//! 2. `--aws_access_key_id` and `--aws_secret_access_key` (one without the other is
//!    skipped with a warning);
//! 3. the profile `--aws_profile_name` of the shared credentials file
//!    (`AWS_SHARED_CREDENTIALS_FILE` or `~/.aws/credentials`);
//! 4. the environment (`AWS_ACCESS_KEY_ID`, `AWS_SECRET_ACCESS_KEY`, `AWS_SESSION_TOKEN`);
//! 5. the default profile (`AWS_PROFILE`, else `default`) of that file;
//! 6. the EC2 instance profile through the instance metadata service ([`super::imds`]).
//!
//! Credentials that expire (STS, the instance profile) are kept and fetched again before
//! they expire; a failed search is not repeated for a minute, so an agent without
//! credentials does not wait on the metadata service at every batch.

use std::path::Path;
use std::sync::Mutex;
use std::sync::atomic::AtomicBool;
use std::time::{Duration, Instant, SystemTime};

use oxquery_flags::{Flags, flag};

use super::imds::ImdsClient;
use super::{AwsEnv, AwsHttp, AwsSettings, endpoint, form_encode, host_of, sign};

/// A key pair, with its session token and expiry for temporary ones.
#[derive(Clone, PartialEq, Eq)]
pub struct Credentials {
    pub access_key_id: String,
    pub secret_access_key: String,
    pub session_token: Option<String>,
    pub expires: Option<SystemTime>,
}

impl std::fmt::Debug for Credentials {
    // The secret and the token never reach a log.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Credentials")
            .field("access_key_id", &self.access_key_id)
            .field("expires", &self.expires)
            .finish_non_exhaustive()
    }
}

/// The credential flags.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CredentialSettings {
    pub access_key_id: String,
    pub secret_access_key: String,
    pub session_token: String,
    pub profile_name: String,
    pub sts_arn_role: String,
    pub sts_region: String,
    pub sts_session_name: String,
    pub sts_timeout: Duration,
}

impl CredentialSettings {
    pub fn from_flags(flags: &Flags) -> CredentialSettings {
        CredentialSettings {
            access_key_id: flags.get(flag::aws_access_key_id).to_owned(),
            secret_access_key: flags.get(flag::aws_secret_access_key).to_owned(),
            session_token: flags.get(flag::aws_session_token).to_owned(),
            profile_name: flags.get(flag::aws_profile_name).to_owned(),
            sts_arn_role: flags.get(flag::aws_sts_arn_role).to_owned(),
            sts_region: flags.get(flag::aws_sts_region).to_owned(),
            sts_session_name: flags.get(flag::aws_sts_session_name).to_owned(),
            sts_timeout: Duration::from_secs(flags.get(flag::aws_sts_timeout)),
        }
    }
}

/// How long a failed search is remembered.
const FAILURE_MEMORY: Duration = Duration::from_secs(60);

enum Cached {
    None,
    Found {
        credentials: Credentials,
        /// When to fetch again (some time before they expire); `None`: never.
        refresh_at: Option<Instant>,
    },
    Failed {
        error: String,
        at: Instant,
    },
}

/// osquery's credential chain, with its cache. Shared by every client of the process.
pub struct CredentialChain {
    settings: AwsSettings,
    env: AwsEnv,
    http: AwsHttp,
    imds: ImdsClient,
    cache: Mutex<Cached>,
}

impl std::fmt::Debug for CredentialChain {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CredentialChain").finish_non_exhaustive()
    }
}

impl CredentialChain {
    pub fn new(settings: AwsSettings, env: AwsEnv, http: AwsHttp) -> CredentialChain {
        let imds = ImdsClient::new(settings.imds.clone());
        CredentialChain {
            settings,
            env,
            http,
            imds,
            cache: Mutex::new(Cached::None),
        }
    }

    /// The credentials to sign with now.
    pub fn get(&self, stop: &AtomicBool) -> Result<Credentials, String> {
        let mut cache = self.cache.lock().unwrap_or_else(|p| p.into_inner());
        let now = Instant::now();
        let stale = match &*cache {
            Cached::Found {
                credentials,
                refresh_at,
            } => {
                if refresh_at.is_none_or(|t| now < t) {
                    return Ok(credentials.clone());
                }
                Some(credentials.clone())
            }
            Cached::Failed { error, at } if now.duration_since(*at) < FAILURE_MEMORY => {
                return Err(error.clone());
            }
            _ => None,
        };
        match self.search(stop) {
            Ok(credentials) => {
                let refresh_at = credentials.expires.map(|expires| {
                    let left = expires
                        .duration_since(SystemTime::now())
                        .unwrap_or_default();
                    // Fetch again when a quarter of the lifetime (at most 5 minutes) is left.
                    now + left - (left / 4).min(Duration::from_secs(300))
                });
                *cache = Cached::Found {
                    credentials: credentials.clone(),
                    refresh_at,
                };
                Ok(credentials)
            }
            Err(error) => {
                // Credentials about to expire are still good until they do.
                if let Some(current) =
                    stale.filter(|c| c.expires.is_some_and(|x| x > SystemTime::now()))
                {
                    log::warn!(
                        "Cannot refresh AWS credentials, using the current ones until they expire: {error}"
                    );
                    return Ok(current);
                }
                *cache = Cached::Failed {
                    error: error.clone(),
                    at: now,
                };
                Err(error)
            }
        }
    }

    /// Forgets the kept credentials (AWS said they expired).
    pub fn invalidate(&self) {
        *self.cache.lock().unwrap_or_else(|p| p.into_inner()) = Cached::None;
    }

    fn search(&self, stop: &AtomicBool) -> Result<Credentials, String> {
        let s = &self.settings.credentials;
        if !s.session_token.is_empty() {
            if s.access_key_id.is_empty() || s.secret_access_key.is_empty() {
                return Err(
                    "--aws_session_token needs --aws_access_key_id and --aws_secret_access_key"
                        .to_owned(),
                );
            }
            log::info!(
                "Using the given AWS session token for key id {}",
                s.access_key_id.chars().take(8).collect::<String>()
            );
            return Ok(Credentials {
                access_key_id: s.access_key_id.clone(),
                secret_access_key: s.secret_access_key.clone(),
                session_token: Some(s.session_token.clone()),
                expires: None,
            });
        }
        if !s.sts_arn_role.is_empty() {
            let base = self.base(stop)?;
            return self.assume_role(&base, stop);
        }
        self.base(stop)
    }

    /// Steps 2 to 6 of the chain.
    fn base(&self, stop: &AtomicBool) -> Result<Credentials, String> {
        let s = &self.settings.credentials;
        match (s.access_key_id.is_empty(), s.secret_access_key.is_empty()) {
            (false, false) => {
                return Ok(Credentials {
                    access_key_id: s.access_key_id.clone(),
                    secret_access_key: s.secret_access_key.clone(),
                    session_token: None,
                    expires: None,
                });
            }
            (true, true) => {}
            _ => log::warn!("Cannot use AWS credentials: ID or secret missing"),
        }
        let file = self
            .env
            .aws_file("AWS_SHARED_CREDENTIALS_FILE", "credentials");
        if !s.profile_name.is_empty()
            && let Some(c) = file
                .as_deref()
                .and_then(|f| profile_credentials(f, &s.profile_name))
        {
            return Ok(c);
        }
        if let (Some(id), Some(secret)) = (
            self.env.get("AWS_ACCESS_KEY_ID"),
            self.env.get("AWS_SECRET_ACCESS_KEY"),
        ) {
            return Ok(Credentials {
                access_key_id: id.to_owned(),
                secret_access_key: secret.to_owned(),
                session_token: self.env.get("AWS_SESSION_TOKEN").map(str::to_owned),
                expires: None,
            });
        }
        let default = self.env.get("AWS_PROFILE").unwrap_or("default");
        if let Some(c) = file
            .as_deref()
            .and_then(|f| profile_credentials(f, default))
        {
            return Ok(c);
        }
        if self.env.get("AWS_EC2_METADATA_DISABLED") == Some("true") {
            return Err("no credentials in the flags, the environment or the credentials file, and the instance metadata service is disabled".to_owned());
        }
        self.imds.credentials(stop).map_err(|e| {
            format!("no credentials in the flags, the environment or the credentials file, nor from the instance profile: {e}")
        })
    }

    /// STS AssumeRole (Query protocol) signed with `base`.
    fn assume_role(&self, base: &Credentials, stop: &AtomicBool) -> Result<Credentials, String> {
        let s = &self.settings.credentials;
        log::info!("Generating new AWS STS credentials");
        let region = self.settings.region(&s.sts_region, &self.env)?;
        let url = format!(
            "{}/",
            endpoint("sts", "", &self.env, &region, self.settings.fips)
        );
        let body = format!(
            "Action=AssumeRole&Version=2011-06-15&RoleArn={}&RoleSessionName={}&DurationSeconds={}",
            form_encode(&s.sts_arn_role),
            form_encode(&s.sts_session_name),
            s.sts_timeout.as_secs()
        );
        let host = host_of(&url);
        let content_type = "application/x-www-form-urlencoded; charset=utf-8";
        let unsigned = [("host", host.as_str()), ("content-type", content_type)];
        if stop.load(std::sync::atomic::Ordering::SeqCst) {
            return Err("stopping".to_owned());
        }
        let mut headers = vec![("content-type".to_owned(), content_type.to_owned())];
        headers.extend(sign::signature_headers(
            &sign::Unsigned {
                method: "POST",
                url: &url,
                headers: &unsigned,
                body: body.as_bytes(),
            },
            base,
            &region,
            "sts",
            SystemTime::now(),
        )?);
        let answer = self
            .http
            .send("POST", &url, &headers, body.as_bytes())
            .map_err(|e| format!("STS AssumeRole: no answer: {e}"))?;
        let text = String::from_utf8_lossy(&answer.body);
        if answer.status != 200 {
            let code = xml_value(&text, "Code").unwrap_or_default();
            let message = xml_value(&text, "Message").unwrap_or_default();
            return Err(format!(
                "Failed to create STS temporary credentials: {} {code}: {message}",
                answer.status
            ));
        }
        let field = |name: &str| {
            xml_value(&text, name).ok_or_else(|| format!("STS AssumeRole: no {name} in the answer"))
        };
        Ok(Credentials {
            access_key_id: field("AccessKeyId")?,
            secret_access_key: field("SecretAccessKey")?,
            session_token: Some(field("SessionToken")?),
            // osquery counts the lifetime from the request, not from the answer's
            // Expiration: a clock that is off does not shorten or stretch it.
            expires: Some(SystemTime::now() + s.sts_timeout),
        })
    }
}

/// The text of the first `<name>...</name>` element (STS answers are flat enough).
pub fn xml_value(xml: &str, name: &str) -> Option<String> {
    let open = format!("<{name}>");
    let close = format!("</{name}>");
    let start = xml.find(&open)? + open.len();
    let end = start + xml[start..].find(&close)?;
    Some(xml_unescape(xml[start..end].trim()))
}

fn xml_unescape(text: &str) -> String {
    text.replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&quot;", "\"")
        .replace("&apos;", "'")
        .replace("&amp;", "&")
}

/// The sections of an INI file as the AWS files write them: `[name]` then `key = value`.
fn ini_section(text: &str, section: &str) -> Option<Vec<(String, String)>> {
    let mut found = None;
    let mut current = None;
    for line in text.lines() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') || line.starts_with(';') {
            continue;
        }
        if let Some(name) = line.strip_prefix('[').and_then(|l| l.strip_suffix(']')) {
            current = Some(name.trim() == section);
            if current == Some(true) {
                found.get_or_insert_with(Vec::new);
            }
            continue;
        }
        if current == Some(true)
            && let Some((k, v)) = line.split_once('=')
            && let Some(entries) = found.as_mut()
        {
            entries.push((k.trim().to_owned(), v.trim().to_owned()));
        }
    }
    found
}

/// The AWS files are small; a larger one is not read.
const MAX_AWS_FILE: u64 = 1 << 20;

fn read_small(path: &Path) -> Option<String> {
    use std::io::Read;
    let mut text = String::new();
    std::fs::File::open(path)
        .ok()?
        .take(MAX_AWS_FILE)
        .read_to_string(&mut text)
        .ok()?;
    Some(text)
}

/// A profile's keys in the shared credentials file.
fn profile_credentials(file: &Path, profile: &str) -> Option<Credentials> {
    let entries = ini_section(&read_small(file)?, profile)?;
    let get = |key: &str| {
        entries
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.clone())
            .filter(|v| !v.is_empty())
    };
    Some(Credentials {
        access_key_id: get("aws_access_key_id")?,
        secret_access_key: get("aws_secret_access_key")?,
        session_token: get("aws_session_token"),
        expires: None,
    })
}

/// The region of a profile in the config file (`AWS_CONFIG_FILE` or `~/.aws/config`),
/// where a profile other than `default` is the section `[profile <name>]`.
pub fn profile_region(env: &AwsEnv, profile: &str) -> Result<String, String> {
    let file = env
        .aws_file("AWS_CONFIG_FILE", "config")
        .ok_or("no home directory for the AWS config file")?;
    let text = read_small(&file)
        .ok_or_else(|| format!("Error reading profile file: {}", file.display()))?;
    let section = if profile.is_empty() || profile == "default" {
        "default".to_owned()
    } else {
        format!("profile {profile}")
    };
    let entries =
        ini_section(&text, &section).ok_or_else(|| format!("AWS profile not found: {profile}"))?;
    entries
        .into_iter()
        .find(|(k, _)| k == "region")
        .map(|(_, v)| v)
        .filter(|v| !v.is_empty())
        .ok_or_else(|| format!("AWS region not found for profile: {profile}"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::aws::ImdsSettings;

    fn settings(credentials: CredentialSettings) -> AwsSettings {
        AwsSettings {
            region: String::new(),
            profile_name: credentials.profile_name.clone(),
            fips: false,
            proxy: None,
            debug: false,
            credentials,
            imds: ImdsSettings {
                endpoint: "http://127.0.0.1:9".to_owned(),
                attempts: 1,
                interval: Duration::ZERO,
                disable_v1_fallback: true,
            },
        }
    }

    fn none() -> CredentialSettings {
        CredentialSettings {
            access_key_id: String::new(),
            secret_access_key: String::new(),
            session_token: String::new(),
            profile_name: String::new(),
            sts_arn_role: String::new(),
            sts_region: String::new(),
            sts_session_name: "default".to_owned(),
            sts_timeout: Duration::from_secs(3600),
        }
    }

    fn chain(credentials: CredentialSettings, env: AwsEnv) -> CredentialChain {
        let s = settings(credentials);
        let http = AwsHttp::new(&s, "test").unwrap();
        CredentialChain::new(s, env, http)
    }

    fn home_with_files(credentials: &str, config: &str) -> tempfile::TempDir {
        let home = tempfile::tempdir().unwrap();
        std::fs::create_dir(home.path().join(".aws")).unwrap();
        std::fs::write(home.path().join(".aws/credentials"), credentials).unwrap();
        std::fs::write(home.path().join(".aws/config"), config).unwrap();
        home
    }

    const CREDENTIALS: &str = "[default]\naws_access_key_id = DEFAULTKEY\naws_secret_access_key = defaultsecret\n\n\
        # a comment\n[ops]\naws_access_key_id=OPSKEY\naws_secret_access_key = opssecret\naws_session_token = opstoken\n";

    #[test]
    fn flags_come_first() {
        let home = home_with_files(CREDENTIALS, "");
        let env = AwsEnv::from_pairs([
            ("HOME", home.path().to_str().unwrap()),
            ("AWS_ACCESS_KEY_ID", "ENVKEY"),
            ("AWS_SECRET_ACCESS_KEY", "envsecret"),
        ]);
        let mut s = none();
        s.access_key_id = "FLAGKEY".into();
        s.secret_access_key = "flagsecret".into();
        let c = chain(s, env).get(&AtomicBool::new(false)).unwrap();
        assert_eq!(c.access_key_id, "FLAGKEY");
        assert_eq!(c.session_token, None);
    }

    #[test]
    fn a_named_profile_then_the_environment_then_the_default_profile() {
        let home = home_with_files(CREDENTIALS, "");
        let home_dir = home.path().to_str().unwrap();
        let stop = AtomicBool::new(false);
        let with_env = AwsEnv::from_pairs([
            ("HOME", home_dir),
            ("AWS_ACCESS_KEY_ID", "ENVKEY"),
            ("AWS_SECRET_ACCESS_KEY", "envsecret"),
            ("AWS_SESSION_TOKEN", "envtoken"),
        ]);
        let mut named = none();
        named.profile_name = "ops".into();
        let c = chain(named, with_env.clone()).get(&stop).unwrap();
        assert_eq!(
            (c.access_key_id.as_str(), c.session_token.as_deref()),
            ("OPSKEY", Some("opstoken"))
        );
        let c = chain(none(), with_env).get(&stop).unwrap();
        assert_eq!(
            (c.access_key_id.as_str(), c.session_token.as_deref()),
            ("ENVKEY", Some("envtoken"))
        );
        let c = chain(none(), AwsEnv::from_pairs([("HOME", home_dir)]))
            .get(&stop)
            .unwrap();
        assert_eq!(c.access_key_id, "DEFAULTKEY");
        // AWS_PROFILE picks the default profile; the file can be named too.
        let other = tempfile::NamedTempFile::new().unwrap();
        std::fs::write(other.path(), CREDENTIALS).unwrap();
        let env = AwsEnv::from_pairs([
            (
                "AWS_SHARED_CREDENTIALS_FILE",
                other.path().to_str().unwrap(),
            ),
            ("AWS_PROFILE", "ops"),
        ]);
        let c = chain(none(), env).get(&stop).unwrap();
        assert_eq!(c.access_key_id, "OPSKEY");
    }

    #[test]
    fn half_a_key_pair_is_skipped_and_no_credentials_is_an_error() {
        let mut s = none();
        s.access_key_id = "ONLYID".into();
        // No file, no environment, and the metadata endpoint refuses connections.
        let err = chain(s, AwsEnv::default())
            .get(&AtomicBool::new(false))
            .unwrap_err();
        assert!(err.contains("no credentials"), "{err}");
    }

    #[test]
    fn a_session_token_takes_the_key_pair_of_the_flags() {
        let mut s = none();
        s.access_key_id = "ASIAKEY".into();
        s.secret_access_key = "secret".into();
        s.session_token = "token".into();
        let c = chain(s, AwsEnv::default())
            .get(&AtomicBool::new(false))
            .unwrap();
        assert_eq!(c.session_token.as_deref(), Some("token"));
    }

    #[test]
    fn profile_regions() {
        let home = home_with_files(
            "",
            "[default]\nregion = eu-west-3\n[profile ops]\nregion=ap-south-1\n[profile bare]\noutput=json\n",
        );
        let env = AwsEnv::from_pairs([("HOME", home.path().to_str().unwrap())]);
        assert_eq!(profile_region(&env, "").unwrap(), "eu-west-3");
        assert_eq!(profile_region(&env, "ops").unwrap(), "ap-south-1");
        assert_eq!(
            profile_region(&env, "bare").unwrap_err(),
            "AWS region not found for profile: bare"
        );
        assert_eq!(
            profile_region(&env, "gone").unwrap_err(),
            "AWS profile not found: gone"
        );
        // Region resolution: service flag, --aws_region, profile, us-east-1.
        let mut s = settings(none());
        assert_eq!(s.region("", &env).unwrap(), "eu-west-3");
        assert_eq!(s.region("us-west-2", &env).unwrap(), "us-west-2");
        s.region = "ca-central-1".into();
        assert_eq!(s.region("", &env).unwrap(), "ca-central-1");
        s.region.clear();
        assert_eq!(s.region("", &AwsEnv::default()).unwrap(), "us-east-1");
        s.profile_name = "gone".into();
        assert!(s.region("", &env).is_err());
    }

    #[test]
    fn xml_fields() {
        let xml = "<AssumeRoleResponse><AssumeRoleResult><Credentials>\
            <AccessKeyId>ASIA1</AccessKeyId><SecretAccessKey>s/&amp;k</SecretAccessKey>\
            </Credentials></AssumeRoleResult></AssumeRoleResponse>";
        assert_eq!(xml_value(xml, "AccessKeyId").as_deref(), Some("ASIA1"));
        assert_eq!(xml_value(xml, "SecretAccessKey").as_deref(), Some("s/&k"));
        assert_eq!(xml_value(xml, "SessionToken"), None);
        assert_eq!(xml_value("<A>unclosed", "A"), None);
    }
}
