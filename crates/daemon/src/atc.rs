//! `auto_table_construction`: tables the config defines over SQLite files on the host
//! (a browser's history, an application's database), e.g.
//!
//! ```json
//! "auto_table_construction": {
//!   "chrome_downloads": {
//!     "query": "SELECT target_path, total_bytes FROM downloads",
//!     "path": "/home/%/.config/google-chrome/Default/History",
//!     "columns": ["target_path", "total_bytes"],
//!     "platform": "linux"
//!   }
//! }
//! ```
//!
//! Each becomes a table whose columns are the listed ones (TEXT) plus `path`: for every
//! file the `path` pattern matches, the query runs on that file opened read-only and each
//! result row becomes a row (result columns matched to table columns by name).
//!
//! Table definitions are built at run time, so their names and columns are leaked to get
//! the `'static` lifetime tables have; a definition is made once per distinct
//! (name, columns) pair and reused across reloads, which bounds the leak by the config.

use crate::config::AutoTable;
use oxquery_table::{
    Attributes, Column, ColumnOptions, ColumnType, QueryContext, Rows, TableDef, TableError,
    TableResult, TableSpec,
};
use std::collections::HashMap;
use std::ops::ControlFlow;
use std::sync::{Mutex, RwLock};

/// What each attached table reads: table name → (query, path pattern, columns).
static DEFINITIONS: RwLock<Option<HashMap<String, AutoTable>>> = RwLock::new(None);
/// Specs built so far, by (name, columns).
static SPECS: Mutex<Vec<&'static TableDef>> = Mutex::new(Vec::new());

/// Table definitions for `tables` (filtered to this platform), ready to attach to every
/// engine. Also records what each table reads, for the generator.
pub fn definitions(
    tables: &std::collections::BTreeMap<String, AutoTable>,
) -> Vec<&'static TableDef> {
    let mut defs = Vec::new();
    let mut map = HashMap::new();
    for (name, table) in tables {
        if !crate::config::platform_matches(&table.platform) {
            continue;
        }
        if table.columns.iter().any(|c| c == "path") {
            log::warn!(
                "auto_table_construction {name}: a column named path is implied; ignoring the table"
            );
            continue;
        }
        defs.push(definition(name, &table.columns));
        map.insert(name.clone(), table.clone());
    }
    *DEFINITIONS.write().unwrap_or_else(|p| p.into_inner()) = Some(map);
    defs
}

fn definition(name: &str, columns: &[String]) -> &'static TableDef {
    let mut specs = SPECS.lock().unwrap_or_else(|p| p.into_inner());
    let same = |d: &&&'static TableDef| {
        d.spec.name == name
            && d.spec.columns.len() == columns.len() + 1
            && d.spec.columns.iter().zip(columns).all(|(c, n)| c.name == n)
    };
    if let Some(def) = specs.iter().find(same) {
        return def;
    }
    let leak = |s: &str| -> &'static str { Box::leak(s.to_owned().into_boxed_str()) };
    let mut cols: Vec<Column> = columns
        .iter()
        .map(|c| Column {
            name: leak(c),
            ty: ColumnType::Text,
            options: ColumnOptions::empty(),
            description: "Column of the automatic table",
        })
        .collect();
    cols.push(Column {
        name: "path",
        ty: ColumnType::Text,
        options: ColumnOptions::empty(),
        description: "SQLite file the row was read from",
    });
    let spec: &'static TableSpec = Box::leak(Box::new(TableSpec {
        name: leak(name),
        description: "A table the configuration builds over SQLite files.",
        columns: Box::leak(cols.into_boxed_slice()),
        attributes: Attributes::NONE,
        column_aliases: &[],
        aliases: &[],
        examples: &[],
    }));
    let def: &'static TableDef = Box::leak(Box::new(TableDef { spec, generate }));
    specs.push(def);
    def
}

fn generate(ctx: &QueryContext, rows: &mut Rows) -> TableResult {
    let spec = ctx.spec();
    let table = DEFINITIONS
        .read()
        .unwrap_or_else(|p| p.into_inner())
        .as_ref()
        .and_then(|m| m.get(spec.name).cloned())
        .ok_or_else(|| TableError::msg("the configuration no longer defines this table"))?;
    let path_col = spec.columns.len() - 1;
    let mut files = Vec::new();
    oxquery_sys::pattern::expand_like(&table.path, oxquery_sys::pattern::Select::Files, |p| {
        files.push(p.to_owned());
        ControlFlow::Continue(())
    });
    for file in files {
        if let Err(e) = read_file(&file, &table.query, spec, path_col, rows) {
            log::warn!(
                "auto_table_construction {}: {}: {e}",
                spec.name,
                file.display()
            );
        }
    }
    Ok(())
}

fn read_file(
    file: &std::path::Path,
    sql: &str,
    spec: &TableSpec,
    path_col: usize,
    rows: &mut Rows,
) -> Result<(), oxquery_engine::rusqlite::Error> {
    use oxquery_engine::rusqlite::{Connection, OpenFlags};
    let conn = Connection::open_with_flags(
        file,
        OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )?;
    let mut stmt = conn.prepare(sql)?;
    // Result column → table column, by name.
    let mapping: Vec<Option<usize>> = stmt
        .column_names()
        .map(|n| spec.columns[..path_col].iter().position(|c| c.name == n))
        .collect();
    let path_text = file.to_string_lossy().into_owned();
    let mut result = stmt.query([])?;
    while let Some(r) = result.next()? {
        let mut row = rows.row();
        for (i, target) in mapping.iter().enumerate() {
            if let Some(col) = target {
                // Every automatic column is TEXT, as in osquery.
                let text = match oxquery_engine::value_from_ref(r.get_ref(i)?) {
                    oxquery_table::Value::Null => None,
                    oxquery_table::Value::Real(f) => Some(oxquery_engine::format_real(f)),
                    other => Some(other.to_string()),
                };
                row.set(*col, text);
            }
        }
        row.set(path_col, path_text.as_str());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;

    #[test]
    fn a_table_over_sqlite_files_reads_every_matching_file() {
        let dir = tempfile::tempdir().unwrap();
        for (i, name) in ["a.db", "b.db"].iter().enumerate() {
            let conn = oxquery_engine::rusqlite::Connection::open(dir.path().join(name)).unwrap();
            conn.execute_batch(&format!(
                "CREATE TABLE downloads (target_path TEXT, total_bytes INTEGER, other TEXT);
                 INSERT INTO downloads VALUES ('/tmp/file{i}', {}, 'x');",
                100 + i
            ))
            .unwrap();
        }
        std::fs::write(dir.path().join("c.txt"), "not sqlite").unwrap();
        let mut tables = BTreeMap::new();
        tables.insert(
            "atc_downloads".to_owned(),
            AutoTable {
                query: "SELECT target_path, total_bytes FROM downloads".into(),
                path: format!("{}/%.db", dir.path().display()),
                columns: vec!["target_path".into(), "total_bytes".into()],
                platform: "linux".into(),
            },
        );
        let defs = definitions(&tables);
        assert_eq!(defs.len(), 1);
        let mut engine = oxquery_engine::Engine::new(
            &[],
            &oxquery_engine::TableFilter::default(),
            oxquery_engine::instance::current(None),
        )
        .unwrap();
        engine.attach(defs[0]).unwrap();
        let r = engine
            .query("SELECT target_path, total_bytes, path FROM atc_downloads ORDER BY path")
            .unwrap();
        let text: Vec<Vec<String>> = r
            .rows
            .iter()
            .map(|row| row.iter().map(|v| v.to_string()).collect())
            .collect();
        assert_eq!(
            text,
            [
                [
                    "/tmp/file0",
                    "100",
                    &format!("{}/a.db", dir.path().display())
                ],
                [
                    "/tmp/file1",
                    "101",
                    &format!("{}/b.db", dir.path().display())
                ],
            ]
            .map(|r| r.map(str::to_owned).to_vec())
        );
        let types = engine
            .query("SELECT typeof(total_bytes) FROM atc_downloads LIMIT 1")
            .unwrap();
        assert_eq!(types.rows[0][0].to_string(), "text");
        // The same definition is reused on reload.
        assert!(std::ptr::eq(definitions(&tables)[0], defs[0]));
    }
}
