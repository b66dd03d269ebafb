use super::*;
/// Against databases RocksDB's `ldb` wrote in osquery's layout.
#[cfg(feature = "rocksdb")]
mod reader {
    use super::*;
    use crate::item::{Payload, Row};
    use crate::results::{Run, ScheduledQuery, compute};
    use oxquery_table::Value;

    const UUID: &str = "6f1c2a9e-3b4d-4e5f-8a7b-9c0d1e2f3a4b";

    /// osquery's last results of `pack_p_q` as osquery writes them: typed JSON, keys in
    /// the order of the query's columns (not ours), a real, an escaped control byte.
    const ROWS: &str = r#"[{"pid":1,"name":"init","load":0.5,"note":"a\\x09b"},{"pid":22,"name":"sshd","load":1.25,"note":""}]"#;

    /// The same rows as a run of ours produces them (before escaping).
    fn current_rows() -> Vec<Row> {
        let row = |pid, name: &str, load, note: &str| {
            Row::from([
                ("pid".to_owned(), Value::Integer(pid)),
                ("name".to_owned(), Value::Text(name.to_owned())),
                ("load".to_owned(), Value::Real(load)),
                ("note".to_owned(), Value::Text(note.to_owned())),
            ])
        };
        vec![row(1, "init", 0.5, "a\tb"), row(22, "sshd", 1.25, "")]
    }

    fn osquery_db(dir: &Path) -> Option<()> {
        let ldb = oxquery_test_support::require_tool("ldb")?;
        oxquery_test_support::write_osquery_rocksdb(
            &ldb,
            dir,
            &[
                ("configurations", "nodeKey", "node-key-from-osquery"),
                ("configurations", "nodeKeyTime", "1700000000"),
                ("configurations", "instance_uuid_v1", UUID),
                ("configurations", "timestamp.pack_p_q", "1700000100"),
                ("configurations", "results_version", "2"),
                ("queries", "pack_p_q", ROWS),
                ("queries", "pack_p_qepoch", "0"),
                ("queries", "pack_p_qcounter", "5"),
                (
                    "queries",
                    "query.pack_p_q",
                    "select pid, name, load, note from t",
                ),
                ("queries", "gone", "[]"),
                ("queries", "goneepoch", "0"),
                ("queries", "gonecounter", "0"),
                ("queries", "cache.processes", "[]"),
                ("queries", "broken", "not json"),
                ("queries", "brokenepoch", "0"),
            ],
        )
        .unwrap();
        Some(())
    }

    fn run(epoch: u64) -> Run {
        Run {
            unix_time: 1_800_000_000,
            epoch,
            decorations: Default::default(),
        }
    }

    const QUERY: ScheduledQuery<'static> = ScheduledQuery {
        name: "pack_p_q",
        sql: "select pid, name, load, note from t",
        snapshot: false,
        removed: true,
        evented: false,
    };

    #[test]
    fn takes_over_node_key_instance_and_diff_state_once() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("osquery.db");
        let Some(()) = osquery_db(&dir) else { return };
        let mut store = Store::in_memory().unwrap();
        let notes = import_once(&mut store, &dir, 1_750_000_000);
        assert_eq!(notes.len(), 2, "{notes:?}");
        assert_eq!(notes[0].0, log::Level::Info);
        assert!(notes[0].1.contains("the node key"), "{notes:?}");
        assert!(notes[0].1.contains(UUID), "{notes:?}");
        assert!(
            notes[0]
                .1
                .contains("differential results of 2 queries (gone, pack_p_q)"),
            "{notes:?}"
        );
        assert_eq!(notes[1].0, log::Level::Warn);
        assert!(notes[1].1.contains("broken"), "{notes:?}");

        let text = |store: &Store, d, k: &str| store.get_text(d, k).unwrap();
        assert_eq!(
            text(&store, Domain::Configurations, "nodeKey").as_deref(),
            Some("node-key-from-osquery")
        );
        assert_eq!(
            text(&store, Domain::Configurations, "nodeKeyTime").as_deref(),
            Some("1700000000")
        );
        assert_eq!(
            text(&store, Domain::Configurations, INSTANCE_KEY).as_deref(),
            Some(UUID)
        );
        assert_eq!(
            text(&store, Domain::Configurations, "timestamp.pack_p_q").as_deref(),
            Some("1700000100")
        );
        // No recorded run: the week before expiry counts from the import.
        assert_eq!(
            text(&store, Domain::Configurations, "timestamp.gone").as_deref(),
            Some("1750000000")
        );
        assert_eq!(
            text(&store, Domain::Queries, "pack_p_qcounter").as_deref(),
            Some("5")
        );
        assert_eq!(
            text(&store, Domain::Queries, "pack_p_qepoch").as_deref(),
            Some("0")
        );
        assert_eq!(text(&store, Domain::Queries, "broken"), None);
        assert_eq!(text(&store, Domain::Queries, "cache.processes"), None);
        // Stored in our canonical form: keys in name order.
        assert_eq!(
            text(&store, Domain::Queries, "pack_p_q").as_deref(),
            Some(
                r#"[{"load":0.5,"name":"init","note":"a\\x09b","pid":1},{"load":1.25,"name":"sshd","note":"","pid":22}]"#
            )
        );

        // The first run after the switch: unchanged rows log nothing.
        let outcome = compute(&store, &QUERY, current_rows(), run(0)).unwrap();
        assert_eq!(outcome.item, None);
        // One changed row: exactly that row, with osquery's counter continued.
        let mut rows = current_rows();
        rows[1].insert("load".to_owned(), Value::Real(2.0));
        let outcome = compute(&store, &QUERY, rows, run(0)).unwrap();
        let item = outcome.item.unwrap();
        assert_eq!(item.counter, 6);
        let Payload::Diff { added, removed } = item.payload else {
            panic!("{:?}", item.payload)
        };
        assert_eq!((added.len(), removed.len()), (1, 1));
        assert_eq!(added[0]["load"], Value::Real(2.0));
        assert_eq!(removed[0]["load"], Value::Real(1.25));

        // Once only: a second start reads nothing, even after our own changes.
        store
            .put(Domain::Configurations, "nodeKey", b"re-enrolled")
            .unwrap();
        assert!(
            store
                .get(Domain::Configurations, IMPORT_MARKER)
                .unwrap()
                .is_some()
        );
        assert_eq!(import_once(&mut store, &dir, 1_750_000_001), Vec::new());
        assert_eq!(
            text(&store, Domain::Configurations, "nodeKey").as_deref(),
            Some("re-enrolled")
        );
    }

    #[test]
    fn never_overwrites_what_the_store_already_has() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("osquery.db");
        let Some(()) = osquery_db(&dir) else { return };
        let mut store = Store::in_memory().unwrap();
        store
            .put(Domain::Configurations, INSTANCE_KEY, b"ours")
            .unwrap();
        let notes = import_once(&mut store, &dir, 1);
        assert!(!notes[0].1.contains(UUID), "{notes:?}");
        assert!(notes[0].1.contains("the node key"), "{notes:?}");
        assert_eq!(
            store
                .get_text(Domain::Configurations, INSTANCE_KEY)
                .unwrap()
                .as_deref(),
            Some("ours")
        );
    }

    #[test]
    fn a_corrupt_database_is_a_warning_and_a_fresh_start() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("osquery.db");
        let Some(()) = osquery_db(&dir) else { return };
        for entry in std::fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            let name = path.file_name().unwrap().to_string_lossy().into_owned();
            if name.starts_with("MANIFEST-") {
                let len = std::fs::metadata(&path).unwrap().len() as usize;
                std::fs::write(&path, vec![0x5A; len]).unwrap();
            }
        }
        let mut store = Store::in_memory().unwrap();
        let notes = import_once(&mut store, &dir, 1);
        assert_eq!(notes.len(), 1, "{notes:?}");
        assert_eq!(notes[0].0, log::Level::Warn);
        assert!(
            notes[0].1.contains("Cannot read osquery's database"),
            "{notes:?}"
        );
        assert_eq!(store.get(Domain::Configurations, "nodeKey").unwrap(), None);
        // Recorded: not retried at the next start, when this store has its own identity.
        let marker = store
            .get_text(Domain::Configurations, IMPORT_MARKER)
            .unwrap();
        assert!(marker.is_some_and(|m| m.contains("failed")));
        assert_eq!(import_once(&mut store, &dir, 2), Vec::new());
    }
}

#[test]
fn a_directory_that_is_not_rocksdb_is_left_alone() {
    let tmp = tempfile::tempdir().unwrap();
    std::fs::write(tmp.path().join("CURRENT"), "MANIFEST-000001\n").unwrap();
    let mut store = Store::in_memory().unwrap();
    assert_eq!(import_once(&mut store, tmp.path(), 1), Vec::new());
    assert_eq!(
        store.get(Domain::Configurations, IMPORT_MARKER).unwrap(),
        None
    );
}

/// Without the reader, a RocksDB directory is named in a warning and nothing is recorded,
/// so a build with the reader can still import.
#[cfg(not(feature = "rocksdb"))]
#[test]
fn without_the_feature_it_says_so_and_records_nothing() {
    let tmp = tempfile::tempdir().unwrap();
    std::fs::write(tmp.path().join("CURRENT"), "MANIFEST-000001\n").unwrap();
    std::fs::write(tmp.path().join("MANIFEST-000001"), "x").unwrap();
    let mut store = Store::in_memory().unwrap();
    let notes = import_once(&mut store, tmp.path(), 1);
    assert_eq!(notes.len(), 1, "{notes:?}");
    assert_eq!(notes[0].0, log::Level::Warn);
    assert!(
        notes[0].1.contains("without the rocksdb feature"),
        "{notes:?}"
    );
    assert_eq!(
        store.get(Domain::Configurations, IMPORT_MARKER).unwrap(),
        None
    );
}
