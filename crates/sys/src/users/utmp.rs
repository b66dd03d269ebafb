//! Login records: the binary `struct utmpx` records of `/var/run/utmp` and
//! `/var/log/wtmp`, decoded without `getutxent`'s process-wide state.
//!
//! The layout is the C library's, taken from `libc::utmpx`: field offsets with
//! `offset_of!`, the record size with `size_of`, and the widths of `ut_session` and
//! `ut_tv` (32-bit on x86-64, 64-bit on aarch64) from the distance between fields.
//! Compile-time checks pin the sizes glibc documents, so a different layout fails the
//! build instead of misreading files.

use std::mem::{offset_of, size_of};

type Utmpx = libc::utmpx;

/// Size of one record.
pub const RECORD_SIZE: usize = size_of::<Utmpx>();
/// The current-logins file.
pub const UTMP_PATH: &str = "/var/run/utmp";
/// The login history file.
pub const WTMP_PATH: &str = "/var/log/wtmp";

pub const EMPTY: i16 = libc::EMPTY;
pub const RUN_LVL: i16 = libc::RUN_LVL;
pub const BOOT_TIME: i16 = libc::BOOT_TIME;
pub const NEW_TIME: i16 = libc::NEW_TIME;
pub const OLD_TIME: i16 = libc::OLD_TIME;
pub const INIT_PROCESS: i16 = libc::INIT_PROCESS;
pub const LOGIN_PROCESS: i16 = libc::LOGIN_PROCESS;
pub const USER_PROCESS: i16 = libc::USER_PROCESS;
pub const DEAD_PROCESS: i16 = libc::DEAD_PROCESS;
pub const ACCOUNTING: i16 = libc::ACCOUNTING;

const OFF_TYPE: usize = offset_of!(Utmpx, ut_type);
const OFF_PID: usize = offset_of!(Utmpx, ut_pid);
const OFF_LINE: usize = offset_of!(Utmpx, ut_line);
const LEN_LINE: usize = libc::__UT_LINESIZE;
const OFF_ID: usize = offset_of!(Utmpx, ut_id);
const LEN_ID: usize = OFF_USER - OFF_ID;
const OFF_USER: usize = offset_of!(Utmpx, ut_user);
const LEN_USER: usize = libc::__UT_NAMESIZE;
const OFF_HOST: usize = offset_of!(Utmpx, ut_host);
const LEN_HOST: usize = libc::__UT_HOSTSIZE;
const OFF_SESSION: usize = offset_of!(Utmpx, ut_session);
const OFF_TV: usize = offset_of!(Utmpx, ut_tv);
const OFF_ADDR: usize = offset_of!(Utmpx, ut_addr_v6);
/// `ut_session` is an `int32_t` or a `long` depending on the platform.
const LEN_SESSION: usize = OFF_TV - OFF_SESSION;
/// `ut_tv` holds two fields of this width (`int32_t` or `time_t`/`suseconds_t`).
const LEN_TV_FIELD: usize = (OFF_ADDR - OFF_TV) / 2;

const _: () = assert!(size_of::<libc::c_short>() == 2 && size_of::<libc::pid_t>() == 4);
const _: () = assert!(LEN_ID == 4 && OFF_HOST == OFF_USER + LEN_USER);
const _: () = assert!(matches!(LEN_SESSION, 4 | 8) && matches!(LEN_TV_FIELD, 4 | 8));
// glibc's documented record sizes: a layout change must be looked at, not absorbed.
#[cfg(all(target_env = "gnu", target_arch = "x86_64"))]
const _: () = assert!(RECORD_SIZE == 384 && OFF_USER == 44 && OFF_TV == 340 && OFF_ADDR == 348);
#[cfg(all(target_env = "gnu", target_arch = "aarch64"))]
const _: () = assert!(RECORD_SIZE == 400 && LEN_SESSION == 8 && LEN_TV_FIELD == 8);

/// One decoded record. Text fields stop at the first NUL (or fill their slot).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Record {
    pub ut_type: i16,
    pub pid: i32,
    pub line: String,
    pub id: String,
    pub user: String,
    pub host: String,
    pub session: i64,
    pub tv_sec: i64,
    pub tv_usec: i64,
    pub addr_v6: [u8; 16],
}

fn field(rec: &[u8], off: usize, len: usize) -> String {
    let raw = &rec[off..off + len];
    let end = raw.iter().position(|b| *b == 0).unwrap_or(len);
    String::from_utf8_lossy(&raw[..end]).into_owned()
}

/// A native-endian signed integer of 2, 4 or 8 bytes at `off`.
fn int_at(rec: &[u8], off: usize, len: usize) -> i64 {
    let b = &rec[off..off + len];
    match len {
        2 => i64::from(i16::from_ne_bytes([b[0], b[1]])),
        4 => i64::from(i32::from_ne_bytes([b[0], b[1], b[2], b[3]])),
        _ => i64::from_ne_bytes(b.try_into().expect("8 bytes")),
    }
}

fn put_int(out: &mut [u8], off: usize, len: usize, v: i64) {
    match len {
        2 => out[off..off + 2].copy_from_slice(&(v as i16).to_ne_bytes()),
        4 => out[off..off + 4].copy_from_slice(&(v as i32).to_ne_bytes()),
        _ => out[off..off + 8].copy_from_slice(&v.to_ne_bytes()),
    }
}

/// Decodes one record; `None` for any length but [`RECORD_SIZE`].
pub fn parse_record(rec: &[u8]) -> Option<Record> {
    if rec.len() != RECORD_SIZE {
        return None;
    }
    let mut addr_v6 = [0u8; 16];
    addr_v6.copy_from_slice(&rec[OFF_ADDR..OFF_ADDR + 16]);
    Some(Record {
        ut_type: int_at(rec, OFF_TYPE, 2) as i16,
        pid: int_at(rec, OFF_PID, 4) as i32,
        line: field(rec, OFF_LINE, LEN_LINE),
        id: field(rec, OFF_ID, LEN_ID),
        user: field(rec, OFF_USER, LEN_USER),
        host: field(rec, OFF_HOST, LEN_HOST),
        session: int_at(rec, OFF_SESSION, LEN_SESSION),
        tv_sec: int_at(rec, OFF_TV, LEN_TV_FIELD),
        tv_usec: int_at(rec, OFF_TV + LEN_TV_FIELD, LEN_TV_FIELD),
        addr_v6,
    })
}

/// Every whole record of a utmp/wtmp file's bytes; a truncated tail is ignored.
pub fn parse(bytes: &[u8]) -> Vec<Record> {
    bytes
        .chunks_exact(RECORD_SIZE)
        .filter_map(parse_record)
        .collect()
}

/// Encodes a record (tests write utmp files with it). Text longer than its slot is cut;
/// numbers wider than their field are cut to it.
pub fn encode(r: &Record) -> [u8; RECORD_SIZE] {
    let mut out = [0u8; RECORD_SIZE];
    put_int(&mut out, OFF_TYPE, 2, i64::from(r.ut_type));
    put_int(&mut out, OFF_PID, 4, i64::from(r.pid));
    let mut put = |off: usize, len: usize, s: &str| {
        let b = s.as_bytes();
        let n = b.len().min(len);
        out[off..off + n].copy_from_slice(&b[..n]);
    };
    put(OFF_LINE, LEN_LINE, &r.line);
    put(OFF_ID, LEN_ID, &r.id);
    put(OFF_USER, LEN_USER, &r.user);
    put(OFF_HOST, LEN_HOST, &r.host);
    put_int(&mut out, OFF_SESSION, LEN_SESSION, r.session);
    put_int(&mut out, OFF_TV, LEN_TV_FIELD, r.tv_sec);
    put_int(&mut out, OFF_TV + LEN_TV_FIELD, LEN_TV_FIELD, r.tv_usec);
    out[OFF_ADDR..OFF_ADDR + 16].copy_from_slice(&r.addr_v6);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_truncation() {
        let r = Record {
            ut_type: USER_PROCESS,
            pid: 4242,
            line: "pts/3".into(),
            id: "ts/3".into(),
            user: "a".repeat(32),
            host: "10.0.0.1".into(),
            session: 7,
            tv_sec: 1_700_000_000,
            tv_usec: 12,
            addr_v6: [1; 16],
        };
        let mut bytes = encode(&r).to_vec();
        bytes.extend_from_slice(&[0xff; 100]);
        let recs = parse(&bytes);
        assert_eq!(recs, [r]);
        assert!(parse_record(&[0; 10]).is_none());
    }

    /// The C library's own reader (`getutxent` over `utmpxname`) agrees with ours on a
    /// file we wrote: an independent check of the layout.
    #[test]
    fn glibc_reads_what_we_encode() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("wtmp");
        let r = Record {
            ut_type: DEAD_PROCESS,
            pid: 777,
            line: "tty9".into(),
            id: "9".into(),
            user: "someone".into(),
            host: "h.example".into(),
            session: 3,
            tv_sec: 1_234_567_890,
            tv_usec: 5,
            addr_v6: [0; 16],
        };
        std::fs::write(&path, encode(&r)).unwrap();
        let cpath = std::ffi::CString::new(path.to_str().unwrap()).unwrap();
        // SAFETY: getutxent's state is process-wide; this is the only test in the crate
        // that uses it, and it reads one entry from our own file.
        let (ty, pid, user, sec) = unsafe {
            assert_eq!(libc::utmpxname(cpath.as_ptr()), 0);
            libc::setutxent();
            let e = libc::getutxent();
            assert!(!e.is_null(), "glibc read no record");
            let e = &*e;
            let user = std::ffi::CStr::from_ptr(e.ut_user.as_ptr())
                .to_string_lossy()
                .into_owned();
            let got = (e.ut_type, e.ut_pid, user, i64::from(e.ut_tv.tv_sec));
            libc::endutxent();
            got
        };
        assert_eq!(
            (ty, pid, user.as_str(), sec),
            (DEAD_PROCESS, 777, "someone", r.tv_sec)
        );
    }
}
