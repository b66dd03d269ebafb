//! `lxd_cluster`: the LXD daemon's cluster settings.

use super::lxd::{self, flag, text};
use oxquery_table::{QueryContext, Rows, TableResult, table};

table! {
    name: "lxd_cluster",
    description: "The LXD daemon's cluster settings (GET /1.0/cluster on --lxd_socket): one row per member_config entry (the member-specific keys a joining server must supply), or one row with empty member_config columns when there are none. osquery fills one row with the last entry only. No daemon: no rows.",
    columns: {
        server_name: Text [] "Name of this server in the cluster ('' when not clustered)",
        enabled: Integer [] "1 if clustering is enabled",
        member_config_entity: Text [] "Kind of object the member config key belongs to (e.g. storage-pool)",
        member_config_name: Text [] "Name of that object",
        member_config_key: Text [] "The member-specific config key",
        member_config_value: Text [] "Its value",
        member_config_description: Text [] "Its description",
    },
    examples: ["select server_name, enabled, member_config_key from lxd_cluster"],
}

fn generate(ctx: &QueryContext, rows: &mut Rows) -> TableResult {
    let Some(cluster) = lxd::get(ctx, TABLE.spec.name.as_ref(), "/1.0/cluster")? else {
        return Ok(());
    };
    if !cluster.is_object() {
        log::warn!(
            "{}: LXD API /1.0/cluster: expected an object",
            TABLE.spec.name
        );
        return Ok(());
    }
    let members = cluster
        .get("member_config")
        .and_then(|m| m.as_array())
        .map(Vec::as_slice)
        .unwrap_or_default();
    let empty = serde_json::Value::Null;
    let entries: Vec<&serde_json::Value> = if members.is_empty() {
        vec![&empty]
    } else {
        members.iter().collect()
    };
    for m in entries {
        let mut row = rows.row();
        row.set(Col::server_name, text(&cluster, "server_name"));
        row.set(Col::enabled, flag(&cluster, "enabled"));
        row.set(Col::member_config_entity, text(m, "entity"));
        row.set(Col::member_config_name, text(m, "name"));
        row.set(Col::member_config_key, text(m, "key"));
        row.set(Col::member_config_value, text(m, "value"));
        row.set(Col::member_config_description, text(m, "description"));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::containers::lxd::testing::{clustered, daemon, host_for};
    use crate::testing::{rows_of, text};
    use oxquery_table::Value;

    /// The test daemon is not clustered; the `dir` pool the harness made is the object
    /// whose `source` a joining member would have to give.
    #[test]
    fn a_standalone_daemon_lists_the_pools_member_keys() {
        let Some(d) = daemon() else { return };
        let host = d.host();
        let rows = rows_of(&QueryContext::everything(TABLE.spec, &host), generate);
        assert!(!rows.is_empty());
        for r in &rows {
            assert_eq!(text(&r[Col::server_name as usize]), "");
            assert_eq!(r[Col::enabled as usize], Value::Integer(0));
        }
        let pool_source = rows.iter().find(|r| {
            text(&r[Col::member_config_entity as usize]) == "storage-pool"
                && text(&r[Col::member_config_name as usize]) == d.pool
                && text(&r[Col::member_config_key as usize]) == "source"
        });
        assert!(pool_source.is_some(), "{rows:?}");
        assert!(
            text(&pool_source.unwrap()[Col::member_config_description as usize]).contains(&d.pool)
        );
    }

    #[test]
    fn a_clustered_daemon_names_its_member() {
        let Some(c) = clustered() else { return };
        let host = host_for(&c.socket);
        let rows = rows_of(&QueryContext::everything(TABLE.spec, &host), generate);
        // No pool or network: no member-specific keys, one row.
        assert_eq!(rows.len(), 1, "{rows:?}");
        assert_eq!(text(&rows[0][Col::server_name as usize]), c.member);
        assert_eq!(rows[0][Col::enabled as usize], Value::Integer(1));
        assert_eq!(text(&rows[0][Col::member_config_key as usize]), "");
    }
}
