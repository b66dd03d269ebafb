//! `docker_containers`: the Docker daemon's containers, running or not.

use super::docker::{self, asked_ids, asked_names, flag, int, joined, reported_id, text};
use oxquery_table::{QueryContext, Rows, TableResult, table};
use std::os::unix::fs::MetadataExt;

table! {
    name: "docker_containers",
    description: "Docker containers, running or stopped, from the daemon at --docker_socket (GET /containers/json?all=1, then /containers/{id}/json for the inspected columns). id = and name = become the API's filters; an id may be a prefix of the full id, and rows then carry that prefix. No daemon: no rows.",
    columns: {
        id: Text [INDEX | COLLATE_NOCASE] "Container id (64 hex digits, or the prefix the query asked for)",
        name: Text [INDEX] "Container name, with Docker's leading / (e.g. /web)",
        image: Text [] "Image the container was created from, as given (name:tag or id)",
        image_id: Text [COLLATE_NOCASE] "Image id, without sha256:",
        command: Text [] "Command with its arguments, as docker ps shows it",
        created: BigInt [] "Unix time the container was created",
        state: Text [] "State: created, running, paused, restarting, removing, exited or dead",
        status: Text [] "Human-readable status (Up 3 minutes, Exited (0) 2 hours ago)",
        pid: BigInt [] "Host pid of the container's main process; 0 when it is not running, -1 when the inspect call failed",
        path: Text [] "Program the container runs (inspect Path)",
        config_entrypoint: Text [] "Configured entrypoint, its words joined by ', '",
        started_at: Text [] "When the container last started (RFC 3339)",
        finished_at: Text [] "When the container last stopped (RFC 3339; 0001-01-01T00:00:00Z if never)",
        privileged: Integer [] "1 if the container runs privileged",
        security_options: Text [] "Security options (HostConfig.SecurityOpt), joined by ', '",
        env_variables: Text [] "Environment variables (KEY=value), joined by ', '",
        readonly_rootfs: Integer [] "1 if the root filesystem is mounted read-only",
        cgroup_namespace: Text [] "cgroup namespace inode of the main process (from /proc/<pid>/ns)",
        ipc_namespace: Text [] "IPC namespace inode of the main process",
        mnt_namespace: Text [] "Mount namespace inode of the main process",
        net_namespace: Text [] "Network namespace inode of the main process",
        pid_namespace: Text [] "PID namespace inode of the main process",
        user_namespace: Text [] "User namespace inode of the main process",
        uts_namespace: Text [] "UTS namespace inode of the main process",
    },
    examples: [
        "select id, name, image, state from docker_containers",
        "select p.pid, p.name, c.name as container from processes p join docker_containers c on p.pid = c.pid",
    ],
}

/// The columns only `/containers/{id}/json` (and /proc) fill: one more call per container.
const INSPECTED: [Col; 16] = [
    Col::pid,
    Col::path,
    Col::config_entrypoint,
    Col::started_at,
    Col::finished_at,
    Col::privileged,
    Col::security_options,
    Col::env_variables,
    Col::readonly_rootfs,
    Col::cgroup_namespace,
    Col::ipc_namespace,
    Col::mnt_namespace,
    Col::net_namespace,
    Col::pid_namespace,
    Col::user_namespace,
    Col::uts_namespace,
];

/// The namespace columns and their /proc/<pid>/ns entry.
const NAMESPACES: [(Col, &str); 7] = [
    (Col::cgroup_namespace, "cgroup"),
    (Col::ipc_namespace, "ipc"),
    (Col::mnt_namespace, "mnt"),
    (Col::net_namespace, "net"),
    (Col::pid_namespace, "pid"),
    (Col::user_namespace, "user"),
    (Col::uts_namespace, "uts"),
];

fn generate(ctx: &QueryContext, rows: &mut Rows) -> TableResult {
    let ids = asked_ids(ctx, Col::id);
    let names = asked_names(ctx, Col::name);
    let Some(containers) = docker::list_containers(
        ctx,
        TABLE.spec.name.as_ref(),
        ids.as_deref(),
        names.as_deref(),
    )?
    else {
        return Ok(());
    };
    let inspect = INSPECTED.iter().any(|&c| ctx.is_used(c));
    for c in &containers {
        ctx.check()?;
        let full_id = text(c, "Id");
        let details = if inspect && docker::is_id_prefix(&full_id) {
            docker::get(
                ctx,
                TABLE.spec.name.as_ref(),
                &format!("/containers/{full_id}/json"),
            )?
        } else {
            None
        };
        let mut row = rows.row();
        row.set(Col::id, reported_id(&full_id, ids.as_deref()));
        let name = c
            .get("Names")
            .and_then(|n| n.get(0))
            .and_then(|n| n.as_str())
            .unwrap_or("");
        row.set(Col::name, name);
        row.set(Col::image, text(c, "Image"));
        row.set(Col::image_id, docker::strip_sha256(&text(c, "ImageID")));
        row.set(Col::command, text(c, "Command"));
        row.set(Col::created, int(c, "Created"));
        row.set(Col::state, text(c, "State"));
        row.set(Col::status, text(c, "Status"));
        let Some(d) = details else {
            if inspect {
                row.set(Col::pid, -1_i64);
            }
            continue;
        };
        let null = serde_json::Value::Null;
        let state = d.get("State").unwrap_or(&null);
        let config = d.get("Config").unwrap_or(&null);
        let host_config = d.get("HostConfig").unwrap_or(&null);
        let pid = int(state, "Pid");
        row.set(Col::pid, pid);
        row.set(Col::path, text(&d, "Path"));
        row.set(Col::config_entrypoint, joined(config, "Entrypoint", ", "));
        row.set(Col::started_at, text(state, "StartedAt"));
        row.set(Col::finished_at, text(state, "FinishedAt"));
        row.set(Col::privileged, flag(host_config, "Privileged"));
        row.set(
            Col::security_options,
            joined(host_config, "SecurityOpt", ", "),
        );
        row.set(Col::env_variables, joined(config, "Env", ", "));
        row.set(Col::readonly_rootfs, flag(host_config, "ReadonlyRootfs"));
        if pid > 0 {
            for (col, ns) in NAMESPACES {
                if row.wants(col)
                    && let Ok(meta) = std::fs::metadata(format!("/proc/{pid}/ns/{ns}"))
                {
                    row.set(col, meta.ino().to_string());
                }
            }
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
    use serde_json::Value as Json;

    fn by_id(rows: &[Vec<Value>], id: &str) -> Vec<Value> {
        rows.iter()
            .find(|r| text(&r[Col::id as usize]) == id)
            .unwrap_or_else(|| panic!("no row for {id}"))
            .clone()
    }

    #[test]
    fn matches_docker_ps_and_inspect() {
        let Some(d) = daemon() else { return };
        let host = host_for(&d.socket);
        let rows = rows_of(&QueryContext::everything(TABLE.spec, &host), generate);
        // docker ps --all lists the same containers.
        let ps = d.cli(&["ps", "--all", "--no-trunc", "--format", "{{.ID}}"]);
        let mut want: Vec<&str> = ps.lines().collect();
        let mut got: Vec<String> = rows.iter().map(|r| text(&r[Col::id as usize])).collect();
        want.sort();
        got.sort();
        assert_eq!(got, want);

        for id in [&d.running_id, &d.created_id] {
            let row = by_id(&rows, id);
            let inspect: Json = serde_json::from_str(&d.inspect(&[id.as_str()])).unwrap();
            let i = &inspect[0];
            let col = |c: Col| row[c as usize].clone();
            assert_eq!(text(&col(Col::name)), i["Name"].as_str().unwrap());
            assert_eq!(
                text(&col(Col::image_id)),
                i["Image"].as_str().unwrap().trim_start_matches("sha256:")
            );
            assert_eq!(text(&col(Col::image)), d.image_tag);
            assert_eq!(
                text(&col(Col::state)),
                i["State"]["Status"].as_str().unwrap()
            );
            assert_eq!(
                col(Col::pid),
                Value::Integer(i["State"]["Pid"].as_i64().unwrap())
            );
            assert_eq!(text(&col(Col::path)), i["Path"].as_str().unwrap());
            assert_eq!(
                text(&col(Col::started_at)),
                i["State"]["StartedAt"].as_str().unwrap()
            );
            assert_eq!(
                text(&col(Col::finished_at)),
                i["State"]["FinishedAt"].as_str().unwrap()
            );
            // A container created without variables has `null`, not an empty list.
            let env: Vec<&str> = i["Config"]["Env"]
                .as_array()
                .map(|a| a.iter().map(|e| e.as_str().unwrap()).collect())
                .unwrap_or_default();
            assert_eq!(text(&col(Col::env_variables)), env.join(", "));
            assert_eq!(col(Col::privileged), Value::Integer(0));
            assert_eq!(col(Col::readonly_rootfs), Value::Integer(0));
            let created = i["Created"].as_str().unwrap();
            assert_eq!(
                col(Col::created),
                Value::Integer(oxquery_sys::syslog_pipe::parse_datetime(created).unwrap())
            );
        }
        let running = by_id(&rows, &d.running_id);
        assert_eq!(text(&running[Col::state as usize]), "running");
        assert!(text(&running[Col::status as usize]).starts_with("Up"));
        assert!(text(&running[Col::command as usize]).starts_with("sh -c"));
        // The namespaces are the main process's, as /proc shows them.
        let pid = match running[Col::pid as usize] {
            Value::Integer(p) => p,
            ref v => panic!("{v:?}"),
        };
        let net = std::fs::metadata(format!("/proc/{pid}/ns/net"))
            .unwrap()
            .ino();
        assert_eq!(text(&running[Col::net_namespace as usize]), net.to_string());
        let created = by_id(&rows, &d.created_id);
        assert_eq!(text(&created[Col::state as usize]), "created");
        assert_eq!(created[Col::pid as usize], Value::Integer(0));
        assert_eq!(created[Col::net_namespace as usize], Value::Null);
    }

    #[test]
    fn id_and_name_constraints_reach_the_api() {
        let Some(d) = daemon() else { return };
        let host = host_for(&d.socket);
        let prefix = &d.running_id[..12];
        let ctx = QueryContext::everything(TABLE.spec, &host).with_constraint(
            Col::id,
            Op::Eq,
            prefix.to_uppercase(),
        );
        let rows = rows_of(&ctx, generate);
        assert_eq!(rows.len(), 1);
        // The prefix asked for (lowercased) is the row's id, as in osquery.
        assert_eq!(text(&rows[0][Col::id as usize]), prefix);
        let ctx = QueryContext::everything(TABLE.spec, &host).with_constraint(
            Col::name,
            Op::Eq,
            format!("/{}", d.created_name),
        );
        let rows = rows_of(&ctx, generate);
        assert_eq!(rows.len(), 1);
        assert_eq!(text(&rows[0][Col::id as usize]), d.created_id);
        // Values that cannot be ids or names match nothing, without a call.
        for (col, v) in [(Col::id, "not-hex"), (Col::name, "a b")] {
            let ctx = QueryContext::everything(TABLE.spec, &host).with_constraint(col, Op::Eq, v);
            assert!(rows_of(&ctx, generate).is_empty());
        }
    }

    #[test]
    fn a_process_names_its_container_through_container_id() {
        let Some(d) = daemon() else { return };
        // The container's main process, as the daemon reports it, read from /proc by
        // `processes`: its cgroup path names the container's id.
        let pid = d.inspect(&["--format", "{{.State.Pid}}", &d.running_id]);
        let engine = crate::testing::engine(&[&crate::system::processes::TABLE]);
        let id_of = |pid: &str| {
            engine
                .query(&format!(
                    "select container_id(cgroup_path) as id from processes where pid = {pid}"
                ))
                .unwrap()
                .rows
        };
        assert_eq!(
            id_of(pid.trim()),
            vec![vec![Value::Text(d.running_id.clone())]]
        );
        // This test runs in no container of the daemon's.
        assert_ne!(
            id_of(&std::process::id().to_string()),
            vec![vec![Value::Text(d.running_id.clone())]]
        );
    }

    #[test]
    fn no_daemon_means_no_rows() {
        let dir = tempfile::tempdir().unwrap();
        let host = host_for(&dir.path().join("docker.sock"));
        let ctx = QueryContext::everything(TABLE.spec, &host);
        let (rows, logged) = crate::common::testing::capture_log(|| rows_of(&ctx, generate));
        assert!(rows.is_empty());
        assert!(
            logged
                .iter()
                .any(|(level, m)| *level == log::Level::Info && m.contains("no Docker daemon"))
        );
    }
}
