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
//! An automatic table is a [`Table`] object that owns its definition; a reload replaces
//! the objects in the registry, and a table whose definition did not change keeps its
//! object (so engines keep their SQLite module).

use crate::AutoTable;
use oxquery_table::{
    Attributes, Column, ColumnOptions, ColumnType, QueryContext, Rows, Table, TableResult,
    TableSpec, Value,
};
use std::collections::BTreeMap;
use std::ops::ControlFlow;
use std::sync::Arc;

/// One configured automatic table.
#[derive(Debug)]
pub struct AutoTableDef {
    spec: TableSpec,
    definition: AutoTable,
}

impl AutoTableDef {
    fn new(name: &str, definition: &AutoTable) -> Self {
        let mut columns: Vec<Column> = definition
            .columns
            .iter()
            .map(|c| {
                Column::new(
                    c.clone(),
                    ColumnType::Text,
                    ColumnOptions::empty(),
                    "Column of the automatic table",
                )
            })
            .collect();
        columns.push(Column::new(
            "path",
            ColumnType::Text,
            ColumnOptions::empty(),
            "SQLite file the row was read from",
        ));
        AutoTableDef {
            spec: TableSpec::new(
                name.to_owned(),
                "A table the configuration builds over SQLite files.",
                columns,
                Attributes::NONE,
            ),
            definition: definition.clone(),
        }
    }
}

/// The tables `config` defines for this platform. A table whose definition equals one in
/// `previous` is that same object.
pub fn tables(
    config: &BTreeMap<String, AutoTable>,
    previous: &[Arc<AutoTableDef>],
) -> Vec<Arc<AutoTableDef>> {
    let mut out = Vec::new();
    for (name, table) in config {
        if !crate::platform_matches(&table.platform) {
            continue;
        }
        if table.columns.iter().any(|c| c == "path") {
            log::warn!(
                "auto_table_construction {name}: a column named path is implied; ignoring the table"
            );
            continue;
        }
        let same = previous
            .iter()
            .find(|p| p.spec.name == name.as_str() && p.definition == *table);
        out.push(match same {
            Some(p) => Arc::clone(p),
            None => Arc::new(AutoTableDef::new(name, table)),
        });
    }
    out
}

impl Table for AutoTableDef {
    fn spec(&self) -> &TableSpec {
        &self.spec
    }

    fn generate(&self, ctx: &QueryContext<'_>, rows: &mut Rows<'_>) -> TableResult {
        let mut files = Vec::new();
        oxquery_sys::pattern::expand_like(
            &self.definition.path,
            oxquery_sys::pattern::Select::Files,
            |p| {
                files.push(p.to_owned());
                ControlFlow::Continue(())
            },
        );
        for file in files {
            ctx.check()?;
            if let Err(e) = self.read_file(&file, rows) {
                log::warn!(
                    "auto_table_construction {}: {}: {e}",
                    self.spec.name,
                    file.display()
                );
            }
        }
        Ok(())
    }
}

impl AutoTableDef {
    fn read_file(
        &self,
        file: &std::path::Path,
        rows: &mut Rows<'_>,
    ) -> Result<(), oxquery_engine::EngineError> {
        let path_col = self.spec.columns.len() - 1;
        let path_text = file.to_string_lossy().into_owned();
        oxquery_engine::sqlite_file::query_file(
            file,
            &self.definition.query,
            // Result column → table column, by name.
            |names| -> Vec<Option<usize>> {
                names
                    .iter()
                    .map(|n| {
                        self.spec.columns[..path_col]
                            .iter()
                            .position(|c| c.name == *n)
                    })
                    .collect()
            },
            |mapping, values| {
                let mut row = rows.row();
                for (value, target) in values.iter().zip(mapping) {
                    if let Some(col) = target {
                        // Every automatic column is TEXT, as in osquery.
                        let text = match value {
                            Value::Null => None,
                            Value::Real(f) => Some(oxquery_engine::format_real(*f)),
                            other => Some(other.to_string()),
                        };
                        row.set(*col, text);
                    }
                }
                row.set(path_col, path_text.as_str());
                if rows.is_closed() {
                    ControlFlow::Break(())
                } else {
                    ControlFlow::Continue(())
                }
            },
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;

    /// Writes an SQLite database with Python's sqlite3 module (an independent writer).
    fn write_db(path: &std::path::Path, script: &str) {
        let status = std::process::Command::new("python3")
            .arg("-c")
            .arg("import sqlite3, sys; c = sqlite3.connect(sys.argv[1]); c.executescript(sys.argv[2]); c.commit()")
            .arg(path)
            .arg(script)
            .status()
            .expect("python3 runs (CI installs it)");
        assert!(status.success());
    }

    #[test]
    fn a_table_over_sqlite_files_reads_every_matching_file() {
        let dir = tempfile::tempdir().unwrap();
        for (i, name) in ["a.db", "b.db"].iter().enumerate() {
            write_db(
                &dir.path().join(name),
                &format!(
                    "CREATE TABLE downloads (target_path TEXT, total_bytes INTEGER, other TEXT);
                     INSERT INTO downloads VALUES ('/tmp/file{i}', {}, 'x');",
                    100 + i
                ),
            );
        }
        std::fs::write(dir.path().join("c.txt"), "not sqlite").unwrap();
        let mut config = BTreeMap::new();
        config.insert(
            "atc_downloads".to_owned(),
            AutoTable {
                query: "SELECT target_path, total_bytes FROM downloads".into(),
                path: format!("{}/%.db", dir.path().display()),
                columns: vec!["target_path".into(), "total_bytes".into()],
                platform: "linux".into(),
            },
        );
        let defs = tables(&config, &[]);
        assert_eq!(defs.len(), 1);
        let engine = oxquery_engine::Engine::new(
            &[],
            &oxquery_engine::TableFilter::default(),
            oxquery_engine::instance::current(None),
        )
        .unwrap();
        engine.attach(defs[0].clone()).unwrap();
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
        // The same definition is reused on reload; a changed one is a new object.
        assert!(Arc::ptr_eq(&tables(&config, &defs)[0], &defs[0]));
        config.get_mut("atc_downloads").unwrap().columns.pop();
        assert!(!Arc::ptr_eq(&tables(&config, &defs)[0], &defs[0]));
    }

    #[test]
    fn a_fifo_where_a_database_should_be_is_skipped_without_blocking() {
        let dir = tempfile::tempdir().unwrap();
        let fifo = dir.path().join("x.db");
        let c = std::ffi::CString::new(fifo.to_str().unwrap()).unwrap();
        // SAFETY: a valid NUL-terminated path.
        assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o600) }, 0);
        let mut config = BTreeMap::new();
        config.insert(
            "atc_fifo".to_owned(),
            AutoTable {
                query: "SELECT 1 AS a".into(),
                path: format!("{}/%.db", dir.path().display()),
                columns: vec!["a".into()],
                platform: "linux".into(),
            },
        );
        let engine = oxquery_engine::Engine::new(
            &[],
            &oxquery_engine::TableFilter::default(),
            oxquery_engine::instance::current(None),
        )
        .unwrap();
        engine.attach(tables(&config, &[])[0].clone()).unwrap();
        let r = engine.query("SELECT count(*) FROM atc_fifo").unwrap();
        assert_eq!(r.rows[0][0], Value::Integer(0));
    }
}
