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
    for item in ctx.host().registry_items() {
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
    use oxquery_table::{Host, Registry, Table, TableFilter, Value};
    use std::sync::Arc;

    #[test]
    fn lists_every_attached_table_and_follows_the_registry() {
        let builtin = |t: &'static oxquery_table::TableDef| Arc::new(t) as Arc<dyn Table>;
        let registry = Registry::with_tables([
            builtin(&crate::system::processes::TABLE),
            builtin(&crate::utility::time::TABLE),
            builtin(&crate::system::uptime::TABLE),
        ])
        .unwrap();
        let host = Host {
            tables: registry.clone(),
            filter: TableFilter::from_flags("", "uptime"),
            ..Host::default()
        };
        let ctx = QueryContext::everything(&SPEC, &host);
        let rows = Rows::collect(&ctx, generate).unwrap();
        assert_eq!(
            rows.column(Col::name),
            [
                &Value::from("processes"),
                &Value::from("time"),
                &Value::from("sql")
            ]
        );
        assert_eq!(
            rows.column(Col::internal),
            [&Value::Integer(0), &Value::Integer(1), &Value::Integer(1)]
        );
        // A table removed at run time is gone from the next scan.
        registry.remove("processes");
        let rows = Rows::collect(&ctx, generate).unwrap();
        assert_eq!(
            rows.column(Col::name),
            [&Value::from("time"), &Value::from("sql")]
        );
    }
}
