//! Which scheduled query runs when.

use crate::config::ScheduledQuery;
use crate::results::performance;
use oxquery_store::Store;
use oxquery_table::ScheduleEntry;

/// The queries of the current config, with their splayed intervals.
#[derive(Debug, Default)]
pub(super) struct Schedule {
    queries: Vec<ScheduledQuery>,
}

impl Schedule {
    pub(super) fn new(queries: Vec<ScheduledQuery>) -> Schedule {
        Schedule { queries }
    }

    pub(super) fn queries(&self) -> &[ScheduledQuery] {
        &self.queries
    }

    /// The queries whose turn is unix second `second`: those whose splayed interval
    /// divides it, as osquery's scheduler decides.
    pub(super) fn due(&self, second: i64) -> impl Iterator<Item = &ScheduledQuery> {
        self.queries.iter().filter(move |q| {
            let interval = q.splayed_interval.max(1) as i64;
            second % interval == 0
        })
    }

    /// Rows for `osquery_schedule`, with the statistics kept in the store.
    pub(super) fn entries(&self, store: &Store) -> Vec<ScheduleEntry> {
        self.queries
            .iter()
            .map(|q| {
                let perf = performance::performance(store, &q.name)
                    .ok()
                    .flatten()
                    .unwrap_or_default();
                entry(q, &perf)
            })
            .collect()
    }
}

/// One `osquery_schedule` row.
pub(super) fn entry(q: &ScheduledQuery, perf: &performance::Performance) -> ScheduleEntry {
    let int = |v: u64| i64::try_from(v).unwrap_or(i64::MAX);
    ScheduleEntry {
        name: q.name.clone(),
        query: q.query.clone(),
        interval: int(q.interval),
        executions: int(perf.executions),
        last_executed: perf.last_executed,
        denylisted: false,
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
        }
    }

    #[test]
    fn a_query_is_due_when_its_interval_divides_the_second() {
        let s = Schedule::new(vec![query("a", 10), query("b", 15), query("c", 0)]);
        let due = |t| s.due(t).map(|q| q.name.clone()).collect::<Vec<_>>();
        assert_eq!(due(30), ["a", "b", "c"]);
        assert_eq!(due(20), ["a", "c"]);
        assert_eq!(due(7), ["c"]);
    }
}
