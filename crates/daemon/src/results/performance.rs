//! Per-query execution statistics (`osquery_schedule`), kept in the `query_performance`
//! domain as osquery's CSV: `executions,last_executed,wall_time,wall_time_ms,
//! last_wall_time_ms,user_time,last_user_time,system_time,last_system_time,
//! average_memory,last_memory,output_size`, followed by oxquery's own fields
//! `last_rows,last_peak_memory,stopped_runs,last_stop_reason` (a record without them,
//! from osquery's layout or an older oxquery, reads them as 0 and empty).

use oxquery_store::{Domain, Result, Store};
use oxquery_table::StopReason;
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
    /// Rows the query returned (up to its stop, if it was stopped).
    pub rows: u64,
    /// The most the query allocated (per-query accounting), in bytes.
    pub peak_memory: u64,
    /// Why the run was stopped before its end; `None` when it completed (or failed
    /// with an SQL error).
    pub stop: Option<StopReason>,
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
    pub last_rows: u64,
    pub last_peak_memory: u64,
    /// Executions stopped by a limit or a cancel.
    pub stopped_runs: u64,
    pub last_stop_reason: Option<StopReason>,
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
        self.last_rows = e.rows;
        self.last_peak_memory = e.peak_memory;
        self.last_stop_reason = e.stop;
        if e.stop.is_some() {
            self.stopped_runs += 1;
        }
    }

    /// The stored CSV form.
    pub fn to_csv(&self) -> String {
        format!(
            "{},{},{},{},{},{},{},{},{},{},{},{},{},{},{},{}",
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
            self.output_size,
            self.last_rows,
            self.last_peak_memory,
            self.stopped_runs,
            self.last_stop_reason.map_or("", StopReason::keyword)
        )
    }

    /// Parses the stored CSV; missing or unreadable fields read as 0 so an older or
    /// damaged record restarts counting instead of failing the scheduler.
    pub fn from_csv(text: &str) -> Performance {
        let fields: Vec<&str> = text.trim().split(',').map(str::trim).collect();
        let int = |i: usize| {
            fields
                .get(i)
                .and_then(|v| v.parse::<i64>().ok())
                .unwrap_or(0)
        };
        let u = |i: usize| int(i).max(0) as u64;
        Performance {
            executions: u(0),
            last_executed: int(1),
            wall_time: u(2),
            wall_time_ms: u(3),
            last_wall_time_ms: u(4),
            user_time: u(5),
            last_user_time: u(6),
            system_time: u(7),
            last_system_time: u(8),
            average_memory: u(9),
            last_memory: u(10),
            output_size: u(11),
            last_rows: u(12),
            last_peak_memory: u(13),
            stopped_runs: u(14),
            last_stop_reason: fields.get(15).and_then(|w| StopReason::from_keyword(w)),
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
            ..Execution::default()
        };
        record_execution(&mut store, "q", &e(100, 1500, 20, 5, 1000, 10)).unwrap();
        let p = record_execution(&mut store, "q", &e(160, 700, 30, 7, 3000, 4)).unwrap();
        assert_eq!(
            p.to_csv(),
            "2,160,2,2200,700,50,30,12,7,2000,3000,14,0,0,0,"
        );
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
        // A stopped run: counted, with its reason, rows and peak; the next completed
        // run clears the reason but not the count.
        let stopped = Execution {
            rows: 12,
            peak_memory: 5 << 20,
            stop: Some(StopReason::Deadline),
            ..e(170, 2000, 1900, 3, 0, 0)
        };
        let p = record_execution(&mut store, "q", &stopped).unwrap();
        assert_eq!(
            p.to_csv(),
            "3,170,4,4200,2000,1950,1900,15,3,1333,0,14,12,5242880,1,timeout"
        );
        assert_eq!(Performance::from_csv(&p.to_csv()), p);
        let p = record_execution(&mut store, "q", &e(180, 10, 1, 1, 0, 0)).unwrap();
        assert_eq!((p.stopped_runs, p.last_stop_reason), (1, None));
        clear(&store, "q").unwrap();
        assert_eq!(performance(&store, "q").unwrap(), None);
    }
}
