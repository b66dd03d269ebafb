//! The audit publisher end to end, on this machine's kernel (root): it takes the audit
//! socket, installs its rules, and process_events, socket_events and user_events answer
//! through SQL with an exec, a loopback connect and a user message the test caused; when
//! the hub stops, the kernel's audit status and rules are as before. And with a
//! stand-in audit daemon (this test binary re-executed as `.../auditd`) holding the
//! socket, the publisher leaves it, says so, and takes it only once the daemon is gone.
//!
//! The tests change the kernel's global audit state, so they hold [`AUDIT_STATE`].

use oxquery_engine::{Engine, TableFilter};
use oxquery_events::publishers::audit::{AuditPublisher, AuditSettings};
use oxquery_events::publishers::proc_connector::{ConnectorGate, ConnectorPublisher};
use oxquery_events::tables::{
    process_events, process_file_events, seccomp_events, socket_events, user_events,
};
use oxquery_events::{EventHub, HubSettings};
use oxquery_store::Store;
use oxquery_sys::audit::{AuditSession, AuditSocket, AuditStatus, TakeOver};
use oxquery_table::{InstanceInfo, TableDef, Value};
use oxquery_test_support::{missing, require};
use std::io::Read;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

static TABLES: [&TableDef; 5] = [
    &process_events::TABLE,
    &process_file_events::TABLE,
    &socket_events::TABLE,
    &user_events::TABLE,
    &seccomp_events::TABLE,
];

static AUDIT_STATE: Mutex<()> = Mutex::new(());

fn lock() -> MutexGuard<'static, ()> {
    AUDIT_STATE.lock().unwrap_or_else(|e| e.into_inner())
}

/// Set in the environment of the stand-in audit daemon.
const STAND_IN_ENV: &str = "OXQUERY_EVENTS_AUDIT_STAND_IN";

struct StopOnDrop(EventHub);

impl Drop for StopOnDrop {
    fn drop(&mut self) {
        self.0.stop();
    }
}

const SOCKETS: socket_events::SocketOptions = socket_events::SocketOptions {
    failed: false,
    accept: true,
    null_accept: false,
    unix: false,
};

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
        assert!(Instant::now() < deadline, "no row for {sql}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn live_exec_connect_and_user_message_reach_the_tables_and_audit_is_restored() {
    let _guard = lock();
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
        force_reconfigure: false,
        backlog_limit: 8192,
        backlog_wait_time: 0,
        persist: true,
        take_over: TakeOver::NonDaemons,
        process: process_events::ProcessOptions::default(),
        sockets: SOCKETS,
        files: process_file_events::FileOptions::default(),
        retry_every: Duration::from_millis(200),
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

/// Messages (debug and up) logged by the code under test, to see what the publisher said.
struct Captured(Mutex<Vec<String>>);

impl log::Log for Captured {
    fn enabled(&self, metadata: &log::Metadata<'_>) -> bool {
        metadata.level() <= log::Level::Debug
    }
    fn log(&self, record: &log::Record<'_>) {
        if self.enabled(record.metadata()) {
            self.0
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .push(record.args().to_string());
        }
    }
    fn flush(&self) {}
}

static CAPTURED: Captured = Captured(Mutex::new(Vec::new()));

fn warnings() -> Vec<String> {
    let _ = log::set_logger(&CAPTURED);
    log::set_max_level(log::LevelFilter::Debug);
    CAPTURED.0.lock().unwrap_or_else(|e| e.into_inner()).clone()
}

/// The stand-in audit daemon: this binary re-executed as `<dir>/auditd`; it holds the
/// audit socket until its stdin closes.
struct StandIn {
    child: Child,
    dir: PathBuf,
}

impl StandIn {
    fn start() -> StandIn {
        let exe = std::env::current_exe().unwrap();
        let dir = exe
            .parent()
            .unwrap()
            .join(format!("events-audit-stand-in-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir(&dir).unwrap();
        let link = dir.join("auditd");
        if std::fs::hard_link(&exe, &link).is_err() {
            std::fs::copy(&exe, &link).unwrap();
        }
        let child = Command::new(&link)
            .args([
                "--exact",
                "live_publisher_leaves_the_socket_to_a_live_audit_daemon",
                "--nocapture",
                "--test-threads=1",
            ])
            .env(STAND_IN_ENV, "1")
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .spawn()
            .unwrap();
        StandIn { child, dir }
    }

    /// Closes its stdin and waits for it to release the socket and exit.
    fn stop(&mut self) {
        drop(self.child.stdin.take());
        let exited = oxquery_test_support::wait_until(Duration::from_secs(10), || {
            matches!(self.child.try_wait(), Ok(Some(_)))
        });
        if !exited {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

impl Drop for StandIn {
    fn drop(&mut self) {
        self.stop();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// The stand-in's role, through the public API: take the free socket, hold it until
/// stdin closes, then the session's drop gives it back.
fn stand_in_main() {
    let mut session = AuditSession::open().expect("stand-in session");
    match session.take_socket(TakeOver::Never).expect("stand-in take") {
        oxquery_sys::audit::Ownership::Taken { .. } => {}
        other => panic!("the stand-in could not take the socket: {other:?}"),
    }
    let _ = std::io::stdin().read_to_end(&mut Vec::new());
}

#[test]
fn live_publisher_leaves_the_socket_to_a_live_audit_daemon() {
    if std::env::var_os(STAND_IN_ENV).is_some() {
        stand_in_main();
        return;
    }
    let _guard = lock();
    let Some(mut observer) = require(
        "audit netlink socket (root, initial namespaces)",
        AuditSession::open(),
    ) else {
        return;
    };
    if let Some(owner) = observer.owner().unwrap()
        && owner.alive
    {
        missing::<()>(&format!(
            "the audit socket is held by live pid {}",
            owner.pid
        ));
        return;
    }
    let status_before = observer.status().unwrap();
    let rules_before = observer.rules().unwrap();
    let _ = warnings();

    let mut stand_in = StandIn::start();
    let stand_in_pid = stand_in.child.id();
    assert!(
        oxquery_test_support::wait_until(Duration::from_secs(20), || observer
            .status()
            .is_ok_and(|s| s.pid == stand_in_pid)),
        "the stand-in never registered"
    );

    let hub = EventHub::new(
        Arc::new(Mutex::new(Store::in_memory().unwrap())),
        HubSettings::default(),
    );
    let settings_ = AuditSettings {
        allow_config: true,
        force_reconfigure: false,
        backlog_limit: 0,
        backlog_wait_time: 0,
        persist: true,
        take_over: TakeOver::NonDaemons,
        process: process_events::ProcessOptions::default(),
        sockets: SOCKETS,
        files: process_file_events::FileOptions::default(),
        retry_every: Duration::from_millis(200),
    };
    let publisher = AuditPublisher::new(
        settings_,
        hub.subscribe(&process_events::SPEC, process_events::PUBLISHER, None),
        None,
        None,
    );
    let serving = publisher.serving();
    // The process-events connector fills in while audit does not serve (the issue's
    // coexistence rule), as `oxquery_events::publishers` wires it.
    let connector = ConnectorPublisher::new(
        &hub,
        &process_events::SPEC,
        &oxquery_flags::Flags::new(),
        ConnectorGate::unless(publisher.serving()),
    )
    .expect("the connector fills process_events");
    hub.start(vec![Box::new(publisher), Box::new(connector)]);
    let hub = StopOnDrop(hub);
    let engine =
        Engine::new(&TABLES, &TableFilter::default(), InstanceInfo::default()).expect("engine");
    engine.set_event_reader(Some(Arc::new(hub.0.clone())));

    // The publisher says once that it leaves the socket to the daemon...
    let said = format!("belongs to pid {stand_in_pid}");
    assert!(
        oxquery_test_support::wait_until(Duration::from_secs(20), || warnings()
            .iter()
            .any(|w| w.contains(&said) && w.contains("an audit daemon"))),
        "no warning naming the daemon; warnings: {:?}",
        warnings()
    );
    // ...by its own choice (the kernel was never asked, so never refused)...
    assert!(!warnings().iter().any(|w| w.contains("refused")));
    // ...and has neither taken it nor installed rules, nor says it serves events.
    assert!(!serving.load(std::sync::atomic::Ordering::SeqCst));
    assert_eq!(observer.status().unwrap().pid, stand_in_pid);
    assert_eq!(observer.rules().unwrap(), rules_before);
    // Looking again (every 200 ms here) it does not say it again. (A slow machine makes
    // this check weaker, never wrong.)
    let looks = |w: &Vec<String>| w.iter().filter(|w| w.contains(&said)).count();
    std::thread::sleep(Duration::from_millis(600));
    assert_eq!(looks(&warnings()), 1);

    // Meanwhile process events still arrive, from the kernel's process connector: a
    // child that sleeps a little, so /proc still shows its command line when read.
    let marker = format!("0.{}", 300 + std::process::id() % 600);
    let mut child = Command::new("/bin/sleep").arg(&marker).spawn().unwrap();
    let child_pid = child.id();
    assert!(child.wait().unwrap().success());
    let query = format!(
        "select pid, cmdline from process_events where pid = {child_pid} and cmdline like '%sleep {marker}'"
    );
    assert!(
        oxquery_test_support::wait_until(Duration::from_secs(20), || !engine
            .query(&query)
            .unwrap()
            .rows
            .is_empty()),
        "no process event for the child {child_pid} while the daemon holds the socket"
    );
    assert_eq!(
        observer.status().unwrap().pid,
        stand_in_pid,
        "the socket stayed the daemon's"
    );

    // The daemon goes: the publisher takes the free socket and events flow.
    stand_in.stop();
    let me = std::process::id();
    assert!(
        oxquery_test_support::wait_until(Duration::from_secs(20), || observer
            .status()
            .is_ok_and(|s| s.pid == me)),
        "the publisher never took the freed socket"
    );
    assert!(oxquery_test_support::wait_until(
        Duration::from_secs(20),
        || observer
            .rules()
            .is_ok_and(|r| r.len() == rules_before.len() + 1)
    ));
    assert!(oxquery_test_support::wait_until(
        Duration::from_secs(20),
        || serving.load(std::sync::atomic::Ordering::SeqCst)
    ));
    let marker = format!("oxquery-after-daemon-{me}");
    let mut child = Command::new("/bin/true").arg(&marker).spawn().unwrap();
    let child_pid = child.id();
    assert!(child.wait().unwrap().success());
    let row = first_row(
        &engine,
        &format!("select pid from process_events where cmdline like '%{marker}'"),
    );
    assert_eq!(row, [Value::from(child_pid)]);

    drop(hub);
    assert!(!serving.load(std::sync::atomic::Ordering::SeqCst));
    assert_eq!(
        settings(&observer.status().unwrap()),
        settings(&status_before)
    );
    assert_eq!(observer.rules().unwrap(), rules_before);
}

/// Set in the environment of the child that installs a logging seccomp filter.
const SECCOMP_CHILD_ENV: &str = "OXQUERY_EVENTS_SECCOMP_CHILD";

/// The child's role: a seccomp filter that logs (`SECCOMP_RET_LOG`) `getppid` and allows
/// everything, then one `getppid`.
fn seccomp_child_main() {
    // Classic BPF, as <linux/filter.h> and <linux/seccomp.h> define it.
    const BPF_LD_W_ABS: u16 = 0x20;
    const BPF_JMP_JEQ_K: u16 = 0x15;
    const BPF_RET_K: u16 = 0x06;
    const SECCOMP_RET_LOG: u32 = 0x7ffc_0000;
    const SECCOMP_RET_ALLOW: u32 = 0x7fff_0000;
    const SECCOMP_SET_MODE_FILTER: libc::c_long = 1;
    let insn = |code, jt, jf, k| libc::sock_filter { code, jt, jf, k };
    let mut filter = [
        // seccomp_data.nr is at offset 0.
        insn(BPF_LD_W_ABS, 0, 0, 0),
        insn(BPF_JMP_JEQ_K, 0, 1, libc::SYS_getppid as u32),
        insn(BPF_RET_K, 0, 0, SECCOMP_RET_LOG),
        insn(BPF_RET_K, 0, 0, SECCOMP_RET_ALLOW),
    ];
    let program = libc::sock_fprog {
        len: filter.len() as u16,
        filter: filter.as_mut_ptr(),
    };
    // SAFETY: prctl and seccomp with a valid filter program that outlives the calls.
    unsafe {
        assert_eq!(libc::prctl(libc::PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0), 0);
        assert_eq!(
            libc::syscall(
                libc::SYS_seccomp,
                SECCOMP_SET_MODE_FILTER,
                0,
                &program as *const libc::sock_fprog
            ),
            0,
            "seccomp: {}",
            std::io::Error::last_os_error()
        );
        libc::syscall(libc::SYS_getppid);
    }
}

#[test]
fn live_seccomp_log_reaches_seccomp_events() {
    if std::env::var_os(SECCOMP_CHILD_ENV).is_some() {
        seccomp_child_main();
        return;
    }
    let _guard = lock();
    let Some(mut observer) = require(
        "audit netlink socket (root, initial namespaces)",
        AuditSession::open(),
    ) else {
        return;
    };
    if let Some(owner) = observer.owner().unwrap()
        && owner.alive
    {
        missing::<()>(&format!(
            "the audit socket is held by live pid {}",
            owner.pid
        ));
        return;
    }
    let status_before = observer.status().unwrap();
    let rules_before = observer.rules().unwrap();

    let hub = EventHub::new(
        Arc::new(Mutex::new(Store::in_memory().unwrap())),
        HubSettings::default(),
    );
    let settings_ = AuditSettings {
        allow_config: true,
        force_reconfigure: false,
        backlog_limit: 0,
        backlog_wait_time: 0,
        persist: true,
        take_over: TakeOver::NonDaemons,
        process: process_events::ProcessOptions::default(),
        sockets: SOCKETS,
        files: process_file_events::FileOptions::default(),
        retry_every: Duration::from_millis(200),
    };
    let mut publisher = AuditPublisher::new(settings_, None, None, None);
    publisher.seccomp = hub.subscribe(&seccomp_events::SPEC, seccomp_events::PUBLISHER, None);
    hub.start(vec![Box::new(publisher)]);
    let hub = StopOnDrop(hub);
    let engine =
        Engine::new(&TABLES, &TableFilter::default(), InstanceInfo::default()).expect("engine");
    engine.set_event_reader(Some(Arc::new(hub.0.clone())));
    let me = std::process::id();
    assert!(
        oxquery_test_support::wait_until(Duration::from_secs(20), || observer
            .status()
            .is_ok_and(|s| s.pid == me && s.enabled == 1)),
        "the publisher never took the socket"
    );

    let exe = std::env::current_exe().unwrap();
    let mut child = Command::new(&exe)
        .args([
            "--exact",
            "live_seccomp_log_reaches_seccomp_events",
            "--nocapture",
            "--test-threads=1",
        ])
        .env(SECCOMP_CHILD_ENV, "1")
        .stdout(Stdio::null())
        .spawn()
        .unwrap();
    let child_pid = child.id();
    assert!(child.wait().unwrap().success(), "the seccomp child failed");

    let row = first_row(
        &engine,
        &format!(
            "select syscall, code, arch, exe, uid from seccomp_events where pid = {child_pid}"
        ),
    );
    assert_eq!(
        row,
        [
            Value::from(libc::SYS_getppid.to_string()),
            Value::from("0x7ffc0000"),
            Value::from(if cfg!(target_arch = "aarch64") {
                "aarch64"
            } else {
                "x86_64"
            }),
            Value::from(exe.as_path()),
            Value::from(unsafe { libc::getuid() }),
        ]
    );

    drop(hub);
    assert_eq!(
        settings(&observer.status().unwrap()),
        settings(&status_before)
    );
    assert_eq!(observer.rules().unwrap(), rules_before);
}

#[test]
fn live_file_operations_reach_process_file_events() {
    let _guard = lock();
    let Some(mut observer) = require(
        "audit netlink socket (root, initial namespaces)",
        AuditSession::open(),
    ) else {
        return;
    };
    if let Some(owner) = observer.owner().unwrap()
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
    let Some(mv) = oxquery_test_support::require_tool("mv") else {
        return;
    };
    let status_before = observer.status().unwrap();
    let rules_before = observer.rules().unwrap();

    let hub = EventHub::new(
        Arc::new(Mutex::new(Store::in_memory().unwrap())),
        HubSettings::default(),
    );
    let settings_ = AuditSettings {
        allow_config: true,
        force_reconfigure: false,
        backlog_limit: 0,
        backlog_wait_time: 0,
        persist: true,
        take_over: TakeOver::NonDaemons,
        process: process_events::ProcessOptions::default(),
        sockets: SOCKETS,
        files: process_file_events::FileOptions::default(),
        retry_every: Duration::from_millis(200),
    };
    let mut publisher = AuditPublisher::new(settings_, None, None, None);
    publisher.files = hub.subscribe(
        &process_file_events::SPEC,
        process_file_events::PUBLISHER,
        None,
    );
    hub.start(vec![Box::new(publisher)]);
    let hub = StopOnDrop(hub);
    let engine =
        Engine::new(&TABLES, &TableFilter::default(), InstanceInfo::default()).expect("engine");
    engine.set_event_reader(Some(Arc::new(hub.0.clone())));
    assert!(
        oxquery_test_support::wait_until(Duration::from_secs(20), || observer
            .rules()
            .is_ok_and(|r| r.len() == rules_before.len() + 1)),
        "the publisher never installed its rule"
    );

    // A child (this process, the audit daemon, is not audited) creates a file and
    // renames it, from a directory of the test's own.
    let dir = tempfile::tempdir().unwrap();
    let dir = dir.path().canonicalize().unwrap();
    let status = Command::new(&bash)
        .args([
            "-c",
            &format!("echo x > created && {} created renamed", mv.display()),
        ])
        .current_dir(&dir)
        .status()
        .unwrap();
    assert!(status.success());

    let created = dir.join("created");
    let renamed = dir.join("renamed");
    let row = first_row(
        &engine,
        &format!(
            "select operation, dest_path, partial from process_file_events where path = '{}' and operation = 'open'",
            created.display()
        ),
    );
    assert_eq!(
        row,
        [Value::from("open"), Value::from(""), Value::from("false")]
    );
    let row = first_row(
        &engine,
        &format!(
            "select executable, dest_path, cwd from process_file_events where path = '{}' and operation = 'rename'",
            created.display()
        ),
    );
    assert_eq!(
        row,
        [
            Value::from(std::fs::canonicalize(&mv).unwrap().as_path()),
            Value::from(renamed.as_path()),
            Value::from(dir.as_path()),
        ]
    );

    drop(hub);
    assert_eq!(
        settings(&observer.status().unwrap()),
        settings(&status_before)
    );
    assert_eq!(observer.rules().unwrap(), rules_before);
}
