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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::files::yara_file::{Col, SPEC, generate};
    use oxquery_remote::testing::{Response, TestServer};
    use oxquery_remote::{SignatureFetcher, TlsClient};
    use oxquery_table::{Host, LiveState, Op, Rows, SignatureFetch, TableSettings, Value};
    use std::sync::{Arc, RwLock};

    const RULE: &str =
        r#"rule served_rule : remote { strings: $s = "sigurl-needle-51c" condition: $s }"#;

    fn strings(v: &[&str]) -> Vec<String> {
        v.iter().map(|s| (*s).to_owned()).collect()
    }

    #[test]
    fn urls_must_match_scheme_host_port_and_the_whole_path_pattern() {
        let allow = strings(&[
            "https://rules.example.com/yara/.*\\.yar",
            "https://127.0.0.1:8443/api/osquery/yara/[a-z]+",
        ]);
        assert!(allowed(&allow, "https://rules.example.com/yara/a.yar"));
        assert!(allowed(
            &allow,
            "https://rules.example.com:443/yara/sub/b.yar"
        ));
        assert!(allowed(
            &allow,
            "https://127.0.0.1:8443/api/osquery/yara/rules"
        ));
        // The query string is not part of the path the pattern sees.
        assert!(allowed(&allow, "https://rules.example.com/yara/a.yar?x=1"));
        for refused in [
            "http://rules.example.com/yara/a.yar",
            "https://rules.example.com.evil.net/yara/a.yar",
            "https://evil.net/yara/a.yar",
            "https://rules.example.com:8443/yara/a.yar",
            "https://rules.example.com/yara/a.yar.exe",
            "https://rules.example.com/other/yara/a.yar",
            "https://127.0.0.1:8443/api/osquery/yara/rules2",
            "https://127.0.0.1/api/osquery/yara/rules",
            "not a url",
            "",
        ] {
            assert!(!allowed(&allow, refused), "{refused}");
        }
        assert!(!allowed(&[], "https://rules.example.com/yara/a.yar"));
        // A broken pattern allows nothing.
        assert!(!allowed(
            &strings(&["https://rules.example.com/(unclosed"]),
            "https://rules.example.com/(unclosed"
        ));
    }

    /// A host whose config allows `allow`, fetching through `fetcher`.
    fn host(allow: Vec<String>, fetcher: Arc<dyn SignatureFetch>, settings: TableSettings) -> Host {
        let live = LiveState {
            yara_signature_urls: allow,
            ..LiveState::default()
        };
        Host {
            live: Arc::new(RwLock::new(live)),
            signatures: Some(fetcher),
            settings,
            ..Host::default()
        }
    }

    fn scan(host: &Host, path: &str, url: &str) -> Vec<Vec<Value>> {
        let ctx = oxquery_table::QueryContext::everything(&SPEC, host)
            .with_constraint(Col::path, Op::Eq, path)
            .with_constraint(Col::sigurl, Op::Eq, url);
        let rows = Rows::collect(&ctx, generate).unwrap();
        rows.iter().map(<[Value]>::to_vec).collect()
    }

    fn fast() -> TableSettings {
        TableSettings {
            yara_delay_ms: 0,
            ..TableSettings::DEFAULT
        }
    }

    #[test]
    fn served_rules_scan_a_file_and_are_kept_for_a_while() {
        let server = TestServer::start(|request| match request.path.as_str() {
            "/yara/served.yar" => Response::Body(200, RULE.as_bytes().to_vec()),
            "/yara/empty.yar" => Response::Body(200, Vec::new()),
            _ => Response::Body(404, b"no".to_vec()),
        });
        let client = TlsClient::for_urls(server.tls_settings()).unwrap();
        let fetcher = Arc::new(SignatureFetcher::new(client, None));
        let base = format!("https://{}", server.hostname());
        let allow = vec![format!("{base}/yara/.*\\.yar")];
        let host = host(allow, fetcher, fast());

        let tmp = tempfile::tempdir().unwrap();
        let hit = tmp.path().join("hit");
        std::fs::write(&hit, b"....sigurl-needle-51c....").unwrap();
        let miss = tmp.path().join("miss");
        std::fs::write(&miss, b"nothing").unwrap();
        let url = format!("{base}/yara/served.yar");

        let rows = scan(&host, hit.to_str().unwrap(), &url);
        assert_eq!(rows.len(), 1);
        let row = &rows[0];
        assert_eq!(
            row[Col::matches as usize],
            Value::Text("served_rule".into())
        );
        assert_eq!(row[Col::count as usize], Value::Integer(1));
        assert_eq!(row[Col::tags as usize], Value::Text("remote".into()));
        assert_eq!(row[Col::sigurl as usize], Value::Text(url.clone()));
        assert_eq!(row[Col::sigfile as usize], Value::Text(String::new()));
        assert_eq!(row[Col::sigrule as usize], Value::Text(String::new()));
        let requests = server.requests_to("/yara/served.yar");
        assert_eq!(requests.len(), 1);
        assert_eq!(requests[0].method, "GET");

        // A second query within CACHE_FOR reuses the rules: no second request.
        let rows = scan(&host, miss.to_str().unwrap(), &url);
        assert_eq!(rows.len(), 1);
        assert_eq!(rows[0][Col::count as usize], Value::Integer(0));
        assert_eq!(server.requests_to("/yara/served.yar").len(), 1);

        // A 404 or an empty body gives no rules, hence no rows.
        assert!(
            scan(
                &host,
                hit.to_str().unwrap(),
                &format!("{base}/yara/gone.yar")
            )
            .is_empty()
        );
        assert!(
            scan(
                &host,
                hit.to_str().unwrap(),
                &format!("{base}/yara/empty.yar")
            )
            .is_empty()
        );
    }

    #[test]
    fn a_url_outside_signature_urls_is_never_contacted() {
        let server = TestServer::start(|_| Response::Body(200, RULE.as_bytes().to_vec()));
        let client = TlsClient::for_urls(server.tls_settings()).unwrap();
        let fetcher = Arc::new(SignatureFetcher::new(client, None));
        let base = format!("https://{}", server.hostname());
        let host = host(vec![format!("{base}/allowed/.*")], fetcher, fast());
        let tmp = tempfile::tempdir().unwrap();
        let hit = tmp.path().join("hit");
        std::fs::write(&hit, b"sigurl-needle-51c").unwrap();
        let (rows, logs) = crate::common::testing::capture_log(|| {
            scan(&host, hit.to_str().unwrap(), &format!("{base}/other/r.yar"))
        });
        assert!(rows.is_empty());
        assert!(
            logs.iter().any(|(_, m)| m.contains("not allowed")),
            "{logs:?}"
        );
        assert_eq!(server.connections(), 0);
        // Without any signature_urls in the config, nothing is allowed either.
        let client = TlsClient::for_urls(server.tls_settings()).unwrap();
        let bare = self::host(
            Vec::new(),
            Arc::new(SignatureFetcher::new(client, None)),
            fast(),
        );
        assert!(
            scan(
                &bare,
                hit.to_str().unwrap(),
                &format!("{base}/allowed/r.yar")
            )
            .is_empty()
        );
        assert_eq!(server.connections(), 0);
    }

    #[test]
    fn authenticated_fetch_posts_the_node_key() {
        let server = TestServer::start(|request| match request.path.as_str() {
            "/enroll" => Response::Json(serde_json::json!({"node_key": "nk-sigurl-77"})),
            "/yara/auth.yar" if request.json()["node_key"] == "nk-sigurl-77" => {
                Response::Body(200, RULE.as_bytes().to_vec())
            }
            _ => Response::Body(401, b"who are you".to_vec()),
        });
        let store = Arc::new(std::sync::Mutex::new(
            oxquery_store::Store::in_memory().unwrap(),
        ));
        let keys = Arc::new(server.node_keys(store));
        let base = format!("https://{}", server.hostname());
        let allow = vec![format!("{base}/yara/.*")];
        let client = TlsClient::for_urls(server.tls_settings()).unwrap();
        let fetcher = Arc::new(SignatureFetcher::new(client, Some(Arc::clone(&keys))));
        let authenticated = TableSettings {
            yara_sigurl_authenticate: true,
            ..fast()
        };
        let tmp = tempfile::tempdir().unwrap();
        let hit = tmp.path().join("hit");
        std::fs::write(&hit, b"sigurl-needle-51c").unwrap();
        let url = format!("{base}/yara/auth.yar");

        // Not enrolled yet: no key to send, so no request and no rows.
        let h = host(allow.clone(), fetcher.clone(), authenticated.clone());
        assert!(scan(&h, hit.to_str().unwrap(), &url).is_empty());
        assert!(server.requests_to("/yara/auth.yar").is_empty());

        keys.get(&std::sync::atomic::AtomicBool::new(false))
            .unwrap();
        let h = host(allow.clone(), fetcher.clone(), authenticated);
        let rows = scan(&h, hit.to_str().unwrap(), &url);
        assert_eq!(rows.len(), 1);
        assert_eq!(rows[0][Col::count as usize], Value::Integer(1));
        let requests = server.requests_to("/yara/auth.yar");
        assert_eq!(requests.len(), 1);
        assert_eq!(requests[0].method, "POST");
        assert_eq!(requests[0].json()["node_key"], "nk-sigurl-77");

        // Without the flag the same server refuses the plain GET.
        let h = host(allow, fetcher, fast());
        assert!(scan(&h, hit.to_str().unwrap(), &url).is_empty());
        let requests = server.requests_to("/yara/auth.yar");
        assert_eq!(requests.last().unwrap().method, "GET");
    }

    #[test]
    fn an_oversized_answer_is_refused() {
        let big = {
            let mut r = RULE.as_bytes().to_vec();
            r.extend(std::iter::repeat_n(b' ', 64 * 1024));
            r
        };
        let server = TestServer::start(move |_| Response::Body(200, big.clone()));
        let client = TlsClient::for_urls(server.tls_settings()).unwrap();
        let fetcher = Arc::new(SignatureFetcher::new(client, None));
        let base = format!("https://{}", server.hostname());
        let tmp = tempfile::tempdir().unwrap();
        let hit = tmp.path().join("hit");
        std::fs::write(&hit, b"sigurl-needle-51c").unwrap();
        let url = format!("{base}/yara/big.yar");
        let small = TableSettings {
            read_max: 16 * 1024,
            ..fast()
        };
        let h = host(vec![format!("{base}/yara/.*")], fetcher.clone(), small);
        let (rows, logs) =
            crate::common::testing::capture_log(|| scan(&h, hit.to_str().unwrap(), &url));
        assert!(rows.is_empty());
        assert!(logs.iter().any(|(_, m)| m.contains("over")), "{logs:?}");
        // Within --read_max the same answer is taken.
        let h = host(vec![format!("{base}/yara/.*")], fetcher, fast());
        assert_eq!(scan(&h, hit.to_str().unwrap(), &url).len(), 1);
    }
}
