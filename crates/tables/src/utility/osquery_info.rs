//! `osquery_info`: this process's identity and state, as the engine knows it.

use oxquery_table::{QueryContext, Rows, TableResult, table};

table! {
    name: "osquery_info",
    description: "Identity, version and state of this running osquery process.",
    attributes: [UTILITY],
    columns: {
        pid: Integer [] "Process ID of this osquery process",
        uuid: Text [COLLATE_NOCASE] "Host UUID (the same value as system_info.uuid)",
        instance_id: Text [] "Random identifier of this osquery instance",
        version: Text [COLLATE_VERSION] "osquery version whose interface this process implements",
        config_hash: Text [COLLATE_NOCASE] "Hash of the configuration in use",
        config_valid: Integer [] "1 when a configuration was loaded successfully",
        extensions: Text [] "Whether extensions are enabled: active or inactive",
        build_platform: Text [] "Platform the binary was built for",
        build_distro: Text [] "Distribution the binary was built on, when known",
        start_time: Integer [] "Unix time the process started",
        watcher: Integer [] "Process ID of the watchdog supervising this process, -1 without one",
        platform_mask: Integer [] "Bit mask of the platform families this build serves",
    },
    examples: ["select version, pid, start_time from osquery_info"],
}

fn generate(ctx: &QueryContext, rows: &mut Rows) -> TableResult {
    let info = &ctx.host().instance;
    let live = ctx.host().live();
    let mut row = rows.row();
    row.set(Col::pid, info.pid);
    row.set(Col::uuid, info.uuid.as_str());
    row.set(Col::instance_id, info.instance_id.as_str());
    row.set(Col::version, info.version.as_str());
    row.set(Col::config_hash, live.config_hash);
    row.set(Col::config_valid, live.config_valid);
    // `active` while this process serves its extension manager socket.
    if ctx.host().extensions.is_some() {
        row.set(Col::extensions, "active");
    } else {
        row.set(Col::extensions, info.extensions.as_str());
    }
    row.set(Col::build_platform, info.build_platform.as_str());
    row.set(Col::build_distro, info.build_distro.as_str());
    row.set(Col::start_time, info.start_time);
    row.set(Col::watcher, info.watcher);
    row.set(Col::platform_mask, info.platform_mask);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use oxquery_table::{Host, InstanceInfo, Value};

    #[test]
    fn reports_the_hosts_instance_facts() {
        let host = Host {
            instance: InstanceInfo {
                pid: i64::from(std::process::id()),
                uuid: "U".into(),
                version: "5.23.0".into(),
                watcher: -1,
                ..InstanceInfo::default()
            },
            ..Host::default()
        };
        {
            let mut live = host.live.write().unwrap();
            live.config_hash = "abc".into();
            live.config_valid = true;
        }
        let ctx = QueryContext::everything(&SPEC, &host);
        let rows = Rows::collect(&ctx, generate).unwrap();
        assert_eq!(rows.len(), 1);
        let row = rows.get(0).unwrap();
        assert_eq!(
            row[Col::pid as usize],
            Value::Integer(i64::from(std::process::id()))
        );
        assert_eq!(row[Col::uuid as usize], Value::Text("U".into()));
        assert_eq!(row[Col::watcher as usize], Value::Integer(-1));
        assert_eq!(row[Col::config_valid as usize], Value::Integer(1));
        assert_eq!(row[Col::config_hash as usize], Value::Text("abc".into()));
    }
}
