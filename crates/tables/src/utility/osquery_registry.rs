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
    use oxquery_table::{
        Attributes, EventStatus, Host, InstanceInfo, Registry, RegistryItem, Table, TableFilter,
        TableSpec,
    };
    use std::sync::Arc;

    fn builtin(t: &'static oxquery_table::TableDef) -> Arc<dyn Table> {
        Arc::new(t)
    }

    /// `(registry, name, internal, active)` of every row, in order.
    fn listed(host: &Host) -> Vec<(String, String, i64, i64)> {
        let ctx = QueryContext::everything(&SPEC, host);
        let rows = Rows::collect(&ctx, generate).unwrap();
        rows.iter()
            .map(|r| {
                let text = |c: Col| r[c as usize].as_text().unwrap().into_owned();
                let int = |c: Col| r[c as usize].as_i64().unwrap();
                (
                    text(Col::registry),
                    text(Col::name),
                    int(Col::internal),
                    int(Col::active),
                )
            })
            .collect()
    }

    fn row(registry: &str, name: &str, internal: i64, active: i64) -> (String, String, i64, i64) {
        (registry.to_owned(), name.to_owned(), internal, active)
    }

    #[test]
    fn lists_every_attached_table_and_follows_the_registry() {
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
        assert_eq!(
            listed(&host),
            [
                row("sql", "sql", 1, 1),
                row("table", "processes", 0, 1),
                row("table", "time", 1, 1),
            ]
        );
        // A table removed at run time is gone from the next scan.
        registry.remove("processes");
        assert_eq!(
            listed(&host),
            [row("sql", "sql", 1, 1), row("table", "time", 1, 1)]
        );
    }

    struct Evented(TableSpec);

    impl Table for Evented {
        fn spec(&self) -> &TableSpec {
            &self.0
        }
        fn generate(&self, _: &QueryContext<'_>, _: &mut Rows<'_>) -> TableResult {
            Ok(())
        }
    }

    #[test]
    fn lists_the_programs_plugins_and_the_event_registries_by_registry() {
        let evented = |name: &'static str| {
            Arc::new(Evented(TableSpec::new(
                name,
                "",
                vec![],
                Attributes::EVENT_BASED,
            ))) as Arc<dyn Table>
        };
        let status = |name: &str, kind: &'static str, active: i64| EventStatus {
            name: name.into(),
            publisher: "inotify".into(),
            kind,
            subscriptions: 0,
            events: 0,
            refreshes: 0,
            active,
            dropped: 0,
            dropped_reasons: String::new(),
        };
        let host = Host {
            tables: Registry::with_tables([
                evented("file_events"),
                evented("idle_events"),
                builtin(&crate::utility::time::TABLE),
            ])
            .unwrap(),
            instance: InstanceInfo {
                plugins: vec![
                    RegistryItem::built_in("logger", "filesystem", true),
                    RegistryItem::built_in("config", "filesystem", true),
                    RegistryItem::built_in("logger", "syslog", false),
                ],
                ..InstanceInfo::default()
            },
            events: Some(Arc::new(crate::testing::EventStatuses(vec![
                status("inotify", "publisher", 1),
                status("file_events", "subscriber", 1),
                status("udev", "publisher", -1),
            ]))),
            ..Host::default()
        };
        assert_eq!(
            listed(&host),
            [
                row("config", "filesystem", 0, 1),
                row("event_publisher", "inotify", 0, 1),
                // Not available on this host: listed, not in use.
                row("event_publisher", "udev", 0, 0),
                row("event_subscriber", "file_events", 0, 1),
                // An evented table with no subscriber running.
                row("event_subscriber", "idle_events", 0, 0),
                row("logger", "filesystem", 0, 1),
                row("logger", "syslog", 0, 0),
                row("sql", "sql", 1, 1),
                row("table", "file_events", 0, 1),
                row("table", "idle_events", 0, 1),
                row("table", "time", 1, 1),
            ]
        );
    }
}
