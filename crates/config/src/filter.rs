//! Which packs and queries apply to this host: platform, version, shard, discovery.

use super::model::Pack;
use super::source::sha1_hex;
use std::collections::HashMap;

/// The platform name this build answers to (osquery's `kSDKPlatform` on Linux).
pub const BUILD_PLATFORM: &str = "linux";

/// Facts about this host that the static restrictions depend on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HostFacts {
    /// [`machine_shard`] of the host name.
    pub machine_shard: u64,
    /// The osquery version we answer as (packs needing a newer one are skipped).
    pub version: String,
}

impl HostFacts {
    /// This host: the live host name's shard and our osquery version.
    pub fn current() -> HostFacts {
        let hostname = oxquery_sys::host::hostname().unwrap_or_default();
        HostFacts {
            machine_shard: machine_shard(&hostname),
            version: oxquery_engine::instance::VERSION.to_owned(),
        }
    }
}

/// Whether a `platform` restriction includes this build. Empty or `null`, or text
/// containing `any` or `all`, means every platform; text containing `linux`, `ubuntu`,
/// `centos` or `posix` includes Linux; otherwise the text must contain the build's
/// platform name. Containment (not equality) is what lets `"linux,darwin"` work.
pub fn platform_matches(platform: &str) -> bool {
    if platform.is_empty() || platform == "null" {
        return true;
    }
    [
        "any",
        "all",
        "linux",
        "ubuntu",
        "centos",
        "posix",
        BUILD_PLATFORM,
    ]
    .iter()
    .any(|word| platform.contains(word))
}

/// Whether `ours` is at least `required` (a dotted version; empty or `null` = no
/// requirement). Components compare numerically; a component's non-digit tail is
/// ignored (`5.2.0-rc1` is 5.2.0) and missing components count as 0.
pub fn version_satisfied(required: &str, ours: &str) -> bool {
    let required = required.trim();
    if required.is_empty() || required == "null" {
        return true;
    }
    let parts = |v: &str| -> Vec<u64> {
        v.split('.')
            .map(|c| {
                let digits: String = c.chars().take_while(char::is_ascii_digit).collect();
                digits.parse().unwrap_or(0)
            })
            .collect()
    };
    let (want, have) = (parts(required), parts(ours));
    let len = want.len().max(have.len());
    for i in 0..len {
        let (w, h) = (
            want.get(i).copied().unwrap_or(0),
            have.get(i).copied().unwrap_or(0),
        );
        if h != w {
            return h > w;
        }
    }
    true
}

/// The host's shard, 0..=100: the first byte of SHA1(hostname) scaled by 100/255.
pub fn machine_shard(hostname: &str) -> u64 {
    let hex = sha1_hex(hostname.as_bytes());
    let first = u64::from_str_radix(&hex[..2], 16).unwrap_or(0);
    first * 100 / 255
}

/// Whether a `shard` restriction includes a host of `machine_shard`: 0 includes every
/// host; otherwise hosts whose shard is at most the value (so `"shard": 10` reaches
/// roughly the first 10 % of hosts).
pub fn shard_includes(shard: u64, machine_shard: u64) -> bool {
    shard == 0 || shard >= machine_shard
}

impl Pack {
    /// The pack's static restrictions (platform, version, shard) allow this host.
    /// Discovery is separate: see [`DiscoveryCache`].
    pub fn applies_to(&self, host: &HostFacts) -> bool {
        platform_matches(&self.platform)
            && version_satisfied(&self.version, &host.version)
            && shard_includes(self.shard, host.machine_shard)
    }
}

impl super::model::Query {
    /// The query's own platform, version and shard restrictions allow this host.
    pub fn applies_to(&self, host: &HostFacts) -> bool {
        platform_matches(&self.platform)
            && version_satisfied(&self.version, &host.version)
            && shard_includes(self.shard, host.machine_shard)
    }
}

/// Runs SQL for discovery: `Ok(number of rows)` or an error message. The daemon passes
/// [`engine_runner`]; tests pass a closure.
pub trait QueryRunner {
    fn row_count(&mut self, sql: &str) -> Result<usize, String>;
}

impl<F: FnMut(&str) -> Result<usize, String>> QueryRunner for F {
    fn row_count(&mut self, sql: &str) -> Result<usize, String> {
        self(sql)
    }
}

/// A [`QueryRunner`] over the SQL engine.
pub fn engine_runner(engine: &oxquery_engine::Engine) -> impl QueryRunner + '_ {
    move |sql: &str| {
        engine
            .query(sql)
            .map(|r| r.rows.len())
            .map_err(|e| e.to_string())
    }
}

/// Remembers each pack's discovery verdict for `--pack_refresh_interval` seconds, so
/// discovery SQL runs at most once per interval per pack.
#[derive(Debug, Default)]
pub struct DiscoveryCache {
    /// (source, pack) → (the discovery queries judged, when, verdict).
    entries: HashMap<(String, String), (Vec<String>, u64, bool)>,
    /// How many verdicts were computed (not served from the cache).
    pub misses: u64,
    /// How many verdicts came from the cache.
    pub hits: u64,
}

impl DiscoveryCache {
    pub fn new() -> DiscoveryCache {
        DiscoveryCache::default()
    }

    /// Whether `pack` is active at unix time `now`: every discovery query succeeds and
    /// returns at least one row (a pack without discovery is always active). A cached
    /// verdict younger than `refresh_seconds` is reused unless the pack's discovery
    /// queries changed.
    pub fn is_active(
        &mut self,
        pack: &Pack,
        now: u64,
        refresh_seconds: u64,
        runner: &mut dyn QueryRunner,
    ) -> bool {
        if pack.discovery.is_empty() {
            return true;
        }
        let key = (pack.source.clone(), pack.name.clone());
        if let Some((queries, at, verdict)) = self.entries.get(&key)
            && *queries == pack.discovery
            && now.saturating_sub(*at) < refresh_seconds
        {
            self.hits += 1;
            return *verdict;
        }
        self.misses += 1;
        let mut verdict = true;
        for sql in &pack.discovery {
            match runner.row_count(sql) {
                Ok(0) => {
                    verdict = false;
                    break;
                }
                Ok(_) => {}
                Err(e) => {
                    log::warn!("Discovery query failed ({sql}): {e}");
                    verdict = false;
                    break;
                }
            }
        }
        self.entries
            .insert(key, (pack.discovery.clone(), now, verdict));
        verdict
    }
}
