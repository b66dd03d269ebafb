//! container_id(cgroup_path): the container a process runs in, from its cgroup path
//! (`processes.cgroup_path`), so a process joins its container in one step:
//! `processes p JOIN docker_containers c ON c.id = container_id(p.cgroup_path)`.
//! Not one of osquery's functions.

use super::{Out, add, c_text};
use rusqlite::Connection;
use rusqlite::functions::Context;
use rusqlite::types::ValueRef;

pub(super) fn register(conn: &Connection) -> rusqlite::Result<()> {
    add(conn, "container_id", 1, container_id_of)
}

/// NULL for NULL, and for a path that names no container.
fn container_id_of(ctx: &Context<'_>) -> rusqlite::Result<Out> {
    let value = ctx.get_raw(0);
    if value == ValueRef::Null {
        return Ok(Out::Null);
    }
    let path = c_text(value);
    Ok(std::str::from_utf8(&path)
        .ok()
        .and_then(container_id)
        .map_or(Out::Null, Out::text))
}

/// The id or name the runtime gave the innermost container `path` names:
/// * Docker, Podman, containerd, CRI-O (systemd or cgroupfs driver, cgroup v1 or v2):
///   `docker-<id>.scope`, `libpod-<id>.scope`, `cri-containerd-<id>.scope`,
///   `crio-<id>.scope`, or a bare `<id>` component (`/docker/<id>`, a Kubernetes pod's
///   container): the 64-hex-digit id (`docker_containers.id`).
/// * LXD and LXC: `lxc.payload.<name>` (or `lxc.payload/<name>` of older LXC): the
///   instance's name (`lxd_instances.name`).
///
/// The runtimes' monitors (`libpod-conmon-…`, `lxc.monitor.…`) run outside the
/// container: no id.
fn container_id(path: &str) -> Option<&str> {
    let parts: Vec<&str> = path.split('/').filter(|p| !p.is_empty()).collect();
    for (i, part) in parts.iter().enumerate().rev() {
        let id = part.strip_suffix(".scope").map_or(*part, |stem| {
            ["docker-", "libpod-", "cri-containerd-", "crio-"]
                .iter()
                .find_map(|prefix| stem.strip_prefix(prefix))
                .unwrap_or(stem)
        });
        if id.len() == 64 && id.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Some(id);
        }
        if let Some(name) = part.strip_prefix("lxc.payload.")
            && !name.is_empty()
        {
            return Some(name);
        }
        if *part == "lxc.payload"
            && let Some(name) = parts.get(i + 1)
        {
            return Some(name);
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_container_is_read_from_each_runtimes_cgroup_path() {
        let id = "4f1c2a9d3b7e8f60a1b2c3d4e5f60718293a4b5c6d7e8f9012a3b4c5d6e7f809";
        for path in [
            format!("/system.slice/docker-{id}.scope"),
            format!("/docker/{id}"),
            format!("/machine.slice/libpod-{id}.scope/container"),
            format!(
                "/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod1.slice/cri-containerd-{id}.scope"
            ),
            format!("/kubepods/besteffort/pod12/{id}"),
            format!("/system.slice/crio-{id}.scope"),
        ] {
            assert_eq!(container_id(&path), Some(id), "{path}");
        }
        assert_eq!(
            container_id("/lxc.payload.web1/system.slice/cron.service"),
            Some("web1")
        );
        assert_eq!(container_id("/lxc.payload/web2/init.scope"), Some("web2"));
        // Monitors, the host's own services, ids of the wrong length: no container.
        for path in [
            format!("/machine.slice/libpod-conmon-{id}.scope"),
            "/lxc.monitor.web1".to_owned(),
            "/system.slice/ssh.service".to_owned(),
            "/user.slice/user-0.slice/session-3.scope".to_owned(),
            "/docker/4f1c2a9d".to_owned(),
            "/".to_owned(),
            String::new(),
        ] {
            assert_eq!(container_id(&path), None, "{path}");
        }
    }
}
