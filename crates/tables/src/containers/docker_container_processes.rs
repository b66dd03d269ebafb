//! `docker_container_processes`: the processes inside one Docker container.

use super::docker::{self, asked_ids};
use oxquery_table::{QueryContext, Rows, TableResult, table};
use std::time::{SystemTime, UNIX_EPOCH};

table! {
    name: "docker_container_processes",
    description: "Processes running in the Docker containers the query names (id is required), as the daemon's ps sees them from the host (GET /containers/{id}/top with ps -o fields). Pids and ids are the host's. No daemon or no such container: no rows.",
    columns: {
        id: Text [INDEX | REQUIRED | COLLATE_NOCASE] "Container id (or a unique prefix), as asked",
        pid: BigInt [INDEX] "Process id on the host",
        name: Text [] "Process name (ps comm)",
        cmdline: Text [] "Command line (ps cmd)",
        state: Text [] "Process state letter (R, S, D, Z, T, ...)",
        uid: BigInt [] "Real user id",
        gid: BigInt [] "Real group id",
        euid: BigInt [] "Effective user id",
        egid: BigInt [] "Effective group id",
        suid: BigInt [] "Saved user id",
        sgid: BigInt [] "Saved group id",
        wired_size: BigInt [] "Always 0: Linux has no wired (unpageable) counter here",
        resident_size: BigInt [] "Resident memory, in bytes (ps rss x 1000, as osquery)",
        total_size: BigInt [] "Virtual memory size, in bytes (ps vsz x 1000, as osquery)",
        start_time: BigInt [] "Unix time the process started (now minus ps etimes)",
        parent: BigInt [] "Parent process id",
        pgroup: BigInt [] "Process group id",
        threads: Integer [] "Number of threads",
        nice: Integer [] "Nice value",
        user: Text [] "User name (or uid when it has no name)",
        time: Text [] "CPU time used ([dd-]hh:mm:ss)",
        cpu: Double [] "CPU use, in percent (ps pcpu)",
        mem: Double [] "Share of physical memory, in percent (ps pmem)",
    },
    examples: [
        "select pid, name, cmdline from docker_container_processes where id = '9a1f'",
        "select c.name as container, p.pid, p.name from docker_containers c join docker_container_processes p on p.id = c.id where c.state = 'running'",
    ],
}

/// The ps fields asked for, in order: docker runs `ps axwwo <these>` on the host and keeps
/// the container's processes. `cmd` is last: it may hold spaces, and docker gives the
/// rest of the line to the last column.
const PS_FIELDS: [&str; 21] = [
    "pid", "state", "uid", "gid", "euid", "egid", "suid", "sgid", "rss", "vsz", "etimes", "ppid",
    "pgrp", "nlwp", "nice", "user", "time", "pcpu", "pmem", "comm", "cmd",
];

fn generate(ctx: &QueryContext, rows: &mut Rows) -> TableResult {
    let table = TABLE.spec.name.as_ref();
    let Some(ids) = asked_ids(ctx, Col::id) else {
        return Ok(());
    };
    let pids = ctx.eq_integers(Col::pid);
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64);
    let target_args = format!("ps_args=axwwo%20{}", PS_FIELDS.join(","));
    for id in &ids {
        ctx.check()?;
        let Some(top) = docker::get(ctx, table, &format!("/containers/{id}/top?{target_args}"))?
        else {
            continue;
        };
        let processes = top.get("Processes").unwrap_or(&serde_json::Value::Null);
        for p in docker::array(table, "/containers/{id}/top Processes", processes) {
            let fields: Vec<&str> = p
                .as_array()
                .map(|a| a.iter().map(|f| f.as_str().unwrap_or("")).collect())
                .unwrap_or_default();
            if fields.len() != PS_FIELDS.len() {
                log::warn!(
                    "{table}: container {id}: a process line has {} fields, not {}",
                    fields.len(),
                    PS_FIELDS.len()
                );
                continue;
            }
            let num = |i: usize| fields[i].trim().parse::<i64>().ok();
            let Some(pid) = num(0) else { continue };
            if pids.as_ref().is_some_and(|want| !want.contains(&pid)) {
                continue;
            }
            let mut row = rows.row();
            row.set(Col::id, id.as_str());
            row.set(Col::pid, pid);
            row.set(Col::state, fields[1]);
            row.set(Col::uid, num(2));
            row.set(Col::gid, num(3));
            row.set(Col::euid, num(4));
            row.set(Col::egid, num(5));
            row.set(Col::suid, num(6));
            row.set(Col::sgid, num(7));
            row.set(Col::wired_size, 0_i64);
            row.set(Col::resident_size, num(8).map(|kb| kb * 1000));
            row.set(Col::total_size, num(9).map(|kb| kb * 1000));
            row.set(Col::start_time, num(10).map(|age| now - age));
            row.set(Col::parent, num(11));
            row.set(Col::pgroup, num(12));
            row.set(Col::threads, num(13));
            row.set(Col::nice, num(14));
            row.set(Col::user, fields[15]);
            row.set(Col::time, fields[16]);
            row.set(Col::cpu, fields[17].trim().parse::<f64>().ok());
            row.set(Col::mem, fields[18].trim().parse::<f64>().ok());
            row.set(Col::name, fields[19]);
            row.set(Col::cmdline, fields[20]);
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::containers::docker::testing::{daemon, host_for};
    use crate::testing::{rows_of, text};
    use oxquery_table::{Op, Value};

    #[test]
    fn matches_docker_top_and_proc() {
        let Some(d) = daemon() else { return };
        let host = host_for(&d.socket);
        let ctx = QueryContext::everything(TABLE.spec, &host).with_constraint(
            Col::id,
            Op::Eq,
            d.running_id.clone(),
        );
        let rows = rows_of(&ctx, generate);
        // docker top with the pid and cmd columns.
        let top = d.cli(&["top", &d.running_id, "-o", "pid,comm"]);
        let want: Vec<(i64, String)> = top
            .lines()
            .skip(1)
            .map(|l| {
                let mut f = l.split_whitespace();
                (
                    f.next().unwrap().parse().unwrap(),
                    f.next().unwrap().to_owned(),
                )
            })
            .collect();
        let got: Vec<(i64, String)> = rows
            .iter()
            .map(|r| match r[Col::pid as usize] {
                Value::Integer(p) => (p, text(&r[Col::name as usize])),
                ref v => panic!("{v:?}"),
            })
            .collect();
        assert_eq!(got, want);
        assert_eq!(got.len(), 1);
        let row = &rows[0];
        assert_eq!(text(&row[Col::cmdline as usize]), "sleep 100000");
        assert_eq!(text(&row[Col::id as usize]), d.running_id);
        // The pid is the host's: /proc agrees on the name and the parent.
        let pid = got[0].0;
        let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
        assert!(status.contains("Name:\tsleep"), "{status}");
        let ppid: i64 = status
            .lines()
            .find_map(|l| l.strip_prefix("PPid:"))
            .unwrap()
            .trim()
            .parse()
            .unwrap();
        assert_eq!(row[Col::parent as usize], Value::Integer(ppid));
        assert_eq!(row[Col::uid as usize], Value::Integer(0));
        // pid = narrows; another pid gives nothing.
        let ctx = QueryContext::everything(TABLE.spec, &host)
            .with_constraint(Col::id, Op::Eq, d.running_id.clone())
            .with_constraint(Col::pid, Op::Eq, pid + 1_000_000);
        assert!(rows_of(&ctx, generate).is_empty());
    }

    #[test]
    fn no_id_or_an_unknown_or_stopped_container_gives_no_rows() {
        let Some(d) = daemon() else { return };
        let host = host_for(&d.socket);
        assert!(rows_of(&QueryContext::everything(TABLE.spec, &host), generate).is_empty());
        for id in ["0123456789ab", d.created_id.as_str()] {
            let ctx =
                QueryContext::everything(TABLE.spec, &host).with_constraint(Col::id, Op::Eq, id);
            assert!(rows_of(&ctx, generate).is_empty(), "{id}");
        }
    }
}
