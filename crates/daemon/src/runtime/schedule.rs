//! Which scheduled query runs when.

use crate::config::ScheduledQuery;
use crate::results::performance;
use oxquery_store::{Domain, Store};
use oxquery_table::ScheduleEntry;
use std::collections::BTreeMap;

/// The store key (`configurations`) osquery uses for the one query it is running. Read
/// at start for a store left by an earlier version, which kept one name there.
pub(super) const EXECUTING_QUERY: &str = "executing_query";
/// `configurations/executing_query.<name>`: one key per query a worker is running (two
/// run at once), written before the query starts and deleted after its results are in.
pub(super) const EXECUTING_PREFIX: &str = "executing_query.";
/// The store key (`configurations`) of the deny-list: `name:expiry:name:expiry...`.
pub(super) const FAILED_QUERIES: &str = "failed_queries";
/// How long a query that was running when the process died stays deny-listed.
pub(super) const DENYLIST_SECONDS: i64 = 86400;
/// `configurations/denylist_reason.<name>`: why a deny-listed query is (oxquery's; the
/// `failed_queries` value keeps osquery's format).
pub(super) const DENYLIST_REASON_PREFIX: &str = "denylist_reason.";
/// The reason when no watcher said why the previous process ended (`kill -9` of the
/// whole daemon, `--disable_watchdog`, a power cut).
pub(super) const UNKNOWN_STOP: &str = "osqueryd stopped while the query ran";

/// The queries of the current config, with their splayed intervals.
#[derive(Debug, Default)]
pub(super) struct Schedule {
    queries: Vec<ScheduledQuery>,
    /// Deny-listed query name → unix expiry.
    denylist: BTreeMap<String, i64>,
    /// Deny-listed query name → why.
    reasons: BTreeMap<String, String>,
}

/// Parses osquery's `name:expiry:name:expiry...` (a pair that does not parse is dropped).
pub(super) fn parse_denylist(text: &str) -> BTreeMap<String, i64> {
    let parts: Vec<&str> = text.split(':').collect();
    parts
        .chunks(2)
        .filter_map(|pair| match pair {
            [name, expiry] if !name.is_empty() => {
                expiry.parse().ok().map(|e| ((*name).to_owned(), e))
            }
            _ => None,
        })
        .collect()
}

/// The inverse of [`parse_denylist`].
pub(super) fn format_denylist(denylist: &BTreeMap<String, i64>) -> String {
    denylist
        .iter()
        .map(|(name, expiry)| format!("{name}:{expiry}"))
        .collect::<Vec<_>>()
        .join(":")
}

/// The stored deny-list.
pub(super) fn load_denylist(store: &Store) -> BTreeMap<String, i64> {
    match store.get_text(Domain::Configurations, FAILED_QUERIES) {
        Ok(Some(text)) => parse_denylist(&text),
        Ok(None) => BTreeMap::new(),
        Err(e) => {
            log::warn!("Cannot read the query deny-list: {e}");
            BTreeMap::new()
        }
    }
}

/// Stores `denylist` (deleting the key when it is empty).
pub(super) fn save_denylist(store: &Store, denylist: &BTreeMap<String, i64>) {
    let saved = if denylist.is_empty() {
        store.delete(Domain::Configurations, FAILED_QUERIES)
    } else {
        store.put(
            Domain::Configurations,
            FAILED_QUERIES,
            format_denylist(denylist).as_bytes(),
        )
    };
    if let Err(e) = saved {
        log::warn!("Cannot store the query deny-list: {e}");
    }
}

/// The stored reasons of deny-listed queries.
pub(super) fn load_denylist_reasons(store: &Store) -> BTreeMap<String, String> {
    let read = || -> oxquery_store::Result<BTreeMap<String, String>> {
        let mut out = BTreeMap::new();
        for key in store.keys(Domain::Configurations, DENYLIST_REASON_PREFIX)? {
            if let Some(reason) = store.get_text(Domain::Configurations, &key)? {
                out.insert(key[DENYLIST_REASON_PREFIX.len()..].to_owned(), reason);
            }
        }
        Ok(out)
    };
    read().unwrap_or_else(|e| {
        log::warn!("Cannot read the deny-list reasons: {e}");
        BTreeMap::new()
    })
}

pub(super) fn save_denylist_reason(store: &Store, name: &str, reason: &str) {
    let key = format!("{DENYLIST_REASON_PREFIX}{name}");
    if let Err(e) = store.put(Domain::Configurations, &key, reason.as_bytes()) {
        log::warn!("Cannot store why {name} is deny-listed: {e}");
    }
}

pub(super) fn delete_denylist_reason(store: &Store, name: &str) {
    let key = format!("{DENYLIST_REASON_PREFIX}{name}");
    if let Err(e) = store.delete(Domain::Configurations, &key) {
        log::warn!("Cannot delete why {name} was deny-listed: {e}");
    }
}

impl Schedule {
    pub(super) fn new(
        queries: Vec<ScheduledQuery>,
        denylist: BTreeMap<String, i64>,
        reasons: BTreeMap<String, String>,
    ) -> Schedule {
        Schedule {
            queries,
            denylist,
            reasons,
        }
    }

    /// Whether `q` is skipped at unix time `now`: deny-listed, not yet expired, and its
    /// config allows deny-listing.
    pub(super) fn is_denylisted(&self, q: &ScheduledQuery, now: i64) -> bool {
        q.denylist
            && self
                .denylist
                .get(&q.name)
                .is_some_and(|&expiry| expiry > now)
    }

    /// Forgets expired entries; returns the queries released, each with why it was
    /// deny-listed (to be saved and logged).
    pub(super) fn expire(&mut self, now: i64) -> Vec<(String, Option<String>)> {
        let expired: Vec<String> = self
            .denylist
            .iter()
            .filter(|(_, expiry)| **expiry <= now)
            .map(|(name, _)| name.clone())
            .collect();
        expired
            .into_iter()
            .map(|name| {
                self.denylist.remove(&name);
                let reason = self.reasons.remove(&name);
                (name, reason)
            })
            .collect()
    }

    pub(super) fn denylist(&self) -> &BTreeMap<String, i64> {
        &self.denylist
    }

    pub(super) fn queries(&self) -> &[ScheduledQuery] {
        &self.queries
    }

    /// The queries whose turn is unix second `second`: those whose splayed interval
    /// divides it, as osquery's scheduler decides.
    #[cfg(test)]
    pub(super) fn due(&self, second: i64) -> impl Iterator<Item = &ScheduledQuery> {
        self.due_within(second..=second)
    }

    /// The queries due at some second of `seconds` (a catch-up after the loop fell
    /// behind), each once however many of those seconds are its turn.
    pub(super) fn due_within(
        &self,
        seconds: std::ops::RangeInclusive<i64>,
    ) -> impl Iterator<Item = &ScheduledQuery> {
        let (first, last) = (*seconds.start(), *seconds.end());
        self.queries.iter().filter(move |q| {
            let interval = q.splayed_interval.max(1) as i64;
            let turn = first + (interval - first.rem_euclid(interval)) % interval;
            first <= last && turn <= last && !self.is_denylisted(q, last)
        })
    }

    /// Rows for `osquery_schedule`, with the statistics kept in the store.
    pub(super) fn entries(&self, store: &Store) -> Vec<ScheduleEntry> {
        let now = super::unix_now();
        self.queries
            .iter()
            .map(|q| {
                let perf = performance::performance(store, &q.name)
                    .ok()
                    .flatten()
                    .unwrap_or_default();
                let denylisted = self.is_denylisted(q, now);
                let mut e = entry(q, &perf, denylisted);
                if denylisted {
                    e.denylist_reason = Some(
                        self.reasons
                            .get(&q.name)
                            .cloned()
                            .unwrap_or_else(|| UNKNOWN_STOP.to_owned()),
                    );
                }
                e
            })
            .collect()
    }
}

/// One `osquery_schedule` row.
pub(super) fn entry(
    q: &ScheduledQuery,
    perf: &performance::Performance,
    denylisted: bool,
) -> ScheduleEntry {
    let int = |v: u64| i64::try_from(v).unwrap_or(i64::MAX);
    ScheduleEntry {
        name: q.name.clone(),
        query: q.query.clone(),
        interval: int(q.interval),
        executions: int(perf.executions),
        last_executed: perf.last_executed,
        denylisted,
        output_size: int(perf.output_size),
        wall_time: int(perf.wall_time),
        wall_time_ms: int(perf.wall_time_ms),
        last_wall_time_ms: int(perf.last_wall_time_ms),
        user_time: int(perf.user_time),
        last_user_time: int(perf.last_user_time),
        system_time: int(perf.system_time),
        last_system_time: int(perf.last_system_time),
        average_memory: int(perf.average_memory),
        last_memory: int(perf.last_memory),
        denylist_reason: None,
        last_rows: int(perf.last_rows),
        last_peak_memory: int(perf.last_peak_memory),
        last_stop_reason: perf.last_stop_reason.map_or("", |r| r.keyword()).to_owned(),
        stopped_runs: int(perf.stopped_runs),
        timeout: int(q.timeout),
        memory_limit: int(q.memory_limit),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn query(name: &str, splayed: u64) -> ScheduledQuery {
        ScheduledQuery {
            name: name.into(),
            pack: "main".into(),
            query: "select 1".into(),
            interval: splayed,
            splayed_interval: splayed,
            snapshot: false,
            removed: true,
            denylist: true,
            startup_priority: None,
            timeout: 0,
            memory_limit: 0,
        }
    }

    #[test]
    fn a_query_is_due_when_its_interval_divides_the_second() {
        let s = Schedule::new(
            vec![query("a", 10), query("b", 15), query("c", 0)],
            BTreeMap::new(),
            BTreeMap::new(),
        );
        let due = |t| s.due(t).map(|q| q.name.clone()).collect::<Vec<_>>();
        assert_eq!(due(30), ["a", "b", "c"]);
        assert_eq!(due(20), ["a", "c"]);
        assert_eq!(due(7), ["c"]);
    }

    #[test]
    fn a_catch_up_runs_each_due_query_once() {
        let s = Schedule::new(
            vec![query("a", 10), query("b", 15), query("c", 1)],
            BTreeMap::new(),
            BTreeMap::new(),
        );
        let due = |r| s.due_within(r).map(|q| q.name.clone()).collect::<Vec<_>>();
        assert_eq!(due(21..=29), ["c"]);
        assert_eq!(due(21..=30), ["a", "b", "c"]);
        assert_eq!(due(30..=30), ["a", "b", "c"]);
        assert_eq!(due(1..=44), ["a", "b", "c"]);
        assert_eq!(due(31..=44), ["a", "c"]);
        assert!(due(std::ops::RangeInclusive::new(5, 4)).is_empty());
    }

    #[test]
    fn the_denylist_round_trips_osquery_format() {
        let text = "pack_p_q:1700000000:main:1700000123";
        let parsed = parse_denylist(text);
        assert_eq!(parsed.len(), 2);
        assert_eq!(parsed["main"], 1700000123);
        assert_eq!(
            format_denylist(&parsed),
            "main:1700000123:pack_p_q:1700000000"
        );
        assert!(parse_denylist("").is_empty());
        assert_eq!(parse_denylist("a:x:b:5").len(), 1);
    }

    #[test]
    fn a_denylisted_query_is_skipped_until_expiry_unless_it_opts_out() {
        let mut optout = query("b", 1);
        optout.denylist = false;
        let denylist = BTreeMap::from([("a".to_owned(), 100), ("b".to_owned(), 100)]);
        let reasons =
            BTreeMap::from([("a".to_owned(), "memory 300 MB over limit 200 MB".to_owned())]);
        let mut s = Schedule::new(vec![query("a", 1), optout], denylist, reasons);
        let due = |s: &Schedule, t| s.due(t).map(|q| q.name.clone()).collect::<Vec<_>>();
        assert_eq!(due(&s, 50), ["b"]);
        assert_eq!(due(&s, 100), ["a", "b"]);
        assert!(s.expire(99).is_empty());
        // Released once, each with why it was deny-listed.
        assert_eq!(
            s.expire(100),
            [
                (
                    "a".to_owned(),
                    Some("memory 300 MB over limit 200 MB".to_owned())
                ),
                ("b".to_owned(), None)
            ]
        );
        assert!(s.expire(100).is_empty());
        assert!(s.denylist().is_empty());
    }

    #[test]
    fn a_denylisted_entry_shows_its_reason_and_others_none() {
        let store = Store::in_memory().unwrap();
        save_denylist_reason(&store, "a", "CPU 92% over 10% for 12 s");
        save_denylist_reason(&store, "gone", "worker killed by SIGSEGV (11)");
        let reasons = load_denylist_reasons(&store);
        assert_eq!(reasons.len(), 2);
        let now = super::super::unix_now();
        let denylist = BTreeMap::from([("a".to_owned(), now + 100), ("c".to_owned(), now + 100)]);
        let s = Schedule::new(
            vec![query("a", 1), query("b", 1), query("c", 1)],
            denylist,
            reasons,
        );
        let shown: Vec<_> = s
            .entries(&store)
            .into_iter()
            .map(|e| (e.name, e.denylisted, e.denylist_reason))
            .collect();
        assert_eq!(
            shown,
            [
                (
                    "a".to_owned(),
                    true,
                    Some("CPU 92% over 10% for 12 s".to_owned())
                ),
                ("b".to_owned(), false, None),
                // Deny-listed by an earlier version that kept no reason.
                ("c".to_owned(), true, Some(UNKNOWN_STOP.to_owned())),
            ]
        );
        delete_denylist_reason(&store, "gone");
        assert_eq!(load_denylist_reasons(&store).len(), 1);
    }
}
