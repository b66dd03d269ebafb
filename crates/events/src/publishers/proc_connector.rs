//! The process-events connector publisher: `process_events` rows from the kernel's
//! connector ([`oxquery_sys::proc_connector`]) instead of audit, for when another audit
//! daemon owns the audit socket (the issue's §3: never fight auditd).
//!
//! It serves only while its [`ConnectorGate`] is open: whoever knows who holds the audit
//! socket (the audit publisher) opens the gate when it leaves the socket to an audit
//! daemon and closes it when it holds the socket again, so an exec is never reported
//! twice. While the gate is closed the connector subscription is dropped.
//!
//! Wiring: the `process_events` table is declared elsewhere (the audit path's table file);
//! this publisher takes its spec and finds the columns it fills by name once
//! ([`ConnectorPublisher::new`] refuses a spec without them), so it does not depend on
//! that file.
//!
//! A row per exec (and, with `--audit_allow_fork_process_events`, per new process): the
//! connector gives the pid and the kernel's time; the rest is what `/proc/<pid>` shows
//! when the event is read ([`oxquery_sys::proc_connector::read_exec_facts`]): the
//! executable, its file's mode, owner and times, the command line, cwd, ids and parent.
//! A process that exited before it was read gives a row with its pid and time and NULL
//! for what was gone. The connector does not tell `execve` from `execveat` (`syscall` is
//! `execve`), nor `fork` from `vfork`/`clone` (`fork`); it has no kill events. The
//! environment is read only with `--process_events_env`.
//!
//! Losses reach `osquery_events`: netlink `ENOBUFS` overruns and unparsable messages.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use oxquery_flags::{Flags, flag};
use oxquery_sys::fs::FileReader;
use oxquery_sys::netlink_multicast::LossCounters;
use oxquery_sys::proc::{cmdline_text, environ_text};
use oxquery_sys::proc_connector::{
    EventKinds, ExecFacts, ProcConnector, ProcEvent, ProcEventKind, read_exec_facts,
};
use oxquery_table::{TableSpec, Value};

use crate::publisher::NetlinkLossReasons;
use crate::{EventHub, EventRow, Publisher, PublisherContext, READ_TIMEOUT, Subscriber};

/// The publisher's name in `osquery_events`.
pub const NAME: &str = "proc_connector";

/// Whether the connector serves `process_events` now. Clones share one switch.
#[derive(Debug, Clone, Default)]
pub struct ConnectorGate {
    switch: Arc<AtomicBool>,
    /// Open while the switch is off (it is the audit publisher's "serving" flag).
    inverted: bool,
}

impl ConnectorGate {
    /// A closed gate.
    pub fn new() -> ConnectorGate {
        ConnectorGate::default()
    }

    /// A gate open whenever `serving` is false: the audit publisher's flag, so the
    /// connector fills in exactly while audit does not read events (another audit
    /// daemon holds the socket, or audit failed).
    pub fn unless(serving: Arc<AtomicBool>) -> ConnectorGate {
        ConnectorGate {
            switch: serving,
            inverted: true,
        }
    }

    /// Opens (true) or closes (false) the gate.
    pub fn set(&self, open: bool) {
        self.switch.store(open != self.inverted, Ordering::SeqCst);
    }

    pub fn is_open(&self) -> bool {
        self.switch.load(Ordering::SeqCst) != self.inverted
    }
}

/// Indexes of the `process_events` columns this publisher fills.
#[derive(Debug, Clone, Copy)]
struct Columns {
    pid: usize,
    path: usize,
    mode: usize,
    cmdline: usize,
    cmdline_size: usize,
    env: usize,
    env_count: usize,
    env_size: usize,
    cwd: usize,
    auid: usize,
    uid: usize,
    euid: usize,
    gid: usize,
    egid: usize,
    owner_uid: usize,
    owner_gid: usize,
    atime: usize,
    mtime: usize,
    ctime: usize,
    btime: usize,
    overflows: usize,
    parent: usize,
    time: usize,
    uptime: usize,
    fsuid: usize,
    suid: usize,
    fsgid: usize,
    sgid: usize,
    syscall: usize,
}

impl Columns {
    /// Finds each column in `spec`; an error names the first one missing.
    fn resolve(spec: &TableSpec) -> Result<Columns, String> {
        let at = |name: &str| {
            spec.columns
                .iter()
                .position(|c| c.name == name)
                .ok_or_else(|| format!("table {} has no column {name}", spec.name))
        };
        Ok(Columns {
            pid: at("pid")?,
            path: at("path")?,
            mode: at("mode")?,
            cmdline: at("cmdline")?,
            cmdline_size: at("cmdline_size")?,
            env: at("env")?,
            env_count: at("env_count")?,
            env_size: at("env_size")?,
            cwd: at("cwd")?,
            auid: at("auid")?,
            uid: at("uid")?,
            euid: at("euid")?,
            gid: at("gid")?,
            egid: at("egid")?,
            owner_uid: at("owner_uid")?,
            owner_gid: at("owner_gid")?,
            atime: at("atime")?,
            mtime: at("mtime")?,
            ctime: at("ctime")?,
            btime: at("btime")?,
            overflows: at("overflows")?,
            parent: at("parent")?,
            time: at("time")?,
            uptime: at("uptime")?,
            fsuid: at("fsuid")?,
            suid: at("suid")?,
            fsgid: at("fsgid")?,
            sgid: at("sgid")?,
            syscall: at("syscall")?,
        })
    }
}

/// Builds `process_events` rows from connector events.
#[derive(Debug, Clone, Copy)]
pub struct RowBuilder {
    spec: &'static TableSpec,
    columns: Columns,
}

impl RowBuilder {
    /// For the `process_events` table `spec`; an error when it lacks a column.
    pub fn new(spec: &'static TableSpec) -> Result<RowBuilder, String> {
        Ok(RowBuilder {
            spec,
            columns: Columns::resolve(spec)?,
        })
    }

    /// The row of an exec of process `tgid` with what `/proc` showed of it.
    pub fn exec_row(&self, event: &ProcEvent, tgid: u32, facts: &ExecFacts) -> EventRow {
        let c = self.columns;
        let mut row = self.base(event, tgid, "execve");
        row.set(c.parent, facts.ppid);
        let path = facts.exe.clone();
        row.set(c.path, path.map(Value::from_bytes));
        let cmdline = facts.cmdline.as_deref().map(cmdline_text);
        row.set(c.cmdline_size, cmdline.as_ref().map(|c| c.len() as i64));
        row.set(c.cmdline, cmdline.map(Value::from_bytes));
        row.set(c.cwd, facts.cwd.clone().map(Value::from_bytes));
        row.set(c.auid, facts.auid);
        if let Some(environ) = &facts.environ {
            let (text, count) = environ_text(environ);
            row.set(c.env_size, text.len() as i64);
            row.set(c.env, Value::from_bytes(text));
            row.set(c.env_count, count as i64);
        }
        if let Some(ids) = facts.ids {
            for (col, id) in [
                (c.uid, ids.uid[0]),
                (c.euid, ids.uid[1]),
                (c.suid, ids.uid[2]),
                (c.fsuid, ids.uid[3]),
                (c.gid, ids.gid[0]),
                (c.egid, ids.gid[1]),
                (c.sgid, ids.gid[2]),
                (c.fsgid, ids.gid[3]),
            ] {
                row.set(col, id);
            }
        }
        if let Some(file) = facts.exe_file {
            // Octal with the file type bits, as the audit path's PATH record has it.
            row.set(c.mode, format!("{:07o}", file.mode));
            row.set(c.owner_uid, i64::from(file.uid));
            row.set(c.owner_gid, i64::from(file.gid));
            row.set(c.atime, file.atime);
            row.set(c.mtime, file.mtime);
            row.set(c.ctime, file.ctime);
            row.set(c.btime, file.btime.unwrap_or(0));
        }
        row
    }

    /// The row of a new process `child` forked by `parent` (process ids).
    pub fn fork_row(&self, event: &ProcEvent, child: u32, parent: u32) -> EventRow {
        let mut row = self.base(event, child, "fork");
        row.set(self.columns.parent, i64::from(parent));
        row
    }

    fn base(&self, event: &ProcEvent, pid: u32, syscall: &str) -> EventRow {
        let c = self.columns;
        let mut row = EventRow::new(self.spec);
        row.set(c.pid, i64::from(pid));
        row.set(c.syscall, syscall);
        row.set(c.time, event.time);
        row.set(c.uptime, (event.uptime_ns / 1_000_000_000) as i64);
        row.set(c.env, "");
        row.set(c.env_count, 0);
        row.set(c.env_size, 0);
        row.set(c.overflows, "");
        row
    }
}

pub struct ConnectorPublisher {
    rows: RowBuilder,
    process_events: Subscriber,
    gate: ConnectorGate,
    /// `--audit_allow_fork_process_events`: new processes make rows too.
    forks: bool,
    /// `--process_events_env`: read each exec's environment.
    env: bool,
    reader: Option<ProcConnector>,
    /// The reader's counters already handed to `osquery_events` (a new reader starts
    /// from zero).
    reported: LossCounters,
    files: FileReader,
}

impl ConnectorPublisher {
    /// The publisher feeding `process_events` (declared by `spec`), or `None` when the
    /// config disables it or the spec lacks a column this publisher fills.
    pub fn new(
        hub: &EventHub,
        spec: &'static TableSpec,
        flags: &Flags,
        gate: ConnectorGate,
    ) -> Option<ConnectorPublisher> {
        let rows = RowBuilder::new(spec)
            .map_err(|e| log::warn!("The process events connector cannot fill {e}"))
            .ok()?;
        let process_events = hub.subscribe(spec, NAME, None)?;
        Some(ConnectorPublisher {
            rows,
            process_events,
            gate,
            forks: flags.get(flag::audit_allow_fork_process_events),
            env: flags.get(flag::process_events_env),
            reader: None,
            reported: LossCounters::default(),
            files: FileReader::new(),
        })
    }

    /// The rows of one batch of events.
    fn publish(&mut self, events: &[ProcEvent]) {
        for event in events {
            let row = match event.kind {
                ProcEventKind::Exec { tgid, .. } => {
                    let facts = read_exec_facts(tgid, event.uptime_ns, self.env, &mut self.files);
                    self.rows.exec_row(event, tgid, &facts)
                }
                // A new process, not a thread of an existing one.
                ProcEventKind::Fork {
                    parent_tgid,
                    child_pid,
                    child_tgid,
                    ..
                } if self.forks && child_pid == child_tgid => {
                    self.rows.fork_row(event, child_tgid, parent_tgid)
                }
                _ => continue,
            };
            self.process_events.add(row.into_values());
        }
    }
}

/// How long execs gather while busy: short, since what `/proc` shows of a process is
/// read only when its event is (a process that exits meanwhile loses its facts).
const GATHER: std::time::Duration = std::time::Duration::from_millis(4);

/// How the reader's losses are named in `osquery_events`.
const LOSS_REASONS: NetlinkLossReasons = NetlinkLossReasons {
    overruns: "netlink ENOBUFS (process events dropped by the kernel)",
    truncated: "unparsable process event",
    malformed: "unparsable process event",
};

impl Publisher for ConnectorPublisher {
    fn name(&self) -> &'static str {
        NAME
    }

    fn subscribers(&self) -> Vec<String> {
        vec![self.process_events.name().to_owned()]
    }

    fn run(&mut self, ctx: &PublisherContext) -> Result<(), String> {
        let mut last_events: Option<std::time::Instant> = None;
        while !ctx.stopping() {
            if !self.gate.is_open() {
                if self.reader.take().is_some() {
                    log::info!("Process events come from audit again: connector closed");
                }
                ctx.sleep(READ_TIMEOUT);
                continue;
            }
            if self.reader.is_none() {
                let kinds = if self.forks {
                    EventKinds::EXEC.and(EventKinds::FORK)
                } else {
                    EventKinds::EXEC
                };
                let reader = ProcConnector::open(kinds)
                    .map_err(|e| format!("cannot subscribe to process events: {e}"))?;
                log::info!("Process events come from the kernel's process-events connector");
                self.reader = Some(reader);
                self.reported = LossCounters::default();
            }
            let Some(reader) = self.reader.as_mut() else {
                continue;
            };
            let batch = reader.next_batch(READ_TIMEOUT);
            ctx.lost_from_netlink(&mut self.reported, reader.loss(), &LOSS_REASONS);
            let events = batch.map_err(|e| {
                self.reader = None;
                format!("reading process events: {e}")
            })?;
            if !events.is_empty() {
                ctx.published(events.len() as u64);
                self.publish(&events);
            }
            // Under load (events again within GATHER of the last ones), let a few
            // milliseconds of execs gather before the next read: one wake-up then serves
            // many, where waking for each cost a fifth of this thread's CPU at 1,000
            // execs/s. A quiet host is served at once.
            if !events.is_empty() {
                let now = std::time::Instant::now();
                let busy = last_events.is_some_and(|t| now.duration_since(t) < GATHER);
                last_events = Some(now);
                if busy {
                    ctx.sleep(GATHER);
                }
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::HubSettings;
    use crate::tables::process_events::{Col, SPEC, TABLE};
    use oxquery_store::Store;
    use oxquery_sys::proc::Ids;
    use oxquery_sys::proc_connector::ExeFile;
    use oxquery_table::{Host, QueryContext, Rows};
    use std::sync::Mutex;
    use std::time::Duration;

    fn event(kind: ProcEventKind) -> ProcEvent {
        ProcEvent {
            time: 1_700_000_000,
            uptime_ns: 42_700_000_000,
            cpu: 0,
            kind,
        }
    }

    fn cells(row: EventRow) -> Vec<Value> {
        row.into_values()
    }

    #[test]
    fn a_spec_without_a_column_is_refused() {
        let err = RowBuilder::new(&crate::tables::hardware_events::SPEC).unwrap_err();
        assert!(err.contains("has no column pid"), "{err}");
        assert!(RowBuilder::new(&SPEC).is_ok());
    }

    #[test]
    fn exec_row_from_the_proc_facts() {
        let rows = RowBuilder::new(&SPEC).unwrap();
        let facts = ExecFacts {
            exe: Some(b"/usr/bin/sleep".to_vec()),
            exe_file: Some(ExeFile {
                mode: 0o100755,
                uid: 0,
                gid: 7,
                atime: 1,
                mtime: 2,
                ctime: 3,
                btime: None,
            }),
            cmdline: Some(b"sleep\x001\0".to_vec()),
            cwd: Some(b"/home/a b".to_vec()),
            ids: Some(Ids {
                uid: [1000, 1001, 1002, 1003],
                gid: [10, 11, 12, 13],
            }),
            ppid: Some(77),
            comm: Some(b"sleep".to_vec()),
            auid: Some(1000),
            environ: Some(b"A=1\0B=x y\0".to_vec()),
        };
        let row = cells(rows.exec_row(&event(ProcEventKind::Exec { pid: 5, tgid: 5 }), 5, &facts));
        let want: &[(Col, Value)] = &[
            (Col::pid, 5.into()),
            (Col::parent, 77.into()),
            (Col::path, "/usr/bin/sleep".into()),
            (Col::mode, "0100755".into()),
            (Col::cmdline, "sleep 1".into()),
            (Col::cmdline_size, 7.into()),
            (Col::cwd, "/home/a b".into()),
            (Col::auid, 1000.into()),
            (Col::uid, 1000.into()),
            (Col::euid, 1001.into()),
            (Col::suid, 1002.into()),
            (Col::fsuid, 1003.into()),
            (Col::gid, 10.into()),
            (Col::egid, 11.into()),
            (Col::sgid, 12.into()),
            (Col::fsgid, 13.into()),
            (Col::owner_uid, 0.into()),
            (Col::owner_gid, 7.into()),
            (Col::atime, 1.into()),
            (Col::mtime, 2.into()),
            (Col::ctime, 3.into()),
            (Col::btime, 0.into()),
            (Col::time, 1_700_000_000.into()),
            (Col::uptime, 42.into()),
            (Col::syscall, "execve".into()),
            (Col::env, "A=1 B=x y".into()),
            (Col::env_count, 2.into()),
            (Col::env_size, 9.into()),
            (Col::overflows, "".into()),
            (Col::eid, Value::Null),
            (Col::status, Value::Null),
        ];
        for (col, value) in want {
            assert_eq!(&row[*col as usize], value, "{col:?}");
        }

        // A process gone before /proc was read: its pid and time, NULL for the rest.
        let gone = cells(rows.exec_row(
            &event(ProcEventKind::Exec { pid: 9, tgid: 9 }),
            9,
            &ExecFacts::default(),
        ));
        assert_eq!(gone[Col::pid as usize], Value::Integer(9));
        assert_eq!(gone[Col::time as usize], Value::Integer(1_700_000_000));
        for col in [Col::path, Col::parent, Col::cmdline, Col::uid, Col::mode] {
            assert_eq!(gone[col as usize], Value::Null, "{col:?}");
        }
    }

    fn hub() -> EventHub {
        let store = Arc::new(Mutex::new(Store::in_memory().unwrap()));
        EventHub::new(store, HubSettings::default())
    }

    /// Every stored row as (pid, parent, syscall, path, cmdline).
    fn table(hub: &EventHub) -> Vec<(i64, Value, String, Value, Value)> {
        let host = Host {
            events: Some(Arc::new(hub.clone())),
            ..Host::default()
        };
        let ctx = QueryContext::everything(&SPEC, &host);
        let rows = Rows::collect(&ctx, TABLE.generate).unwrap();
        rows.iter()
            .map(|r| {
                (
                    r[Col::pid as usize].as_i64().unwrap(),
                    r[Col::parent as usize].clone(),
                    r[Col::syscall as usize].to_string(),
                    r[Col::path as usize].clone(),
                    r[Col::cmdline as usize].clone(),
                )
            })
            .collect()
    }

    /// Forks are rows only with the flag; threads never.
    #[test]
    fn forks_with_the_flag_only_and_never_threads() {
        let mut flags = Flags::new();
        let hub = hub();
        let fork = |child_pid, child_tgid| {
            event(ProcEventKind::Fork {
                parent_pid: 1,
                parent_tgid: 1,
                child_pid,
                child_tgid,
            })
        };
        let mut p = ConnectorPublisher::new(&hub, &SPEC, &flags, ConnectorGate::new()).unwrap();
        p.publish(&[fork(50, 50)]);
        flags
            .set("audit_allow_fork_process_events", "true")
            .unwrap();
        let mut p = ConnectorPublisher::new(&hub, &SPEC, &flags, ConnectorGate::new()).unwrap();
        p.publish(&[fork(51, 51), fork(52, 51)]);
        let rows = oxquery_test_support::poll(Duration::from_secs(10), || {
            let rows = table(&hub);
            (!rows.is_empty()).then_some(rows)
        })
        .unwrap();
        assert_eq!(
            rows,
            vec![(
                51,
                Value::Integer(1),
                "fork".into(),
                Value::Null,
                Value::Null
            )]
        );
    }

    /// The publisher on its thread with its gate open, a child that sleeps: its exec is a
    /// row with the facts /proc showed.
    #[test]
    fn a_child_exec_reaches_the_table_through_the_hub() {
        let hub = hub();
        let gate = ConnectorGate::new();
        let publisher = ConnectorPublisher::new(&hub, &SPEC, &Flags::new(), gate.clone()).unwrap();
        hub.start(vec![Box::new(publisher)]);
        let me = i64::from(std::process::id());
        gate.set(true);
        // The connector opens on the publisher's thread: until it has, a child is not
        // seen, so start children until one is.
        let found = oxquery_test_support::poll(Duration::from_secs(20), || {
            let mut child = std::process::Command::new("/bin/sleep")
                .arg("0.3")
                .spawn()
                .unwrap();
            let pid = i64::from(child.id());
            let row = oxquery_test_support::poll(Duration::from_secs(2), || {
                table(&hub).into_iter().find(|r| r.0 == pid)
            });
            child.wait().unwrap();
            row
        })
        .expect("a process_events row for the child");
        hub.stop();
        let exe = std::fs::canonicalize("/bin/sleep").unwrap();
        assert_eq!(found.1, Value::Integer(me));
        assert_eq!(found.2, "execve");
        assert_eq!(found.3, Value::from(exe.as_path()));
        assert_eq!(found.4, Value::from("/bin/sleep 0.3"));
        let status = oxquery_table::EventReader::status(&hub);
        let publisher = status.iter().find(|s| s.name == NAME).unwrap();
        assert!(publisher.events >= 1);
    }

    #[test]
    fn reader_losses_are_handed_on_once() {
        let (ctx, _stop) = PublisherContext::detached(NAME);
        let mut reported = LossCounters::default();
        let grown = LossCounters {
            overruns: 4,
            ..LossCounters::default()
        };
        ctx.lost_from_netlink(&mut reported, grown, &LOSS_REASONS);
        ctx.lost_from_netlink(&mut reported, grown, &LOSS_REASONS);
        let (total, reasons) = ctx.stats.losses();
        assert_eq!(total, 4);
        assert!(
            reasons.contains("ENOBUFS (process events dropped by the kernel): 4"),
            "{reasons}"
        );
    }
}
