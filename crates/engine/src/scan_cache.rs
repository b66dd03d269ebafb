//! osquery's table cache: the rows a scheduled scan of a `cacheable` table produced are
//! kept, and a later scheduled scan of that table reuses them while it runs before the
//! storing run's step plus its query's interval (osquery's `step < last_cached +
//! last_interval`). Only unconstrained scans take part (a constraint the generator sees
//! changes its rows), and a scan reuses rows only if they hold every column it needs
//! (generators compute only the columns a query uses). `--disable_caching` and every
//! query that is not a scheduled run (the shell, decorators, discovery) leave it alone.
//!
//! osquery keeps one cache per process in its database; here the program that owns the
//! engines owns the cache ([`crate::Engine::set_scan_cache`]): the daemon hands one to
//! all its workers, and an engine left alone has its own.

use oxquery_table::{ColumnSet, Value};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};

/// The scheduled run a query belongs to: osquery's cache step (unix second) and the
/// query's interval in seconds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CacheStep {
    pub step: u64,
    pub interval: u64,
}

/// One table's stored rows.
#[derive(Debug)]
struct Cached {
    step: u64,
    interval: u64,
    used: ColumnSet,
    /// Cells, the table's width per row.
    cells: Arc<Vec<Value>>,
}

/// Rows of cacheable tables by table name. Cheap to clone: clones share the store.
#[derive(Debug, Clone, Default)]
pub struct ScanCache {
    tables: Arc<Mutex<HashMap<String, Cached>>>,
}

impl ScanCache {
    /// The rows stored for `table` if a scan at `at` may reuse them for `used`.
    pub(crate) fn lookup(
        &self,
        table: &str,
        at: CacheStep,
        used: &ColumnSet,
    ) -> Option<Arc<Vec<Value>>> {
        let tables = self.tables.lock().unwrap_or_else(|p| p.into_inner());
        let cached = tables.get(table)?;
        let fresh = at.step >= cached.step && at.step < cached.step.saturating_add(cached.interval);
        let covers = used.iter().all(|c| cached.used.contains(c));
        (fresh && covers).then(|| Arc::clone(&cached.cells))
    }

    /// Stores the rows a complete scan of `table` at `at` produced, and forgets the rows
    /// of every table that expired by then (a table no query reads any more keeps no
    /// memory).
    pub(crate) fn store(&self, table: &str, at: CacheStep, used: ColumnSet, cells: Vec<Value>) {
        let mut tables = self.tables.lock().unwrap_or_else(|p| p.into_inner());
        tables.retain(|_, c| at.step < c.step.saturating_add(c.interval));
        tables.insert(
            table.to_owned(),
            Cached {
                step: at.step,
                interval: at.interval,
                used,
                cells: Arc::new(cells),
            },
        );
    }

    /// Forgets every table's rows.
    pub fn clear(&self) {
        self.tables
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clear();
    }

    /// How many tables have rows stored.
    pub fn len(&self) -> usize {
        self.tables.lock().unwrap_or_else(|p| p.into_inner()).len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cols(width: usize, used: &[usize]) -> ColumnSet {
        let mut set = ColumnSet::none(width);
        for &c in used {
            set.insert(c);
        }
        set
    }

    #[test]
    fn rows_are_reused_within_the_storing_runs_interval_for_covered_columns() {
        let cache = ScanCache::default();
        let at = |step| CacheStep { step, interval: 60 };
        cache.store("t", at(100), cols(3, &[0, 1]), vec![Value::Integer(1); 3]);
        assert!(cache.lookup("t", at(100), &cols(3, &[0])).is_some());
        assert!(cache.lookup("t", at(159), &cols(3, &[0, 1])).is_some());
        // The interval is the storing run's, whatever the reader's.
        let short = CacheStep {
            step: 150,
            interval: 1,
        };
        assert!(cache.lookup("t", short, &cols(3, &[1])).is_some());
        assert!(
            cache.lookup("t", at(160), &cols(3, &[0])).is_none(),
            "expired"
        );
        assert!(
            cache.lookup("t", at(99), &cols(3, &[0])).is_none(),
            "before"
        );
        assert!(
            cache.lookup("t", at(120), &cols(3, &[2])).is_none(),
            "a column not computed"
        );
        assert!(cache.lookup("u", at(120), &cols(3, &[0])).is_none());
        assert_eq!(cache.len(), 1);
        // Storing another table's rows later forgets the expired ones.
        cache.store("u", at(130), cols(3, &[0]), Vec::new());
        assert_eq!(cache.len(), 2);
        cache.store("u", at(200), cols(3, &[0]), Vec::new());
        assert_eq!(cache.len(), 1);
        assert!(cache.lookup("u", at(200), &cols(3, &[0])).is_some());
        cache.clear();
        assert!(cache.is_empty());
    }
}
