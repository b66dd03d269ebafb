//! `docker_container_stats`: one sample of a Docker container's resource use.

use super::docker::{self, as_int, asked_ids, int, text};
use oxquery_table::{QueryContext, Rows, TableResult, table};
use serde_json::Value;

table! {
    name: "docker_container_stats",
    description: "One sample of the resource use of the Docker containers the query names (id is required), from GET /containers/{id}/stats?stream=false, which the daemon answers after about two seconds (it samples twice, for the pre_ columns). No daemon or no such container: no rows.",
    columns: {
        id: Text [INDEX | REQUIRED | COLLATE_NOCASE] "Container id (or a unique prefix), as asked",
        name: Text [INDEX] "Container name, with Docker's leading /",
        pids: Integer [] "Number of processes",
        read: BigInt [] "Unix time of this sample",
        preread: BigInt [] "Unix time of the previous sample",
        interval: BigInt [] "Nanoseconds between the two samples",
        disk_read: BigInt [] "Bytes read from block devices",
        disk_write: BigInt [] "Bytes written to block devices",
        num_procs: Integer [] "Number of processors (Windows containers; 0 on Linux)",
        cpu_total_usage: BigInt [] "CPU time used, in nanoseconds",
        cpu_kernelmode_usage: BigInt [] "CPU time in kernel mode, in nanoseconds",
        cpu_usermode_usage: BigInt [] "CPU time in user mode, in nanoseconds",
        system_cpu_usage: BigInt [] "CPU time the whole host used, in nanoseconds",
        online_cpus: Integer [] "Online CPUs",
        pre_cpu_total_usage: BigInt [] "cpu_total_usage at the previous sample",
        pre_cpu_kernelmode_usage: BigInt [] "cpu_kernelmode_usage at the previous sample",
        pre_cpu_usermode_usage: BigInt [] "cpu_usermode_usage at the previous sample",
        pre_system_cpu_usage: BigInt [] "system_cpu_usage at the previous sample",
        pre_online_cpus: Integer [] "online_cpus at the previous sample",
        memory_usage: BigInt [] "Memory used, in bytes",
        memory_cached: BigInt [] "Page cache, in bytes (cgroup v1 cache)",
        memory_inactive_file: BigInt [] "Inactive file memory, in bytes",
        memory_total_inactive_file: BigInt [] "Inactive file memory with descendants, in bytes (cgroup v1)",
        memory_max_usage: BigInt [] "Peak memory use, in bytes (cgroup v1)",
        memory_limit: BigInt [] "Memory limit, in bytes",
        network_rx_bytes: BigInt [] "Bytes received on all interfaces",
        network_tx_bytes: BigInt [] "Bytes sent on all interfaces",
    },
    examples: ["select name, pids, memory_usage, cpu_total_usage from docker_container_stats where id in (select id from docker_containers where state = 'running')"],
}

/// The integer at a path of keys (0 when any step is missing).
fn at(v: &Value, path: &[&str]) -> i64 {
    let mut v = v;
    for key in path {
        match v.get(key) {
            Some(next) => v = next,
            None => return 0,
        }
    }
    as_int(v)
}

/// Unix seconds and nanoseconds of an RFC 3339 time (`None` for Go's zero time or junk).
fn seconds_nanos(time: &str) -> Option<(i64, i64)> {
    let seconds = oxquery_sys::syslog_pipe::parse_datetime(time)?;
    if seconds <= 0 {
        return None;
    }
    let fraction = time
        .split_once('.')
        .map(|(_, f)| {
            f.bytes()
                .take_while(u8::is_ascii_digit)
                .collect::<Vec<u8>>()
        })
        .unwrap_or_default();
    let mut nanos = 0i64;
    for i in 0..9 {
        nanos = nanos * 10 + fraction.get(i).map_or(0, |d| i64::from(d - b'0'));
    }
    Some((seconds, nanos))
}

/// The sum of `value` over the entries of `list` whose `op` is `op` (case-insensitive).
fn io_bytes(list: Option<&Value>, op: &str) -> i64 {
    list.and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter(|e| {
            e.get("op")
                .and_then(Value::as_str)
                .is_some_and(|o| o.eq_ignore_ascii_case(op))
        })
        .map(|e| int(e, "value"))
        .sum()
}

fn generate(ctx: &QueryContext, rows: &mut Rows) -> TableResult {
    let table = TABLE.spec.name.as_ref();
    let Some(ids) = asked_ids(ctx, Col::id) else {
        return Ok(());
    };
    let names = ctx.eq_texts(Col::name);
    for id in &ids {
        ctx.check()?;
        let Some(s) = docker::get(ctx, table, &format!("/containers/{id}/stats?stream=false"))?
        else {
            continue;
        };
        if !s.is_object() {
            log::warn!("{table}: Docker API stats of {id}: expected a JSON object");
            continue;
        }
        let name = text(&s, "name");
        if names.as_ref().is_some_and(|n| !n.contains(&name)) {
            continue;
        }
        let read = seconds_nanos(&text(&s, "read"));
        let preread = seconds_nanos(&text(&s, "preread"));
        let blkio = s
            .get("blkio_stats")
            .and_then(|b| b.get("io_service_bytes_recursive"));
        let networks = s.get("networks").and_then(Value::as_object);
        let net = |key: &str| -> i64 {
            networks
                .into_iter()
                .flatten()
                .map(|(_, n)| int(n, key))
                .sum()
        };
        let mut row = rows.row();
        row.set(Col::id, id.as_str());
        row.set(Col::name, name);
        row.set(Col::pids, at(&s, &["pids_stats", "current"]));
        row.set(Col::read, read.map_or(0, |r| r.0));
        row.set(Col::preread, preread.map_or(0, |r| r.0));
        row.set(
            Col::interval,
            match (read, preread) {
                (Some(r), Some(p)) => (r.0 - p.0) * 1_000_000_000 + (r.1 - p.1),
                _ => 0,
            },
        );
        row.set(Col::disk_read, io_bytes(blkio, "read"));
        row.set(Col::disk_write, io_bytes(blkio, "write"));
        row.set(Col::num_procs, int(&s, "num_procs"));
        for (col, stats, path) in [
            (
                Col::cpu_total_usage,
                "cpu_stats",
                &["cpu_usage", "total_usage"][..],
            ),
            (
                Col::cpu_kernelmode_usage,
                "cpu_stats",
                &["cpu_usage", "usage_in_kernelmode"],
            ),
            (
                Col::cpu_usermode_usage,
                "cpu_stats",
                &["cpu_usage", "usage_in_usermode"],
            ),
            (Col::system_cpu_usage, "cpu_stats", &["system_cpu_usage"]),
            (Col::online_cpus, "cpu_stats", &["online_cpus"]),
            (
                Col::pre_cpu_total_usage,
                "precpu_stats",
                &["cpu_usage", "total_usage"],
            ),
            (
                Col::pre_cpu_kernelmode_usage,
                "precpu_stats",
                &["cpu_usage", "usage_in_kernelmode"],
            ),
            (
                Col::pre_cpu_usermode_usage,
                "precpu_stats",
                &["cpu_usage", "usage_in_usermode"],
            ),
            (
                Col::pre_system_cpu_usage,
                "precpu_stats",
                &["system_cpu_usage"],
            ),
            (Col::pre_online_cpus, "precpu_stats", &["online_cpus"]),
            (Col::memory_usage, "memory_stats", &["usage"]),
            (Col::memory_cached, "memory_stats", &["stats", "cache"]),
            (
                Col::memory_inactive_file,
                "memory_stats",
                &["stats", "inactive_file"],
            ),
            (
                Col::memory_total_inactive_file,
                "memory_stats",
                &["stats", "total_inactive_file"],
            ),
            (Col::memory_max_usage, "memory_stats", &["max_usage"]),
            (Col::memory_limit, "memory_stats", &["limit"]),
        ] {
            let mut full = vec![stats];
            full.extend_from_slice(path);
            row.set(col, at(&s, &full));
        }
        row.set(Col::network_rx_bytes, net("rx_bytes"));
        row.set(Col::network_tx_bytes, net("tx_bytes"));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::containers::docker::testing::{daemon, host_for};
    use crate::testing::{rows_of, text};
    use oxquery_table::{Op, Value as Cell};

    fn int_of(v: &Cell) -> i64 {
        match v {
            Cell::Integer(i) => *i,
            v => panic!("{v:?}"),
        }
    }

    #[test]
    fn matches_docker_stats() {
        let Some(d) = daemon() else { return };
        let host = host_for(&d.socket);
        let ctx = QueryContext::everything(TABLE.spec, &host).with_constraint(
            Col::id,
            Op::Eq,
            d.running_id.clone(),
        );
        let rows = rows_of(&ctx, generate);
        assert_eq!(rows.len(), 1);
        let r = &rows[0];
        let stats: serde_json::Value = serde_json::from_str(&d.cli(&[
            "stats",
            "--no-stream",
            "--format",
            "{{json .}}",
            &d.running_id,
        ]))
        .unwrap();
        assert_eq!(text(&r[Col::name as usize]), format!("/{}", d.running_name));
        assert_eq!(
            int_of(&r[Col::pids as usize]).to_string(),
            stats["PIDs"].as_str().unwrap()
        );
        // The two samples are ordered and about a second apart.
        let (read, preread) = (
            int_of(&r[Col::read as usize]),
            int_of(&r[Col::preread as usize]),
        );
        assert!(read >= preread && preread > 0, "{read} {preread}");
        assert!(int_of(&r[Col::interval as usize]) > 0);
        assert!(int_of(&r[Col::memory_usage as usize]) > 0);
        assert!(int_of(&r[Col::memory_limit as usize]) > 0);
        assert!(int_of(&r[Col::online_cpus as usize]) >= 1);
        // Nothing read from block devices, nothing sent: the container only sleeps, so
        // its CPU time stays below the host's.
        assert!(
            int_of(&r[Col::cpu_total_usage as usize]) <= int_of(&r[Col::system_cpu_usage as usize])
        );
        // name = a different name: no row.
        let ctx = QueryContext::everything(TABLE.spec, &host)
            .with_constraint(Col::id, Op::Eq, d.running_id.clone())
            .with_constraint(Col::name, Op::Eq, "/other");
        assert!(rows_of(&ctx, generate).is_empty());
    }

    #[test]
    fn times_keep_their_nanoseconds() {
        assert_eq!(
            seconds_nanos("2026-12-07T01:09:31.817299627Z"),
            Some((1_796_605_771, 817_299_627))
        );
        assert_eq!(
            seconds_nanos("2026-12-07T01:09:31.5Z").unwrap().1,
            500_000_000
        );
        assert_eq!(seconds_nanos("0001-01-01T00:00:00Z"), None);
    }
}
