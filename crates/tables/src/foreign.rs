//! Other platforms' tables, for `--enable_foreign`.
//!
//! Fleets push one pack to Linux, macOS and Windows hosts. With `--enable_foreign`,
//! osquery registers on Linux the tables it has only elsewhere, with their full schema
//! and a generator that returns nothing, so such queries prepare and give no rows
//! instead of failing with "no such table". osquery's registry lists them as tables
//! like any other (not internal, owned by the core).
//!
//! The schemas are data, never hand-written tables: `data/foreign_tables.json` is a copy
//! of the project's `shared/reference/foreign_tables.json`, extracted from osquery's
//! `specs/**/*.table` (osquery 5.23.0-38-ga5b14f63d; see its `source` and `notes`).
//! Each table's columns keep osquery's types and options (an `INDEX`/`REQUIRED`/
//! `ADDITIONAL` column forwards constraints, so a table with a required column still
//! fails without it, as in osquery; `HIDDEN` ones stay out of `SELECT *`), its
//! collations and its table aliases. The spec files' `ForeignKey` entries are `null` in
//! the data and declare no column.

use oxquery_table::{
    Attributes, Column, ColumnOptions, ColumnType, QueryContext, Rows, Table, TableResult,
    TableSpec,
};
use serde_json::Value as Json;
use std::sync::Arc;

/// osquery's declarations of the tables it has on macOS and Windows only.
const DATA: &str = include_str!("../data/foreign_tables.json");

/// A table of another platform: its declaration, and no rows.
#[derive(Debug)]
pub struct ForeignTable {
    spec: TableSpec,
}

impl Table for ForeignTable {
    fn spec(&self) -> &TableSpec {
        &self.spec
    }
    fn generate(&self, _: &QueryContext<'_>, _: &mut Rows<'_>) -> TableResult {
        Ok(())
    }
}

/// Every other platform's table, as osquery declares it.
pub fn tables() -> Vec<Arc<dyn Table>> {
    // The data is compiled in and its parse is tested: a failure is a build defect.
    parse(DATA)
        .expect("data/foreign_tables.json declares valid tables")
        .into_iter()
        .map(|t| Arc::new(t) as Arc<dyn Table>)
        .collect()
}

/// The tables `text` (the reference's JSON layout) declares.
fn parse(text: &str) -> Result<Vec<ForeignTable>, String> {
    let root: Json = serde_json::from_str(text).map_err(|e| e.to_string())?;
    let list = root["tables"].as_array().ok_or("no \"tables\" array")?;
    list.iter().map(table).collect()
}

fn table(t: &Json) -> Result<ForeignTable, String> {
    let name = t["name"].as_str().ok_or("a table without a name")?;
    let platforms: Vec<&str> = strings(&t["platforms"]);
    let mut columns = Vec::new();
    // `null` entries are the spec's `ForeignKey`s: no column.
    for c in t["columns"].as_array().into_iter().flatten() {
        if !c.is_null() {
            columns.push(column(c, &platforms).map_err(|e| format!("{name}: {e}"))?);
        }
    }
    if columns.is_empty() {
        return Err(format!("{name}: no columns"));
    }
    let description = format!(
        "osquery's {} table for {}; on Linux it exists only with --enable_foreign, and returns no rows.",
        name,
        platforms.join(" and ")
    );
    let aliases = strings(&t["aliases"])
        .into_iter()
        .map(str::to_owned)
        .collect();
    let spec = TableSpec::new(name.to_owned(), description, columns, Attributes::NONE)
        .with_aliases(aliases);
    Ok(ForeignTable { spec })
}

fn column(c: &Json, platforms: &[&str]) -> Result<Column, String> {
    let name = c["name"].as_str().ok_or("a column without a name")?;
    let ty = match c["type"].as_str().unwrap_or_default() {
        // osquery stores dates as text.
        "TEXT" | "DATETIME" | "DATE" => ColumnType::Text,
        "INTEGER" => ColumnType::Integer,
        "BIGINT" => ColumnType::BigInt,
        "UNSIGNED_BIGINT" | "UNSIGNED BIGINT" => ColumnType::UnsignedBigInt,
        "DOUBLE" => ColumnType::Double,
        "BLOB" => ColumnType::Blob,
        other => return Err(format!("{name}: unknown type {other:?}")),
    };
    let mut options = ColumnOptions::empty();
    for option in strings(&c["options"]) {
        options = options.with(match option {
            "index" => ColumnOptions::INDEX,
            "required" => ColumnOptions::REQUIRED,
            "additional" => ColumnOptions::ADDITIONAL,
            "optimized" => ColumnOptions::OPTIMIZED,
            "hidden" => ColumnOptions::HIDDEN,
            other => return Err(format!("{name}: unknown option {other:?}")),
        });
    }
    if let Some(collate) = c["collate"].as_str() {
        options = options.with(match collate {
            "binary" => ColumnOptions::COLLATE_BINARY,
            "nocase" => ColumnOptions::COLLATE_NOCASE,
            "rtrim" => ColumnOptions::COLLATE_RTRIM,
            "version" => ColumnOptions::COLLATE_VERSION,
            "version_arch" => ColumnOptions::COLLATE_VERSION_ARCH,
            "version_dpkg" => ColumnOptions::COLLATE_VERSION_DPKG,
            "version_rhel" => ColumnOptions::COLLATE_VERSION_RHEL,
            other => return Err(format!("{name}: unknown collation {other:?}")),
        });
    }
    let description = format!(
        "Column of osquery's {} table; no value on Linux",
        platforms.join(" and ")
    );
    Ok(Column::new(name.to_owned(), ty, options, description))
}

/// The strings of a JSON array (none when absent).
fn strings(v: &Json) -> Vec<&str> {
    v.as_array()
        .into_iter()
        .flatten()
        .filter_map(Json::as_str)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use oxquery_engine::{Engine, EngineError, TableFilter};
    use oxquery_table::{Owner, TableDef};
    use std::collections::BTreeSet;

    /// The reference data read by the test itself, independently of [`parse`].
    fn reference() -> Vec<Json> {
        let root: Json = serde_json::from_str(DATA).unwrap();
        root["tables"].as_array().unwrap().clone()
    }

    /// An engine with every built-in table and, as `--enable_foreign` adds them, the
    /// foreign ones.
    fn engine_with_foreign(builtin: &[&'static TableDef]) -> (Engine, Vec<String>) {
        let engine = Engine::new(
            builtin,
            &TableFilter::default(),
            oxquery_engine::instance::current(None),
        )
        .unwrap();
        let mut refused = Vec::new();
        for table in tables() {
            if let Err(taken) = engine.registry().add(table, Owner::BuiltIn) {
                refused.push(taken.0);
            }
        }
        (engine, refused)
    }

    fn registry_tables(engine: &Engine) -> BTreeSet<String> {
        engine
            .query("select name from osquery_registry where registry = 'table'")
            .unwrap()
            .rows
            .into_iter()
            .map(|r| match &r[0] {
                oxquery_table::Value::Text(t) => t.clone(),
                other => panic!("{other:?}"),
            })
            .collect()
    }

    #[test]
    fn every_declared_table_is_built_with_its_exact_columns() {
        let reference = reference();
        let built = tables();
        assert_eq!(built.len(), 128);
        assert_eq!(built.len(), reference.len());
        for (table, want) in built.iter().zip(&reference) {
            let spec = table.spec();
            assert_eq!(spec.name, want["name"].as_str().unwrap());
            let want_columns: Vec<&Json> = want["columns"]
                .as_array()
                .unwrap()
                .iter()
                .filter(|c| !c.is_null())
                .collect();
            assert_eq!(spec.columns.len(), want_columns.len(), "{}", spec.name);
            for (got, want) in spec.columns.iter().zip(want_columns) {
                let here = format!("{}.{}", spec.name, got.name);
                assert_eq!(got.name, want["name"].as_str().unwrap(), "{here}");
                assert_eq!(got.ty.sql_name(), want["type"].as_str().unwrap(), "{here}");
                let options = strings(&want["options"]);
                for (word, bit) in [
                    ("index", ColumnOptions::INDEX),
                    ("required", ColumnOptions::REQUIRED),
                    ("additional", ColumnOptions::ADDITIONAL),
                    ("optimized", ColumnOptions::OPTIMIZED),
                    ("hidden", ColumnOptions::HIDDEN),
                ] {
                    assert_eq!(
                        got.options.contains(bit),
                        options.contains(&word),
                        "{here} {word}"
                    );
                }
                let collation = got.options.collation().map(|c| c.sql_name().to_lowercase());
                assert_eq!(collation.as_deref(), want["collate"].as_str(), "{here}");
            }
            let aliases: Vec<&str> = spec.aliases.iter().map(|a| &**a).collect();
            assert_eq!(aliases, strings(&want["aliases"]), "{}", spec.name);
            assert!(spec.description.ends_with('.'));
        }
    }

    #[test]
    fn the_schema_sqlite_sees_is_the_declared_one() {
        let (engine, refused) = engine_with_foreign(&crate::all());
        assert!(refused.is_empty(), "{refused:?}");
        // A few tables, column by column against the data: type, hidden flag, order.
        let reference = reference();
        for name in [
            "authenticode",
            "windows_eventlog",
            "disk_events",
            "apps",
            "programs",
        ] {
            let want = reference.iter().find(|t| t["name"] == name).unwrap();
            let got = engine
                .query(&format!("PRAGMA table_xinfo({name})"))
                .unwrap()
                .rows;
            let got: Vec<(String, String, i64)> = got
                .iter()
                .map(|r| match (&r[1], &r[2], &r[6]) {
                    (
                        oxquery_table::Value::Text(n),
                        oxquery_table::Value::Text(t),
                        oxquery_table::Value::Integer(h),
                    ) => (n.clone(), t.clone(), *h),
                    other => panic!("{other:?}"),
                })
                .collect();
            let want: Vec<(String, String, i64)> = want["columns"]
                .as_array()
                .unwrap()
                .iter()
                .filter(|c| !c.is_null())
                .map(|c| {
                    let hidden = strings(&c["options"]).contains(&"hidden");
                    (
                        c["name"].as_str().unwrap().to_owned(),
                        c["type"].as_str().unwrap().to_owned(),
                        i64::from(hidden),
                    )
                })
                .collect();
            assert_eq!(got, want, "{name}");
        }
        // Table aliases are views over the table.
        assert!(
            engine
                .query("select * from programs_and_features")
                .unwrap()
                .rows
                .is_empty()
        );
        assert!(
            engine
                .query("select * from packages")
                .unwrap()
                .rows
                .is_empty()
        );
    }

    #[test]
    fn with_the_flag_every_table_prepares_and_is_empty_and_osquery_registry_lists_it() {
        let builtin = crate::all();
        let (plain, _) = (
            Engine::new(
                &builtin,
                &TableFilter::default(),
                oxquery_engine::instance::current(None),
            )
            .unwrap(),
            (),
        );
        let before = registry_tables(&plain);
        let (engine, refused) = engine_with_foreign(&builtin);
        assert!(refused.is_empty(), "{refused:?}");
        let after = registry_tables(&engine);
        let foreign: BTreeSet<String> = reference()
            .iter()
            .map(|t| t["name"].as_str().unwrap().to_owned())
            .collect();
        assert_eq!(after, &before | &foreign);
        assert_eq!(after.len(), before.len() + 128);

        let mut failures = Vec::new();
        for t in reference() {
            let name = t["name"].as_str().unwrap();
            let required: Vec<&str> = t["columns"]
                .as_array()
                .unwrap()
                .iter()
                .filter(|c| strings(&c["options"]).contains(&"required"))
                .map(|c| c["name"].as_str().unwrap())
                .collect();
            let sql = match required.first() {
                None => format!("SELECT * FROM {name}"),
                Some(column) => format!("SELECT * FROM {name} WHERE {column} = '1'"),
            };
            match engine.query(&sql) {
                Ok(r) if r.rows.is_empty() => {}
                Ok(r) => failures.push(format!("{sql}: {} rows", r.rows.len())),
                Err(e) => failures.push(format!("{sql}: {e}")),
            }
            // As in osquery, a required column must still be constrained.
            if !required.is_empty() {
                let err = engine.query(&format!("SELECT * FROM {name}")).unwrap_err();
                assert!(matches!(err, EngineError::Sqlite(_)), "{name}: {err}");
            }
        }
        assert!(failures.is_empty(), "{}", failures.join("\n"));
    }

    #[test]
    fn without_the_flag_no_foreign_table_exists() {
        let engine = Engine::new(
            &crate::all(),
            &TableFilter::default(),
            oxquery_engine::instance::current(None),
        )
        .unwrap();
        for t in reference() {
            let name = t["name"].as_str().unwrap();
            let err = engine.query(&format!("SELECT * FROM {name}")).unwrap_err();
            assert!(err.to_string().contains("no such table"), "{name}: {err}");
        }
    }

    mod battery {
        use oxquery_table::{QueryContext, Rows, TableResult};
        fn generate(_: &QueryContext, rows: &mut Rows) -> TableResult {
            rows.row().set(Col::linux_only, "here");
            Ok(())
        }
        oxquery_table::table! {
            name: "battery",
            description: "A Linux table named like a macOS one.",
            columns: { linux_only: Text [] "Only the Linux table has it" },
        }
    }

    #[test]
    fn a_name_in_both_sets_keeps_the_linux_table() {
        // No Linux table shares a name with a foreign one today; a later one must win.
        let builtin: Vec<&'static TableDef> = vec![&battery::TABLE];
        let (engine, refused) = engine_with_foreign(&builtin);
        assert_eq!(refused, ["battery"]);
        let rows = engine.query("select linux_only from battery").unwrap().rows;
        assert_eq!(rows, [[oxquery_table::Value::Text("here".into())]]);
        // And among the real tables, every shared name is the built-in one.
        let (engine, refused) = engine_with_foreign(&crate::all());
        for name in refused {
            let table = engine.table(&name).unwrap();
            assert!(
                crate::all()
                    .iter()
                    .any(|d| std::ptr::eq(d.spec, table.spec()))
            );
        }
    }

    #[test]
    fn malformed_data_is_an_error_not_a_panic() {
        for text in [
            "",
            "{",
            "{}",
            r#"{"tables": [{"columns": []}]}"#,
            r#"{"tables": [{"name": "t", "columns": [null]}]}"#,
            r#"{"tables": [{"name": "t", "columns": [{"name": "a", "type": "WEIRD"}]}]}"#,
            r#"{"tables": [{"name": "t", "columns": [{"name": "a", "type": "TEXT", "options": ["nope"]}]}]}"#,
            r#"{"tables": [{"name": "t", "columns": [{"name": "a", "type": "TEXT", "collate": "nope"}]}]}"#,
        ] {
            assert!(parse(text).is_err(), "{text}");
        }
        let truncated = &DATA[..DATA.len() / 2];
        assert!(parse(truncated).is_err());
    }
}
