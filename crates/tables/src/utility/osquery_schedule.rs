//! `osquery_schedule`: the daemon's scheduled queries and their run statistics.

use oxquery_table::{QueryContext, Rows, TableResult, table};

table! {
    name: "osquery_schedule",
    description: "The queries this daemon runs on a schedule, with counts and timings of their runs. Beyond osquery, hidden columns say why a deny-listed query is (denylist_reason), give the per-query limits in force (timeout, memory_limit) and the last run's rows, peak memory and stop reason, with a count of stopped runs.",
    attributes: [UTILITY],
    columns: {
        name: Text [] "Full query name (pack name and query name joined by the pack delimiter)",
        query: Text [] "SQL text of the query",
        interval: Integer [] "Configured seconds between runs (the scheduler adds a splay)",
        executions: BigInt [] "Runs so far",
        last_executed: BigInt [] "Unix time the last run finished, 0 before the first",
        denylisted: Integer [] "1 when the query is skipped for having exceeded resource limits",
        output_size: BigInt [] "Bytes of results the query has logged in total",
        wall_time: BigInt [] "Total wall-clock seconds spent running (kept for old consumers; see wall_time_ms)",
        wall_time_ms: BigInt [] "Total wall-clock milliseconds spent running",
        last_wall_time_ms: BigInt [] "Wall-clock milliseconds of the last run",
        user_time: BigInt [] "Total CPU milliseconds in user mode",
        last_user_time: BigInt [] "CPU milliseconds in user mode during the last run",
        system_time: BigInt [] "Total CPU milliseconds in kernel mode",
        last_system_time: BigInt [] "CPU milliseconds in kernel mode during the last run",
        average_memory: BigInt [] "Average growth of resident memory over a run, in bytes",
        last_memory: BigInt [] "Growth of resident memory over the last run, in bytes",
        denylist_reason: Text [HIDDEN] "Why the query is deny-listed: the watchdog limit and the figures (memory 312 MB over limit 200 MB, CPU 92% over 10% for 12 s) or how the worker died; NULL when it is not (oxquery)",
        last_rows: BigInt [HIDDEN] "Rows the last run returned (up to its stop, if it was stopped) (oxquery)",
        last_peak_memory: BigInt [HIDDEN] "The most the last run allocated, in bytes (SQLite's memory for it, the rows its tables built, its result) (oxquery)",
        last_stop_reason: Text [HIDDEN] "Why the last run was stopped (timeout, memory, cancelled); empty when it ran to its end (oxquery)",
        stopped_runs: BigInt [HIDDEN] "Runs stopped by a limit or a cancel, in total (oxquery)",
        timeout: BigInt [HIDDEN] "Seconds a run may take before it is stopped (the query's \"timeout\" or --schedule_query_timeout); 0 = no limit (oxquery)",
        memory_limit: BigInt [HIDDEN] "MiB a run may allocate before it is stopped (the query's \"memory_limit\" or --schedule_query_memory_limit); 0 = no budget (oxquery)",
    },
    column_aliases: { blacklisted => denylisted },
    examples: [
        "select name, executions, wall_time_ms from osquery_schedule",
        "select name, last_stop_reason, stopped_runs, last_peak_memory, timeout from osquery_schedule",
    ],
}

fn generate(ctx: &QueryContext, rows: &mut Rows) -> TableResult {
    for q in ctx.host().live().schedule {
        let mut row = rows.row();
        row.set(Col::name, q.name);
        row.set(Col::query, q.query);
        row.set(Col::interval, q.interval);
        row.set(Col::executions, q.executions);
        row.set(Col::last_executed, q.last_executed);
        row.set(Col::denylisted, q.denylisted);
        row.set(Col::output_size, q.output_size);
        row.set(Col::wall_time, q.wall_time);
        row.set(Col::wall_time_ms, q.wall_time_ms);
        row.set(Col::last_wall_time_ms, q.last_wall_time_ms);
        row.set(Col::user_time, q.user_time);
        row.set(Col::last_user_time, q.last_user_time);
        row.set(Col::system_time, q.system_time);
        row.set(Col::last_system_time, q.last_system_time);
        row.set(Col::average_memory, q.average_memory);
        row.set(Col::last_memory, q.last_memory);
        if let Some(reason) = q.denylist_reason {
            row.set(Col::denylist_reason, reason);
        }
        row.set(Col::last_rows, q.last_rows);
        row.set(Col::last_peak_memory, q.last_peak_memory);
        row.set(Col::last_stop_reason, q.last_stop_reason);
        row.set(Col::stopped_runs, q.stopped_runs);
        row.set(Col::timeout, q.timeout);
        row.set(Col::memory_limit, q.memory_limit);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use oxquery_table::{Host, ScheduleEntry, Value};

    #[test]
    fn reports_the_live_schedule() {
        let host = Host::default();
        host.live.write().unwrap().schedule = vec![ScheduleEntry {
            name: "pack_p_q".into(),
            query: "select 1".into(),
            interval: 60,
            executions: 3,
            denylisted: true,
            wall_time_ms: 1500,
            denylist_reason: Some("memory 312 MB over limit 200 MB".into()),
            last_stop_reason: "timeout".into(),
            stopped_runs: 2,
            timeout: 30,
            ..ScheduleEntry::default()
        }];
        let ctx = QueryContext::everything(&SPEC, &host);
        let rows = Rows::collect(&ctx, generate).unwrap();
        let row = rows.get(0).unwrap();
        assert_eq!(row[Col::name as usize], Value::from("pack_p_q"));
        assert_eq!(row[Col::executions as usize], Value::Integer(3));
        assert_eq!(row[Col::denylisted as usize], Value::Integer(1));
        assert_eq!(row[Col::wall_time_ms as usize], Value::Integer(1500));
        assert_eq!(
            row[Col::denylist_reason as usize],
            Value::from("memory 312 MB over limit 200 MB")
        );
        assert_eq!(row[Col::last_stop_reason as usize], Value::from("timeout"));
        assert_eq!(row[Col::stopped_runs as usize], Value::Integer(2));
        assert_eq!(row[Col::timeout as usize], Value::Integer(30));
        assert_eq!(rows.len(), 1);
    }
}
