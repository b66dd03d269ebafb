//! `osquery_schedule`: the daemon's scheduled queries and their run statistics.

use oxquery_table::{QueryContext, Rows, TableResult, table};

table! {
    name: "osquery_schedule",
    description: "The queries this daemon runs on a schedule, with counts and timings of their runs. Beyond osquery, the hidden column denylist_reason says why a deny-listed query is.",
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
    },
    column_aliases: { blacklisted => denylisted },
    examples: ["select name, executions, wall_time_ms from osquery_schedule"],
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
        assert_eq!(rows.len(), 1);
    }
}
