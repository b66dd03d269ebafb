//! Groups audit records into events by the serial in their `audit(TIME:SERIAL)` header.
//!
//! A syscall event is several records (SYSCALL, EXECVE, CWD, PATH..., PROCTITLE,
//! SOCKADDR, and AVC/SECCOMP records caused during the syscall) closed by an EOE record.
//! Records from user space (1100-1199, 2100-2999) and anomaly records (1700-1799) are
//! events of one record. Anything else that never sees its EOE (an AVC or SECCOMP record
//! outside a syscall context, a record lost in the kernel) is delivered after a timeout;
//! when a group that started a syscall is flushed that way it is counted as incomplete.
//!
//! Memory is bounded: at most [`MAX_PENDING`] open groups (the oldest is flushed, counted
//! as evicted) and [`MAX_RECORDS`] records / [`MAX_EVENT_BYTES`] bytes per group (later
//! records are dropped and counted, the event marked truncated).

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::time::{Duration, Instant};

use super::record::{self, AuditTime, SockAddr, Value};

pub const AUDIT_SYSCALL: u16 = 1300;
pub const AUDIT_PATH: u16 = 1302;
pub const AUDIT_SOCKADDR: u16 = 1306;
pub const AUDIT_CWD: u16 = 1307;
pub const AUDIT_EXECVE: u16 = 1309;
pub const AUDIT_EOE: u16 = 1320;
pub const AUDIT_SECCOMP: u16 = 1326;
pub const AUDIT_PROCTITLE: u16 = 1327;
pub const AUDIT_USER_AVC: u16 = 1107;
pub const AUDIT_AVC: u16 = 1400;

/// Open groups kept at most.
pub const MAX_PENDING: usize = 4096;
/// Records kept per event (an execve of a 2 MiB argument list is about 280 records).
pub const MAX_RECORDS: usize = 2048;
/// Record text bytes kept per event.
pub const MAX_EVENT_BYTES: usize = 4 << 20;

/// What a record is, for the tables.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RecordClass {
    Syscall,
    Execve,
    Cwd,
    Path,
    Proctitle,
    Sockaddr,
    Eoe,
    /// User-space messages (1100-1199): logins, authentication, sudo... (user_events);
    /// except `USER_AVC`, which is SELinux's.
    UserMessage,
    /// SELinux access decisions: `AVC` (1400) and `USER_AVC` (1107) without an
    /// `apparmor=` field, and the other 1400-1499 records.
    Selinux,
    /// AppArmor: 1500-1599, and `AVC` records with an `apparmor=` field (how current
    /// kernels report AppArmor decisions), and `USER_AVC` ones (user-space mediation such
    /// as D-Bus's; osquery drops those).
    AppArmor,
    /// `SECCOMP` (1326): a seccomp filter's logged decision.
    Seccomp,
    Other,
}

/// Classifies a record by type (and, for AVC, by body).
pub fn classify(kind: u16, body: &[u8]) -> RecordClass {
    match kind {
        AUDIT_SYSCALL => RecordClass::Syscall,
        AUDIT_EXECVE => RecordClass::Execve,
        AUDIT_CWD => RecordClass::Cwd,
        AUDIT_PATH => RecordClass::Path,
        AUDIT_PROCTITLE => RecordClass::Proctitle,
        AUDIT_SOCKADDR => RecordClass::Sockaddr,
        AUDIT_EOE => RecordClass::Eoe,
        AUDIT_SECCOMP => RecordClass::Seccomp,
        AUDIT_AVC | AUDIT_USER_AVC if names_apparmor(body) => RecordClass::AppArmor,
        AUDIT_USER_AVC => RecordClass::Selinux,
        1100..=1199 => RecordClass::UserMessage,
        1400..=1499 => RecordClass::Selinux,
        1500..=1599 => RecordClass::AppArmor,
        _ => RecordClass::Other,
    }
}

/// Whether a record carries an `apparmor=` field, in its body or (for a user-space
/// `USER_AVC`, such as D-Bus's AppArmor mediation) inside its `msg='...'`.
fn names_apparmor(body: &[u8]) -> bool {
    record::field(body, "apparmor").is_some()
        || record::field(body, "msg").is_some_and(|m| record::field(m.raw, "apparmor").is_some())
}

/// The audit name of a record type (`AVC`, `USER_AVC`, `APPARMOR_DENIED`, `SECCOMP`...)
/// for the security tables' `type` column; `None` for types they never see.
pub fn record_type_name(kind: u16) -> Option<&'static str> {
    Some(match kind {
        AUDIT_USER_AVC => "USER_AVC",
        AUDIT_SECCOMP => "SECCOMP",
        1400 => "AVC",
        1401 => "SELINUX_ERR",
        1402 => "AVC_PATH",
        1403 => "MAC_POLICY_LOAD",
        1404 => "MAC_STATUS",
        1405 => "MAC_CONFIG_CHANGE",
        1406 => "MAC_UNLBL_ALLOW",
        1407 => "MAC_CIPSOV4_ADD",
        1408 => "MAC_CIPSOV4_DEL",
        1409 => "MAC_MAP_ADD",
        1410 => "MAC_MAP_DEL",
        1411 => "MAC_IPSEC_ADDSA",
        1412 => "MAC_IPSEC_DELSA",
        1413 => "MAC_IPSEC_ADDSPD",
        1414 => "MAC_IPSEC_DELSPD",
        1415 => "MAC_IPSEC_EVENT",
        1416 => "MAC_UNLBL_STCADD",
        1417 => "MAC_UNLBL_STCDEL",
        1418 => "MAC_CALIPSO_ADD",
        1419 => "MAC_CALIPSO_DEL",
        1500 => "APPARMOR",
        1501 => "APPARMOR_AUDIT",
        1502 => "APPARMOR_ALLOWED",
        1503 => "APPARMOR_DENIED",
        1504 => "APPARMOR_HINT",
        1505 => "APPARMOR_STATUS",
        1506 => "APPARMOR_ERROR",
        1507 => "APPARMOR_KILL",
        _ => return None,
    })
}

/// Whether a record type is an event by itself (no EOE follows).
fn is_single_record(kind: u16) -> bool {
    matches!(kind, 1005 | 1100..=1199 | 1700..=1799 | 2100..=2999)
}

/// A record kept whole: its type and body (the text after the header).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Record {
    pub kind: u16,
    pub body: Vec<u8>,
}

impl Record {
    pub fn class(&self) -> RecordClass {
        classify(self.kind, &self.body)
    }

    /// The field `key`, looked up in the body and then inside a user message's
    /// `msg='...'`.
    pub fn field(&self, key: &str) -> Option<Value<'_>> {
        record::field(&self.body, key).or_else(|| {
            let msg = record::field(&self.body, "msg")?;
            record::field(msg.raw, key)
        })
    }

    /// The fields of the body, in order (a `msg='...'` appears as one field).
    pub fn fields(&self) -> record::Fields<'_> {
        record::fields(&self.body)
    }
}

/// The SYSCALL record's facts.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Syscall {
    /// `AUDIT_ARCH_*` (`c000003e` for x86_64).
    pub arch: u32,
    pub syscall: u32,
    /// `success=yes`; `None` when the field is absent.
    pub success: Option<bool>,
    /// The return value.
    pub exit: Option<i64>,
    /// The first four arguments as numbers.
    pub args: [u64; 4],
    pub pid: u32,
    pub ppid: u32,
    /// Ids; `u32::MAX` is the kernel's "unset" (an auid before login).
    pub auid: u32,
    pub uid: u32,
    pub gid: u32,
    pub euid: u32,
    pub egid: u32,
    pub suid: u32,
    pub sgid: u32,
    pub fsuid: u32,
    pub fsgid: u32,
    pub ses: u32,
    pub tty: Vec<u8>,
    pub comm: Option<Vec<u8>>,
    pub exe: Option<Vec<u8>>,
    pub key: Option<Vec<u8>>,
}

/// One PATH record (a file the syscall named).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct PathRecord {
    pub item: u32,
    pub name: Option<Vec<u8>>,
    pub inode: Option<u64>,
    /// `major:minor` in hex, as printed.
    pub dev: Option<Vec<u8>>,
    pub mode: Option<u32>,
    pub ouid: Option<u32>,
    pub ogid: Option<u32>,
    /// `NORMAL`, `PARENT`, `CREATE`, `DELETE`, `UNKNOWN`.
    pub nametype: Option<Vec<u8>>,
}

/// The EXECVE records' argument list.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Execve {
    /// `argc=` as the kernel counted.
    pub argc: u32,
    /// The arguments decoded; fewer than `argc` when some were lost.
    pub args: Vec<Vec<u8>>,
}

/// How an event was closed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ending {
    /// Its EOE record arrived.
    Eoe,
    /// A record type that is an event by itself.
    Single,
    /// No EOE within the timeout.
    Timeout,
    /// Flushed early because too many groups were open.
    Evicted,
    /// Flushed when the reader stopped.
    Shutdown,
}

/// One assembled audit event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuditEvent {
    pub serial: u64,
    /// From the first record's header.
    pub time: AuditTime,
    pub ending: Ending,
    pub syscall: Option<Syscall>,
    pub execve: Option<Execve>,
    pub cwd: Option<Vec<u8>>,
    pub paths: Vec<PathRecord>,
    /// `proctitle=`: the command line split at NULs.
    pub proctitle: Option<Vec<Vec<u8>>>,
    pub sockaddr: Option<SockAddr>,
    /// Every record not decoded into the fields above (user messages, AVC, AppArmor,
    /// SECCOMP, other types), in arrival order.
    pub records: Vec<Record>,
    /// Records were dropped (group limits) or an EXECVE argument was missing.
    pub truncated: bool,
}

impl AuditEvent {
    /// The first undecoded record of `class`.
    pub fn record(&self, class: RecordClass) -> Option<&Record> {
        self.records.iter().find(|r| r.class() == class)
    }

    /// Whether the event is missing records it should have (a syscall without its EOE).
    fn incomplete(&self, had_syscall_records: bool) -> bool {
        matches!(
            self.ending,
            Ending::Timeout | Ending::Evicted | Ending::Shutdown
        ) && had_syscall_records
    }
}

/// Counters of what the assembler could not deliver whole.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct AssemblerStats {
    /// Records without a readable `audit(TIME:SERIAL)` header, dropped.
    pub malformed: u64,
    /// Syscall events delivered without their EOE (timeout, eviction, shutdown).
    pub incomplete: u64,
    /// Groups flushed early because [`MAX_PENDING`] were open.
    pub evicted: u64,
    /// Records dropped by the per-event limits.
    pub records_dropped: u64,
}

/// One EXECVE argument as it arrives: whole (`a1=`), or in chunks (`a1_len=`, `a1[0]=`).
#[derive(Debug, Default)]
struct ArgParts {
    whole: Option<Vec<u8>>,
    chunks: BTreeMap<u32, Vec<u8>>,
}

struct Pending {
    started: Instant,
    event: AuditEvent,
    argc: Option<u32>,
    args: BTreeMap<u32, ArgParts>,
    records: usize,
    bytes: usize,
    syscall_records: bool,
}

impl Pending {
    fn new(serial: u64, time: AuditTime, now: Instant) -> Pending {
        Pending {
            started: now,
            event: AuditEvent {
                serial,
                time,
                ending: Ending::Timeout,
                syscall: None,
                execve: None,
                cwd: None,
                paths: Vec::new(),
                proctitle: None,
                sockaddr: None,
                records: Vec::new(),
                truncated: false,
            },
            argc: None,
            args: BTreeMap::new(),
            records: 0,
            bytes: 0,
            syscall_records: false,
        }
    }

    fn add(&mut self, kind: u16, body: &[u8], stats: &mut AssemblerStats) {
        if self.records >= MAX_RECORDS || self.bytes + body.len() > MAX_EVENT_BYTES {
            stats.records_dropped += 1;
            self.event.truncated = true;
            return;
        }
        self.records += 1;
        self.bytes += body.len();
        let class = classify(kind, body);
        let e = &mut self.event;
        match class {
            RecordClass::Syscall => {
                self.syscall_records = true;
                e.syscall = Some(parse_syscall(body));
            }
            RecordClass::Execve => {
                self.syscall_records = true;
                self.add_execve(body);
            }
            RecordClass::Cwd => {
                self.syscall_records = true;
                e.cwd = record::field(body, "cwd").and_then(|v| v.string());
            }
            RecordClass::Path => {
                self.syscall_records = true;
                e.paths.push(parse_path(body));
            }
            RecordClass::Proctitle => {
                self.syscall_records = true;
                e.proctitle = record::field(body, "proctitle")
                    .and_then(|v| v.string())
                    .map(|t| split_nul(&t));
            }
            RecordClass::Sockaddr => {
                self.syscall_records = true;
                e.sockaddr = record::field(body, "saddr")
                    .and_then(|v| record::decode_hex(v.raw))
                    .and_then(|b| record::parse_sockaddr(&b));
            }
            RecordClass::Eoe => {}
            _ => e.records.push(Record {
                kind,
                body: body.to_vec(),
            }),
        }
    }

    fn add_execve(&mut self, body: &[u8]) {
        for f in record::fields(body) {
            if f.key == b"argc" {
                self.argc = f.value.decimal().and_then(|n| u32::try_from(n).ok());
                continue;
            }
            let Some(rest) = f.key.strip_prefix(b"a") else {
                continue;
            };
            // `aN`, `aN_len`, `aN[i]`.
            let digits = rest.iter().take_while(|b| b.is_ascii_digit()).count();
            let Some(index) = std::str::from_utf8(&rest[..digits])
                .ok()
                .and_then(|s| s.parse::<u32>().ok())
            else {
                continue;
            };
            let suffix = &rest[digits..];
            // The kernel caps argc far below this; the bound keeps a hostile record from
            // growing the map.
            if index as usize >= MAX_RECORDS * 64 {
                continue;
            }
            let value = f.value.string().unwrap_or_default();
            if suffix.is_empty() {
                self.args.entry(index).or_default().whole = Some(value);
            } else if let Some(chunk) = suffix
                .strip_prefix(b"[")
                .and_then(|s| s.strip_suffix(b"]"))
                .and_then(|s| std::str::from_utf8(s).ok())
                .and_then(|s| s.parse::<u32>().ok())
            {
                self.args
                    .entry(index)
                    .or_default()
                    .chunks
                    .insert(chunk, value);
            }
            // `aN_len` only announces the chunks.
        }
    }

    fn finish(mut self, ending: Ending, stats: &mut AssemblerStats) -> AuditEvent {
        self.event.ending = ending;
        if self.argc.is_some() || !self.args.is_empty() {
            let argc = self
                .argc
                .unwrap_or_else(|| self.args.keys().next_back().map_or(0, |k| k + 1));
            let mut args = Vec::new();
            for i in 0..argc {
                match self.args.remove(&i) {
                    Some(ArgParts { whole: Some(w), .. }) => args.push(w),
                    Some(ArgParts { chunks, .. })
                        if !chunks.is_empty()
                            && chunks.keys().copied().eq(0..chunks.len() as u32) =>
                    {
                        args.push(chunks.into_values().flatten().collect());
                    }
                    _ => {
                        self.event.truncated = true;
                        break;
                    }
                }
            }
            self.event.execve = Some(Execve { argc, args });
        }
        self.event.paths.sort_by_key(|p| p.item);
        if self.event.incomplete(self.syscall_records) {
            stats.incomplete += 1;
        }
        self.event
    }
}

fn parse_syscall(body: &[u8]) -> Syscall {
    let mut s = Syscall {
        auid: u32::MAX,
        uid: u32::MAX,
        gid: u32::MAX,
        euid: u32::MAX,
        egid: u32::MAX,
        suid: u32::MAX,
        sgid: u32::MAX,
        fsuid: u32::MAX,
        fsgid: u32::MAX,
        ses: u32::MAX,
        ..Syscall::default()
    };
    let id = |v: &Value<'_>| v.decimal().and_then(|n| u32::try_from(n).ok());
    for f in record::fields(body) {
        let v = &f.value;
        match f.key {
            b"arch" => s.arch = v.hex().and_then(|n| u32::try_from(n).ok()).unwrap_or(0),
            b"syscall" => s.syscall = id(v).unwrap_or(u32::MAX),
            b"success" => s.success = Some(v.raw == b"yes"),
            b"exit" => s.exit = v.decimal(),
            b"a0" => s.args[0] = v.hex().unwrap_or(0),
            b"a1" => s.args[1] = v.hex().unwrap_or(0),
            b"a2" => s.args[2] = v.hex().unwrap_or(0),
            b"a3" => s.args[3] = v.hex().unwrap_or(0),
            b"pid" => s.pid = id(v).unwrap_or(0),
            b"ppid" => s.ppid = id(v).unwrap_or(0),
            b"auid" => s.auid = id(v).unwrap_or(u32::MAX),
            b"uid" => s.uid = id(v).unwrap_or(u32::MAX),
            b"gid" => s.gid = id(v).unwrap_or(u32::MAX),
            b"euid" => s.euid = id(v).unwrap_or(u32::MAX),
            b"egid" => s.egid = id(v).unwrap_or(u32::MAX),
            b"suid" => s.suid = id(v).unwrap_or(u32::MAX),
            b"sgid" => s.sgid = id(v).unwrap_or(u32::MAX),
            b"fsuid" => s.fsuid = id(v).unwrap_or(u32::MAX),
            b"fsgid" => s.fsgid = id(v).unwrap_or(u32::MAX),
            b"ses" => s.ses = id(v).unwrap_or(u32::MAX),
            b"tty" => s.tty = v.raw.to_vec(),
            b"comm" => s.comm = v.string(),
            b"exe" => s.exe = v.string(),
            b"key" => s.key = v.string(),
            _ => {}
        }
    }
    s
}

fn parse_path(body: &[u8]) -> PathRecord {
    let mut p = PathRecord::default();
    for f in record::fields(body) {
        let v = &f.value;
        let small = |v: &Value<'_>| v.decimal().and_then(|n| u32::try_from(n).ok());
        match f.key {
            b"item" => p.item = small(v).unwrap_or(0),
            b"name" => p.name = v.string(),
            b"inode" => p.inode = v.decimal().and_then(|n| u64::try_from(n).ok()),
            b"dev" => p.dev = Some(v.raw.to_vec()),
            b"mode" => p.mode = v.octal().and_then(|n| u32::try_from(n).ok()),
            b"ouid" => p.ouid = small(v),
            b"ogid" => p.ogid = small(v),
            b"nametype" => p.nametype = Some(v.raw.to_vec()),
            _ => {}
        }
    }
    p
}

fn split_nul(text: &[u8]) -> Vec<Vec<u8>> {
    let text = text.strip_suffix(b"\0").unwrap_or(text);
    text.split(|b| *b == 0).map(<[u8]>::to_vec).collect()
}

/// Groups records into events; see the module documentation.
pub struct Assembler {
    timeout: Duration,
    pending: HashMap<u64, Pending>,
    /// Serials in arrival order with their start, for expiry and eviction.
    order: VecDeque<(Instant, u64)>,
    stats: AssemblerStats,
}

impl Assembler {
    /// Groups without an EOE are delivered `timeout` after their first record.
    pub fn new(timeout: Duration) -> Assembler {
        Assembler {
            timeout,
            pending: HashMap::new(),
            order: VecDeque::new(),
            stats: AssemblerStats::default(),
        }
    }

    pub fn stats(&self) -> AssemblerStats {
        self.stats
    }

    /// Open groups now.
    pub fn pending(&self) -> usize {
        self.pending.len()
    }

    /// Adds one record (`kind`, full text with its header) received at `now`; completed
    /// events are appended to `out`.
    pub fn push(&mut self, kind: u16, text: &[u8], now: Instant, out: &mut Vec<AuditEvent>) {
        let Some((header, body)) = record::parse_header(text) else {
            self.stats.malformed += 1;
            log::debug!("audit: record {kind} without a readable header dropped");
            return;
        };
        if is_single_record(kind) {
            let mut p = Pending::new(header.serial, header.time, now);
            p.add(kind, body, &mut self.stats);
            out.push(p.finish(Ending::Single, &mut self.stats));
            return;
        }
        if kind == AUDIT_EOE && !self.pending.contains_key(&header.serial) {
            // The end of a group already delivered (flushed after the timeout): nothing
            // left to close.
            log::debug!("audit: late end of event {}", header.serial);
            return;
        }
        if !self.pending.contains_key(&header.serial) {
            if self.pending.len() >= MAX_PENDING {
                self.evict_oldest(out);
            }
            self.pending
                .insert(header.serial, Pending::new(header.serial, header.time, now));
            self.order.push_back((now, header.serial));
        }
        let pending = self
            .pending
            .get_mut(&header.serial)
            .expect("inserted above");
        if kind == AUDIT_EOE {
            let p = self.pending.remove(&header.serial).expect("present");
            out.push(p.finish(Ending::Eoe, &mut self.stats));
        } else {
            pending.add(kind, body, &mut self.stats);
        }
    }

    /// Delivers the groups open for longer than the timeout.
    pub fn flush_expired(&mut self, now: Instant, out: &mut Vec<AuditEvent>) {
        while let Some(&(started, serial)) = self.order.front() {
            if now.saturating_duration_since(started) < self.timeout {
                break;
            }
            self.order.pop_front();
            self.finish_if_current(serial, started, Ending::Timeout, out);
        }
    }

    /// When the oldest open group expires (for the reader's poll timeout).
    pub fn next_expiry(&mut self) -> Option<Instant> {
        // Drop entries of groups already closed by their EOE.
        while let Some(&(started, serial)) = self.order.front() {
            if self
                .pending
                .get(&serial)
                .is_some_and(|p| p.started == started)
            {
                return Some(started + self.timeout);
            }
            self.order.pop_front();
        }
        None
    }

    /// Delivers every open group (the reader is stopping).
    pub fn flush_all(&mut self, out: &mut Vec<AuditEvent>) {
        while let Some((started, serial)) = self.order.pop_front() {
            self.finish_if_current(serial, started, Ending::Shutdown, out);
        }
    }

    fn evict_oldest(&mut self, out: &mut Vec<AuditEvent>) {
        while let Some((started, serial)) = self.order.pop_front() {
            if self.finish_if_current(serial, started, Ending::Evicted, out) {
                self.stats.evicted += 1;
                return;
            }
        }
    }

    fn finish_if_current(
        &mut self,
        serial: u64,
        started: Instant,
        ending: Ending,
        out: &mut Vec<AuditEvent>,
    ) -> bool {
        if self
            .pending
            .get(&serial)
            .is_some_and(|p| p.started == started)
        {
            let p = self.pending.remove(&serial).expect("present");
            out.push(p.finish(ending, &mut self.stats));
            return true;
        }
        false
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Records of one `execve("/bin/true", ["/bin/true", "hello world", "x"])` as the
    /// kernel writes them (argument with a space hex-encoded).
    const EXEC: &[(u16, &str)] = &[
        (
            AUDIT_SYSCALL,
            "audit(1733490000.250:77): arch=c000003e syscall=59 success=yes exit=0 a0=55d0 a1=55e0 a2=55f0 a3=0 items=2 ppid=100 pid=101 auid=4294967295 uid=0 gid=0 euid=0 suid=0 fsuid=0 egid=0 sgid=0 fsgid=0 tty=pts0 ses=4294967295 comm=\"true\" exe=\"/usr/bin/true\" subj=unconfined key=\"oxquery\"",
        ),
        (
            AUDIT_EXECVE,
            "audit(1733490000.250:77): argc=3 a0=\"/bin/true\" a1=68656C6C6F20776F726C64 a2=\"x\"",
        ),
        (AUDIT_CWD, "audit(1733490000.250:77): cwd=\"/root\""),
        (
            AUDIT_PATH,
            "audit(1733490000.250:77): item=1 name=\"/lib64/ld-linux-x86-64.so.2\" inode=2 dev=fd:00 mode=0100755 ouid=0 ogid=0 rdev=00:00 nametype=NORMAL",
        ),
        (
            AUDIT_PATH,
            "audit(1733490000.250:77): item=0 name=\"/bin/true\" inode=1 dev=fd:00 mode=0100755 ouid=0 ogid=0 rdev=00:00 nametype=NORMAL cap_fp=0",
        ),
        (
            AUDIT_PROCTITLE,
            "audit(1733490000.250:77): proctitle=2F62696E2F747275650068656C6C6F20776F726C640078",
        ),
        (AUDIT_EOE, "audit(1733490000.250:77): "),
    ];

    fn push_all(a: &mut Assembler, records: &[(u16, &str)], now: Instant) -> Vec<AuditEvent> {
        let mut out = Vec::new();
        for (kind, text) in records {
            a.push(*kind, text.as_bytes(), now, &mut out);
        }
        out
    }

    #[test]
    fn execve_event_assembled_from_its_records() {
        let mut a = Assembler::new(Duration::from_secs(2));
        let out = push_all(&mut a, EXEC, Instant::now());
        assert_eq!(out.len(), 1);
        let e = &out[0];
        assert_eq!(e.serial, 77);
        assert_eq!(
            e.time,
            AuditTime {
                secs: 1733490000,
                millis: 250
            }
        );
        assert_eq!(e.ending, Ending::Eoe);
        let s = e.syscall.as_ref().unwrap();
        assert_eq!(
            (s.arch, s.syscall, s.pid, s.ppid, s.uid, s.auid),
            (0xc000003e, 59, 101, 100, 0, u32::MAX)
        );
        assert_eq!(s.success, Some(true));
        assert_eq!(s.args, [0x55d0, 0x55e0, 0x55f0, 0]);
        assert_eq!(s.exe.as_deref(), Some(&b"/usr/bin/true"[..]));
        assert_eq!(s.key.as_deref(), Some(&b"oxquery"[..]));
        assert_eq!(s.tty, b"pts0");
        let x = e.execve.as_ref().unwrap();
        assert_eq!(x.argc, 3);
        assert_eq!(
            x.args,
            [
                b"/bin/true".to_vec(),
                b"hello world".to_vec(),
                b"x".to_vec()
            ]
        );
        assert_eq!(e.cwd.as_deref(), Some(&b"/root"[..]));
        // PATH records sorted by item.
        assert_eq!(e.paths.len(), 2);
        assert_eq!(e.paths[0].name.as_deref(), Some(&b"/bin/true"[..]));
        assert_eq!(e.paths[0].mode, Some(0o100755));
        assert_eq!(e.paths[0].inode, Some(1));
        assert_eq!(e.paths[1].item, 1);
        assert_eq!(
            e.proctitle.as_ref().unwrap(),
            &[
                b"/bin/true".to_vec(),
                b"hello world".to_vec(),
                b"x".to_vec()
            ]
        );
        assert!(!e.truncated);
        assert_eq!(a.pending(), 0);
        assert_eq!(a.stats(), AssemblerStats::default());
    }

    #[test]
    fn interleaved_events_are_kept_apart() {
        let other: Vec<(u16, String)> = EXEC
            .iter()
            .map(|(k, t)| (*k, t.replace(":77)", ":78)").replace("pid=101", "pid=202")))
            .collect();
        let mut a = Assembler::new(Duration::from_secs(2));
        let mut out = Vec::new();
        let now = Instant::now();
        for (x, y) in EXEC.iter().zip(&other) {
            a.push(x.0, x.1.as_bytes(), now, &mut out);
            a.push(y.0, y.1.as_bytes(), now, &mut out);
        }
        assert_eq!(out.len(), 2);
        assert_eq!(out[0].syscall.as_ref().unwrap().pid, 101);
        assert_eq!(out[1].serial, 78);
        assert_eq!(out[1].syscall.as_ref().unwrap().pid, 202);
    }

    #[test]
    fn long_arguments_in_chunks_across_execve_records() {
        let records = [
            (
                AUDIT_SYSCALL,
                "audit(1.000:9): arch=c000003e syscall=59 pid=5",
            ),
            (
                AUDIT_EXECVE,
                "audit(1.000:9): argc=3 a0=\"prog\" a1_len=12 a1[0]=68656C6C6F",
            ),
            (AUDIT_EXECVE, "audit(1.000:9): a1[1]=20776F726C6421 a2=\"\""),
            (AUDIT_EOE, "audit(1.000:9):"),
        ];
        let mut a = Assembler::new(Duration::from_secs(2));
        let out = push_all(&mut a, &records, Instant::now());
        let x = out[0].execve.as_ref().unwrap();
        assert_eq!(
            x.args,
            [b"prog".to_vec(), b"hello world!".to_vec(), b"".to_vec()]
        );
        assert!(!out[0].truncated);
    }

    #[test]
    fn missing_argument_chunk_marks_truncated() {
        let records = [
            (
                AUDIT_EXECVE,
                "audit(1.000:9): argc=3 a0=\"prog\" a1_len=12 a1[1]=20776F726C6421",
            ),
            (AUDIT_EOE, "audit(1.000:9):"),
        ];
        let mut a = Assembler::new(Duration::from_secs(2));
        let out = push_all(&mut a, &records, Instant::now());
        let x = out[0].execve.as_ref().unwrap();
        assert_eq!(x.argc, 3);
        assert_eq!(x.args, [b"prog".to_vec()]);
        assert!(out[0].truncated);
    }

    #[test]
    fn user_messages_are_single_record_events() {
        let text = "audit(1733490001.000:80): pid=300 uid=0 auid=1000 ses=2 msg='op=PAM:authentication grantors=pam_unix acct=\"alice\" exe=\"/usr/bin/su\" hostname=? addr=? terminal=/dev/pts/1 res=success'";
        let mut a = Assembler::new(Duration::from_secs(2));
        let mut out = Vec::new();
        a.push(1100, text.as_bytes(), Instant::now(), &mut out);
        assert_eq!(out.len(), 1);
        let e = &out[0];
        assert_eq!(e.ending, Ending::Single);
        let r = e.record(RecordClass::UserMessage).unwrap();
        assert_eq!(r.kind, 1100);
        assert_eq!(r.field("pid").unwrap().decimal(), Some(300));
        // Nested inside msg='...'.
        assert_eq!(r.field("acct").unwrap().string().unwrap(), b"alice");
        assert_eq!(r.field("terminal").unwrap().raw, b"/dev/pts/1");
        assert_eq!(r.field("res").unwrap().raw, b"success");
        assert_eq!(a.pending(), 0);
    }

    #[test]
    fn security_records_classified() {
        let avc = b"avc:  denied  { read } for  pid=1 comm=\"cat\" scontext=a tcontext=b tclass=file permissive=0";
        let aa = b"apparmor=\"DENIED\" operation=\"open\" profile=\"/usr/bin/x\" name=\"/etc/shadow\" pid=2 comm=\"x\" requested_mask=\"r\" denied_mask=\"r\" fsuid=0 ouid=0";
        assert_eq!(classify(AUDIT_AVC, avc), RecordClass::Selinux);
        assert_eq!(classify(AUDIT_AVC, aa), RecordClass::AppArmor);
        assert_eq!(classify(1503, aa), RecordClass::AppArmor);
        assert_eq!(classify(AUDIT_USER_AVC, b"pid=1"), RecordClass::Selinux);
        let dbus =
            b"pid=1 uid=0 msg='apparmor=\"DENIED\" operation=\"dbus_method_call\" label=\"x\"'";
        assert_eq!(classify(AUDIT_USER_AVC, dbus), RecordClass::AppArmor);
        assert_eq!(classify(1112, b"pid=1"), RecordClass::UserMessage);
        assert_eq!(classify(AUDIT_SECCOMP, b"pid=1"), RecordClass::Seccomp);
        assert_eq!(classify(1305, b"op=add_rule"), RecordClass::Other);
        assert_eq!(record_type_name(AUDIT_AVC), Some("AVC"));
        assert_eq!(record_type_name(1503), Some("APPARMOR_DENIED"));
        assert_eq!(record_type_name(1300), None);
    }

    #[test]
    fn standalone_seccomp_flushed_after_timeout_not_counted_incomplete() {
        let mut a = Assembler::new(Duration::from_secs(2));
        let t0 = Instant::now();
        let mut out = Vec::new();
        a.push(
            AUDIT_SECCOMP,
            b"audit(1.000:50): auid=0 uid=0 gid=0 ses=1 pid=9 comm=\"x\" exe=\"/x\" sig=31 arch=c000003e syscall=1 compat=0 ip=0x7f code=0x0",
            t0,
            &mut out,
        );
        assert!(out.is_empty());
        assert_eq!(a.next_expiry(), Some(t0 + Duration::from_secs(2)));
        a.flush_expired(t0 + Duration::from_secs(1), &mut out);
        assert!(out.is_empty());
        a.flush_expired(t0 + Duration::from_secs(2), &mut out);
        assert_eq!(out.len(), 1);
        assert_eq!(out[0].ending, Ending::Timeout);
        let r = out[0].record(RecordClass::Seccomp).unwrap();
        assert_eq!(r.field("sig").unwrap().decimal(), Some(31));
        assert_eq!(a.stats().incomplete, 0);
        assert_eq!(a.next_expiry(), None);
    }

    #[test]
    fn syscall_without_eoe_is_flushed_and_counted_incomplete() {
        let mut a = Assembler::new(Duration::from_secs(2));
        let t0 = Instant::now();
        let out = push_all(&mut a, &EXEC[..3], t0);
        assert!(out.is_empty());
        let mut out = Vec::new();
        a.flush_expired(t0 + Duration::from_secs(3), &mut out);
        assert_eq!(out.len(), 1);
        assert_eq!(out[0].syscall.as_ref().unwrap().pid, 101);
        assert_eq!(a.stats().incomplete, 1);
        // A late EOE for it is dropped, not an empty event.
        let mut late = Vec::new();
        a.push(AUDIT_EOE, b"audit(1733490000.250:77):", t0, &mut late);
        assert!(late.is_empty());
        assert_eq!(a.pending(), 0);
    }

    #[test]
    fn open_groups_are_bounded_by_eviction() {
        let mut a = Assembler::new(Duration::from_secs(60));
        let now = Instant::now();
        let mut out = Vec::new();
        for serial in 0..(MAX_PENDING as u64 + 10) {
            let text = format!("audit(1.000:{serial}): arch=c000003e syscall=59 pid=1");
            a.push(AUDIT_SYSCALL, text.as_bytes(), now, &mut out);
        }
        assert_eq!(a.pending(), MAX_PENDING);
        assert_eq!(out.len(), 10);
        assert_eq!(out[0].serial, 0);
        assert!(out.iter().all(|e| e.ending == Ending::Evicted));
        assert_eq!(a.stats().evicted, 10);
        assert_eq!(a.stats().incomplete, 10);
        a.flush_all(&mut out);
        assert_eq!(out.len(), MAX_PENDING + 10);
        assert_eq!(a.pending(), 0);
    }

    #[test]
    fn records_per_event_are_bounded() {
        let mut a = Assembler::new(Duration::from_secs(60));
        let now = Instant::now();
        let mut out = Vec::new();
        for i in 0..(MAX_RECORDS + 5) {
            let text = format!("audit(1.000:3): item={i} name=\"/x\"");
            a.push(AUDIT_PATH, text.as_bytes(), now, &mut out);
        }
        a.push(AUDIT_EOE, b"audit(1.000:3):", now, &mut out);
        assert_eq!(out[0].paths.len(), MAX_RECORDS);
        assert!(out[0].truncated);
        assert_eq!(a.stats().records_dropped, 5);
    }

    #[test]
    fn every_truncation_and_random_corruption_of_real_records_is_survived() {
        let mut a = Assembler::new(Duration::from_secs(1));
        let now = Instant::now();
        let mut out = Vec::new();
        for (kind, text) in EXEC {
            for cut in 0..=text.len() {
                a.push(*kind, &text.as_bytes()[..cut], now, &mut out);
            }
        }
        // Seeded byte corruption (replay with AUDIT_FUZZ_SEED).
        let mut state = oxquery_test_support::seed("AUDIT_FUZZ_SEED") | 1;
        let mut next = move || {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state
        };
        for _ in 0..2000 {
            let (kind, text) = EXEC[next() as usize % EXEC.len()];
            let mut bytes = text.as_bytes().to_vec();
            for _ in 0..(next() % 8) {
                let at = next() as usize % bytes.len().max(1);
                if let Some(b) = bytes.get_mut(at) {
                    *b = next() as u8;
                }
            }
            a.push(kind, &bytes, now, &mut out);
        }
        a.flush_all(&mut out);
        assert_eq!(a.pending(), 0);
    }

    #[test]
    fn hostile_records_never_panic() {
        let mut a = Assembler::new(Duration::from_secs(1));
        let now = Instant::now();
        let mut out = Vec::new();
        let hostile: &[(u16, &[u8])] = &[
            (AUDIT_SYSCALL, b""),
            (AUDIT_SYSCALL, b"garbage"),
            (AUDIT_SYSCALL, b"audit(1.000:1): arch=zz syscall=-1 pid=99999999999 a0=xyz exit=abc"),
            (AUDIT_EXECVE, b"audit(1.000:1): argc=4294967295 a99999999999=\"x\" a4294967295[0]=41 a1[x]=41 a1[4294967296]=41"),
            (AUDIT_EXECVE, b"audit(1.000:1): argc=2 a0=(null) a1=\"unterminated"),
            (AUDIT_SOCKADDR, b"audit(1.000:1): saddr=0A00"),
            (AUDIT_SOCKADDR, b"audit(1.000:1): saddr=nothex"),
            (AUDIT_PROCTITLE, b"audit(1.000:1): proctitle=ABC"),
            (AUDIT_PATH, b"audit(1.000:1): item=x mode=999 inode=-1"),
            (AUDIT_CWD, b"audit(1.000:1): cwd=(null)"),
            (1100, b"audit(1.000:2): msg='unterminated"),
            (AUDIT_EOE, b"audit(1.000:1):"),
            (AUDIT_EOE, b"\xff\xfe"),
        ];
        for (kind, text) in hostile {
            a.push(*kind, text, now, &mut out);
        }
        assert_eq!(a.stats().malformed, 3);
        let e = out.iter().find(|e| e.serial == 1).unwrap();
        assert_eq!(e.sockaddr, None);
        // The later argc counts; `(null)` is an empty argument; bad indexes are ignored.
        let x = e.execve.as_ref().unwrap();
        assert_eq!(x.argc, 2);
        assert_eq!(x.args, [b"".to_vec(), b"unterminated".to_vec()]);
        assert_eq!(e.cwd, None);
        // An argc far above what arrived: cut at the first missing argument, no huge
        // allocation.
        let mut out = Vec::new();
        a.push(
            AUDIT_EXECVE,
            b"audit(1.000:5): argc=4294967295 a0=41",
            now,
            &mut out,
        );
        a.push(AUDIT_EOE, b"audit(1.000:5):", now, &mut out);
        let x = out[0].execve.as_ref().unwrap();
        assert_eq!(x.args, [b"A".to_vec()]);
        assert!(out[0].truncated);
    }
}
