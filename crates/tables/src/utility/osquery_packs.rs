//! `osquery_packs`: the packs of the daemon's configuration and whether each is active.

use oxquery_table::{QueryContext, Rows, TableResult, table};

table! {
    name: "osquery_packs",
    description: "The query packs of the configuration and whether each one runs on this host.",
    attributes: [UTILITY],
    columns: {
        name: Text [] "Pack name",
        platform: Text [] "Platforms the pack is restricted to (empty: all)",
        version: Text [COLLATE_VERSION] "Lowest osquery version the pack asks for",
        shard: Integer [] "Percentage of hosts (1-100) the pack runs on; 0 means every host",
        discovery_cache_hits: Integer [] "Discovery checks answered from the cache since the config was loaded",
        discovery_executions: Integer [] "Discovery query runs since the config was loaded",
        active: Integer [] "1 when platform, version, shard and discovery all allow the pack to run here",
    },
    examples: ["select name, active from osquery_packs"],
}

fn generate(ctx: &QueryContext, rows: &mut Rows) -> TableResult {
    for p in ctx.host().live().packs {
        let mut row = rows.row();
        row.set(Col::name, p.name);
        row.set(Col::platform, p.platform);
        row.set(Col::version, p.version);
        row.set(Col::shard, p.shard);
        row.set(Col::discovery_cache_hits, p.discovery_cache_hits);
        row.set(Col::discovery_executions, p.discovery_executions);
        row.set(Col::active, p.active);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use oxquery_table::{Host, PackEntry, Value};

    #[test]
    fn reports_the_live_packs() {
        let host = Host::default();
        host.live.write().unwrap().packs = vec![PackEntry {
            name: "incident".into(),
            platform: "linux".into(),
            active: true,
            discovery_executions: 2,
            ..PackEntry::default()
        }];
        let ctx = QueryContext::everything(&SPEC, &host);
        let rows = Rows::collect(&ctx, generate).unwrap();
        let row = rows.get(0).unwrap();
        assert_eq!(row[Col::name as usize], Value::from("incident"));
        assert_eq!(row[Col::active as usize], Value::Integer(1));
        assert_eq!(row[Col::discovery_executions as usize], Value::Integer(2));
    }
}
