//! The tables a process serves, which can change while it runs.
//!
//! A [`Registry`] is a cheap handle: the shell's engine, the daemon's workers and the
//! tables that list plugins (`osquery_registry`) share one. Registering or deregistering
//! bumps a generation counter; each engine brings its SQLite modules up to date before
//! its next statement. A running scan holds its own `Arc` of the table, so a table
//! deregistered mid-query finishes that query and is then gone.

use crate::Table;
use std::collections::BTreeMap;
use std::sync::{Arc, RwLock, RwLockReadGuard, RwLockWriteGuard};

/// Two tables with one name: a programming error among built-ins, a refused
/// registration at run time.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("two tables are named {0}")]
pub struct DuplicateTable(pub String);

/// Who provides a table.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Owner {
    /// Compiled into oxquery.
    #[default]
    BuiltIn,
    /// Defined by the configuration (automatic tables); replaced on every reload.
    Config,
    /// Provided by the extension with this uuid.
    Extension(i64),
}

impl Owner {
    /// `osquery_registry.owner_uuid`: the extension's uuid, 0 for everything else.
    pub fn uuid(self) -> i64 {
        match self {
            Owner::Extension(uuid) => uuid,
            Owner::BuiltIn | Owner::Config => 0,
        }
    }
}

#[derive(Clone)]
struct Entry {
    table: Arc<dyn Table>,
    owner: Owner,
}

#[derive(Default)]
struct State {
    tables: BTreeMap<String, Entry>,
    generation: u64,
}

/// A registered table and who provides it.
pub type OwnedTable = (Arc<dyn Table>, Owner);

/// A shared, mutable set of tables by name.
#[derive(Clone, Default)]
pub struct Registry {
    state: Arc<RwLock<State>>,
}

impl std::fmt::Debug for Registry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let state = self.read();
        f.debug_struct("Registry")
            .field("generation", &state.generation)
            .field("tables", &state.tables.keys().collect::<Vec<_>>())
            .finish()
    }
}

impl Registry {
    pub fn new() -> Self {
        Registry::default()
    }

    /// A registry of built-in tables; two with one name is an error.
    pub fn with_tables(
        tables: impl IntoIterator<Item = Arc<dyn Table>>,
    ) -> Result<Registry, DuplicateTable> {
        let registry = Registry::new();
        for table in tables {
            registry.add(table, Owner::default())?;
        }
        Ok(registry)
    }

    fn read(&self) -> RwLockReadGuard<'_, State> {
        // A writer that panicked left a consistent map (each write is one insert/remove).
        self.state.read().unwrap_or_else(|p| p.into_inner())
    }
    fn write(&self) -> RwLockWriteGuard<'_, State> {
        self.state.write().unwrap_or_else(|p| p.into_inner())
    }

    /// Adds a table whose name is not taken yet.
    pub fn add(&self, table: Arc<dyn Table>, owner: Owner) -> Result<(), DuplicateTable> {
        let name = table.spec().name.to_string();
        let mut state = self.write();
        if state.tables.contains_key(&name) {
            return Err(DuplicateTable(name));
        }
        state.tables.insert(name, Entry { table, owner });
        state.generation += 1;
        Ok(())
    }

    /// Adds a table, replacing one of the same name; returns the replaced one.
    pub fn replace(&self, table: Arc<dyn Table>, owner: Owner) -> Option<Arc<dyn Table>> {
        let name = table.spec().name.to_string();
        let mut state = self.write();
        state.generation += 1;
        state
            .tables
            .insert(name, Entry { table, owner })
            .map(|e| e.table)
    }

    /// Removes a table; queries running on it finish with their own reference.
    pub fn remove(&self, name: &str) -> Option<Arc<dyn Table>> {
        let mut state = self.write();
        let removed = state.tables.remove(name)?;
        state.generation += 1;
        Some(removed.table)
    }

    /// Makes `tables` the whole set `owner` provides, in one step: its other tables go,
    /// these are added or replaced. A name another owner holds is refused (and skipped).
    pub fn set_owned(&self, owner: Owner, tables: Vec<Arc<dyn Table>>) -> Vec<DuplicateTable> {
        let mut state = self.write();
        state.tables.retain(|_, e| e.owner != owner);
        let mut refused = Vec::new();
        for table in tables {
            let name = table.spec().name.to_string();
            if state.tables.contains_key(&name) {
                refused.push(DuplicateTable(name));
                continue;
            }
            state.tables.insert(name, Entry { table, owner });
        }
        state.generation += 1;
        refused
    }

    /// Removes every table `owner` registered (an extension that went away).
    pub fn remove_owned_by(&self, owner: Owner) -> Vec<String> {
        let mut state = self.write();
        let names: Vec<String> = state
            .tables
            .iter()
            .filter(|(_, e)| e.owner == owner)
            .map(|(n, _)| n.clone())
            .collect();
        for name in &names {
            state.tables.remove(name);
        }
        if !names.is_empty() {
            state.generation += 1;
        }
        names
    }

    pub fn get(&self, name: &str) -> Option<Arc<dyn Table>> {
        self.read().tables.get(name).map(|e| Arc::clone(&e.table))
    }

    pub fn contains(&self, name: &str) -> bool {
        self.read().tables.contains_key(name)
    }

    /// Changes every time a table is added, replaced or removed.
    pub fn generation(&self) -> u64 {
        self.read().generation
    }

    /// The tables now, sorted by name, with the generation they belong to.
    pub fn snapshot(&self) -> (u64, Vec<OwnedTable>) {
        let state = self.read();
        let tables = state
            .tables
            .values()
            .map(|e| (Arc::clone(&e.table), e.owner))
            .collect();
        (state.generation, tables)
    }

    /// The tables now, sorted by name.
    pub fn tables(&self) -> Vec<Arc<dyn Table>> {
        self.read()
            .tables
            .values()
            .map(|e| Arc::clone(&e.table))
            .collect()
    }

    /// The names now, sorted.
    pub fn names(&self) -> Vec<String> {
        self.read().tables.keys().cloned().collect()
    }
}

/// Which registered tables an engine attaches: osquery's `--enable_tables` /
/// `--disable_tables`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::TableSpec;
    use crate::{Attributes, Column, ColumnOptions, ColumnType, QueryContext, Rows, TableResult};

    struct Fixed(TableSpec);
    impl Table for Fixed {
        fn spec(&self) -> &TableSpec {
            &self.0
        }
        fn generate(&self, _: &QueryContext<'_>, rows: &mut Rows<'_>) -> TableResult {
            rows.row().set(0usize, 1_i64);
            Ok(())
        }
    }
    fn table(name: &str) -> Arc<dyn Table> {
        Arc::new(Fixed(TableSpec::new(
            name.to_owned(),
            "A test table.",
            vec![Column::new(
                "a",
                ColumnType::Integer,
                ColumnOptions::empty(),
                "a",
            )],
            Attributes::NONE,
        )))
    }

    #[test]
    fn add_replace_remove_bump_the_generation() {
        let registry = Registry::with_tables([table("b"), table("a")]).unwrap();
        assert_eq!(registry.names(), ["a", "b"]);
        let g = registry.generation();
        assert_eq!(
            registry.add(table("a"), Owner::default()),
            Err(DuplicateTable("a".into()))
        );
        assert_eq!(registry.generation(), g);
        assert!(registry.replace(table("a"), Owner::Extension(7)).is_some());
        registry.add(table("c"), Owner::Extension(7)).unwrap();
        assert!(registry.generation() > g);
        let held = registry.get("b").unwrap();
        assert!(registry.remove("b").is_some());
        // A holder (a running scan) keeps a working table.
        assert_eq!(held.spec().name, "b");
        assert_eq!(registry.remove_owned_by(Owner::Extension(7)), ["a", "c"]);
        assert!(registry.names().is_empty());
    }

    #[test]
    fn set_owned_replaces_one_owners_tables_and_keeps_others() {
        let registry = Registry::with_tables([table("builtin")]).unwrap();
        assert!(
            registry
                .set_owned(Owner::Config, vec![table("x"), table("y")])
                .is_empty()
        );
        assert_eq!(registry.names(), ["builtin", "x", "y"]);
        let refused = registry.set_owned(Owner::Config, vec![table("y"), table("builtin")]);
        assert_eq!(refused, [DuplicateTable("builtin".into())]);
        assert_eq!(registry.names(), ["builtin", "y"]);
    }

    #[test]
    fn filter_disable_wins() {
        let f = TableFilter::from_flags("a, b", "b");
        assert!(f.allows("a"));
        assert!(!f.allows("b"));
        assert!(!f.allows("c"));
        assert!(TableFilter::default().allows("anything"));
    }
}
