//! `osquery_info`: this process's identity and state, as the engine knows it.

use oxquery_table::{QueryContext, Rows, TableResult, table};

table! {
    name: "osquery_info",
    description: "Top level information about the running version of osquery.",
    attributes: [UTILITY],
    columns: {
        pid: Integer [] "Process (or thread/handle) ID",
        uuid: Text [COLLATE_NOCASE] "Unique ID provided by the system",
        instance_id: Text [] "Unique, long-lived ID per instance of osquery",
        version: Text [COLLATE_VERSION] "osquery toolkit version",
        config_hash: Text [COLLATE_NOCASE] "Hash of the working configuration state",
        config_valid: Integer [] "1 if the config was loaded and considered valid, else 0",
        extensions: Text [] "osquery extensions status",
        build_platform: Text [] "osquery toolkit build platform",
        build_distro: Text [] "osquery toolkit platform distribution name (os version)",
        start_time: Integer [] "UNIX time in seconds when the process started",
        watcher: Integer [] "Process (or thread/handle) ID of optional watcher process",
        platform_mask: Integer [] "The osquery platform bitmask",
    },
    examples: ["select version, pid, start_time from osquery_info"],
}

fn generate(ctx: &QueryContext, rows: &mut Rows) -> TableResult {
    let info = &ctx.host().instance;
    let mut row = rows.row();
    row.set(Col::pid, info.pid);
    row.set(Col::uuid, info.uuid.as_str());
    row.set(Col::instance_id, info.instance_id.as_str());
    row.set(Col::version, info.version.as_str());
    row.set(Col::config_hash, info.config_hash.as_str());
    row.set(Col::config_valid, info.config_valid);
    row.set(Col::extensions, info.extensions.as_str());
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
            registry: Vec::new(),
        };
        let ctx = QueryContext::everything(&SPEC, &host);
        let mut rows = Rows::for_context(&ctx);
        generate(&ctx, &mut rows).unwrap();
        assert_eq!(rows.len(), 1);
        let row = rows.get(0).unwrap();
        assert_eq!(
            row[Col::pid as usize],
            Value::Integer(i64::from(std::process::id()))
        );
        assert_eq!(row[Col::uuid as usize], Value::Text("U".into()));
        assert_eq!(row[Col::watcher as usize], Value::Integer(-1));
        assert_eq!(row[Col::config_valid as usize], Value::Integer(0));
    }
}
