//! `memory_map`: the physical address map of the host, from `/proc/iomem` (RAM, ROM,
//! reserved ranges, device windows, kernel image sections).
//!
//! Like osquery, every region is a row, nested ones too (their indentation is dropped),
//! and the addresses are the kernel's hex with a `0x` prefix. The kernel shows real
//! addresses to root only; other users see zeros.

use oxquery_sys::fs::FileReader;
use oxquery_table::{QueryContext, Rows, TableError, TableResult, table};

table! {
    name: "memory_map",
    description: "Physical memory regions of the host (system RAM, reserved ranges, device memory), from /proc/iomem.",
    columns: {
        name: Text [] "What occupies the region, e.g. System RAM, Reserved, Kernel code or a PCI device",
        start: Text [] "First physical address of the region, hex with a 0x prefix",
        end: Text [] "Last physical address of the region (inclusive), hex with a 0x prefix",
    },
    examples: ["select * from memory_map where name = 'System RAM'"],
}

const IOMEM: &str = "/proc/iomem";

/// One `start-end : name` line of `/proc/iomem`, indentation removed; `None` for
/// anything else (including a region without a name, which osquery skips too).
fn parse_line(line: &[u8]) -> Option<(&[u8], &[u8], &[u8])> {
    let line = line.trim_ascii();
    let sep = line.windows(3).position(|w| w == b" : ")?;
    let (range, name) = (&line[..sep], line[sep + 3..].trim_ascii());
    let dash = memchr::memchr(b'-', range)?;
    let (start, end) = (&range[..dash], &range[dash + 1..]);
    let hex = |b: &[u8]| !b.is_empty() && b.iter().all(u8::is_ascii_hexdigit);
    if !hex(start) || !hex(end) || name.is_empty() {
        return None;
    }
    Some((start, end, name))
}

fn add_rows(text: &[u8], rows: &mut Rows) {
    for line in text.split(|b| *b == b'\n') {
        let Some((start, end, name)) = parse_line(line) else {
            if !line.trim_ascii().is_empty() {
                log::debug!("memory_map: skipped a malformed line of {IOMEM}");
            }
            continue;
        };
        let mut row = rows.row();
        row.set_with(Col::name, || String::from_utf8_lossy(name).into_owned());
        row.set_with(Col::start, || {
            format!("0x{}", String::from_utf8_lossy(start))
        });
        row.set_with(Col::end, || format!("0x{}", String::from_utf8_lossy(end)));
    }
}

fn generate(_ctx: &QueryContext, rows: &mut Rows) -> TableResult {
    let mut reader = FileReader::new();
    match reader.read(IOMEM) {
        Ok(text) => add_rows(text, rows),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            log::info!("memory_map: {IOMEM} does not exist on this kernel; no rows");
        }
        Err(e) => return Err(TableError::io(IOMEM, e)),
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use oxquery_table::{ColumnSet, Host, Value};

    fn t(v: &Value) -> String {
        match v {
            Value::Text(s) => s.to_string(),
            v => panic!("not text: {v:?}"),
        }
    }

    #[test]
    fn matches_proc_iomem_read_directly() {
        let host = Host::default();
        let ctx = QueryContext::everything(&SPEC, &host);
        let rows = Rows::collect(&ctx, generate).unwrap();
        let mut got: Vec<(String, String, String)> = rows
            .iter()
            .map(|r| {
                (
                    t(&r[Col::start as usize]),
                    t(&r[Col::end as usize]),
                    t(&r[Col::name as usize]),
                )
            })
            .collect();
        // The test's own reading: split each line at " : " and at the first '-'.
        let text = std::fs::read_to_string(IOMEM).unwrap();
        let mut want: Vec<(String, String, String)> = text
            .lines()
            .filter_map(|l| {
                let (range, name) = l.trim().split_once(" : ")?;
                let (s, e) = range.split_once('-')?;
                Some((format!("0x{s}"), format!("0x{e}"), name.trim().to_owned()))
            })
            .collect();
        got.sort();
        want.sort();
        assert_eq!(got, want);
        assert_eq!(got.len(), text.lines().count(), "every line is a region");
        // As root, System RAM has real (non-zero) bounds.
        // SAFETY: geteuid cannot fail.
        if unsafe { libc::geteuid() } == 0 {
            assert!(got.iter().any(
                |(_, e, n)| n == "System RAM" && u64::from_str_radix(&e[2..], 16).unwrap() > 0
            ));
        }
    }

    #[test]
    fn hostile_iomem_is_skipped() {
        let mut text =
            b"00000000-00000fff : Reserved\n  000a0000-000bffff : PCI Bus 0000:00\n".to_vec();
        for bad in [
            &b"garbage"[..],
            b" : name only",
            b"0000-zzzz : bad hex",
            b"00000000-00000fff : ",
            b"00000000-00000fff:Tight",
            b"-:",
            &[0xff, 0xfe, b' ', b':', b' ', 0x80],
        ] {
            text.extend_from_slice(bad);
            text.push(b'\n');
        }
        text.extend_from_slice(&vec![b'a'; 4 << 20]);
        text.extend_from_slice(b"\n0-1 : Name with : colon\n00000000-0000");
        let mut rows = Rows::new(SPEC.columns.len(), ColumnSet::all(SPEC.columns.len()));
        add_rows(&text, &mut rows);
        let names: Vec<String> = rows.column(Col::name).iter().map(|v| t(v)).collect();
        assert_eq!(names, ["Reserved", "PCI Bus 0000:00", "Name with : colon"]);
        assert_eq!(t(&rows.get(1).unwrap()[Col::start as usize]), "0x000a0000");
    }
}
