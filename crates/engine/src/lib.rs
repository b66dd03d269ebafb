//! The SQL engine: an in-memory SQLite connection where every oxquery table is a virtual
//! table with osquery's schema and semantics.
//!
//! [`Engine::new`] registers each [`TableDef`] as an eponymous virtual-table module (so
//! `SELECT * FROM processes` needs no set-up and costs nothing until used), creates views
//! for table aliases, and installs osquery's authorizer. See `vtab` for how SQLite's
//! planner calls become a [`oxquery_table::QueryContext`].
//!
//! Invariant: this is the only crate that opens SQLite for queries. Tables never see
//! SQLite; the shell and the daemon reach it only through [`Engine`].

mod authorizer;
mod collation;
mod format;
mod functions;
pub mod instance;
mod plan;
pub mod planner;
mod vtab;

pub use format::format_real;
pub use rusqlite;

use oxquery_table::{Attributes, Host, InstanceInfo, RegistryItem, TableDef};
use rusqlite::Connection;
use std::sync::Arc;
use vtab::{OsqueryTab, TableAux};

/// Why the engine could not start or run a statement.
#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    #[error("{0}")]
    Sqlite(#[from] rusqlite::Error),
    #[error("two tables are named {0}")]
    DuplicateTable(String),
}

/// Which tables to attach: osquery's `--enable_tables` / `--disable_tables`.
#[derive(Debug, Clone, Default)]
pub struct TableFilter {
    /// When non-empty, only these tables are attached.
    pub enable: Vec<String>,
    /// Never attached; wins over `enable`.
    pub disable: Vec<String>,
}

impl TableFilter {
    pub fn from_flags(enable: &str, disable: &str) -> Self {
        let list = |s: &str| {
            s.split(',')
                .map(str::trim)
                .filter(|t| !t.is_empty())
                .map(str::to_owned)
                .collect()
        };
        TableFilter {
            enable: list(enable),
            disable: list(disable),
        }
    }
    pub fn allows(&self, name: &str) -> bool {
        if self.disable.iter().any(|d| d == name) {
            return false;
        }
        self.enable.is_empty() || self.enable.iter().any(|e| e == name)
    }
}

/// An SQLite connection with the tables attached.
pub struct Engine {
    conn: Connection,
    tables: Vec<&'static TableDef>,
    host: Arc<Host>,
}

const MODULE: rusqlite::vtab::Module<'static, OsqueryTab> =
    rusqlite::vtab::Module::eponymous_only_module();

impl Engine {
    /// Opens the in-memory database and attaches `tables` (those `filter` allows).
    /// `instance` describes this process for `osquery_info`.
    pub fn new(
        tables: &[&'static TableDef],
        filter: &TableFilter,
        instance: InstanceInfo,
    ) -> Result<Engine, EngineError> {
        Self::with_live(tables, filter, instance, Arc::default())
    }

    /// Like [`Engine::new`], sharing `live` with other engines (the daemon runs one
    /// engine per worker thread; all of them report the same schedule and config state).
    pub fn with_live(
        tables: &[&'static TableDef],
        filter: &TableFilter,
        instance: InstanceInfo,
        live: Arc<std::sync::RwLock<oxquery_table::LiveState>>,
    ) -> Result<Engine, EngineError> {
        let conn = Connection::open_in_memory()?;
        collation::register(&conn)?;
        functions::register(&conn)?;
        let mut attached: Vec<&'static TableDef> = Vec::with_capacity(tables.len());
        for def in tables {
            let name = def.spec.name;
            if !filter.allows(name) {
                continue;
            }
            if attached.iter().any(|d| d.spec.name == name) {
                return Err(EngineError::DuplicateTable(name.to_owned()));
            }
            attached.push(def);
        }
        attached.sort_by_key(|d| d.spec.name);
        let host = Arc::new(Host {
            instance,
            registry: registry_items(&attached),
            live,
        });
        for def in &attached {
            let name = def.spec.name;
            conn.create_module(
                name,
                &MODULE,
                Some(TableAux {
                    def,
                    host: Arc::clone(&host),
                }),
            )?;
        }
        for def in &attached {
            for alias in def.spec.aliases {
                conn.execute_batch(&format!(
                    "CREATE TEMP VIEW {alias} AS SELECT * FROM {}",
                    def.spec.name
                ))?;
            }
        }
        let mut conn = conn;
        conn.authorizer(Some(authorizer::authorize))?;
        Ok(Engine {
            conn,
            tables: attached,
            host,
        })
    }

    /// Attaches a table defined at run time (the daemon's `auto_table_construction`),
    /// replacing a table of the same name that was attached this way before.
    pub fn attach(&mut self, def: &'static TableDef) -> Result<(), EngineError> {
        self.conn.create_module(
            def.spec.name,
            &MODULE,
            Some(TableAux {
                def,
                host: Arc::clone(&self.host),
            }),
        )?;
        self.tables.retain(|d| d.spec.name != def.spec.name);
        self.tables.push(def);
        self.tables.sort_by_key(|d| d.spec.name);
        Ok(())
    }

    /// The connection, for running statements. It stays owned by the engine.
    pub fn connection(&self) -> &Connection {
        &self.conn
    }

    /// The attached tables, sorted by name.
    pub fn tables(&self) -> &[&'static TableDef] {
        &self.tables
    }

    pub fn table(&self, name: &str) -> Option<&'static TableDef> {
        self.tables.iter().copied().find(|d| d.spec.name == name)
    }

    pub fn host(&self) -> &Host {
        &self.host
    }

    /// The state the daemon updates while running (config hash, schedule statistics).
    pub fn live(&self) -> Arc<std::sync::RwLock<oxquery_table::LiveState>> {
        Arc::clone(&self.host.live)
    }

    /// Runs one statement and returns its column names and rows as typed values.
    pub fn query(&self, sql: &str) -> Result<QueryResult, EngineError> {
        let mut stmt = self.conn.prepare(sql)?;
        let columns: Vec<String> = stmt.column_names().map(str::to_owned).collect();
        let width = columns.len();
        let mut rows = Vec::new();
        let mut cursor = stmt.query([])?;
        while let Some(row) = cursor.next()? {
            let mut values = Vec::with_capacity(width);
            for i in 0..width {
                values.push(value_from_ref(row.get_ref(i)?));
            }
            rows.push(values);
        }
        Ok(QueryResult { columns, rows })
    }
}

/// The plugins this process has: every attached table, and the SQL plugin.
fn registry_items(tables: &[&'static TableDef]) -> Vec<RegistryItem> {
    let mut items: Vec<RegistryItem> = tables
        .iter()
        .map(|d| RegistryItem {
            registry: "table",
            name: d.spec.name.to_owned(),
            owner_uuid: 0,
            internal: d.spec.attributes.contains(Attributes::UTILITY),
            active: true,
        })
        .collect();
    items.push(RegistryItem {
        registry: "sql",
        name: "sql".to_owned(),
        owner_uuid: 0,
        internal: true,
        active: true,
    });
    items
}

/// The result of [`Engine::query`].
#[derive(Debug, Clone, PartialEq)]
pub struct QueryResult {
    pub columns: Vec<String>,
    pub rows: Vec<Vec<oxquery_table::Value>>,
}

/// Converts an SQLite value to ours (invalid UTF-8 text is replaced, never an error).
pub fn value_from_ref(v: rusqlite::types::ValueRef<'_>) -> oxquery_table::Value {
    use oxquery_table::Value;
    use rusqlite::types::ValueRef;
    match v {
        ValueRef::Null => Value::Null,
        ValueRef::Integer(i) => Value::Integer(i),
        ValueRef::Real(f) => Value::Real(f),
        ValueRef::Text(t) => Value::Text(String::from_utf8_lossy(t).into_owned()),
        ValueRef::Blob(b) => Value::Blob(b.to_vec()),
    }
}
