//! `docker_info`: the Docker daemon's system-wide facts.

use super::docker::{self, flag, int, text};
use oxquery_table::{QueryContext, Rows, TableResult, table};

table! {
    name: "docker_info",
    description: "The Docker daemon's system-wide information, one row (GET /info, as docker info shows it). No daemon: no rows.",
    attributes: [CACHEABLE],
    columns: {
        id: Text [COLLATE_NOCASE] "Daemon id",
        containers: Integer [] "Number of containers",
        containers_running: Integer [] "Number of running containers",
        containers_paused: Integer [] "Number of paused containers",
        containers_stopped: Integer [] "Number of stopped containers",
        images: Integer [] "Number of images",
        storage_driver: Text [] "Storage driver (overlay2, ...)",
        memory_limit: Integer [] "1 if memory limits are supported",
        swap_limit: Integer [] "1 if swap limits are supported",
        kernel_memory: Integer [] "1 if kernel memory limits are supported",
        cpu_cfs_period: Integer [] "1 if the CFS period is supported",
        cpu_cfs_quota: Integer [] "1 if the CFS quota is supported",
        cpu_shares: Integer [] "1 if CPU shares are supported",
        cpu_set: Integer [] "1 if CPU sets are supported",
        ipv4_forwarding: Integer [] "1 if IPv4 forwarding is on",
        bridge_nf_iptables: Integer [] "1 if bridged traffic goes through iptables",
        bridge_nf_ip6tables: Integer [] "1 if bridged traffic goes through ip6tables",
        oom_kill_disable: Integer [] "1 if disabling the OOM killer is supported",
        logging_driver: Text [] "Default logging driver",
        cgroup_driver: Text [] "cgroup driver (cgroupfs, systemd)",
        kernel_version: Text [COLLATE_VERSION] "Kernel version",
        os: Text [] "Operating system",
        os_type: Text [] "Operating system type (linux)",
        architecture: Text [] "Hardware architecture",
        cpus: Integer [] "Number of CPUs",
        memory: BigInt [] "Total memory, in bytes",
        http_proxy: Text [] "HTTP proxy the daemon uses",
        https_proxy: Text [] "HTTPS proxy the daemon uses",
        no_proxy: Text [] "Hosts the daemon reaches without a proxy",
        name: Text [] "Host name",
        server_version: Text [COLLATE_VERSION] "Daemon version",
        root_dir: Text [] "Docker's root directory",
    },
    examples: ["select server_version, containers_running, storage_driver from docker_info"],
}

fn generate(ctx: &QueryContext, rows: &mut Rows) -> TableResult {
    let Some(i) = docker::get(ctx, TABLE.spec.name.as_ref(), "/info")? else {
        return Ok(());
    };
    if !i.is_object() {
        log::warn!("docker_info: Docker API /info: expected a JSON object");
        return Ok(());
    }
    let mut row = rows.row();
    row.set(Col::id, text(&i, "ID"));
    row.set(Col::containers, int(&i, "Containers"));
    row.set(Col::containers_running, int(&i, "ContainersRunning"));
    row.set(Col::containers_paused, int(&i, "ContainersPaused"));
    row.set(Col::containers_stopped, int(&i, "ContainersStopped"));
    row.set(Col::images, int(&i, "Images"));
    row.set(Col::storage_driver, text(&i, "Driver"));
    row.set(Col::memory_limit, flag(&i, "MemoryLimit"));
    row.set(Col::swap_limit, flag(&i, "SwapLimit"));
    row.set(Col::kernel_memory, flag(&i, "KernelMemory"));
    row.set(Col::cpu_cfs_period, flag(&i, "CpuCfsPeriod"));
    row.set(Col::cpu_cfs_quota, flag(&i, "CpuCfsQuota"));
    row.set(Col::cpu_shares, flag(&i, "CPUShares"));
    row.set(Col::cpu_set, flag(&i, "CPUSet"));
    row.set(Col::ipv4_forwarding, flag(&i, "IPv4Forwarding"));
    row.set(Col::bridge_nf_iptables, flag(&i, "BridgeNfIptables"));
    row.set(Col::bridge_nf_ip6tables, flag(&i, "BridgeNfIp6tables"));
    row.set(Col::oom_kill_disable, flag(&i, "OomKillDisable"));
    row.set(Col::logging_driver, text(&i, "LoggingDriver"));
    row.set(Col::cgroup_driver, text(&i, "CgroupDriver"));
    row.set(Col::kernel_version, text(&i, "KernelVersion"));
    row.set(Col::os, text(&i, "OperatingSystem"));
    row.set(Col::os_type, text(&i, "OSType"));
    row.set(Col::architecture, text(&i, "Architecture"));
    row.set(Col::cpus, int(&i, "NCPU"));
    row.set(Col::memory, int(&i, "MemTotal"));
    row.set(Col::http_proxy, text(&i, "HttpProxy"));
    row.set(Col::https_proxy, text(&i, "HttpsProxy"));
    row.set(Col::no_proxy, text(&i, "NoProxy"));
    row.set(Col::name, text(&i, "Name"));
    row.set(Col::server_version, text(&i, "ServerVersion"));
    row.set(Col::root_dir, text(&i, "DockerRootDir"));
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::containers::docker::testing::{daemon, host_for};
    use crate::testing::{rows_of, text};
    use oxquery_table::Value;

    #[test]
    fn matches_docker_info() {
        let Some(d) = daemon() else { return };
        let host = host_for(&d.socket);
        let rows = rows_of(&QueryContext::everything(TABLE.spec, &host), generate);
        assert_eq!(rows.len(), 1);
        let row = &rows[0];
        let i: serde_json::Value =
            serde_json::from_str(&d.cli(&["info", "--format", "{{json .}}"])).unwrap();
        let t = |c: Col| text(&row[c as usize]);
        let n = |c: Col| row[c as usize].clone();
        assert_eq!(t(Col::id), i["ID"].as_str().unwrap());
        assert_eq!(
            n(Col::containers),
            Value::Integer(i["Containers"].as_i64().unwrap())
        );
        assert_eq!(n(Col::containers), Value::Integer(2));
        assert_eq!(n(Col::containers_running), Value::Integer(1));
        assert_eq!(n(Col::containers_stopped), Value::Integer(1));
        assert_eq!(
            n(Col::images),
            Value::Integer(i["Images"].as_i64().unwrap())
        );
        assert_eq!(t(Col::storage_driver), i["Driver"].as_str().unwrap());
        assert_eq!(t(Col::logging_driver), i["LoggingDriver"].as_str().unwrap());
        assert_eq!(t(Col::cgroup_driver), i["CgroupDriver"].as_str().unwrap());
        assert_eq!(t(Col::kernel_version), i["KernelVersion"].as_str().unwrap());
        assert_eq!(t(Col::os), i["OperatingSystem"].as_str().unwrap());
        assert_eq!(n(Col::cpus), Value::Integer(i["NCPU"].as_i64().unwrap()));
        assert_eq!(
            n(Col::memory),
            Value::Integer(i["MemTotal"].as_i64().unwrap())
        );
        assert_eq!(t(Col::name), i["Name"].as_str().unwrap());
        assert_eq!(t(Col::server_version), i["ServerVersion"].as_str().unwrap());
        assert_eq!(t(Col::root_dir), d.dir.join("data").display().to_string());
        // The test daemon runs with --ip-forward=false.
        assert_eq!(
            n(Col::ipv4_forwarding),
            Value::Integer(i64::from(i["IPv4Forwarding"].as_bool().unwrap()))
        );
        assert_eq!(
            n(Col::memory_limit),
            Value::Integer(i64::from(i["MemoryLimit"].as_bool().unwrap()))
        );
    }
}
