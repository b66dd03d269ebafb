//! The yara tables' `sigurl = U`: rules fetched from a server, as osquery fetches them.
//!
//! A URL is fetched only when it matches an entry of the config's `yara.signature_urls`:
//! the same scheme, host and port, and a path the entry's path matches whole as a
//! regular expression (osquery compares host and scheme; the port is compared too, so an
//! entry cannot open other services of its host). Anything else is refused with a
//! warning and never contacted. The fetch goes through the program's TLS client
//! (`--tls_server_certs`, client certificate, proxy; no redirects), within its request
//! timeout and `--read_max` bytes, abandoned when the query stops; with
//! `--yara_sigurl_authenticate` it is a POST of `{"node_key": ...}`. Only an answer with
//! status 200 and a non-empty body gives rules. Fetched rules are kept for
//! [`CACHE_FOR`], so a scheduled scan does not download them at every run.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use oxquery_sys::yara::NamedRules;
use oxquery_table::QueryContext;
use ureq::http::Uri;

/// How long fetched rules are reused before being fetched again.
pub const CACHE_FOR: Duration = Duration::from_secs(300);

/// The table state key of the fetched rules.
const STATE_KEY: &str = "yara_sigurl";

/// Fetched rule text by URL and whether it was an authenticated fetch.
type Fetched = Mutex<HashMap<(String, bool), (Instant, String)>>;

/// The URL's scheme, host, port (the scheme's default when none is written) and path.
fn parts(url: &str) -> Option<(String, String, u16, String)> {
    let uri: Uri = url.parse().ok()?;
    let scheme = uri.scheme_str()?.to_ascii_lowercase();
    let host = uri.host()?.to_owned();
    let port = match (uri.port_u16(), scheme.as_str()) {
        (Some(p), _) => p,
        (None, "https") => 443,
        (None, "http") => 80,
        (None, _) => return None,
    };
    Some((scheme, host, port, uri.path().to_owned()))
}

/// Whether `url` matches one of the `allow` entries (`yara.signature_urls`).
pub fn allowed(allow: &[String], url: &str) -> bool {
    let Some((scheme, host, port, path)) = parts(url) else {
        return false;
    };
    allow.iter().any(|entry| {
        let Some((e_scheme, e_host, e_port, e_path)) = parts(entry) else {
            return false;
        };
        if (e_scheme, e_host, e_port) != (scheme.clone(), host.clone(), port) {
            return false;
        }
        // The entry's path is a pattern matched against the whole path.
        match regex::Regex::new(&format!("^(?:{e_path})$")) {
            Ok(pattern) => pattern.is_match(&path),
            Err(e) => {
                log::warn!("YARA signature url {entry}: its path is not a valid pattern: {e}");
                false
            }
        }
    })
}

/// The rule sets of the query's `sigurl` values that the config allows and the server
/// gave; each failure is logged and skipped. `table` names the table in messages.
pub fn rules(ctx: &QueryContext, table: &str, urls: Vec<String>) -> Vec<NamedRules> {
    if urls.is_empty() {
        return Vec::new();
    }
    let allow = ctx.host().live().yara_signature_urls;
    let authenticate = ctx.settings().yara_sigurl_authenticate;
    let cache = ctx
        .host()
        .state
        .get_or_insert_with(STATE_KEY, Fetched::default);
    let mut named = Vec::new();
    for url in urls {
        if !allowed(&allow, &url) {
            log::warn!("Table {table}: YARA signature url {url} not allowed");
            continue;
        }
        let key = (url.clone(), authenticate);
        let kept = {
            let mut kept = cache.lock().unwrap_or_else(|p| p.into_inner());
            kept.retain(|_, (at, _)| at.elapsed() < CACHE_FOR);
            kept.get(&key).map(|(_, text)| text.clone())
        };
        let text = match kept {
            Some(text) => text,
            None => match fetch(ctx, table, &url, authenticate) {
                Some(text) => {
                    let mut kept = cache.lock().unwrap_or_else(|p| p.into_inner());
                    kept.insert(key, (Instant::now(), text.clone()));
                    text
                }
                None => {
                    log::warn!("Table {table}: Failed to get YARA rule url: {url}");
                    continue;
                }
            },
        };
        named.push(NamedRules::SigUrl { url, text });
    }
    named
}

/// One fetch of `url`: the rule text, or `None` (the reason logged).
fn fetch(ctx: &QueryContext, table: &str, url: &str, authenticate: bool) -> Option<String> {
    let Some(fetcher) = ctx.host().signatures.clone() else {
        log::warn!("Table {table}: sigurl needs osqueryd's TLS client; this process has none");
        return None;
    };
    let max_body = ctx.settings().read_max;
    let target = url.to_owned();
    let answer = crate::fetch::http::cancellable(ctx, move |_| {
        fetcher.fetch(&target, authenticate, max_body)
    })?;
    let answer = match answer {
        Ok(a) => a,
        Err(e) => {
            log::warn!("Table {table}: cannot fetch YARA rules from {url}: {e}");
            return None;
        }
    };
    if answer.status != 200 {
        log::info!(
            "Table {table}: Can't fetch rules from url response code: {}",
            answer.status
        );
        return None;
    }
    match String::from_utf8(answer.body) {
        Ok(text) if !text.trim().is_empty() => Some(text),
        Ok(_) => None,
        Err(_) => {
            log::warn!("Table {table}: the rules from {url} are not UTF-8 text");
            None
        }
    }
}
