//! The audit publisher end to end, on this machine's kernel (root): it takes the audit
//! socket, installs its rules, and process_events, socket_events and user_events answer
//! through SQL with an exec, a loopback connect and a user message the test caused; when
//! the hub stops, the kernel's audit status and rules are as before. And with a
//! stand-in audit daemon (this test binary re-executed as `.../auditd`) holding the
//! socket, the publisher leaves it, says so, and takes it only once the daemon is gone.
//!
//! The tests change the kernel's global audit state, so they hold [`lock`].

use oxquery_engine::{Engine, TableFilter};
use oxquery_events::publishers::audit::{AuditPublisher, AuditSettings};
use oxquery_events::publishers::proc_connector::{ConnectorGate, ConnectorPublisher};
use oxquery_events::tables::{
    apparmor_events, process_events, process_file_events, seccomp_events, selinux_events,
    socket_events, user_events,
};
use oxquery_events::{EventHub, HubSettings, Publisher};
use oxquery_store::Store;
use oxquery_sys::audit::testing::{StandIn, free_session, is_stand_in, lock, rerun_test, settings};
use oxquery_sys::audit::{AuditRule, AuditSession, AuditSocket, AuditStatus, TakeOver};
use oxquery_table::{InstanceInfo, TableDef, Value};
use std::io::Read;
use std::process::Command;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

static TABLES: [&TableDef; 7] = [
    &apparmor_events::TABLE,
    &selinux_events::TABLE,
    &process_events::TABLE,
    &process_file_events::TABLE,
    &socket_events::TABLE,
    &user_events::TABLE,
    &seccomp_events::TABLE,
];

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

/// The publisher's settings here: it may configure audit, with `backlog_limit`.
fn audit_settings(backlog_limit: u32) -> AuditSettings {
    AuditSettings {
        allow_config: true,
        force_reconfigure: false,
        force_unconfigure: false,
        backlog_limit,
        backlog_wait_time: 0,
        persist: true,
        take_over: TakeOver::NonDaemons,
        process: process_events::ProcessOptions {
            env: true,
            ..Default::default()
        },
        sockets: SOCKETS,
        files: process_file_events::FileOptions::default(),
        retry_every: Duration::from_millis(200),
    }
}

fn new_hub() -> EventHub {
    EventHub::new(
        Arc::new(Mutex::new(Store::in_memory().unwrap())),
        HubSettings::default(),
    )
}

/// Starts `publishers` on `hub`, and an engine over the evented tables that reads it.
/// Stopping the hub (when the guard drops) joins the publishers, whose sessions restore
/// the kernel state: also when an assertion fails.
fn start(hub: EventHub, publishers: Vec<Box<dyn Publisher>>) -> (StopOnDrop, Engine) {
    hub.start(publishers);
    let hub = StopOnDrop(hub);
    let engine =
        Engine::new(&TABLES, &TableFilter::default(), InstanceInfo::default()).expect("engine");
    engine.set_event_reader(Some(Arc::new(hub.0.clone())));
    (hub, engine)
}

/// The kernel's audit settings and rules before a test.
struct AuditBefore {
    status: AuditStatus,
    rules: Vec<AuditRule>,
}

impl AuditBefore {
    fn read(session: &mut AuditSession) -> AuditBefore {
        AuditBefore {
            status: session.status().unwrap(),
            rules: session.rules().unwrap(),
        }
    }

    /// Asserts that `observer` sees them again.
    fn assert_restored(&self, observer: &mut AuditSession) {
        assert_eq!(
            settings(&observer.status().unwrap()),
            settings(&self.status)
        );
        assert_eq!(observer.rules().unwrap(), self.rules);
    }
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
    let Some(mut session) = free_session() else {
        return;
    };
    let Some(bash) = oxquery_test_support::require_tool("bash") else {
        return;
    };
    let before = AuditBefore::read(&mut session);
    drop(session);

    let hub = new_hub();
    let subscribe = |spec| hub.subscribe(spec, process_events::PUBLISHER, None);
    let publisher = AuditPublisher::new(
        audit_settings(8192),
        subscribe(&process_events::SPEC),
        subscribe(&socket_events::SPEC),
        subscribe(&user_events::SPEC),
    );
    let (hub, engine) = start(hub, vec![Box::new(publisher)]);

    // Wait until the publisher holds the socket and its rules are in.
    let mut observer = AuditSession::open().unwrap();
    assert!(
        oxquery_test_support::wait_until(Duration::from_secs(20), || {
            observer
                .rules()
                .is_ok_and(|r| r.len() == before.rules.len() + 2)
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

    // With --process_events_env, a program still running when its exec is read shows the
    // environment it was given.
    let mut sleeper = Command::new("/bin/sleep")
        .arg("0.4")
        .env_clear()
        .env("OXQUERY_ENV_MARK", &marker)
        .spawn()
        .unwrap();
    let sleeper_pid = sleeper.id();
    assert!(sleeper.wait().unwrap().success());
    let env = format!("OXQUERY_ENV_MARK={marker}");
    assert_eq!(
        first_row(
            &engine,
            &format!(
                "select env, env_count, env_size from process_events where pid = {sleeper_pid}"
            ),
        ),
        [
            Value::from(env.as_str()),
            Value::from(1),
            Value::from(env.len())
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
    before.assert_restored(&mut observer);
}

/// Waits until this process's publisher holds the audit socket with auditing on.
fn wait_for_the_socket(observer: &mut AuditSession) {
    let me = std::process::id();
    assert!(
        oxquery_test_support::wait_until(Duration::from_secs(20), || observer
            .status()
            .is_ok_and(|s| s.pid == me && s.enabled == 1)),
        "the publisher never took the socket"
    );
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
    if is_stand_in() {
        stand_in_main();
        return;
    }
    let _guard = lock();
    let Some(mut observer) = free_session() else {
        return;
    };
    let before = AuditBefore::read(&mut observer);
    let _ = warnings();

    let mut stand_in = StandIn::start("live_publisher_leaves_the_socket_to_a_live_audit_daemon");
    let stand_in_pid = stand_in.pid();
    assert!(
        oxquery_test_support::wait_until(Duration::from_secs(20), || observer
            .status()
            .is_ok_and(|s| s.pid == stand_in_pid)),
        "the stand-in never registered"
    );

    let hub = new_hub();
    let publisher = AuditPublisher::new(
        audit_settings(0),
        hub.subscribe(&process_events::SPEC, process_events::PUBLISHER, None),
        None,
        None,
    );
    let serving = publisher.serving();
    // The process-events connector fills in while audit does not serve (the issue's
    // coexistence rule), as `oxquery_events::publishers` wires it.
    let mut flags = oxquery_flags::Flags::new();
    flags.force(oxquery_flags::flag::process_events_env, true);
    let connector = ConnectorPublisher::new(
        &hub,
        &process_events::SPEC,
        &flags,
        ConnectorGate::unless(publisher.serving()),
    )
    .expect("the connector fills process_events");
    let (hub, engine) = start(hub, vec![Box::new(publisher), Box::new(connector)]);

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
    assert_eq!(observer.rules().unwrap(), before.rules);
    // Looking again (every 200 ms here) it does not say it again. (A slow machine makes
    // this check weaker, never wrong.)
    let looks = |w: &Vec<String>| w.iter().filter(|w| w.contains(&said)).count();
    std::thread::sleep(Duration::from_millis(600));
    assert_eq!(looks(&warnings()), 1);

    // Meanwhile process events still arrive, from the kernel's process connector: a
    // child that sleeps a little, so /proc still shows its command line when read.
    let marker = format!("0.{}", 300 + std::process::id() % 600);
    let mut child = Command::new("/bin/sleep")
        .arg(&marker)
        .env_clear()
        .env("OXQUERY_ENV_MARK", &marker)
        .spawn()
        .unwrap();
    let child_pid = child.id();
    assert!(child.wait().unwrap().success());
    // With --process_events_env, the connector path reads the environment too.
    let query = format!(
        "select pid, cmdline from process_events where pid = {child_pid} and cmdline like '%sleep {marker}' and env = 'OXQUERY_ENV_MARK={marker}' and env_count = 1"
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
            .is_ok_and(|r| r.len() == before.rules.len() + 1)
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
    before.assert_restored(&mut observer);
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
    let Some(mut observer) = free_session() else {
        return;
    };
    let before = AuditBefore::read(&mut observer);

    let hub = new_hub();
    let mut publisher = AuditPublisher::new(audit_settings(0), None, None, None);
    publisher.seccomp = hub.subscribe(&seccomp_events::SPEC, seccomp_events::PUBLISHER, None);
    let (hub, engine) = start(hub, vec![Box::new(publisher)]);
    wait_for_the_socket(&mut observer);

    let exe = std::env::current_exe().unwrap();
    let mut child = rerun_test(
        &exe,
        "live_seccomp_log_reaches_seccomp_events",
        SECCOMP_CHILD_ENV,
    )
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
            // Named on x86_64 (as osquery does), a number elsewhere.
            Value::from(if cfg!(target_arch = "x86_64") {
                "getppid".to_owned()
            } else {
                libc::SYS_getppid.to_string()
            }),
            Value::from("LOG"),
            Value::from(if cfg!(target_arch = "aarch64") {
                "AARCH64"
            } else {
                "X86_64"
            }),
            Value::from(exe.as_path()),
            Value::from(unsafe { libc::getuid() }),
        ]
    );

    drop(hub);
    before.assert_restored(&mut observer);
}

#[test]
fn live_file_operations_reach_process_file_events() {
    let _guard = lock();
    let Some(mut observer) = free_session() else {
        return;
    };
    let Some(bash) = oxquery_test_support::require_tool("bash") else {
        return;
    };
    let Some(mv) = oxquery_test_support::require_tool("mv") else {
        return;
    };
    let before = AuditBefore::read(&mut observer);

    let hub = new_hub();
    let mut publisher = AuditPublisher::new(audit_settings(0), None, None, None);
    publisher.files = hub.subscribe(
        &process_file_events::SPEC,
        process_file_events::PUBLISHER,
        None,
    );
    let (hub, engine) = start(hub, vec![Box::new(publisher)]);
    assert!(
        oxquery_test_support::wait_until(Duration::from_secs(20), || observer
            .rules()
            .is_ok_and(|r| r.len() == before.rules.len() + 1)),
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
    before.assert_restored(&mut observer);
}

/// This kernel runs neither SELinux nor AppArmor, so no kernel `AVC` can be caused; the
/// user-space object managers' path is real, though: D-Bus and systemd report their
/// SELinux and AppArmor decisions as `USER_AVC` records through the kernel's audit
/// user-message API, which is what this test sends.
#[test]
fn live_user_space_avc_decisions_reach_selinux_and_apparmor_events() {
    let _guard = lock();
    let Some(mut observer) = free_session() else {
        return;
    };
    let before = AuditBefore::read(&mut observer);

    let hub = new_hub();
    let mut publisher = AuditPublisher::new(audit_settings(0), None, None, None);
    publisher.selinux = hub.subscribe(&selinux_events::SPEC, selinux_events::PUBLISHER, None);
    publisher.apparmor = hub.subscribe(&apparmor_events::SPEC, apparmor_events::PUBLISHER, None);
    let (hub, engine) = start(hub, vec![Box::new(publisher)]);
    wait_for_the_socket(&mut observer);
    let me = std::process::id();

    let marker = format!("oxquery_avc_{me}");
    // The publisher holds the socket; a user message is sent on another one, as a
    // user-space object manager does.
    let mut sender = AuditSocket::open().unwrap();
    sender
        .send_user_message(
            1107,
            &format!(
                "avc:  denied  {{ send_msg }} for msgtype=method_call interface={marker} member=Hello scontext=system_u:system_r:a_t:s0 tcontext=system_u:system_r:b_t:s0 tclass=dbus permissive=0"
            ),
        )
        .unwrap();
    sender
        .send_user_message(
            1107,
            &format!(
                "apparmor=\"DENIED\" operation=\"dbus_method_call\" bus=\"system\" path=\"/org/x\" interface=\"org.x\" member=\"Hello\" mask=\"send\" name=\"org.x\" pid={me} label=\"{marker}\" peer_label=\"unconfined\""
            ),
        )
        .unwrap();

    let row = first_row(
        &engine,
        &format!(
            "select type, message like '%denied%send_msg%' from selinux_events where message like '%interface={marker} %'"
        ),
    );
    assert_eq!(row, [Value::from("USER_AVC"), Value::from(1)]);
    let row = first_row(
        &engine,
        &format!(
            "select apparmor, operation, pid, label from apparmor_events where label = '{marker}'"
        ),
    );
    assert_eq!(
        row,
        [
            Value::from("DENIED"),
            Value::from("dbus_method_call"),
            Value::from(me),
            Value::from(marker.as_str()),
        ]
    );
    // Each went to its own table only.
    assert!(
        engine
            .query(&format!(
                "select 1 from selinux_events where message like '%label=\"{marker}\"%'"
            ))
            .unwrap()
            .rows
            .is_empty()
    );

    drop(hub);
    before.assert_restored(&mut observer);
}
