//! `memory_info`: the main counters of `/proc/meminfo`, in bytes.

use oxquery_sys::fs::{FileReader, parse_u64};
use oxquery_table::{QueryContext, Rows, TableResult, table};

table! {
    name: "memory_info",
    description: "RAM and swap figures of the host, converted from the KiB values of /proc/meminfo to bytes.",
    columns: {
        memory_total: BigInt [] "RAM the kernel can use, in bytes (MemTotal)",
        memory_free: BigInt [] "Completely unused RAM, in bytes (MemFree)",
        memory_available: BigInt [] "Kernel estimate of RAM new workloads can get before swapping starts, in bytes (MemAvailable)",
        buffers: BigInt [] "Bytes of RAM holding raw block-device data (Buffers)",
        cached: BigInt [] "Bytes of RAM in the page cache, swap cache excluded (Cached)",
        swap_cached: BigInt [] "Bytes of swapped-out memory read back and also still in swap (SwapCached)",
        active: BigInt [] "Bytes of recently used memory, normally kept (Active)",
        inactive: BigInt [] "Bytes of less recently used memory, first candidates for reclaim (Inactive)",
        swap_total: BigInt [] "Bytes of configured swap space (SwapTotal)",
        swap_free: BigInt [] "Bytes of swap space not in use (SwapFree)",
    },
    examples: ["select * from memory_info"],
}

const PROC_MEMINFO: &str = "/proc/meminfo";

/// `/proc/meminfo` keys (with their colon) and the column each fills.
const KEYS: [(&[u8], Col); 10] = [
    (b"MemTotal:", Col::memory_total),
    (b"MemFree:", Col::memory_free),
    (b"MemAvailable:", Col::memory_available),
    (b"Buffers:", Col::buffers),
    (b"Cached:", Col::cached),
    (b"SwapCached:", Col::swap_cached),
    (b"Active:", Col::active),
    (b"Inactive:", Col::inactive),
    (b"SwapTotal:", Col::swap_total),
    (b"SwapFree:", Col::swap_free),
];

/// The value in bytes of each known key present in `text` (lines like `MemFree:  123 kB`).
/// The kernel reports these counters in KiB.
fn parse_meminfo(text: &[u8]) -> Vec<(Col, i64)> {
    let mut out = Vec::new();
    for line in text.split(|b| *b == b'\n') {
        let mut words = line
            .split(|b| b.is_ascii_whitespace())
            .filter(|w| !w.is_empty());
        let (Some(key), Some(value)) = (words.next(), words.next()) else {
            continue;
        };
        let Some((_, col)) = KEYS.iter().find(|(k, _)| *k == key) else {
            continue;
        };
        let Some(kib) = parse_u64(value).filter(|_| value.iter().all(u8::is_ascii_digit)) else {
            continue;
        };
        if let Some(bytes) = kib.checked_mul(1024).and_then(|b| i64::try_from(b).ok()) {
            out.push((*col, bytes));
        }
    }
    out
}

fn generate(_ctx: &QueryContext, rows: &mut Rows) -> TableResult {
    let mut reader = FileReader::new();
    let text = match reader.read(PROC_MEMINFO) {
        Ok(text) => text,
        Err(e) => {
            log::warn!("memory_info: cannot read {PROC_MEMINFO}: {e}");
            return Ok(());
        }
    };
    let values = parse_meminfo(text);
    let mut row = rows.row();
    for (col, bytes) in values {
        row.set(col, bytes);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use oxquery_table::{Host, Value};

    #[test]
    fn parses_meminfo_in_bytes_and_skips_garbage() {
        let text = b"MemTotal:       16384 kB\nMemFree: 10 kB\nActive(anon): 5 kB\n\
                     Active:  7 kB\nCached:\nBuffers: x kB\nnonsense\n\nSwapFree: 0 kB";
        let got = parse_meminfo(text);
        assert_eq!(
            got,
            vec![
                (Col::memory_total, 16384 * 1024),
                (Col::memory_free, 10 * 1024),
                (Col::active, 7 * 1024),
                (Col::swap_free, 0),
            ]
        );
        assert!(parse_meminfo(b"").is_empty());
    }

    fn meminfo_kib(key: &str) -> i64 {
        let text = std::fs::read_to_string(PROC_MEMINFO).unwrap();
        let line = text
            .lines()
            .find(|l| l.split(':').next() == Some(key))
            .unwrap();
        line.split_whitespace().nth(1).unwrap().parse().unwrap()
    }

    #[test]
    fn agrees_with_proc_meminfo_and_free() {
        let host = Host::default();
        let ctx = QueryContext::everything(&SPEC, &host);
        let rows = Rows::collect(&ctx, generate).unwrap();
        assert_eq!(rows.len(), 1);
        let row = rows.get(0).unwrap();
        let int = |c: Col| match row[c as usize] {
            Value::Integer(i) => i,
            ref v => panic!("{c:?} is {v:?}"),
        };
        // Totals do not move; compare exactly.
        assert_eq!(int(Col::memory_total), meminfo_kib("MemTotal") * 1024);
        assert_eq!(int(Col::swap_total), meminfo_kib("SwapTotal") * 1024);
        // `free -b` reads the same file independently.
        let free = std::process::Command::new("free")
            .arg("-b")
            .output()
            .unwrap();
        let free = String::from_utf8(free.stdout).unwrap();
        let mem_line = free.lines().find(|l| l.starts_with("Mem:")).unwrap();
        let free_total: i64 = mem_line.split_whitespace().nth(1).unwrap().parse().unwrap();
        assert_eq!(int(Col::memory_total), free_total);
        for c in [
            Col::memory_free,
            Col::memory_available,
            Col::buffers,
            Col::cached,
            Col::swap_cached,
            Col::active,
            Col::inactive,
            Col::swap_free,
        ] {
            let v = int(c);
            assert!(v >= 0 && v % 1024 == 0, "{c:?} = {v}");
            assert!(v <= int(Col::memory_total).max(int(Col::swap_total)));
        }
    }
}
