//! Per-query execution statistics (`osquery_schedule`), kept in the `query_performance`
//! domain as osquery's CSV: `executions,last_executed,wall_time,wall_time_ms,
//! last_wall_time_ms,user_time,last_user_time,system_time,last_system_time,
//! average_memory,last_memory,output_size`.

use oxquery_store::{Domain, Result, Store};
use std::time::Duration;

/// What the scheduler measured for one execution.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Execution {
    /// Unix time the execution started.
    pub unix_time: i64,
    pub wall_time: Duration,
    pub user_time: Duration,
    pub system_time: Duration,
    /// Resident memory (bytes) the query left allocated.
    pub memory: u64,
    /// Bytes of the result rows.
    pub output_size: u64,
}

/// Accumulated statistics of one query, in osquery's units.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Performance {
    pub executions: u64,
    pub last_executed: i64,
    /// Total wall time in whole seconds (osquery keeps it for old clients).
    pub wall_time: u64,
    pub wall_time_ms: u64,
    pub last_wall_time_ms: u64,
    /// Total user CPU time in milliseconds.
    pub user_time: u64,
    pub last_user_time: u64,
    /// Total system CPU time in milliseconds.
    pub system_time: u64,
    pub last_system_time: u64,
    /// Mean of the per-execution memory figures, in bytes.
    pub average_memory: u64,
    pub last_memory: u64,
    /// Total bytes of output over every execution.
    pub output_size: u64,
}

impl Performance {
    /// Adds one execution.
    pub fn add(&mut self, e: &Execution) {
        let ms = |d: Duration| u64::try_from(d.as_millis()).unwrap_or(u64::MAX);
        let n = self.executions + 1;
        // Running mean in u128 so a long-lived query's sum cannot overflow.
        self.average_memory = ((u128::from(self.average_memory) * u128::from(self.executions)
            + u128::from(e.memory))
            / u128::from(n)) as u64;
        self.executions = n;
        self.last_executed = e.unix_time;
        self.wall_time_ms = self.wall_time_ms.saturating_add(ms(e.wall_time));
        self.wall_time = self.wall_time_ms / 1000;
        self.last_wall_time_ms = ms(e.wall_time);
        self.user_time = self.user_time.saturating_add(ms(e.user_time));
        self.last_user_time = ms(e.user_time);
        self.system_time = self.system_time.saturating_add(ms(e.system_time));
        self.last_system_time = ms(e.system_time);
        self.last_memory = e.memory;
        self.output_size = self.output_size.saturating_add(e.output_size);
    }

    /// The stored CSV form.
    pub fn to_csv(&self) -> String {
        format!(
            "{},{},{},{},{},{},{},{},{},{},{},{}",
            self.executions,
            self.last_executed,
            self.wall_time,
            self.wall_time_ms,
            self.last_wall_time_ms,
            self.user_time,
            self.last_user_time,
            self.system_time,
            self.last_system_time,
            self.average_memory,
            self.last_memory,
            self.output_size
        )
    }

    /// Parses the stored CSV; missing or unreadable fields read as 0 so an older or
    /// damaged record restarts counting instead of failing the scheduler.
    pub fn from_csv(text: &str) -> Performance {
        let mut f = text
            .trim()
            .split(',')
            .map(|v| v.trim().parse::<i64>().unwrap_or(0));
        let mut u = || f.next().unwrap_or(0);
        let executions = u().max(0) as u64;
        let last_executed = u();
        let mut next = || u().max(0) as u64;
        Performance {
            executions,
            last_executed,
            wall_time: next(),
            wall_time_ms: next(),
            last_wall_time_ms: next(),
            user_time: next(),
            last_user_time: next(),
            system_time: next(),
            last_system_time: next(),
            average_memory: next(),
            last_memory: next(),
            output_size: next(),
        }
    }
}

/// Adds an execution of `name` to its stored statistics and returns them.
pub fn record_execution(store: &mut Store, name: &str, e: &Execution) -> Result<Performance> {
    store.transaction(|tx| {
        let mut p = tx
            .get(Domain::QueryPerformance, name)?
            .map(|v| Performance::from_csv(&String::from_utf8_lossy(&v)))
            .unwrap_or_default();
        p.add(e);
        tx.put(Domain::QueryPerformance, name, p.to_csv().as_bytes())?;
        Ok(p)
    })
}

/// The stored statistics of `name`.
pub fn performance(store: &Store, name: &str) -> Result<Option<Performance>> {
    Ok(store
        .get_text(Domain::QueryPerformance, name)?
        .map(|t| Performance::from_csv(&t)))
}

/// Every query's stored statistics, by name.
pub fn all_performance(store: &Store) -> Result<Vec<(String, Performance)>> {
    Ok(store
        .scan(Domain::QueryPerformance, "")?
        .into_iter()
        .map(|(k, v)| (k, Performance::from_csv(&String::from_utf8_lossy(&v))))
        .collect())
}

/// Forgets the statistics of `name` (a query removed from the schedule).
pub fn clear(store: &Store, name: &str) -> Result<()> {
    store.delete(Domain::QueryPerformance, name)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn executions_accumulate_in_osquery_units_and_csv_order() {
        let mut store = Store::in_memory().unwrap();
        let e = |t, wall, user, sys, mem, out| Execution {
            unix_time: t,
            wall_time: Duration::from_millis(wall),
            user_time: Duration::from_millis(user),
            system_time: Duration::from_millis(sys),
            memory: mem,
            output_size: out,
        };
        record_execution(&mut store, "q", &e(100, 1500, 20, 5, 1000, 10)).unwrap();
        let p = record_execution(&mut store, "q", &e(160, 700, 30, 7, 3000, 4)).unwrap();
        assert_eq!(p.to_csv(), "2,160,2,2200,700,50,30,12,7,2000,3000,14");
        assert_eq!(performance(&store, "q").unwrap(), Some(p));
        assert_eq!(all_performance(&store).unwrap(), [("q".to_owned(), p)]);
        assert_eq!(
            Performance::from_csv("3,9"),
            Performance {
                executions: 3,
                last_executed: 9,
                ..Performance::default()
            }
        );
        clear(&store, "q").unwrap();
        assert_eq!(performance(&store, "q").unwrap(), None);
    }
}
