//! Every table oxquery serves, one file each, grouped by domain:
//!
//! * [`system`]: processes, CPU, memory, kernel, OS facts.
//! * [`network`]: sockets and listening ports.
//! * [`utility`]: osquery about itself.
//! * [`files`]: paths and their contents (`file`, `hash`).
//! * [`packages`]: installed software and package sources.
//! * [`apps`]: browser extensions and editor plugins.
//! * [`hardware`]: devices, firmware and drive health.
//! * [`containers`]: container engines (Docker) through their APIs.
//! * [`foreign`]: other platforms' tables, declared from osquery's data, for
//!   `--enable_foreign` (not in [`all`]).
//!
//! A table file holds its `table!` declaration, its `generate` function and its tests.
//! Shared mechanisms come from `oxquery-sys` (OS readers) and `oxquery-table` (framework);
//! one table file never imports another.

pub mod apps;
pub mod cloud;
pub(crate) mod common;
pub mod containers;
pub mod docs;
pub mod fetch;
pub mod files;
pub mod foreign;
pub mod hardware;
pub mod network;
pub mod packages;
pub mod system;
#[cfg(test)]
mod testing;
pub mod users;
pub mod utility;

use oxquery_table::TableDef;

/// All tables, in no particular order (the engine sorts them).
pub fn all() -> Vec<&'static TableDef> {
    let mut tables = Vec::new();
    tables.extend(system::tables());
    tables.extend(users::tables());
    tables.extend(network::tables());
    tables.extend(utility::tables());
    tables.extend(files::tables());
    tables.extend(packages::tables());
    tables.extend(apps::tables());
    tables.extend(hardware::tables());
    tables.extend(containers::tables());
    tables.extend(cloud::tables());
    tables.extend(fetch::tables());
    // The evented tables live with the event framework that fills them.
    tables.extend(oxquery_events::tables());
    tables
}

#[cfg(test)]
mod registry_tests {
    use super::all;
    use oxquery_table::ColumnOptions;
    use std::collections::HashSet;

    #[test]
    fn names_are_unique_snake_case_and_documented() {
        let mut names = HashSet::new();
        for def in all() {
            let spec = def.spec;
            assert!(
                names.insert(spec.name.clone()),
                "{} declared twice",
                spec.name
            );
            assert!(
                spec.name
                    .bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_'),
                "{} is not snake_case",
                spec.name
            );
            assert!(
                spec.description.ends_with('.'),
                "{}: description ends with a period",
                spec.name
            );
            let mut columns = HashSet::new();
            for c in spec.columns.iter() {
                assert!(
                    columns.insert(c.name.clone()),
                    "{}.{} declared twice",
                    spec.name,
                    c.name
                );
                assert!(
                    !c.description.is_empty(),
                    "{}.{} has no description",
                    spec.name,
                    c.name
                );
                if c.options.contains(ColumnOptions::OTHER_PLATFORM) {
                    assert!(c.options.contains(ColumnOptions::HIDDEN));
                }
            }
            for a in spec.column_aliases.iter() {
                assert!(
                    spec.column_index(&a.target).is_some(),
                    "{}: alias {} has no target",
                    spec.name,
                    a.alias
                );
            }
        }
    }

    /// Every documented example runs on this host, and so does `SELECT *` on every table
    /// that can enumerate. Data the host lacks (no systemd, no `/dev/sdb`, no lldpd) may
    /// give no rows, never an error.
    #[test]
    fn every_example_runs_and_every_table_answers_select_star() {
        let engine = oxquery_engine::Engine::new(
            &all(),
            &oxquery_engine::TableFilter::default(),
            oxquery_engine::instance::current(None),
        )
        .unwrap();
        // The `hash` examples digest whole directories: a small read limit keeps this
        // test's cost (unoptimised digests) low without skipping any code path.
        // The docker_* examples ask the tests' own daemon, never the host's socket.
        let docker_socket = oxquery_test_support::docker::shared().map_or_else(
            || std::env::temp_dir().join("oxquery-tests-no-docker.sock"),
            |d| d.socket.clone(),
        );
        engine.set_settings(oxquery_table::TableSettings {
            read_max: 1 << 20,
            docker_socket: Some(docker_socket),
            // The lxd_* examples never ask the host's LXD: a socket that does not exist.
            lxd_socket: Some(std::env::temp_dir().join("oxquery-tests-no-lxd.socket")),
            ..oxquery_table::TableSettings::DEFAULT
        });
        let mut failures = Vec::new();
        let mut ran = 0;
        for def in all() {
            let mut queries: Vec<String> =
                def.spec.examples.iter().map(|e| e.to_string()).collect();
            if !def.spec.has_required() {
                queries.push(format!("SELECT * FROM {}", def.spec.name));
            }
            for sql in queries {
                ran += 1;
                if let Err(e) = engine.query(&sql) {
                    failures.push(format!("{}: {sql:?}: {e}", def.spec.name));
                }
            }
        }
        assert!(failures.is_empty(), "{}", failures.join("\n"));
        assert!(ran > all().len(), "only {ran} queries ran");
    }
}
