//! The kernel's process-events connector (`NETLINK_CONNECTOR`, `CN_IDX_PROC`): exec,
//! fork, exit, uid/gid, sid, ptrace, comm and coredump notifications for every process.
//!
//! This is where `process_events` comes from when another audit daemon owns the audit
//! socket: the connector has any number of listeners, so it never fights `auditd`. Its
//! events carry only ids (pid, tgid, parent, uid...), no paths or arguments, so
//! [`read_exec_facts`] reads what `/proc/<pid>` still shows right after an exec through
//! the [`crate::proc`] parsers; a process that already exited gives partial facts.
//!
//! [`ProcConnector::open`] binds to the group, sends `PROC_CN_MCAST_LISTEN` and waits
//! (bounded) for the kernel's acknowledgement, so events from then on are seen; dropping
//! it sends `PROC_CN_MCAST_IGNORE`. [`ProcConnector::next_batch`] is a blocking read with
//! a timeout (see [`crate::netlink_multicast`]).
//!
//! Losses: the kernel drops messages when our receive queue is full (`ENOBUFS`, counted
//! as overruns with a warning); unparsable messages are counted as malformed. Both are in
//! [`ProcConnector::loss`].
//!
//! Message layout (`include/uapi/linux/cn_proc.h`, `connector.h`), native-endian:
//! `nlmsghdr` (16 bytes), `cn_msg` (id.idx, id.val, seq, ack: u32; len, flags: u16), then
//! `proc_event`: what (u32), cpu (u32), timestamp_ns (u64, `CLOCK_MONOTONIC`), and the
//! event's union at offset 16.

use std::io;
use std::time::{Duration, Instant};

use netlink_sys::protocols::NETLINK_CONNECTOR;

use crate::fs::{FileReader, parse_i64};
use crate::netlink_multicast::{LossCounters, MulticastSocket, ne_u16, ne_u32, ne_u64};
use crate::proc::{self, Ids, ProcDir};

/// The connector's id of process events (`CN_IDX_PROC`, `CN_VAL_PROC`); the index is
/// also the multicast group.
const CN_IDX_PROC: u32 = 1;
const CN_VAL_PROC: u32 = 1;
const PROC_CN_MCAST_LISTEN: u32 = 1;
const PROC_CN_MCAST_IGNORE: u32 = 2;
const NLMSG_HDRLEN: usize = 16;
const NLMSG_DONE: u16 = 3;
const CN_MSG_LEN: usize = 20;
/// `what`, `cpu`, `timestamp_ns`: the union starts after them.
const EVENT_HEADER_LEN: usize = 16;

const PROC_EVENT_NONE: u32 = 0;
const PROC_EVENT_FORK: u32 = 0x1;
const PROC_EVENT_EXEC: u32 = 0x2;
const PROC_EVENT_UID: u32 = 0x4;
const PROC_EVENT_GID: u32 = 0x40;
const PROC_EVENT_SID: u32 = 0x80;
const PROC_EVENT_PTRACE: u32 = 0x100;
const PROC_EVENT_COMM: u32 = 0x200;
const PROC_EVENT_COREDUMP: u32 = 0x4000_0000;
const PROC_EVENT_EXIT: u32 = 0x8000_0000;

/// Receive buffer asked for: about 10,000 queued events (each costs ~800 bytes of kernel
/// memory), half a second of a 20,000 exec/s burst with its forks and exits.
pub const RECEIVE_BUFFER: usize = 8 << 20;
/// A connector datagram is under 100 bytes; this leaves room for odd kernels.
const MAX_DATAGRAM: usize = 4096;
/// How long [`ProcConnector::open`] waits for the kernel to acknowledge the subscription.
const ACK_TIMEOUT: Duration = Duration::from_secs(1);

/// One process event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProcEvent {
    /// When the kernel sent it, unix seconds (its monotonic timestamp moved to the wall
    /// clock at read time).
    pub time: i64,
    /// The kernel's timestamp: nanoseconds of `CLOCK_MONOTONIC` (since boot, without
    /// time suspended).
    pub uptime_ns: u64,
    /// The CPU that reported it.
    pub cpu: u32,
    pub kind: ProcEventKind,
}

/// What happened. `pid` is the thread id, `tgid` the process id (equal for a process's
/// main thread); a new thread shows as a `Fork` whose child pid differs from its tgid.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ProcEventKind {
    Fork {
        parent_pid: u32,
        parent_tgid: u32,
        child_pid: u32,
        child_tgid: u32,
    },
    Exec {
        pid: u32,
        tgid: u32,
    },
    /// Real and effective user id after a change.
    Uid {
        pid: u32,
        tgid: u32,
        ruid: u32,
        euid: u32,
    },
    /// Real and effective group id after a change.
    Gid {
        pid: u32,
        tgid: u32,
        rgid: u32,
        egid: u32,
    },
    /// `setsid(2)`: the process leads a new session.
    Sid {
        pid: u32,
        tgid: u32,
    },
    /// Attached to (`tracer_pid` non-zero) or detached from a tracer.
    Ptrace {
        pid: u32,
        tgid: u32,
        tracer_pid: u32,
        tracer_tgid: u32,
    },
    /// The thread's name (`comm`, up to 15 bytes) changed.
    Comm {
        pid: u32,
        tgid: u32,
        comm: Vec<u8>,
    },
    /// The process dumps core; its parent when the kernel reports it.
    Coredump {
        pid: u32,
        tgid: u32,
        parent_pid: Option<u32>,
        parent_tgid: Option<u32>,
    },
    /// A thread exited. `exit_code` is the kernel's wait status (see
    /// [`ProcEventKind::exit_status`]); `exit_signal` is the signal the parent gets
    /// (`SIGCHLD` normally); the parent is there on kernels since 4.19.
    Exit {
        pid: u32,
        tgid: u32,
        exit_code: u32,
        exit_signal: u32,
        parent_pid: Option<u32>,
        parent_tgid: Option<u32>,
    },
}

impl ProcEventKind {
    /// For an exit, the code passed to `exit(2)` when the thread exited normally.
    pub fn exit_status(&self) -> Option<u32> {
        match self {
            ProcEventKind::Exit { exit_code, .. } if exit_code & 0x7f == 0 => {
                Some((exit_code >> 8) & 0xff)
            }
            _ => None,
        }
    }

    /// For an exit, the signal that killed the thread.
    pub fn killed_by(&self) -> Option<u32> {
        match self {
            ProcEventKind::Exit { exit_code, .. } if exit_code & 0x7f != 0 => {
                Some(exit_code & 0x7f)
            }
            _ => None,
        }
    }
}

/// What one connector message holds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Message {
    Event(ProcEvent),
    /// The kernel's answer to a listen/ignore request (`PROC_EVENT_NONE`): the request's
    /// `ack` field plus one, and an errno (0 on success).
    Ack {
        ack: u32,
        err: u32,
    },
    /// Another connector id, netlink type or event kind: not ours to read.
    Ignored,
}

/// A message the parser could not read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Malformed;

/// Moves the kernel's monotonic timestamps to unix time: the difference between the
/// wall clock and the monotonic clock, taken at read time.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MonotonicToUnix {
    pub offset_ns: i128,
}

impl MonotonicToUnix {
    /// The clocks' difference now.
    pub fn now() -> MonotonicToUnix {
        MonotonicToUnix {
            offset_ns: clock_ns(libc::CLOCK_REALTIME) - clock_ns(libc::CLOCK_MONOTONIC),
        }
    }

    /// Unix seconds of a monotonic timestamp.
    pub fn unix_seconds(&self, monotonic_ns: u64) -> i64 {
        let ns = i128::from(monotonic_ns) + self.offset_ns;
        i64::try_from(ns.div_euclid(1_000_000_000)).unwrap_or(0)
    }
}

fn clock_ns(clock: libc::clockid_t) -> i128 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: ts is a valid timespec to write.
    unsafe { libc::clock_gettime(clock, &mut ts) };
    i128::from(ts.tv_sec) * 1_000_000_000 + i128::from(ts.tv_nsec)
}

/// Calls `f` with each netlink message of a datagram, parsed. A bad netlink length ends
/// the datagram (nothing after it can be framed) with one `Err`.
pub fn parse_datagram(
    bytes: &[u8],
    clock: MonotonicToUnix,
    mut f: impl FnMut(Result<Message, Malformed>),
) {
    let mut rest = bytes;
    while !rest.is_empty() {
        let Some(len) = ne_u32(rest, 0).map(|l| l as usize) else {
            f(Err(Malformed));
            return;
        };
        if len < NLMSG_HDRLEN || len > rest.len() {
            f(Err(Malformed));
            return;
        }
        f(parse_message(&rest[..len], clock));
        // Messages are 4-byte aligned; the last one may lack its padding.
        let next = len.checked_add(3).map(|l| l & !3).unwrap_or(usize::MAX);
        rest = rest.get(next..).unwrap_or(&[]);
    }
}

/// Parses one netlink message (header included) of the connector.
pub fn parse_message(msg: &[u8], clock: MonotonicToUnix) -> Result<Message, Malformed> {
    let nl_type = ne_u16(msg, 4).ok_or(Malformed)?;
    if nl_type != NLMSG_DONE {
        return Ok(Message::Ignored);
    }
    let cn = msg.get(NLMSG_HDRLEN..).ok_or(Malformed)?;
    let idx = ne_u32(cn, 0).ok_or(Malformed)?;
    let val = ne_u32(cn, 4).ok_or(Malformed)?;
    let ack = ne_u32(cn, 12).ok_or(Malformed)?;
    let data_len = usize::from(ne_u16(cn, 16).ok_or(Malformed)?);
    if (idx, val) != (CN_IDX_PROC, CN_VAL_PROC) {
        return Ok(Message::Ignored);
    }
    let data = cn.get(CN_MSG_LEN..CN_MSG_LEN + data_len).ok_or(Malformed)?;
    parse_event(data, ack, clock)
}

/// Parses a `proc_event` (the connector message's data).
fn parse_event(data: &[u8], ack: u32, clock: MonotonicToUnix) -> Result<Message, Malformed> {
    let what = ne_u32(data, 0).ok_or(Malformed)?;
    let cpu = ne_u32(data, 4).ok_or(Malformed)?;
    let uptime_ns = ne_u64(data, 8).ok_or(Malformed)?;
    let body = &data[EVENT_HEADER_LEN.min(data.len())..];
    let u = |i: usize| ne_u32(body, i * 4).ok_or(Malformed);
    // Fields added by later kernels: absent on older ones, not an error.
    let optional = |i: usize| ne_u32(body, i * 4);
    let kind = match what {
        PROC_EVENT_NONE => {
            return Ok(Message::Ack { ack, err: u(0)? });
        }
        PROC_EVENT_FORK => ProcEventKind::Fork {
            parent_pid: u(0)?,
            parent_tgid: u(1)?,
            child_pid: u(2)?,
            child_tgid: u(3)?,
        },
        PROC_EVENT_EXEC => ProcEventKind::Exec {
            pid: u(0)?,
            tgid: u(1)?,
        },
        PROC_EVENT_UID => ProcEventKind::Uid {
            pid: u(0)?,
            tgid: u(1)?,
            ruid: u(2)?,
            euid: u(3)?,
        },
        PROC_EVENT_GID => ProcEventKind::Gid {
            pid: u(0)?,
            tgid: u(1)?,
            rgid: u(2)?,
            egid: u(3)?,
        },
        PROC_EVENT_SID => ProcEventKind::Sid {
            pid: u(0)?,
            tgid: u(1)?,
        },
        PROC_EVENT_PTRACE => ProcEventKind::Ptrace {
            pid: u(0)?,
            tgid: u(1)?,
            tracer_pid: u(2)?,
            tracer_tgid: u(3)?,
        },
        PROC_EVENT_COMM => {
            let raw = body.get(8..24).ok_or(Malformed)?;
            let end = memchr::memchr(0, raw).unwrap_or(raw.len());
            ProcEventKind::Comm {
                pid: u(0)?,
                tgid: u(1)?,
                comm: raw[..end].to_vec(),
            }
        }
        PROC_EVENT_COREDUMP => ProcEventKind::Coredump {
            pid: u(0)?,
            tgid: u(1)?,
            parent_pid: optional(2),
            parent_tgid: optional(3),
        },
        PROC_EVENT_EXIT => ProcEventKind::Exit {
            pid: u(0)?,
            tgid: u(1)?,
            exit_code: u(2)?,
            exit_signal: u(3)?,
            parent_pid: optional(4),
            parent_tgid: optional(5),
        },
        _ => return Ok(Message::Ignored),
    };
    Ok(Message::Event(ProcEvent {
        time: clock.unix_seconds(uptime_ns),
        uptime_ns,
        cpu,
        kind,
    }))
}

/// The listen/ignore request: `nlmsghdr` + `cn_msg` + the operation. The kernel answers
/// with `ack + 1` in its acknowledgement (it numbers the sequence itself).
fn mcast_request(port: u32, ack: u32, op: u32) -> [u8; NLMSG_HDRLEN + CN_MSG_LEN + 4] {
    let mut m = [0u8; NLMSG_HDRLEN + CN_MSG_LEN + 4];
    let total = m.len() as u32;
    m[0..4].copy_from_slice(&total.to_ne_bytes());
    m[4..6].copy_from_slice(&NLMSG_DONE.to_ne_bytes());
    m[12..16].copy_from_slice(&port.to_ne_bytes());
    let cn = &mut m[NLMSG_HDRLEN..];
    cn[0..4].copy_from_slice(&CN_IDX_PROC.to_ne_bytes());
    cn[4..8].copy_from_slice(&CN_VAL_PROC.to_ne_bytes());
    cn[12..16].copy_from_slice(&ack.to_ne_bytes());
    cn[16..18].copy_from_slice(&4u16.to_ne_bytes());
    cn[CN_MSG_LEN..CN_MSG_LEN + 4].copy_from_slice(&op.to_ne_bytes());
    m
}

/// Which event kinds a subscription delivers. The others are dropped by a socket filter
/// in the kernel before they are queued, so they cost no wake-up, no copy and no queue
/// space: a loop of `/bin/true` makes a fork, an exec and an exit per run, and
/// `process_events` wants only the exec.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EventKinds(u32);

impl EventKinds {
    /// Every kind: no filter.
    pub const ALL: EventKinds = EventKinds(u32::MAX);
    pub const FORK: EventKinds = EventKinds(PROC_EVENT_FORK);
    pub const EXEC: EventKinds = EventKinds(PROC_EVENT_EXEC);
    pub const EXIT: EventKinds = EventKinds(PROC_EVENT_EXIT);

    /// These kinds and `other`'s.
    pub const fn and(self, other: EventKinds) -> EventKinds {
        EventKinds(self.0 | other.0)
    }

    /// The classic BPF program passing these kinds and the subscription's acknowledgement
    /// (`PROC_EVENT_NONE`), or `None` for every kind.
    fn filter(self) -> Option<Vec<libc::sock_filter>> {
        const KINDS: [u32; 9] = [
            PROC_EVENT_FORK,
            PROC_EVENT_EXEC,
            PROC_EVENT_UID,
            PROC_EVENT_GID,
            PROC_EVENT_SID,
            PROC_EVENT_PTRACE,
            PROC_EVENT_COMM,
            PROC_EVENT_COREDUMP,
            PROC_EVENT_EXIT,
        ];
        if KINDS.iter().all(|k| self.0 & k != 0) {
            return None;
        }
        // Opcodes of <linux/filter.h>: ld word absolute, jump if equal to k, return k.
        const LD_W_ABS: u16 = 0x20;
        const JEQ_K: u16 = 0x15;
        const RET_K: u16 = 0x06;
        let op = |code, jt, jf, k| libc::sock_filter { code, jt, jf, k };
        let passed: Vec<u32> = std::iter::once(PROC_EVENT_NONE)
            .chain(KINDS.into_iter().filter(|k| self.0 & k != 0))
            .collect();
        // `what` follows the netlink and connector headers. Absolute loads read network
        // byte order, so each constant is compared as the bytes the kernel wrote read
        // big-endian. A message too short to hold `what` fails the load and is dropped.
        let mut program = vec![op(LD_W_ABS, 0, 0, (NLMSG_HDRLEN + CN_MSG_LEN) as u32)];
        let n = passed.len();
        for (i, kind) in passed.into_iter().enumerate() {
            let to_accept = u8::try_from(n - i).unwrap_or(u8::MAX);
            program.push(op(
                JEQ_K,
                to_accept,
                0,
                u32::from_be_bytes(kind.to_ne_bytes()),
            ));
        }
        program.push(op(RET_K, 0, 0, 0));
        program.push(op(RET_K, 0, 0, u32::MAX));
        Some(program)
    }
}

/// A subscription to the process-events connector.
pub struct ProcConnector {
    socket: MulticastSocket,
    port: u32,
    /// Events read while waiting for the subscription's acknowledgement.
    pending: Vec<ProcEvent>,
}

impl ProcConnector {
    /// Subscribes to the process events of `kinds` (needs `CAP_NET_ADMIN` in the initial
    /// namespaces). Fails when the kernel refuses the subscription.
    pub fn open(kinds: EventKinds) -> io::Result<ProcConnector> {
        ProcConnector::open_with_receive_buffer(kinds, RECEIVE_BUFFER)
    }

    /// [`ProcConnector::open`] with a receive buffer of about `bytes` (the kernel keeps
    /// it within its bounds).
    pub fn open_with_receive_buffer(kinds: EventKinds, bytes: usize) -> io::Result<ProcConnector> {
        let socket = MulticastSocket::open(
            NETLINK_CONNECTOR,
            CN_IDX_PROC,
            bytes,
            MAX_DATAGRAM,
            "process events connector",
        )?;
        if let Some(program) = kinds.filter() {
            socket.attach_filter(&program)?;
        }
        let port = socket.port()?;
        let mut connector = ProcConnector {
            socket,
            port,
            pending: Vec::new(),
        };
        // The port is unique among this host's sockets: our acknowledgement is the one
        // carrying it (plus one) in its ack field (every listener sees every ack).
        connector
            .socket
            .send_to_kernel(&mcast_request(port, port, PROC_CN_MCAST_LISTEN))?;
        let deadline = Instant::now() + ACK_TIMEOUT;
        let mut answer = None;
        while answer.is_none() {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                break;
            }
            let mut events = Vec::new();
            connector.read_into(left, &mut events, &mut answer)?;
            connector.pending.append(&mut events);
        }
        match answer {
            Some(0) => {}
            Some(err) => return Err(io::Error::from_raw_os_error(err as i32)),
            None => log::warn!(
                "process events connector: the kernel did not acknowledge the subscription within {ACK_TIMEOUT:?}; events may not arrive"
            ),
        }
        log::debug!(
            "process events connector: listening, receive buffer {} bytes",
            connector.socket.rcvbuf()
        );
        Ok(connector)
    }

    /// The events that arrive within `timeout` (all that are queued when some are; an
    /// empty Vec when none came in time).
    pub fn next_batch(&mut self, timeout: Duration) -> io::Result<Vec<ProcEvent>> {
        let mut events = std::mem::take(&mut self.pending);
        let wait = if events.is_empty() {
            timeout
        } else {
            Duration::ZERO
        };
        self.read_into(wait, &mut events, &mut None)?;
        Ok(events)
    }

    /// What was lost since the subscription.
    pub fn loss(&self) -> LossCounters {
        self.socket.loss
    }

    fn read_into(
        &mut self,
        timeout: Duration,
        events: &mut Vec<ProcEvent>,
        ack: &mut Option<u32>,
    ) -> io::Result<()> {
        let clock = MonotonicToUnix::now();
        let port = self.port;
        let mut malformed = 0;
        self.socket.drain(timeout, |datagram| {
            parse_datagram(datagram, clock, |m| match m {
                Ok(Message::Event(e)) => events.push(e),
                Ok(Message::Ack { ack: a, err }) if a == port.wrapping_add(1) => *ack = Some(err),
                Ok(_) => {}
                Err(Malformed) => malformed += 1,
            })
        })?;
        if malformed > 0 {
            self.socket.loss.malformed += malformed;
            log::warn!(
                "process events connector: dropped {malformed} malformed message(s); {} so far",
                self.socket.loss.malformed
            );
        }
        Ok(())
    }
}

impl Drop for ProcConnector {
    fn drop(&mut self) {
        // Older kernels count listeners globally and keep sending events to the group
        // (to no one) until each listener says it stopped.
        let request = mcast_request(self.port, self.port, PROC_CN_MCAST_IGNORE);
        if let Err(e) = self.socket.send_to_kernel(&request) {
            log::debug!("process events connector: unsubscribing failed: {e}");
        }
    }
}

/// The executable file of a process: its `statx(2)` through `/proc/<pid>/exe` (the
/// file the process runs, even when its path was since replaced).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ExeFile {
    pub mode: u32,
    pub uid: u32,
    pub gid: u32,
    pub atime: i64,
    pub mtime: i64,
    pub ctime: i64,
    /// Creation time, when the file system keeps it.
    pub btime: Option<i64>,
}

/// What `/proc/<pid>` shows of a process just after its exec. Every field is `None` when
/// that file could not be read (the process exited, or was a zombie already, or the pid
/// now belongs to a newer process and was refused).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ExecFacts {
    /// The `exe` link's target (with the kernel's ` (deleted)` suffix when unlinked).
    pub exe: Option<Vec<u8>>,
    pub exe_file: Option<ExeFile>,
    /// The arguments as `/proc/<pid>/cmdline` holds them: each one NUL-terminated.
    pub cmdline: Option<Vec<u8>>,
    pub cwd: Option<Vec<u8>>,
    /// Real, effective, saved and file-system uids and gids (`status`).
    pub ids: Option<Ids>,
    /// The parent's pid (`stat`).
    pub ppid: Option<i64>,
    /// The thread name after the exec (`stat`).
    pub comm: Option<Vec<u8>>,
    /// The audit login uid (`loginuid`; 4294967295 when unset).
    pub auid: Option<i64>,
    /// The environment as `/proc/<pid>/environ` holds it (each `NAME=value`
    /// NUL-terminated), when asked for.
    pub environ: Option<Vec<u8>>,
}

impl ExecFacts {
    /// Whether nothing could be read (the process was gone).
    pub fn is_empty(&self) -> bool {
        *self == ExecFacts::default()
    }
}

/// Reads what `/proc/<tgid>` shows after the exec reported at `uptime_ns` (the event's
/// kernel timestamp). A process whose start time is later than the exec is a newer
/// process that reused the pid: its facts are not the exec's, and nothing is returned.
///
/// The read races with the process: it may exit (partial facts, fields `None`) or exec
/// again (the later program's facts) before we look.
pub fn read_exec_facts(
    tgid: u32,
    uptime_ns: u64,
    with_environ: bool,
    reader: &mut FileReader,
) -> ExecFacts {
    let mut facts = ExecFacts::default();
    // Every read below goes through the one directory: it resolves a name, not a path,
    // and stays with this process if the pid is reused meanwhile.
    let Ok(dir) = ProcDir::open(tgid) else {
        return facts;
    };
    if let Some((comm, stat)) = dir.read(reader, c"stat").ok().and_then(proc::parse_stat) {
        // starttime is in clock ticks of CLOCK_BOOTTIME; the event's time is monotonic.
        let boot_offset = clock_ns(libc::CLOCK_BOOTTIME) - clock_ns(libc::CLOCK_MONOTONIC);
        let tick_ns = 1_000_000_000 / i128::from(proc::clock_ticks().max(1));
        let started = i128::from(stat.starttime) * tick_ns;
        if started > i128::from(uptime_ns) + boot_offset + tick_ns {
            log::debug!("pid {tgid} was reused after its exec; no facts");
            return facts;
        }
        facts.comm = Some(comm.to_vec());
        facts.ppid = Some(stat.ppid);
    }
    facts.exe = dir.read_link(reader, c"exe").ok().map(<[u8]>::to_vec);
    facts.exe_file = dir.statx(c"exe").ok().map(|st| ExeFile {
        mode: u32::from(st.stx_mode),
        uid: st.stx_uid,
        gid: st.stx_gid,
        atime: st.stx_atime.tv_sec,
        mtime: st.stx_mtime.tv_sec,
        ctime: st.stx_ctime.tv_sec,
        btime: (st.stx_mask & libc::STATX_BTIME != 0).then_some(st.stx_btime.tv_sec),
    });
    facts.cwd = dir.read_link(reader, c"cwd").ok().map(<[u8]>::to_vec);
    // A zombie's cmdline reads empty: nothing shown, not an empty command.
    facts.cmdline = dir
        .read(reader, c"cmdline")
        .ok()
        .filter(|c| !c.is_empty())
        .map(<[u8]>::to_vec);
    facts.ids = dir
        .read(reader, c"status")
        .ok()
        .and_then(proc::parse_status_ids);
    facts.auid = dir
        .read(reader, c"loginuid")
        .ok()
        .and_then(|t| parse_i64(t.trim_ascii()));
    if with_environ {
        facts.environ = dir.read(reader, c"environ").ok().map(<[u8]>::to_vec);
    }
    facts
}

/// The environment of process `pid` if it still runs the program `exe` (the path an
/// audit record names), read just after its exec; `None` once it exited or runs
/// something else (a later exec, or a newer process that reused the pid).
pub fn read_exec_environ(pid: u32, exe: &[u8], reader: &mut FileReader) -> Option<Vec<u8>> {
    let dir = ProcDir::open(pid).ok()?;
    if dir.read_link(reader, c"exe").ok()? != exe {
        return None;
    }
    dir.read(reader, c"environ").ok().map(<[u8]>::to_vec)
}

#[cfg(test)]
mod tests {
    use super::*;

    const CLOCK: MonotonicToUnix = MonotonicToUnix {
        offset_ns: 1_700_000_000_000_000_000,
    };

    /// A connector datagram carrying one `proc_event` with `what` and union words `body`.
    fn datagram(what: u32, ts: u64, body: &[u32]) -> Vec<u8> {
        let mut data = Vec::new();
        data.extend_from_slice(&what.to_ne_bytes());
        data.extend_from_slice(&3u32.to_ne_bytes()); // cpu
        data.extend_from_slice(&ts.to_ne_bytes());
        for w in body {
            data.extend_from_slice(&w.to_ne_bytes());
        }
        wrap(CN_IDX_PROC, 77, &data)
    }

    fn wrap(idx: u32, ack: u32, data: &[u8]) -> Vec<u8> {
        let mut m = Vec::new();
        let total = (NLMSG_HDRLEN + CN_MSG_LEN + data.len()) as u32;
        m.extend_from_slice(&total.to_ne_bytes());
        m.extend_from_slice(&NLMSG_DONE.to_ne_bytes());
        m.extend_from_slice(&0u16.to_ne_bytes());
        m.extend_from_slice(&[0; 8]);
        m.extend_from_slice(&idx.to_ne_bytes());
        m.extend_from_slice(&CN_VAL_PROC.to_ne_bytes());
        m.extend_from_slice(&0u32.to_ne_bytes());
        m.extend_from_slice(&ack.to_ne_bytes());
        m.extend_from_slice(&(data.len() as u16).to_ne_bytes());
        m.extend_from_slice(&0u16.to_ne_bytes());
        m.extend_from_slice(data);
        m
    }

    fn parse_all(bytes: &[u8]) -> Vec<Result<Message, Malformed>> {
        let mut out = Vec::new();
        parse_datagram(bytes, CLOCK, |m| out.push(m));
        out
    }

    fn one_event(bytes: &[u8]) -> ProcEvent {
        match parse_all(bytes).as_slice() {
            [Ok(Message::Event(e))] => e.clone(),
            other => panic!("expected one event, got {other:?}"),
        }
    }

    #[test]
    fn exec_event_with_its_time() {
        let e = one_event(&datagram(PROC_EVENT_EXEC, 5_500_000_000, &[42, 42]));
        assert_eq!(e.kind, ProcEventKind::Exec { pid: 42, tgid: 42 });
        assert_eq!(e.cpu, 3);
        assert_eq!(e.uptime_ns, 5_500_000_000);
        assert_eq!(e.time, 1_700_000_005);
    }

    #[test]
    fn fork_uid_gid_sid_ptrace_events() {
        let fork = one_event(&datagram(PROC_EVENT_FORK, 1, &[10, 10, 11, 10]));
        assert_eq!(
            fork.kind,
            ProcEventKind::Fork {
                parent_pid: 10,
                parent_tgid: 10,
                child_pid: 11,
                child_tgid: 10
            }
        );
        let uid = one_event(&datagram(PROC_EVENT_UID, 1, &[5, 5, 1000, 0]));
        assert_eq!(
            uid.kind,
            ProcEventKind::Uid {
                pid: 5,
                tgid: 5,
                ruid: 1000,
                euid: 0
            }
        );
        let gid = one_event(&datagram(PROC_EVENT_GID, 1, &[5, 5, 100, 101]));
        assert_eq!(
            gid.kind,
            ProcEventKind::Gid {
                pid: 5,
                tgid: 5,
                rgid: 100,
                egid: 101
            }
        );
        let sid = one_event(&datagram(PROC_EVENT_SID, 1, &[6, 6]));
        assert_eq!(sid.kind, ProcEventKind::Sid { pid: 6, tgid: 6 });
        let ptrace = one_event(&datagram(PROC_EVENT_PTRACE, 1, &[6, 6, 9, 9]));
        assert_eq!(
            ptrace.kind,
            ProcEventKind::Ptrace {
                pid: 6,
                tgid: 6,
                tracer_pid: 9,
                tracer_tgid: 9
            }
        );
    }

    #[test]
    fn comm_event_stops_at_the_nul() {
        let mut name = [0u32; 4];
        let bytes = b"worker\0\0\0\0\0\0\0\0\0\0";
        for (i, w) in name.iter_mut().enumerate() {
            *w = u32::from_ne_bytes(bytes[i * 4..i * 4 + 4].try_into().unwrap());
        }
        let e = one_event(&datagram(
            PROC_EVENT_COMM,
            1,
            &[7, 7, name[0], name[1], name[2], name[3]],
        ));
        assert_eq!(
            e.kind,
            ProcEventKind::Comm {
                pid: 7,
                tgid: 7,
                comm: b"worker".to_vec()
            }
        );
        // A 16-byte name without a NUL is taken whole, not read past.
        let full = [u32::from_ne_bytes(*b"abcd"); 4];
        let e = one_event(&datagram(
            PROC_EVENT_COMM,
            1,
            &[7, 7, full[0], full[1], full[2], full[3]],
        ));
        assert!(matches!(e.kind, ProcEventKind::Comm { comm, .. } if comm == b"abcdabcdabcdabcd"));
    }

    #[test]
    fn exit_event_decodes_status_and_signal() {
        // exit(3): wait status 3 << 8; with the parent (kernels since 4.19).
        let e = one_event(&datagram(PROC_EVENT_EXIT, 1, &[8, 8, 3 << 8, 17, 1, 1]));
        assert_eq!(
            e.kind,
            ProcEventKind::Exit {
                pid: 8,
                tgid: 8,
                exit_code: 3 << 8,
                exit_signal: 17,
                parent_pid: Some(1),
                parent_tgid: Some(1)
            }
        );
        assert_eq!(e.kind.exit_status(), Some(3));
        assert_eq!(e.kind.killed_by(), None);
        // Killed by SIGKILL, on an older kernel without the parent fields.
        let e = one_event(&datagram(PROC_EVENT_EXIT, 1, &[8, 8, 9, 17]));
        assert!(matches!(
            e.kind,
            ProcEventKind::Exit {
                parent_pid: None,
                ..
            }
        ));
        assert_eq!(e.kind.killed_by(), Some(9));
        assert_eq!(e.kind.exit_status(), None);
    }

    #[test]
    fn acks_other_ids_and_unknown_kinds() {
        assert_eq!(
            parse_all(&datagram(PROC_EVENT_NONE, 0, &[1])),
            vec![Ok(Message::Ack { ack: 77, err: 1 })]
        );
        assert_eq!(
            parse_all(&wrap(CN_IDX_PROC + 1, 0, &[0; 24])),
            vec![Ok(Message::Ignored)]
        );
        assert_eq!(
            parse_all(&datagram(0x1234, 0, &[1, 2, 3, 4])),
            vec![Ok(Message::Ignored)]
        );
    }

    #[test]
    fn several_messages_in_one_datagram() {
        let mut bytes = datagram(PROC_EVENT_EXEC, 1, &[1, 1]);
        bytes.extend(datagram(PROC_EVENT_EXEC, 2, &[2, 2]));
        let kinds: Vec<_> = parse_all(&bytes)
            .into_iter()
            .map(|m| match m {
                Ok(Message::Event(e)) => e.kind,
                other => panic!("{other:?}"),
            })
            .collect();
        assert_eq!(
            kinds,
            vec![
                ProcEventKind::Exec { pid: 1, tgid: 1 },
                ProcEventKind::Exec { pid: 2, tgid: 2 }
            ]
        );
    }

    #[test]
    fn truncated_and_hostile_input_is_malformed_never_a_panic() {
        let good = datagram(PROC_EVENT_EXIT, 1, &[8, 8, 0, 17, 1, 1]);
        // Every truncation of the datagram, with the lengths left as they were.
        for cut in 0..good.len() {
            for m in parse_all(&good[..cut]) {
                assert!(m.is_err() || matches!(m, Ok(Message::Event(_))), "{m:?}");
            }
        }
        // A cn_msg whose data length claims more than the message holds.
        let mut lying = good.clone();
        lying[NLMSG_HDRLEN + 16..NLMSG_HDRLEN + 18].copy_from_slice(&u16::MAX.to_ne_bytes());
        assert_eq!(parse_all(&lying), vec![Err(Malformed)]);
        // An event too short for its kind (a fork with one pid).
        assert_eq!(
            parse_all(&datagram(PROC_EVENT_FORK, 1, &[1])),
            vec![Err(Malformed)]
        );
        // Netlink lengths of 0, under the header, and past the end.
        for len in [0u32, 15, u32::MAX] {
            let mut bad = good.clone();
            bad[0..4].copy_from_slice(&len.to_ne_bytes());
            assert_eq!(parse_all(&bad), vec![Err(Malformed)]);
        }
        // Random bytes.
        let mut x: u32 = 0x1234_5678;
        for _ in 0..2000 {
            let n = (x % 120) as usize;
            let mut junk = Vec::with_capacity(n);
            for _ in 0..n {
                x ^= x << 13;
                x ^= x >> 17;
                x ^= x << 5;
                junk.push(x as u8);
            }
            parse_all(&junk);
        }
    }

    #[test]
    fn mcast_request_is_what_the_kernel_reads() {
        let r = mcast_request(99, 5, PROC_CN_MCAST_LISTEN);
        assert_eq!(ne_u32(&r, 0), Some(40));
        assert_eq!(ne_u16(&r, 4), Some(NLMSG_DONE));
        assert_eq!(ne_u32(&r, 12), Some(99));
        assert_eq!(ne_u32(&r, 16), Some(CN_IDX_PROC));
        assert_eq!(ne_u32(&r, 28), Some(5));
        assert_eq!(ne_u16(&r, 32), Some(4));
        assert_eq!(ne_u32(&r, 36), Some(PROC_CN_MCAST_LISTEN));
    }

    #[test]
    fn unix_seconds_round_down() {
        let c = MonotonicToUnix { offset_ns: -1 };
        assert_eq!(c.unix_seconds(0), -1);
        assert_eq!(c.unix_seconds(1_000_000_001), 1);
    }

    #[test]
    fn facts_of_a_pid_that_does_not_exist_are_empty() {
        let mut reader = FileReader::new();
        // pid_max is at most 4194304.
        assert!(read_exec_facts(4_194_305, u64::MAX / 2, true, &mut reader).is_empty());
    }

    /// Reads events until `f` has seen what it waits for (returns true), or 20 s pass.
    fn read_until(conn: &mut ProcConnector, mut f: impl FnMut(&ProcEvent) -> bool) -> bool {
        let deadline = Instant::now() + Duration::from_secs(20);
        while Instant::now() < deadline {
            for e in conn.next_batch(Duration::from_millis(100)).unwrap() {
                if f(&e) {
                    return true;
                }
            }
        }
        false
    }

    fn unix_now() -> i64 {
        let now = std::time::SystemTime::now();
        now.duration_since(std::time::UNIX_EPOCH).unwrap().as_secs() as i64
    }

    fn open_or_skip() -> Option<ProcConnector> {
        oxquery_test_support::require(
            "the process events connector (needs root)",
            ProcConnector::open(EventKinds::ALL),
        )
    }

    #[test]
    fn live_fork_exec_and_exit_of_a_child_with_its_proc_facts() {
        let Some(mut conn) = open_or_skip() else {
            return;
        };
        let me = std::process::id();
        let before = unix_now();
        let mut child = std::process::Command::new("/bin/sleep")
            .arg("0.5")
            .env_clear()
            .env("OXQUERY_EXEC_MARK", "a b")
            .spawn()
            .unwrap();
        let pid = child.id();
        let mut reader = FileReader::new();
        let (mut forked_by, mut exec) = (None, None);
        let seen = read_until(&mut conn, |e| {
            match e.kind {
                ProcEventKind::Fork {
                    parent_tgid,
                    child_pid,
                    child_tgid,
                    ..
                } if child_pid == pid && child_tgid == pid => forked_by = Some(parent_tgid),
                ProcEventKind::Exec { pid: p, tgid } if tgid == pid => {
                    assert_eq!(p, pid);
                    let facts = read_exec_facts(tgid, e.uptime_ns, true, &mut reader);
                    exec = Some((e.clone(), facts));
                }
                _ => {}
            }
            forked_by.is_some() && exec.is_some()
        });
        assert!(seen, "fork {forked_by:?} exec {exec:?}");
        assert_eq!(forked_by, Some(me));
        let (event, facts) = exec.unwrap();
        let after = unix_now();
        assert!((before - 1..=after + 1).contains(&event.time), "{event:?}");

        // The child sleeps: /proc shows it whole.
        assert_eq!(facts.ppid, Some(i64::from(me)));
        let exe = std::fs::canonicalize("/bin/sleep").unwrap();
        assert_eq!(
            facts.exe.as_deref(),
            Some(exe.as_os_str().as_encoded_bytes())
        );
        assert_eq!(facts.cmdline.as_deref(), Some(&b"/bin/sleep\x000.5\0"[..]));
        let cwd = std::env::current_dir().unwrap();
        assert_eq!(
            facts.cwd.as_deref(),
            Some(cwd.as_os_str().as_encoded_bytes())
        );
        assert_eq!(facts.comm.as_deref(), Some(&b"sleep"[..]));
        assert_eq!(
            facts.environ.as_deref(),
            Some(&b"OXQUERY_EXEC_MARK=a b\0"[..])
        );
        assert_eq!(
            read_exec_environ(pid, facts.exe.as_deref().unwrap(), &mut reader).as_deref(),
            Some(&b"OXQUERY_EXEC_MARK=a b\0"[..])
        );
        assert_eq!(read_exec_environ(pid, b"/bin/other", &mut reader), None);
        let ids = facts.ids.unwrap();
        // SAFETY: getuid/getgid cannot fail.
        let (uid, gid) = unsafe { (libc::getuid(), libc::getgid()) };
        assert_eq!((ids.uid[0], ids.gid[0]), (i64::from(uid), i64::from(gid)));
        // No set-id bits on sleep: every id is the real one.
        assert_eq!(ids.uid, [i64::from(uid); 4]);
        assert_eq!(ids.gid, [i64::from(gid); 4]);
        let my_auid = std::fs::read_to_string("/proc/self/loginuid").unwrap();
        assert_eq!(facts.auid, my_auid.trim().parse().ok());
        let st = std::fs::metadata(&exe).unwrap();
        use std::os::unix::fs::MetadataExt;
        let file = facts.exe_file.unwrap();
        assert_eq!(
            (file.mode, file.uid, file.mtime),
            (st.mode(), st.uid(), st.mtime())
        );

        assert!(child.wait().unwrap().success());
        let mut exit = None;
        assert!(read_until(&mut conn, |e| {
            if let ProcEventKind::Exit { pid: p, tgid, .. } = e.kind
                && p == pid
                && tgid == pid
            {
                exit = Some(e.kind.clone());
            }
            exit.is_some()
        }));
        let exit = exit.unwrap();
        assert_eq!(exit.exit_status(), Some(0));
        if let ProcEventKind::Exit { parent_tgid, .. } = exit {
            assert!(parent_tgid.is_none_or(|p| p == me), "{exit:?}");
        }
    }

    #[test]
    fn live_filter_delivers_only_the_kinds_asked_for() {
        let Some(mut conn) = oxquery_test_support::require(
            "the process events connector (needs root)",
            ProcConnector::open(EventKinds::EXEC),
        ) else {
            return;
        };
        let mut child = std::process::Command::new("/bin/true").spawn().unwrap();
        let pid = child.id();
        assert!(child.wait().unwrap().success());
        let mut kinds = Vec::new();
        let seen = read_until(&mut conn, |e| {
            kinds.push(std::mem::discriminant(&e.kind));
            matches!(e.kind, ProcEventKind::Exec { tgid, .. } if tgid == pid)
        });
        assert!(seen, "the child's exec did not arrive");
        // Every process on the host forks and exits meanwhile; none of it gets through.
        let exec = std::mem::discriminant(&ProcEventKind::Exec { pid: 0, tgid: 0 });
        assert!(kinds.iter().all(|k| *k == exec), "{kinds:?}");
        // With forks asked for too, the child's fork arrives as well.
        let mut conn = ProcConnector::open(EventKinds::EXEC.and(EventKinds::FORK)).unwrap();
        let mut child = std::process::Command::new("/bin/true").spawn().unwrap();
        let pid = child.id();
        assert!(child.wait().unwrap().success());
        assert!(read_until(&mut conn, |e| matches!(
            e.kind,
            ProcEventKind::Fork { child_tgid, .. } if child_tgid == pid
        )));
    }

    #[test]
    fn live_facts_of_an_exited_child_are_partial_or_empty() {
        let Some(mut conn) = open_or_skip() else {
            return;
        };
        let mut child = std::process::Command::new("/bin/true").spawn().unwrap();
        let pid = child.id();
        let mut uptime = None;
        assert!(read_until(&mut conn, |e| {
            if matches!(e.kind, ProcEventKind::Exec { tgid, .. } if tgid == pid) {
                uptime = Some(e.uptime_ns);
            }
            uptime.is_some()
        }));
        let uptime = uptime.unwrap();
        let mut reader = FileReader::new();
        // Exited but not reaped: a zombie keeps its stat and status, loses the rest.
        assert!(oxquery_test_support::wait_until(
            Duration::from_secs(20),
            || {
                std::fs::read(format!("/proc/{pid}/stat"))
                    .ok()
                    .and_then(|s| proc::parse_stat(&s).map(|(_, st)| st.state))
                    == Some(b'Z')
            }
        ));
        let zombie = read_exec_facts(pid, uptime, true, &mut reader);
        assert_eq!(zombie.ppid, Some(i64::from(std::process::id())));
        assert_eq!((zombie.exe, zombie.cmdline, zombie.cwd), (None, None, None));
        // Reaped: nothing left (or a newer process on the pid, refused).
        child.wait().unwrap();
        assert!(read_exec_facts(pid, uptime, true, &mut reader).is_empty());
    }

    #[test]
    fn live_overrun_of_a_small_buffer_is_counted() {
        let Some(mut conn) = oxquery_test_support::require(
            "the process events connector (needs root)",
            ProcConnector::open_with_receive_buffer(EventKinds::ALL, 1),
        ) else {
            return;
        };
        // Each child is a fork, an exec and an exit: far more than a minimal buffer holds.
        for _ in 0..40 {
            std::process::Command::new("/bin/true").status().unwrap();
        }
        let before = conn.loss().overruns;
        let _ = conn.next_batch(Duration::from_millis(100)).unwrap();
        assert!(conn.loss().overruns > before, "{:?}", conn.loss());
        // Still usable after the overrun: events keep coming (ours, or the host's; a
        // minimal buffer may drop any single one of them again).
        let got_more = oxquery_test_support::wait_until(Duration::from_secs(20), || {
            std::process::Command::new("/bin/true").status().unwrap();
            !conn
                .next_batch(Duration::from_millis(100))
                .unwrap()
                .is_empty()
        });
        assert!(got_more);
    }
}
