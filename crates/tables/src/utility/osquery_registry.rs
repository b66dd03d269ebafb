//! `osquery_registry`: the plugins this process has (every table, the SQL plugin, ...).

use oxquery_table::{QueryContext, Rows, TableResult, table};

table! {
    name: "osquery_registry",
    description: "Plugins this osquery process has registered: tables, the SQL plugin and others.",
    attributes: [UTILITY],
    columns: {
        registry: Text [] "Registry the plugin belongs to (table, sql, config, logger, ...)",
        name: Text [] "Plugin name",
        owner_uuid: Integer [] "UUID of the extension that provides the plugin, 0 for built-in ones",
        internal: Integer [] "1 for plugins osquery keeps to itself (not offered to extensions)",
        active: Integer [] "1 when the plugin is in use",
    },
    examples: ["select name from osquery_registry where registry = 'table'"],
}

fn generate(ctx: &QueryContext, rows: &mut Rows) -> TableResult {
    for item in &ctx.host().registry {
        let mut row = rows.row();
        row.set(Col::registry, item.registry);
        row.set(Col::name, item.name.as_str());
        row.set(Col::owner_uuid, item.owner_uuid);
        row.set(Col::internal, item.internal);
        row.set(Col::active, item.active);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use oxquery_table::{Host, RegistryItem, Value};

    #[test]
    fn lists_every_registry_item() {
        let item = |name: &str, internal| RegistryItem {
            registry: "table",
            name: name.into(),
            owner_uuid: 0,
            internal,
            active: true,
        };
        let host = Host {
            registry: vec![item("processes", false), item("time", true)],
            ..Host::default()
        };
        let ctx = QueryContext::everything(&SPEC, &host);
        let rows = Rows::collect(&ctx, generate).unwrap();
        let names: Vec<&Value> = rows.column(Col::name);
        assert_eq!(names, [&Value::from("processes"), &Value::from("time")]);
        assert_eq!(
            rows.column(Col::internal),
            [&Value::Integer(0), &Value::Integer(1)]
        );
    }
}
