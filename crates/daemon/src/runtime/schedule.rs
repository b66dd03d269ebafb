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

/// The queries of the current config, with their splayed intervals.
#[derive(Debug, Default)]
pub(super) struct Schedule {
    queries: Vec<ScheduledQuery>,
    /// Deny-listed query name → unix expiry.
    denylist: BTreeMap<String, i64>,
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

impl Schedule {
    pub(super) fn new(queries: Vec<ScheduledQuery>, denylist: BTreeMap<String, i64>) -> Schedule {
        Schedule { queries, denylist }
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

    /// Forgets expired entries; returns whether anything was removed (to be saved).
    pub(super) fn expire(&mut self, now: i64) -> bool {
        let before = self.denylist.len();
        self.denylist.retain(|_, expiry| *expiry > now);
        self.denylist.len() != before
    }

    pub(super) fn denylist(&self) -> &BTreeMap<String, i64> {
        &self.denylist
    }

    pub(super) fn queries(&self) -> &[ScheduledQuery] {
        &self.queries
    }

    /// The queries whose turn is unix second `second`: those whose splayed interval
    /// divides it, as osquery's scheduler decides.
    pub(super) fn due(&self, second: i64) -> impl Iterator<Item = &ScheduledQuery> {
        self.queries.iter().filter(move |q| {
            let interval = q.splayed_interval.max(1) as i64;
            second % interval == 0 && !self.is_denylisted(q, second)
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
                entry(q, &perf, self.is_denylisted(q, now))
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
        );
        let due = |t| s.due(t).map(|q| q.name.clone()).collect::<Vec<_>>();
        assert_eq!(due(30), ["a", "b", "c"]);
        assert_eq!(due(20), ["a", "c"]);
        assert_eq!(due(7), ["c"]);
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
        let mut s = Schedule::new(vec![query("a", 1), optout], denylist);
        let due = |s: &Schedule, t| s.due(t).map(|q| q.name.clone()).collect::<Vec<_>>();
        assert_eq!(due(&s, 50), ["b"]);
        assert_eq!(due(&s, 100), ["a", "b"]);
        assert!(!s.expire(99));
        assert!(s.expire(100));
        assert!(s.denylist().is_empty());
    }
}
