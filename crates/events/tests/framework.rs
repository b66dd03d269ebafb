//! The framework end to end, through SQL: a publisher on the hub's thread adds events,
//! an evented table answers from the store with `time` constraints, and a scheduled
//! query's marks make it read only new events, also after the hub is reopened.

use oxquery_engine::{Engine, TableFilter};
use oxquery_events::{
    EventHub, EventRow, HubSettings, Publisher, PublisherContext, READ_TIMEOUT, Subscriber,
};
use oxquery_store::{Domain, Store};
use oxquery_table::{InstanceInfo, TableDef, Value};
use std::sync::mpsc::{Receiver, Sender, channel};
use std::sync::{Arc, Mutex};

mod test_events {
    pub use oxquery_table::scan_events as generate;
    use oxquery_table::table;

    table! {
        name: "test_events",
        description: "Events a test publishes.",
        attributes: [EVENT_BASED],
        columns: {
            message: Text [] "What the test sent",
            time: BigInt [ADDITIONAL] "Event time",
            eid: Text [HIDDEN] "Event id",
        },
    }
}

/// Publishes what the test sends on a channel.
struct ChannelPublisher {
    events: Receiver<(String, Option<i64>)>,
    subscriber: Subscriber,
}

impl Publisher for ChannelPublisher {
    fn name(&self) -> &'static str {
        "test"
    }
    fn subscribers(&self) -> Vec<String> {
        vec![self.subscriber.name().to_owned()]
    }
    fn run(&mut self, ctx: &PublisherContext) -> Result<(), String> {
        while !ctx.stopping() {
            match self.events.recv_timeout(READ_TIMEOUT) {
                Ok((message, time)) => {
                    let mut row = EventRow::new(&test_events::SPEC);
                    row.set(test_events::Col::message, message);
                    if let Some(t) = time {
                        row.set(test_events::Col::time, t);
                    }
                    self.subscriber.add(row.into_values());
                    ctx.published(1);
                }
                Err(std::sync::mpsc::RecvTimeoutError::Timeout) => {}
                Err(e) => return Err(e.to_string()),
            }
        }
        Ok(())
    }
}

static TABLES: [&TableDef; 1] = [&test_events::TABLE];

fn start(store: Arc<Mutex<Store>>) -> (EventHub, Sender<(String, Option<i64>)>, Engine) {
    let hub = EventHub::new(store, HubSettings::default());
    let subscriber = hub
        .subscribe(&test_events::SPEC, "test", None)
        .expect("enabled");
    let (send, events) = channel();
    hub.start(vec![Box::new(ChannelPublisher { events, subscriber })]);
    let engine =
        Engine::new(&TABLES, &TableFilter::default(), InstanceInfo::default()).expect("engine");
    engine.set_event_reader(Some(Arc::new(hub.clone())));
    (hub, send, engine)
}

fn messages(engine: &Engine, sql: &str) -> Vec<String> {
    engine
        .query(sql)
        .unwrap()
        .rows
        .into_iter()
        .map(|r| r[0].as_text().unwrap().into_owned())
        .collect()
}

/// Waits until the table holds `n` events (the publisher runs on its own thread).
fn wait_for(engine: &Engine, n: usize) {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while messages(engine, "select message from test_events").len() < n {
        assert!(
            std::time::Instant::now() < deadline,
            "{n} events never arrived"
        );
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
}

#[test]
fn time_constraints_select_events_and_the_eid_is_a_padded_counter() {
    let (hub, send, engine) = start(Arc::new(Mutex::new(Store::in_memory().unwrap())));
    // Recent times: events older than --events_expiry (an hour) would be dropped.
    let base = oxquery_events::unix_now() - 300;
    for (m, t) in [("a", base + 100), ("b", base + 200), ("c", base + 300)] {
        send.send((m.into(), Some(t))).unwrap();
    }
    wait_for(&engine, 3);
    let select = |cmp: &str, t: i64| {
        messages(
            &engine,
            &format!(
                "select message from test_events where time {cmp} {}",
                base + t
            ),
        )
    };
    assert_eq!(select(">=", 200), ["b", "c"]);
    assert_eq!(select("<", 200), ["a"]);
    assert_eq!(select("=", 300), ["c"]);
    let eids = engine.query("select eid from test_events").unwrap().rows;
    assert_eq!(eids[2][0], Value::from("0000000002"));
    let status = oxquery_table::EventReader::status(&hub);
    let publisher = status.iter().find(|s| s.kind == "publisher").unwrap();
    assert_eq!((publisher.events, publisher.active), (3, 1));
    let subscriber = status.iter().find(|s| s.kind == "subscriber").unwrap();
    assert_eq!(
        (
            subscriber.name.as_str(),
            subscriber.events,
            subscriber.dropped
        ),
        ("test_events", 3, 0)
    );
    hub.stop();
}

#[test]
fn a_scheduled_query_reads_only_events_after_its_stored_mark_across_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let store = Arc::new(Mutex::new(
        Store::open(&dir.path().join("osquery.db")).unwrap(),
    ));
    let scheduled = |engine: &Engine| {
        let run = engine.query_run();
        run.begin("pack_x_q");
        let got = messages(engine, "select message from test_events");
        let marks = run.end().unwrap();
        assert!(marks.evented);
        // What the daemon does with the results: store the marks in their transaction.
        store
            .lock()
            .unwrap()
            .transaction(|tx| {
                for (sub, eid) in &marks.read_through {
                    let key = EventHub::mark_key("pack_x_q", sub);
                    tx.put(Domain::Events, &key, eid.to_string().as_bytes())?;
                }
                Ok(())
            })
            .unwrap();
        got
    };

    let (hub, send, engine) = start(Arc::clone(&store));
    send.send(("first".into(), None)).unwrap();
    wait_for(&engine, 1);
    assert_eq!(scheduled(&engine), ["first"]);
    assert!(
        scheduled(&engine).is_empty(),
        "nothing new since the last run"
    );
    send.send(("second".into(), None)).unwrap();
    wait_for(&engine, 2);
    assert_eq!(scheduled(&engine), ["second"]);
    assert_eq!(
        messages(&engine, "select message from test_events"),
        ["first", "second"],
        "an ad hoc query sees every buffered event"
    );
    hub.stop();
    drop((engine, send));

    let (hub, send, engine) = start(Arc::clone(&store));
    assert!(scheduled(&engine).is_empty(), "after a restart too");
    send.send(("third".into(), None)).unwrap();
    wait_for(&engine, 3);
    assert_eq!(scheduled(&engine), ["third"]);
    hub.stop();
}

#[test]
fn without_a_hub_an_evented_table_is_empty() {
    let engine = Engine::new(&TABLES, &TableFilter::default(), InstanceInfo::default()).unwrap();
    assert!(messages(&engine, "select message from test_events").is_empty());
}
