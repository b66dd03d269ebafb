use super::*;
use oxquery_table::Value;

fn row(i: i64, s: &str) -> Row {
    [
        ("i".to_owned(), Value::Integer(i)),
        ("s".to_owned(), Value::Text(s.to_owned())),
    ]
    .into_iter()
    .collect()
}

fn run(store: &mut Store, q: &ScheduledQuery<'_>, rows: Vec<Row>, epoch: u64) -> QueryOutcome {
    let outcome = compute(
        store,
        q,
        rows,
        Run {
            unix_time: 1_700_000_000,
            epoch,
            decorations: Decorations::new(),
        },
    )
    .unwrap();
    outcome.commit(store).unwrap();
    outcome
}

fn diff_of(o: &QueryOutcome) -> (u64, Vec<Row>, Vec<Row>) {
    let item = o.item.as_ref().expect("an item to log");
    match &item.payload {
        Payload::Diff { added, removed } => (item.counter, added.clone(), removed.clone()),
        Payload::Snapshot(_) => panic!("not a diff"),
    }
}

#[test]
fn first_run_adds_everything_with_counter_zero_even_when_empty() {
    let mut store = Store::in_memory().unwrap();
    let q = ScheduledQuery::new("empty", "SELECT 1 WHERE 0");
    let o = run(&mut store, &q, vec![], 0);
    assert_eq!(diff_of(&o), (0, vec![], vec![]));
    assert_eq!(
        store.get_text(Domain::Queries, "empty").unwrap().unwrap(),
        "[]"
    );
    assert_eq!(
        store
            .get_text(Domain::Queries, "emptycounter")
            .unwrap()
            .unwrap(),
        "0"
    );
    assert_eq!(
        store
            .get_text(Domain::Queries, "emptyepoch")
            .unwrap()
            .unwrap(),
        "0"
    );
    assert_eq!(
        store
            .get_text(Domain::Queries, "query.empty")
            .unwrap()
            .unwrap(),
        "SELECT 1 WHERE 0"
    );
    // Still empty: nothing changed, nothing logged.
    assert!(run(&mut store, &q, vec![], 0).item.is_none());
}

#[test]
fn counter_advances_only_on_change_and_removed_come_with_added() {
    let mut store = Store::in_memory().unwrap();
    let q = ScheduledQuery::new("q", "SELECT *");
    assert_eq!(
        diff_of(&run(&mut store, &q, vec![row(1, "a"), row(2, "b")], 0)).0,
        0
    );
    let unchanged = run(&mut store, &q, vec![row(2, "b"), row(1, "a")], 0);
    assert!(unchanged.item.is_none());
    assert_eq!(
        store
            .get_text(Domain::Queries, "qcounter")
            .unwrap()
            .unwrap(),
        "0"
    );
    let o = run(
        &mut store,
        &q,
        vec![row(2, "b"), row(3, "c"), row(3, "c")],
        0,
    );
    assert_eq!(
        diff_of(&o),
        (1, vec![row(3, "c"), row(3, "c")], vec![row(1, "a")])
    );
    let o = run(&mut store, &q, vec![row(2, "b"), row(3, "c")], 0);
    assert_eq!(diff_of(&o), (2, vec![], vec![row(3, "c")]));
    assert_eq!(
        store
            .get_text(Domain::Queries, "qcounter")
            .unwrap()
            .unwrap(),
        "2"
    );
}

#[test]
fn a_new_epoch_starts_over() {
    let mut store = Store::in_memory().unwrap();
    let q = ScheduledQuery::new("q", "SELECT *");
    run(&mut store, &q, vec![row(1, "a")], 0);
    run(&mut store, &q, vec![row(2, "a")], 0);
    let o = run(&mut store, &q, vec![row(2, "a")], 7);
    assert_eq!(diff_of(&o), (0, vec![row(2, "a")], vec![]));
    assert_eq!(o.item.unwrap().epoch, 7);
    assert_eq!(
        store.get_text(Domain::Queries, "qepoch").unwrap().unwrap(),
        "7"
    );
}

#[test]
fn removed_false_hides_removals_but_state_advances() {
    let mut store = Store::in_memory().unwrap();
    let q = ScheduledQuery {
        removed: false,
        ..ScheduledQuery::new("q", "SELECT *")
    };
    run(&mut store, &q, vec![row(1, "a"), row(2, "b")], 0);
    let only_removal = run(&mut store, &q, vec![row(1, "a")], 0);
    assert!(only_removal.item.is_none());
    assert_eq!(
        store
            .get_text(Domain::Queries, "qcounter")
            .unwrap()
            .unwrap(),
        "1"
    );
    let o = run(&mut store, &q, vec![row(3, "c")], 0);
    assert_eq!(diff_of(&o), (2, vec![row(3, "c")], vec![]));
}

#[test]
fn snapshots_keep_no_state_and_are_not_escaped() {
    let mut store = Store::in_memory().unwrap();
    let q = ScheduledQuery {
        snapshot: true,
        ..ScheduledQuery::new("snap", "SELECT *")
    };
    for _ in 0..2 {
        let o = run(&mut store, &q, vec![row(1, "tab\there")], 0);
        let item = o.item.unwrap();
        assert_eq!(item.counter, 0);
        assert_eq!(item.payload, Payload::Snapshot(vec![row(1, "tab\there")]));
        assert!(o.state.is_empty());
    }
    assert!(store.scan(Domain::Queries, "").unwrap().is_empty());
}

#[test]
fn differential_strings_are_escaped_before_diffing_and_storing() {
    let mut store = Store::in_memory().unwrap();
    let q = ScheduledQuery::new("q", "SELECT *");
    let mut raw = row(1, "x");
    raw.insert("b".into(), Value::Blob(vec![0xff, b'z']));
    raw.insert("s".into(), Value::Text("a\nb".into()));
    let o = run(&mut store, &q, vec![raw.clone()], 0);
    let (_, added, _) = diff_of(&o);
    assert_eq!(added[0]["s"], Value::Text("a\\x0Ab".into()));
    assert_eq!(added[0]["b"], Value::Text("\\xFFz".into()));
    // The same raw row again is unchanged: stored rows are in escaped form too.
    assert!(run(&mut store, &q, vec![raw], 0).item.is_none());
}

#[test]
fn changed_sql_text_keeps_diffing_against_the_old_rows() {
    let mut store = Store::in_memory().unwrap();
    run(
        &mut store,
        &ScheduledQuery::new("q", "SELECT 1"),
        vec![row(1, "a")],
        0,
    );
    let q2 = ScheduledQuery::new("q", "SELECT 1 -- reworded");
    assert!(run(&mut store, &q2, vec![row(1, "a")], 0).item.is_none());
    assert_eq!(
        store.get_text(Domain::Queries, "query.q").unwrap().unwrap(),
        "SELECT 1 -- reworded"
    );
    let o = run(&mut store, &q2, vec![row(1, "a"), row(2, "b")], 0);
    assert_eq!(diff_of(&o), (1, vec![row(2, "b")], vec![]));
}

#[test]
fn an_outcome_cannot_be_committed_twice() {
    let mut store = Store::in_memory().unwrap();
    let q = ScheduledQuery::new("q", "SELECT *");
    run(&mut store, &q, vec![row(1, "a")], 0);
    let o = compute(&store, &q, vec![row(2, "a")], Run::default()).unwrap();
    o.commit(&mut store).unwrap();
    assert!(matches!(o.commit(&mut store), Err(StoreError::Conflict(_))));
    assert_eq!(
        store
            .get_text(Domain::Queries, "qcounter")
            .unwrap()
            .unwrap(),
        "1"
    );
}

#[test]
fn unreadable_stored_rows_start_the_query_afresh() {
    let mut store = Store::in_memory().unwrap();
    let q = ScheduledQuery::new("q", "SELECT *");
    run(&mut store, &q, vec![row(1, "a")], 0);
    store.put(Domain::Queries, "q", b"not json").unwrap();
    let o = run(&mut store, &q, vec![row(1, "a")], 0);
    assert_eq!(diff_of(&o), (0, vec![row(1, "a")], vec![]));
}

#[test]
fn stale_unscheduled_results_expire() {
    let mut store = Store::in_memory().unwrap();
    for name in ["kept", "old", "recent"] {
        run(
            &mut store,
            &ScheduledQuery::new(name, "SELECT 1"),
            vec![row(1, "a")],
            0,
        );
    }
    let now = 1_700_000_000 + STALE_AFTER_SECS + 1;
    store
        .put(
            Domain::Configurations,
            "timestamp.recent",
            now.to_string().as_bytes(),
        )
        .unwrap();
    let gone = expire_stale(&mut store, |n| n == "kept", now).unwrap();
    assert_eq!(gone, ["old"]);
    assert!(store.get(Domain::Queries, "old").unwrap().is_none());
    assert!(store.get(Domain::Queries, "oldcounter").unwrap().is_none());
    assert!(store.get(Domain::Queries, "kept").unwrap().is_some());
    assert!(store.get(Domain::Queries, "recent").unwrap().is_some());
}

#[test]
fn evented_runs_log_every_row_as_added_keep_no_rows_and_count_runs_with_rows() {
    let mut store = Store::in_memory().unwrap();
    let q = ScheduledQuery {
        evented: true,
        ..ScheduledQuery::new("fim", "select * from file_events")
    };
    let o = run(&mut store, &q, vec![row(1, "a")], 0);
    assert_eq!(diff_of(&o), (0, vec![row(1, "a")], vec![]));
    // The same row again is a new event, not an unchanged result.
    let o = run(&mut store, &q, vec![row(1, "a")], 0);
    assert_eq!(diff_of(&o), (1, vec![row(1, "a")], vec![]));
    let o = run(&mut store, &q, vec![], 0);
    assert!(o.item.is_none(), "no new events, nothing logged");
    assert_eq!(
        store.get_text(Domain::Queries, "fim").unwrap().unwrap(),
        "[]",
        "no rows are kept to diff against"
    );
    let o = run(&mut store, &q, vec![row(2, "b")], 0);
    assert_eq!(diff_of(&o).0, 2);
    let o = run(&mut store, &q, vec![row(3, "c")], 7);
    assert_eq!(diff_of(&o).0, 1, "a new epoch starts the counter at 1");
}

#[test]
fn event_marks_are_written_with_the_state() {
    let mut store = Store::in_memory().unwrap();
    let q = ScheduledQuery {
        evented: true,
        ..ScheduledQuery::new("fim", "select * from file_events")
    };
    let outcome = compute(&store, &q, vec![], Run::default()).unwrap();
    let state = outcome
        .state
        .with_event_marks(vec![("optimize_eid.fim.file_events".into(), 41)]);
    state.commit(&mut store).unwrap();
    assert_eq!(
        store
            .get_text(Domain::Events, "optimize_eid.fim.file_events")
            .unwrap()
            .as_deref(),
        Some("41")
    );
}
