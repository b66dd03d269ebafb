//! `osquery_extensions`: this process's extension manager (the core, uuid 0) and every
//! extension registered with it, as the manager lists them (`Host::extensions`).

use oxquery_table::{QueryContext, Rows, TableResult, table};

table! {
    name: "osquery_extensions",
    description: "The extension manager of this process (the core, uuid 0, type `core`) and every \
                  extension registered with it (type `extension`). Empty when no manager runs \
                  (`--disable_extensions`, or a socket that could not be served).",
    attributes: [UTILITY],
    columns: {
        uuid: BigInt [] "The extension's route UUID: 0 for the core, else the random non-zero number the manager assigned",
        name: Text [] "Name the extension registered with (`core` for the core)",
        version: Text [COLLATE_VERSION] "Version the extension registered with (the core's: oxquery's osquery version)",
        sdk_version: Text [COLLATE_VERSION] "osquery SDK version the extension was built with",
        path: Text [] "Socket it serves: the manager's --extensions_socket for the core, `<socket>.<uuid>` for an extension",
        r#type: Text [] "`core` or `extension`",
    },
    examples: ["select uuid, name, path from osquery_extensions where type = 'extension'"],
}

fn generate(ctx: &QueryContext, rows: &mut Rows) -> TableResult {
    let Some(extensions) = &ctx.host().extensions else {
        log::debug!("osquery_extensions: no extension manager runs (--disable_extensions)");
        return Ok(());
    };
    for record in extensions.list() {
        let mut row = rows.row();
        row.set(Col::uuid, record.uuid);
        row.set(Col::name, record.name);
        row.set(Col::version, record.version);
        row.set(Col::sdk_version, record.sdk_version);
        row.set(Col::path, record.path);
        row.set(Col::r#type, record.kind);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use oxquery_table::{ExtensionRecord, Extensions, Host, RegistryItem, Value};
    use std::sync::Arc;

    /// A manager's answer as the test wrote it (the live manager is tested with real
    /// extensions in oxquery-extensions and crates/osquery/tests/extensions.rs).
    #[derive(Debug)]
    struct Listed(Vec<ExtensionRecord>);
    impl Extensions for Listed {
        fn list(&self) -> Vec<ExtensionRecord> {
            self.0.clone()
        }
        fn plugins(&self) -> Vec<RegistryItem> {
            Vec::new()
        }
    }

    #[test]
    fn rows_are_the_managers_list_and_none_without_a_manager() {
        let listed = vec![
            ExtensionRecord {
                uuid: 0,
                name: "core".into(),
                version: "5.0.0".into(),
                sdk_version: "5.0.0".into(),
                path: "/tmp/x/osquery.em".into(),
                kind: "core",
            },
            ExtensionRecord {
                uuid: 4242,
                name: "py".into(),
                version: "1.0".into(),
                sdk_version: "3.0.7".into(),
                path: "/tmp/x/osquery.em.4242".into(),
                kind: "extension",
            },
        ];
        let host = Host {
            extensions: Some(Arc::new(Listed(listed.clone())) as Arc<dyn Extensions>),
            ..Host::default()
        };
        let rows = Rows::collect(&QueryContext::everything(&SPEC, &host), generate).unwrap();
        assert_eq!(rows.len(), 2);
        for (i, record) in listed.iter().enumerate() {
            let row = rows.get(i).unwrap();
            assert_eq!(row[Col::uuid as usize], Value::Integer(record.uuid));
            assert_eq!(row[Col::name as usize], Value::from(record.name.as_str()));
            assert_eq!(row[Col::path as usize], Value::from(record.path.as_str()));
            assert_eq!(row[Col::r#type as usize], Value::from(record.kind));
        }
        let none = Host::default();
        let rows = Rows::collect(&QueryContext::everything(&SPEC, &none), generate).unwrap();
        assert_eq!(rows.len(), 0);
    }
}
