//! The audit publisher end to end, on this machine's kernel (root): it takes the audit
//! socket, installs its rules, and process_events, socket_events and user_events answer
//! through SQL with an exec, a loopback connect and a user message the test caused; when
//! the hub stops, the kernel's audit status and rules are as before.

use oxquery_engine::{Engine, TableFilter};
use oxquery_events::publishers::audit::{AuditPublisher, AuditSettings};
use oxquery_events::tables::{process_events, socket_events, user_events};
use oxquery_events::{EventHub, HubSettings};
use oxquery_store::Store;
use oxquery_sys::audit::{AuditSession, AuditSocket, AuditStatus, TakeOver};
use oxquery_table::{InstanceInfo, TableDef, Value};
use oxquery_test_support::{missing, require};
use std::process::Command;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

static TABLES: [&TableDef; 3] = [
    &process_events::TABLE,
    &socket_events::TABLE,
    &user_events::TABLE,
];

struct StopOnDrop(EventHub);

impl Drop for StopOnDrop {
    fn drop(&mut self) {
        self.0.stop();
    }
}

fn settings(s: &AuditStatus) -> (u32, u32, u32, u32) {
    (s.enabled, s.pid, s.backlog_limit, s.backlog_wait_time)
}

/// Polls `sql` until it returns a row, for up to 20 s.
fn first_row(engine: &Engine, sql: &str) -> Vec<Value> {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        if let Some(row) = engine.query(sql).unwrap().rows.into_iter().next() {
            return row;
        }
        if Instant::now() >= deadline {
            let all = engine.query("select * from socket_events").unwrap().rows;
            panic!("no row for {sql}; socket_events: {all:?}");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn live_exec_connect_and_user_message_reach_the_tables_and_audit_is_restored() {
    let Some(mut before) = require(
        "audit netlink socket (root, initial namespaces)",
        AuditSession::open(),
    ) else {
        return;
    };
    if let Some(owner) = before.owner().unwrap()
        && owner.alive
    {
        missing::<()>(&format!(
            "the audit socket is held by live pid {}",
            owner.pid
        ));
        return;
    }
    let Some(bash) = oxquery_test_support::require_tool("bash") else {
        return;
    };
    let status_before = before.status().unwrap();
    let rules_before = before.rules().unwrap();
    drop(before);

    let hub = EventHub::new(
        Arc::new(Mutex::new(Store::in_memory().unwrap())),
        HubSettings::default(),
    );
    let subscribe = |spec| hub.subscribe(spec, process_events::PUBLISHER, None);
    let settings_ = AuditSettings {
        allow_config: true,
        backlog_limit: 8192,
        backlog_wait_time: 0,
        persist: true,
        take_over: TakeOver::NonDaemons,
        process: process_events::ProcessOptions::default(),
        sockets: socket_events::SocketOptions {
            failed: false,
            accept: true,
            null_accept: false,
            unix: false,
        },
    };
    let publisher = AuditPublisher::new(
        settings_,
        subscribe(&process_events::SPEC),
        subscribe(&socket_events::SPEC),
        subscribe(&user_events::SPEC),
    );
    hub.start(vec![Box::new(publisher)]);
    // Stopping the hub joins the publisher, whose session restores the kernel state:
    // also when an assertion below fails.
    let hub = StopOnDrop(hub);
    let engine =
        Engine::new(&TABLES, &TableFilter::default(), InstanceInfo::default()).expect("engine");
    engine.set_event_reader(Some(Arc::new(hub.0.clone())));

    // Wait until the publisher holds the socket and its rules are in.
    let mut observer = AuditSession::open().unwrap();
    assert!(
        oxquery_test_support::wait_until(Duration::from_secs(20), || {
            observer
                .rules()
                .is_ok_and(|r| r.len() == rules_before.len() + 2)
        }),
        "the publisher never installed its rules"
    );
    let during = observer.status().unwrap();
    assert_eq!(during.enabled, 1);
    assert_eq!(during.backlog_limit, 8192);

    let me = std::process::id();
    let marker = format!("oxquery-audit-publisher-{me}");
    let dir = tempfile::tempdir().unwrap();
    let cwd = dir.path().canonicalize().unwrap();
    let mut child = Command::new("/bin/true")
        .arg(&marker)
        .current_dir(&cwd)
        .spawn()
        .unwrap();
    let child_pid = child.id();
    assert!(child.wait().unwrap().success());

    // The kernel does not audit the audit daemon's own syscalls (this process, since the
    // publisher runs in it), so a child connects: bash's /dev/tcp.
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let mut connector = Command::new(&bash)
        .args(["-c", &format!("exec 3<>/dev/tcp/127.0.0.1/{port}")])
        .spawn()
        .unwrap();
    let connector_pid = connector.id();
    assert!(connector.wait().unwrap().success());

    let mut sender = AuditSocket::open().unwrap();
    sender
        .send_user_message(
            1100,
            &format!("op=PAM:authentication acct=\"{marker}\" exe=\"/usr/bin/su\" hostname=? addr=127.0.0.1 terminal=pts/9 res=success"),
        )
        .unwrap();

    let row = first_row(
        &engine,
        &format!(
            "select pid, parent, path, cmdline, cwd, syscall, uid from process_events where cmdline like '%{marker}'"
        ),
    );
    let true_path = std::fs::canonicalize("/bin/true").unwrap();
    assert_eq!(
        row,
        [
            Value::from(child_pid),
            Value::from(me),
            Value::from(true_path.as_path()),
            Value::from(format!("/bin/true {marker}")),
            Value::from(cwd.as_path()),
            Value::from("execve"),
            Value::from(unsafe { libc::getuid() }),
        ]
    );

    let row = first_row(
        &engine,
        &format!(
            "select pid, action, remote_address, family, status from socket_events where remote_port = {port}"
        ),
    );
    assert_eq!(
        row,
        [
            Value::from(connector_pid),
            Value::from("connect"),
            Value::from("127.0.0.1"),
            Value::from(2),
            Value::from("succeeded"),
        ]
    );

    let row = first_row(
        &engine,
        &format!(
            "select pid, type, path, address, terminal from user_events where message like '%{marker}%'"
        ),
    );
    assert_eq!(
        row,
        [
            Value::from(me),
            Value::from(1100),
            Value::from("/usr/bin/su"),
            Value::from("127.0.0.1"),
            Value::from("pts/9"),
        ]
    );

    drop(hub);
    assert_eq!(
        settings(&observer.status().unwrap()),
        settings(&status_before)
    );
    assert_eq!(observer.rules().unwrap(), rules_before);
}
