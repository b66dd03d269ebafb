//! `shared_memory`: System V shared memory segments (`shmget(2)`) of the IPC namespace
//! osquery runs in, from `/proc/sysvipc/shm`.
//!
//! The file lists every segment whatever its permissions (osquery's `SHM_STAT` loop
//! skips segments the caller may not read). Its columns are found by the header names,
//! so kernels with fewer columns still parse. `permissions` is the segment's mode as four
//! octal digits, as osquery shows it: the first digit carries the kernel's `SHM_DEST`
//! (1: marked for removal) and `SHM_LOCKED` (2: locked in memory) bits. `owner_uid` and
//! `creator_uid` are always filled in (osquery leaves them empty when the uid has no
//! passwd entry).

use oxquery_sys::fs::FileReader;
use oxquery_sys::fs::parse_u64;
use oxquery_table::{QueryContext, Rows, TableError, TableResult, table};

table! {
    name: "shared_memory",
    description: "System V shared memory segments: owner, creator, attach and change times, size and state, from /proc/sysvipc/shm.",
    columns: {
        shmid: Integer [] "Segment identifier (what shmat(2) and shmctl(2) take)",
        owner_uid: BigInt [] "User that owns the segment",
        creator_uid: BigInt [] "User that created the segment",
        pid: BigInt [] "Process that last attached or detached the segment",
        creator_pid: BigInt [] "Process that created the segment",
        atime: BigInt [] "Unix time of the last attach; 0 if never attached",
        dtime: BigInt [] "Unix time of the last detach; 0 if never detached",
        ctime: BigInt [] "Unix time of creation or of the last shmctl change",
        permissions: Text [] "Mode as four octal digits: 1 or 2 in the first for the removal-pending and locked flags, then owner, group and other bits",
        size: BigInt [] "Segment size in bytes",
        attached: Integer [] "Number of current attachments",
        status: Text [] "dest when the segment is marked for removal once the last process detaches, else empty",
        locked: Integer [] "1 when the segment is locked in memory (SHM_LOCK), else 0",
    },
    examples: ["select * from shared_memory where attached = 0"],
}

const SHM: &str = "/proc/sysvipc/shm";
/// The kernel's flags kept in a segment's mode (`include/uapi/linux/shm.h`).
const SHM_DEST: u32 = 0o1000;
const SHM_LOCKED: u32 = 0o2000;

/// One segment as `/proc/sysvipc/shm` describes it.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Segment {
    shmid: i64,
    mode: u32,
    size: u64,
    cpid: i64,
    lpid: i64,
    nattch: i64,
    uid: i64,
    cuid: i64,
    atime: i64,
    dtime: i64,
    ctime: i64,
}

/// Parses the table: the header names the columns; a line missing a needed field or
/// with a non-number in one is skipped. No header, no segments.
fn parse(text: &[u8]) -> Vec<Segment> {
    let mut lines = text.split(|b| *b == b'\n');
    let Some(header) = lines.next() else {
        return Vec::new();
    };
    let names: Vec<&[u8]> = header
        .split(u8::is_ascii_whitespace)
        .filter(|f| !f.is_empty())
        .collect();
    let at = |name: &[u8]| names.iter().position(|n| *n == name);
    let wanted = [
        "shmid", "perms", "size", "cpid", "lpid", "nattch", "uid", "cuid", "atime", "dtime",
        "ctime",
    ];
    let Some(idx) = wanted
        .iter()
        .map(|n| at(n.as_bytes()))
        .collect::<Option<Vec<usize>>>()
    else {
        log::info!("shared_memory: {SHM} has an unknown header; no rows");
        return Vec::new();
    };
    let mut out = Vec::new();
    for line in lines {
        let fields: Vec<&[u8]> = line
            .split(u8::is_ascii_whitespace)
            .filter(|f| !f.is_empty())
            .collect();
        if fields.len() != names.len() {
            continue;
        }
        let num = |i: usize| -> Option<i64> {
            let f = fields[idx[i]];
            if !f.iter().all(u8::is_ascii_digit) {
                return None;
            }
            parse_u64(f).and_then(|n| i64::try_from(n).ok())
        };
        let parsed = (|| {
            let perms = fields[idx[1]];
            if perms.is_empty()
                || perms.len() > 7
                || !perms.iter().all(|b| (b'0'..=b'7').contains(b))
            {
                return None;
            }
            let mode = perms
                .iter()
                .fold(0u32, |m, b| (m << 3) | u32::from(b - b'0'));
            Some(Segment {
                shmid: num(0)?,
                mode,
                size: num(2)? as u64,
                cpid: num(3)?,
                lpid: num(4)?,
                nattch: num(5)?,
                uid: num(6)?,
                cuid: num(7)?,
                atime: num(8)?,
                dtime: num(9)?,
                ctime: num(10)?,
            })
        })();
        match parsed {
            Some(s) => out.push(s),
            None => log::debug!("shared_memory: skipped a malformed line of {SHM}"),
        }
    }
    out
}

/// Four octal digits of a mode, the special bits first.
fn octal_mode(mode: u32) -> String {
    format!("{:04o}", mode & 0o7777)
}

fn generate(_ctx: &QueryContext, rows: &mut Rows) -> TableResult {
    let mut reader = FileReader::new();
    let text = match reader.read(SHM) {
        Ok(text) => text,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            log::info!("shared_memory: {SHM} is missing (kernel without System V IPC); no rows");
            return Ok(());
        }
        Err(e) => return Err(TableError::io(SHM, e)),
    };
    for s in parse(text) {
        let mut row = rows.row();
        row.set(Col::shmid, s.shmid);
        row.set(Col::owner_uid, s.uid);
        row.set(Col::creator_uid, s.cuid);
        row.set(Col::pid, s.lpid);
        row.set(Col::creator_pid, s.cpid);
        row.set(Col::atime, s.atime);
        row.set(Col::dtime, s.dtime);
        row.set(Col::ctime, s.ctime);
        row.set_with(Col::permissions, || octal_mode(s.mode));
        row.set(Col::size, s.size as i64);
        row.set(Col::attached, s.nattch);
        row.set(
            Col::status,
            if s.mode & SHM_DEST != 0 { "dest" } else { "" },
        );
        row.set(Col::locked, i64::from(s.mode & SHM_LOCKED != 0));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use oxquery_table::{Host, Value};

    /// A segment the test created: detached and removed when the test ends, pass or fail.
    struct Shm {
        id: libc::c_int,
        addr: Option<*mut libc::c_void>,
    }
    impl Drop for Shm {
        fn drop(&mut self) {
            if let Some(addr) = self.addr.take() {
                // SAFETY: addr came from shmat and is detached once.
                unsafe { libc::shmdt(addr) };
            }
            // SAFETY: removing our own segment; an already-removed id just fails.
            unsafe { libc::shmctl(self.id, libc::IPC_RMID, std::ptr::null_mut()) };
        }
    }

    fn stat(id: libc::c_int) -> libc::shmid_ds {
        // SAFETY: an all-zero shmid_ds is valid to be overwritten.
        let mut ds: libc::shmid_ds = unsafe { std::mem::zeroed() };
        // SAFETY: ds is writable.
        assert_eq!(unsafe { libc::shmctl(id, libc::IPC_STAT, &mut ds) }, 0);
        ds
    }

    fn row_of(shmid: libc::c_int) -> Option<Vec<Value>> {
        let host = Host::default();
        let ctx = QueryContext::everything(&SPEC, &host);
        let rows = Rows::collect(&ctx, generate).unwrap();
        rows.iter()
            .find(|r| r[Col::shmid as usize] == Value::Integer(i64::from(shmid)))
            .map(<[Value]>::to_vec)
    }

    fn int(v: &Value) -> i64 {
        v.as_i64()
            .unwrap_or_else(|| panic!("not an integer: {v:?}"))
    }

    fn text(v: &Value) -> &str {
        match v {
            Value::Text(s) => s,
            v => panic!("not text: {v:?}"),
        }
    }

    fn assert_matches_ipc_stat(row: &[Value], ds: &libc::shmid_ds) {
        assert_eq!(
            int(&row[Col::owner_uid as usize]),
            i64::from(ds.shm_perm.uid)
        );
        assert_eq!(
            int(&row[Col::creator_uid as usize]),
            i64::from(ds.shm_perm.cuid)
        );
        assert_eq!(int(&row[Col::pid as usize]), i64::from(ds.shm_lpid));
        assert_eq!(int(&row[Col::creator_pid as usize]), i64::from(ds.shm_cpid));
        assert_eq!(int(&row[Col::atime as usize]), ds.shm_atime);
        assert_eq!(int(&row[Col::dtime as usize]), ds.shm_dtime);
        assert_eq!(int(&row[Col::ctime as usize]), ds.shm_ctime);
        assert_eq!(int(&row[Col::size as usize]), ds.shm_segsz as i64);
        assert_eq!(int(&row[Col::attached as usize]), ds.shm_nattch as i64);
        let mode = u32::from(ds.shm_perm.mode);
        assert_eq!(
            text(&row[Col::permissions as usize]),
            format!("{}{:03o}", (mode >> 9) & 7, mode & 0o777)
        );
    }

    #[test]
    fn segment_created_here_matches_ipc_stat() {
        // SAFETY: plain syscalls on a private segment the guard removes.
        let id = unsafe { libc::shmget(libc::IPC_PRIVATE, 12_345, libc::IPC_CREAT | 0o640) };
        if id < 0 {
            let e = std::io::Error::last_os_error();
            panic!("shmget: {e}");
        }
        let mut seg = Shm { id, addr: None };
        // SAFETY: attaching our own segment anywhere.
        let addr = unsafe { libc::shmat(id, std::ptr::null(), 0) };
        assert_ne!(addr as isize, -1);
        seg.addr = Some(addr);

        let row = row_of(id).expect("our segment is listed");
        let ds = stat(id);
        assert_matches_ipc_stat(&row, &ds);
        assert_eq!(int(&row[Col::attached as usize]), 1);
        assert_eq!(int(&row[Col::size as usize]), 12_345);
        assert_eq!(
            int(&row[Col::creator_pid as usize]),
            i64::from(std::process::id())
        );
        assert_eq!(text(&row[Col::permissions as usize]), "0640");
        assert_eq!(text(&row[Col::status as usize]), "");
        assert_eq!(int(&row[Col::locked as usize]), 0);

        // Locking needs CAP_IPC_LOCK (or a memlock allowance); when it works it shows.
        // SAFETY: locking our own segment.
        if unsafe { libc::shmctl(id, libc::SHM_LOCK, std::ptr::null_mut()) } == 0 {
            let row = row_of(id).unwrap();
            assert_eq!(int(&row[Col::locked as usize]), 1);
            assert_matches_ipc_stat(&row, &stat(id));
            assert_eq!(text(&row[Col::permissions as usize]), "2640");
            // SAFETY: unlocking our own segment.
            unsafe { libc::shmctl(id, libc::SHM_UNLOCK, std::ptr::null_mut()) };
        }

        // Removal while attached: listed as dest until the last detach.
        // SAFETY: marking our own segment for removal.
        assert_eq!(
            unsafe { libc::shmctl(id, libc::IPC_RMID, std::ptr::null_mut()) },
            0
        );
        let row = row_of(id).expect("still listed while attached");
        assert_eq!(text(&row[Col::status as usize]), "dest");
        assert_eq!(text(&row[Col::permissions as usize]), "1640");
        assert_matches_ipc_stat(&row, &stat(id));
        if let Some(addr) = seg.addr.take() {
            // SAFETY: detaching what we attached.
            assert_eq!(unsafe { libc::shmdt(addr) }, 0);
        }
        assert!(row_of(id).is_none(), "gone after the last detach");
    }

    #[test]
    fn hostile_tables_are_skipped() {
        let header = b"       key      shmid perms                  size  cpid  lpid nattch   uid   gid  cuid  cgid      atime      dtime      ctime                   rss                  swap\n";
        let good = b"         0         42  1600                 12345  100   101      1     0     0  1000     0 1700000000          0 1700000001                     0                     0\n";
        let mut text = header.to_vec();
        text.extend_from_slice(good);
        for bad in [
            &b"0 43 0600 1 1 1"[..],
            b"0 44 0908 1 1 1 1 0 0 0 0 1 1 1 0 0",
            b"0 x 0600 1 1 1 1 0 0 0 0 1 1 1 0 0",
            b"0 45 0600 -1 1 1 1 0 0 0 0 1 1 1 0 0",
            &[0xff; 100],
        ] {
            text.extend_from_slice(bad);
            text.push(b'\n');
        }
        text.extend_from_slice(&vec![b'7'; 1 << 20]);
        let segs = parse(&text);
        assert_eq!(segs.len(), 1);
        assert_eq!(segs[0].shmid, 42);
        assert_eq!(segs[0].mode, 0o1600);
        assert_eq!(segs[0].cuid, 1000);
        assert_eq!(octal_mode(segs[0].mode), "1600");
        assert!(parse(b"").is_empty());
        assert!(parse(good).is_empty(), "no header, no rows");
        // An older kernel without rss/swap columns still parses.
        let old = b"key shmid perms size cpid lpid nattch uid gid cuid cgid atime dtime ctime\n0 7 600 10 1 2 0 0 0 0 0 0 0 5\n";
        assert_eq!(parse(old).len(), 1);
    }
}
