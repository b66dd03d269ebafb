//! The EC2 instance metadata service (IMDS), as osquery reaches it: a session token first
//! (IMDSv2: `PUT /latest/api/token`), tried `--aws_imdsv2_request_attempts` times with
//! waits growing from `--aws_imdsv2_request_interval` seconds (each the previous one times
//! the interval, as osquery's), then plain GETs carrying it; without a token the GETs go
//! without one (IMDSv1) unless `--aws_disable_imdsv1_fallback`.
//!
//! The service's address is the AWS SDK's: `AWS_EC2_METADATA_SERVICE_ENDPOINT` when set
//! (tests point it at loopback), else `http://169.254.169.254`. Requests never go through
//! a proxy and time out after osquery's 3 seconds.

use std::sync::atomic::AtomicBool;
use std::time::{Duration, SystemTime};

use oxquery_flags::{Flags, flag};
use serde_json::Value;

use super::{AwsEnv, Credentials};
use crate::enroll::sleep_unless_stopped;

/// The address of the service on every EC2 instance.
pub const DEFAULT_ENDPOINT: &str = "http://169.254.169.254";
/// osquery's timeout for a metadata request.
const IMDS_TIMEOUT: Duration = Duration::from_secs(3);
/// The token lifetime asked for (the SDK's default, six hours).
const TOKEN_TTL: &str = "21600";
/// Metadata answers are small; this bounds a broken one.
const MAX_ANSWER: u64 = 1 << 20;

/// What the IMDS flags and the environment say.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImdsSettings {
    /// The service's base URL, without a trailing slash.
    pub endpoint: String,
    /// `--aws_imdsv2_request_attempts` (osquery refuses 0; at least one is made).
    pub attempts: u32,
    /// `--aws_imdsv2_request_interval`.
    pub interval: Duration,
    /// `--aws_disable_imdsv1_fallback`.
    pub disable_v1_fallback: bool,
}

impl ImdsSettings {
    pub fn from_flags(flags: &Flags, env: &AwsEnv) -> ImdsSettings {
        ImdsSettings {
            endpoint: env
                .get("AWS_EC2_METADATA_SERVICE_ENDPOINT")
                .unwrap_or(DEFAULT_ENDPOINT)
                .trim_end_matches('/')
                .to_owned(),
            attempts: flags.get(flag::aws_imdsv2_request_attempts).max(1),
            interval: Duration::from_secs(u64::from(flags.get(flag::aws_imdsv2_request_interval))),
            disable_v1_fallback: flags.get(flag::aws_disable_imdsv1_fallback),
        }
    }
}

/// A client of the instance metadata service (the instance profile's credentials here;
/// the ec2 tables read instance facts through [`ImdsClient::get`]).
#[derive(Clone)]
pub struct ImdsClient {
    agent: ureq::Agent,
    settings: ImdsSettings,
}

impl std::fmt::Debug for ImdsClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ImdsClient")
            .field("endpoint", &self.settings.endpoint)
            .finish_non_exhaustive()
    }
}

impl ImdsClient {
    pub fn new(settings: ImdsSettings) -> ImdsClient {
        // Plain HTTP to a link-local address: no TLS roots are needed, so none can fail.
        let agent = ureq::Agent::config_builder()
            .timeout_global(Some(IMDS_TIMEOUT))
            .http_status_as_error(false)
            .proxy(None)
            .max_redirects(0)
            .build()
            .new_agent();
        ImdsClient { agent, settings }
    }

    /// An IMDSv2 token, or `None` after the configured attempts (or when stopping).
    pub fn token(&self, stop: &AtomicBool) -> Option<String> {
        let url = format!("{}/latest/api/token", self.settings.endpoint);
        let base = self.settings.interval;
        let mut wait = base;
        for attempt in 1..=self.settings.attempts {
            let answer = self
                .agent
                .put(&url)
                .header("x-aws-ec2-metadata-token-ttl-seconds", TOKEN_TTL)
                .send_empty();
            match answer {
                Ok(mut a) if a.status() == 200 => {
                    if let Ok(token) = read(&mut a)
                        && !token.is_empty()
                    {
                        return Some(token);
                    }
                }
                Ok(a) => log::info!("IMDSv2 token request answered {}", a.status()),
                Err(e) => log::info!("IMDSv2 token request failed: {e}"),
            }
            if attempt < self.settings.attempts {
                if !sleep_unless_stopped(wait, stop) {
                    return None;
                }
                wait = wait.saturating_mul(u32::try_from(base.as_secs()).unwrap_or(u32::MAX));
            }
        }
        log::error!(
            "Failed {} attempts at retrieving an IMDSv2 token",
            self.settings.attempts
        );
        None
    }

    /// Whether GETs may go without a token (not `--aws_disable_imdsv1_fallback`).
    pub fn v1_fallback_allowed(&self) -> bool {
        !self.settings.disable_v1_fallback
    }

    /// `GET /latest/<path>` with a token, or without one when IMDSv1 is allowed.
    pub fn get(&self, path: &str, stop: &AtomicBool) -> Result<String, String> {
        let token = self.token(stop);
        if token.is_none() && self.settings.disable_v1_fallback {
            return Err(
                "no IMDSv2 token, and the IMDSv1 fallback is disabled (--aws_disable_imdsv1_fallback)"
                    .to_owned(),
            );
        }
        self.get_with(path, token.as_deref())
    }

    /// `GET /latest/<path>` with a token already obtained (`None`: IMDSv1), so several
    /// reads share one token (the ec2 tables). The caller decides on the v1 fallback
    /// with [`ImdsClient::v1_fallback_allowed`].
    pub fn get_with(&self, path: &str, token: Option<&str>) -> Result<String, String> {
        let url = format!(
            "{}/latest/{}",
            self.settings.endpoint,
            path.trim_start_matches('/')
        );
        let mut request = self.agent.get(&url);
        if let Some(token) = token {
            request = request.header("x-aws-ec2-metadata-token", token);
        }
        let mut answer = request.call().map_err(|e| format!("{url}: {e}"))?;
        if answer.status() != 200 {
            return Err(format!("{url}: answered {}", answer.status()));
        }
        read(&mut answer).map_err(|e| format!("{url}: {e}"))
    }

    /// The instance profile's credentials: the role listed under
    /// `meta-data/iam/security-credentials/`, then its document.
    pub fn credentials(&self, stop: &AtomicBool) -> Result<Credentials, String> {
        let token = self.token(stop);
        if token.is_none() && self.settings.disable_v1_fallback {
            return Err(
                "no IMDSv2 token, and the IMDSv1 fallback is disabled (--aws_disable_imdsv1_fallback)"
                    .to_owned(),
            );
        }
        let token = token.as_deref();
        let roles = self.get_with("meta-data/iam/security-credentials/", token)?;
        let role = roles
            .lines()
            .map(str::trim)
            .find(|l| !l.is_empty())
            .ok_or("the instance has no IAM role")?;
        let document =
            self.get_with(&format!("meta-data/iam/security-credentials/{role}"), token)?;
        parse_credentials(&document)
    }
}

fn read(answer: &mut ureq::http::Response<ureq::Body>) -> Result<String, String> {
    answer
        .body_mut()
        .with_config()
        .limit(MAX_ANSWER)
        .read_to_string()
        .map_err(|e| e.to_string())
}

/// The credentials document of a role: `AccessKeyId`, `SecretAccessKey`, `Token` and
/// `Expiration` (RFC 3339, UTC).
fn parse_credentials(document: &str) -> Result<Credentials, String> {
    let value: Value = serde_json::from_str(document)
        .map_err(|e| format!("instance profile credentials are not JSON: {e}"))?;
    let field = |name: &str| {
        value
            .get(name)
            .and_then(Value::as_str)
            .filter(|v| !v.is_empty())
            .map(str::to_owned)
            .ok_or_else(|| format!("instance profile credentials without {name}"))
    };
    if let Some(code) = value.get("Code").and_then(Value::as_str)
        && code != "Success"
    {
        return Err(format!("instance profile credentials: {code}"));
    }
    Ok(Credentials {
        access_key_id: field("AccessKeyId")?,
        secret_access_key: field("SecretAccessKey")?,
        session_token: Some(field("Token")?),
        expires: Some(
            field("Expiration")
                .ok()
                .and_then(|t| parse_utc(&t))
                // Without a readable expiry, fetch again in ten minutes.
                .unwrap_or_else(|| SystemTime::now() + Duration::from_secs(600)),
        ),
    })
}

/// `YYYY-MM-DDTHH:MM:SSZ` (fractions ignored) as a time.
fn parse_utc(text: &str) -> Option<SystemTime> {
    let b = text.as_bytes();
    if b.len() < 20 || b[4] != b'-' || b[7] != b'-' || b[10] != b'T' {
        return None;
    }
    let num = |r: std::ops::Range<usize>| text.get(r)?.parse::<i64>().ok();
    let (y, m, d) = (num(0..4)?, num(5..7)?, num(8..10)?);
    let (hh, mm, ss) = (num(11..13)?, num(14..16)?, num(17..19)?);
    if !(1..=12).contains(&m) || !(1..=31).contains(&d) || hh > 23 || mm > 59 || ss > 60 {
        return None;
    }
    // Days from the civil date (Howard Hinnant's algorithm).
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    let secs = days * 86_400 + hh * 3600 + mm * 60 + ss;
    Some(std::time::UNIX_EPOCH + Duration::from_secs(u64::try_from(secs).ok()?))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::UNIX_EPOCH;

    #[test]
    fn expiry_times() {
        assert_eq!(
            parse_utc("2015-08-30T12:36:00Z"),
            Some(UNIX_EPOCH + Duration::from_secs(1_440_938_160))
        );
        assert_eq!(
            parse_utc("2000-03-01T00:00:00.123Z"),
            Some(UNIX_EPOCH + Duration::from_secs(951_868_800))
        );
        assert_eq!(parse_utc("yesterday"), None);
        assert_eq!(parse_utc("2015-13-30T12:36:00Z"), None);
    }

    #[test]
    fn credential_documents() {
        let c = parse_credentials(
            r#"{"Code":"Success","Type":"AWS-HMAC","AccessKeyId":"ASIAX","SecretAccessKey":"s","Token":"t","Expiration":"2015-08-30T12:36:00Z"}"#,
        )
        .unwrap();
        assert_eq!(c.access_key_id, "ASIAX");
        assert_eq!(c.session_token.as_deref(), Some("t"));
        assert_eq!(
            c.expires,
            Some(UNIX_EPOCH + Duration::from_secs(1_440_938_160))
        );
        assert!(parse_credentials(r#"{"Code":"Failure"}"#).is_err());
        assert!(parse_credentials(r#"{"AccessKeyId":"A"}"#).is_err());
        assert!(parse_credentials("<html>").is_err());
    }
}
