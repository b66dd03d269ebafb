//! `process_memory_map`: every memory mapping of each process, from `/proc/<pid>/maps`.
//!
//! `WHERE pid = ...` / `IN (...)` reads only those processes. Unlike osquery, which
//! splits lines at spaces, the path is everything after the inode, so file names with
//! spaces and the kernel's ` (deleted)` marker are kept whole.

use oxquery_sys::fs::FileReader;
use oxquery_sys::proc::{self, ProcPath};
use oxquery_table::{QueryContext, Rows, TableError, TableResult, Value, table};

table! {
    name: "process_memory_map",
    description: "Memory regions mapped into each process (files, heap, stack, anonymous memory), from /proc/<pid>/maps.",
    columns: {
        pid: Integer [INDEX | OPTIMIZED] "Process owning the mapping",
        start: Text [] "First address of the region, hex with a 0x prefix",
        end: Text [] "Address just past the region, hex with a 0x prefix",
        permissions: Text [] "Access flags r, w, x and p (private, copy-on-write) or s (shared); '-' when not granted",
        offset: BigInt [] "Byte offset into the mapped file where the region starts",
        device: Text [] "major:minor (hex) of the device holding the mapped file; 00:00 for anonymous memory",
        inode: Integer [] "Inode of the mapped file on that device; 0 for anonymous memory",
        path: Text [] "Mapped file, or a kernel name such as [heap], [stack] or [vdso]; empty for anonymous memory",
        pseudo: Integer [] "1 when the region has a name but no backing inode ([heap], [stack], [vdso], ...), else 0",
    },
    examples: [
        "select * from process_memory_map where pid = 1",
        "select distinct pid, path from process_memory_map where path like '%.so%'",
    ],
}

fn generate(ctx: &QueryContext, rows: &mut Rows) -> TableResult {
    let pids =
        proc::pids_or_all(ctx.eq_integers(Col::pid)).map_err(|e| TableError::io("/proc", e))?;
    let mut reader = FileReader::new();
    for pid in pids {
        let path = ProcPath::new(pid);
        let text = match path.read_paged(&mut reader, "maps") {
            Ok(text) => text,
            Err(e) => {
                log::debug!("process_memory_map: cannot read /proc/{pid}/maps: {e}");
                continue;
            }
        };
        add_rows(pid, text, rows);
    }
    Ok(())
}

fn hex_text(digits: &[u8]) -> String {
    let mut s = String::with_capacity(digits.len() + 2);
    s.push_str("0x");
    s.push_str(&String::from_utf8_lossy(digits));
    s
}

/// Appends one row per well-formed line of a `maps` file; other lines are skipped.
fn add_rows(pid: u32, text: &[u8], rows: &mut Rows) {
    for line in text.split(|b| *b == b'\n') {
        let Some(m) = proc::parse_maps_line(line) else {
            if !line.is_empty() {
                log::debug!("process_memory_map: skipped a malformed line of pid {pid}");
            }
            continue;
        };
        let mut row = rows.row();
        row.set(Col::pid, pid);
        row.set_with(Col::start, || hex_text(m.start));
        row.set_with(Col::end, || hex_text(m.end));
        row.set_with(Col::permissions, || {
            String::from_utf8_lossy(m.perms).into_owned()
        });
        // Offsets are at most 2^64 - 1; a BIGINT shows the same bits.
        row.set(Col::offset, m.offset as i64);
        row.set_with(Col::device, || {
            String::from_utf8_lossy(m.device).into_owned()
        });
        row.set(Col::inode, m.inode as i64);
        row.set_with(Col::path, || Value::from_bytes(m.path.to_vec()));
        row.set(Col::pseudo, i64::from(m.inode == 0 && !m.path.is_empty()));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::system::test_children::{self, spawn_sleep};
    use oxquery_table::{ColumnSet, Host, Op, Value};
    use std::io::Write;
    use std::os::fd::AsRawFd;
    use std::os::unix::fs::MetadataExt;

    /// A mapping made by the test, unmapped when the test ends.
    struct Mapping {
        addr: *mut libc::c_void,
        len: usize,
    }
    impl Drop for Mapping {
        fn drop(&mut self) {
            // SAFETY: addr/len are exactly what mmap returned and nothing else uses them.
            unsafe { libc::munmap(self.addr, self.len) };
        }
    }

    fn run(ctx: &QueryContext) -> Rows<'static> {
        test_children::run(generate, ctx)
    }

    fn text(v: &Value) -> &str {
        match v {
            Value::Text(s) => s,
            v => panic!("not text: {v:?}"),
        }
    }

    fn hex(v: &Value) -> u64 {
        u64::from_str_radix(text(v).strip_prefix("0x").unwrap(), 16).unwrap()
    }

    #[test]
    fn file_mapped_by_the_test_appears_with_its_stat_facts() {
        let page = proc::page_size() as usize;
        let dir = tempfile::tempdir().unwrap();
        let file_path = dir.path().join("mapped file ✓.bin");
        let mut file = std::fs::File::create_new(&file_path).unwrap();
        file.write_all(&vec![7u8; 3 * page]).unwrap();
        file.sync_all().unwrap();
        let file = std::fs::File::open(&file_path).unwrap();
        // Two pages starting at the file's second page, read-only and shared.
        // SAFETY: a fresh mapping of an open file; the guard unmaps it.
        let addr = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                2 * page,
                libc::PROT_READ,
                libc::MAP_SHARED,
                file.as_raw_fd(),
                page as libc::off_t,
            )
        };
        assert_ne!(addr, libc::MAP_FAILED);
        let _mapping = Mapping {
            addr,
            len: 2 * page,
        };
        let meta = std::fs::metadata(&file_path).unwrap();

        let host = Host::default();
        let ctx = QueryContext::everything(&SPEC, &host).with_constraint(
            Col::pid,
            Op::Eq,
            i64::from(std::process::id()),
        );
        let rows = run(&ctx);
        let row = rows
            .iter()
            .find(|r| hex(&r[Col::start as usize]) == addr as u64)
            .expect("our mapping is listed");
        assert_eq!(hex(&row[Col::end as usize]), addr as u64 + 2 * page as u64);
        assert_eq!(text(&row[Col::permissions as usize]), "r--s");
        assert_eq!(row[Col::offset as usize], Value::Integer(page as i64));
        assert_eq!(row[Col::inode as usize], Value::Integer(meta.ino() as i64));
        let dev = meta.dev();
        let (major, minor) = (libc::major(dev), libc::minor(dev));
        assert_eq!(
            text(&row[Col::device as usize]),
            format!("{major:02x}:{minor:02x}")
        );
        assert_eq!(
            text(&row[Col::path as usize]),
            file_path.to_str().unwrap(),
            "a path with spaces is kept whole"
        );
        assert_eq!(row[Col::pseudo as usize], Value::Integer(0));
        assert_eq!(
            row[Col::pid as usize],
            Value::Integer(i64::from(std::process::id()))
        );

        // The stack is named but has no inode: pseudo.
        let stack = rows
            .iter()
            .find(|r| text(&r[Col::path as usize]) == "[stack]")
            .expect("[stack] mapping");
        assert_eq!(stack[Col::pseudo as usize], Value::Integer(1));
        assert_eq!(stack[Col::inode as usize], Value::Integer(0));
        assert_eq!(text(&stack[Col::device as usize]), "00:00");

        // Every line of /proc/self/maps, counted independently, is a row (the test's
        // other threads may map memory meanwhile, so compare against reads on both sides).
        let before = std::fs::read_to_string("/proc/self/maps")
            .unwrap()
            .lines()
            .count();
        let again = run(&ctx).len();
        let after = std::fs::read_to_string("/proc/self/maps")
            .unwrap()
            .lines()
            .count();
        let (lo, hi) = (before.min(after), before.max(after));
        assert!(
            again + 8 >= lo && again <= hi + 8,
            "{again} rows vs {before}/{after} lines"
        );
    }

    #[test]
    fn pid_constraint_reads_only_that_child() {
        let child = spawn_sleep(|_| {});
        let pid = i64::from(child.pid());
        let sleep = std::fs::canonicalize("/bin/sleep").unwrap();
        let maps = format!("/proc/{pid}/maps");
        let host = Host::default();
        let ctx = QueryContext::everything(&SPEC, &host)
            .with_constraint(Col::pid, Op::Eq, pid)
            .with_constraint(Col::pid, Op::Eq, 0x7fff_fff0_i64);
        let rows = run(&ctx);
        assert!(!rows.is_empty());
        assert!(
            rows.iter()
                .all(|r| r[Col::pid as usize] == Value::Integer(pid))
        );
        assert!(
            rows.iter()
                .any(|r| text(&r[Col::path as usize]) == sleep.to_str().unwrap())
        );
        // Exactly one row per line of the child's maps, read here independently.
        let lines = std::fs::read_to_string(&maps).unwrap().lines().count();
        assert_eq!(rows.len(), lines);
    }

    #[test]
    fn unused_columns_stay_null() {
        let host = Host::default();
        let ctx = QueryContext::everything(&SPEC, &host)
            .with_constraint(Col::pid, Op::Eq, i64::from(std::process::id()))
            .using([Col::pid, Col::path]);
        let rows = run(&ctx);
        assert!(!rows.is_empty());
        for r in rows.iter() {
            assert!(r[Col::start as usize].is_null() && r[Col::pseudo as usize].is_null());
        }
    }

    #[test]
    fn hostile_maps_lines_are_skipped() {
        let good = b"7f00aa000000-7f00aa021000 rw-p 00001000 fd:01 1234      /lib/x y (deleted)";
        let m = proc::parse_maps_line(good).unwrap();
        assert_eq!(m.path, b"/lib/x y (deleted)");
        assert_eq!((m.offset, m.inode), (0x1000, 1234));
        let anon =
            proc::parse_maps_line(b"7f00aa000000-7f00aa021000 rw-p 00000000 00:00 0 ").unwrap();
        assert_eq!(anon.path, b"");
        let bare = proc::parse_maps_line(b"00400000-00401000 r-xp 00000000 00:00 0").unwrap();
        assert_eq!((bare.inode, bare.path), (0, &b""[..]));

        let mut text: Vec<u8> = Vec::new();
        text.extend_from_slice(good);
        text.push(b'\n');
        // Every truncation of a good line, garbage, and an enormous line.
        for cut in 0..good.len() {
            text.extend_from_slice(&good[..cut]);
            text.push(b'\n');
        }
        for bad in [
            &b"zzzz-0000 rw-p 0 00:00 0"[..],
            b"0000-0000 rw-p xyz 00:00 0",
            b"0000-0000 rw-p 0 0000 0",
            b"0000-0000 rw-p 0 00:00 -1",
            b"0000-0000 rwxp 11111111111111111111 00:00 1",
            b"-- - - - -",
            &[0xff; 64],
        ] {
            text.extend_from_slice(bad);
            text.push(b'\n');
        }
        text.extend_from_slice(&vec![b'1'; 2 << 20]);
        text.push(b'\n');
        text.extend_from_slice(good);

        let mut rows = Rows::new(SPEC.columns.len(), ColumnSet::all(SPEC.columns.len()));
        add_rows(1, &text, &mut rows);
        // The good line twice, plus every truncation that still holds at least one digit
        // of the inode: after the inode everything is path, so those are whole entries.
        let inode_at = good.windows(5).position(|w| w == b"1234 ").unwrap();
        let expected = 2 + (good.len() - 1 - inode_at);
        assert_eq!(rows.len(), expected);
    }
}
