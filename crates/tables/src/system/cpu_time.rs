//! `cpu_time`: per-core time counters from the `cpuN` lines of `/proc/stat`.
//!
//! Values are the kernel's raw counters in clock ticks (USER_HZ), as osquery reports
//! them on Linux; the aggregate `cpu` line is left out.

use oxquery_sys::fs::{FileReader, parse_u64};
use oxquery_table::{QueryContext, Rows, TableResult, table};

table! {
    name: "cpu_time",
    description: "Cumulative per-core CPU tick counters since boot, one row per cpuN line of /proc/stat.",
    columns: {
        core: Integer [] "Index N of the cpuN line",
        user: BigInt [] "Ticks (USER_HZ) running user code at normal priority",
        nice: BigInt [] "Ticks running user code with a positive nice value",
        system: BigInt [] "Ticks executing kernel code outside interrupt handlers",
        idle: BigInt [] "Ticks with nothing to run",
        iowait: BigInt [] "Idle ticks during which disk I/O was pending",
        irq: BigInt [] "Ticks in hardware interrupt handlers",
        softirq: BigInt [] "Ticks in deferred (softirq) interrupt work",
        steal: BigInt [] "Ticks the hypervisor gave to other machines while this core was runnable; 0 on kernels without it",
        guest: BigInt [] "Ticks running a guest's virtual CPU (also counted in user); 0 on kernels without it",
        guest_nice: BigInt [] "Ticks running niced guest virtual CPUs (also counted in nice); 0 on kernels without it",
    },
    examples: ["select * from cpu_time"],
}

const PROC_STAT: &str = "/proc/stat";

/// Counter columns in `/proc/stat` order.
const COUNTERS: [Col; 10] = [
    Col::user,
    Col::nice,
    Col::system,
    Col::idle,
    Col::iowait,
    Col::irq,
    Col::softirq,
    Col::steal,
    Col::guest,
    Col::guest_nice,
];

/// One core's line: its number and the ten counters.
#[derive(Debug, Clone, PartialEq, Eq)]
struct CoreTimes {
    core: u64,
    counters: [u64; 10],
}

/// The `cpuN` lines of `/proc/stat`. Lines with fewer than the seven counters every
/// kernel prints are skipped; counters older kernels lack (steal, guest,
/// guest_nice) read as 0, as osquery reports them.
fn parse_stat(text: &[u8]) -> Vec<CoreTimes> {
    let mut out = Vec::new();
    for line in text.split(|b| *b == b'\n') {
        let mut words = line
            .split(|b| b.is_ascii_whitespace())
            .filter(|w| !w.is_empty());
        let Some(name) = words.next() else { continue };
        let Some(number) = name.strip_prefix(b"cpu") else {
            continue;
        };
        if number.is_empty() || !number.iter().all(u8::is_ascii_digit) {
            continue;
        }
        let Some(core) = parse_u64(number) else {
            continue;
        };
        let mut counters = [0u64; 10];
        let mut seen = 0;
        for (slot, word) in counters.iter_mut().zip(words) {
            match parse_u64(word).filter(|_| word.iter().all(u8::is_ascii_digit)) {
                Some(v) => *slot = v,
                None => break,
            }
            seen += 1;
        }
        if seen >= 7 {
            out.push(CoreTimes { core, counters });
        }
    }
    out
}

fn generate(_ctx: &QueryContext, rows: &mut Rows) -> TableResult {
    let mut reader = FileReader::new();
    let text = match reader.read(PROC_STAT) {
        Ok(text) => text,
        Err(e) => {
            log::warn!("cpu_time: cannot read {PROC_STAT}: {e}");
            return Ok(());
        }
    };
    for core in parse_stat(text) {
        let mut row = rows.row();
        row.set(Col::core, core.core);
        for (col, value) in COUNTERS.iter().zip(core.counters) {
            row.set(*col, value);
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use oxquery_table::{Host, Value};

    #[test]
    fn parses_core_lines_only() {
        let text = b"cpu  10 0 5 100 1 0 2 3 0 0\n\
                     cpu0 1 2 3 4 5 6 7 8 9 10\n\
                     cpu1 1 2 3 4 5 6 7\n\
                     cpu2 1 2 3\n\
                     cpux 1 2 3 4 5 6 7 8\n\
                     intr 1 2 3\ncpu3 1 2 3 4 5 6 x 8\n";
        let got = parse_stat(text);
        assert_eq!(
            got,
            vec![
                CoreTimes {
                    core: 0,
                    counters: [1, 2, 3, 4, 5, 6, 7, 8, 9, 10]
                },
                CoreTimes {
                    core: 1,
                    counters: [1, 2, 3, 4, 5, 6, 7, 0, 0, 0]
                },
            ]
        );
        assert!(parse_stat(b"").is_empty());
    }

    fn read_proc_stat() -> Vec<Vec<i64>> {
        std::fs::read_to_string(PROC_STAT)
            .unwrap()
            .lines()
            .filter(|l| l.starts_with("cpu") && !l.starts_with("cpu "))
            .map(|l| {
                l.split_whitespace()
                    .skip(1)
                    .take(10)
                    .map(|w| w.parse().unwrap())
                    .collect()
            })
            .collect()
    }

    #[test]
    fn counters_lie_between_two_reads_of_proc_stat() {
        let host = Host::default();
        let ctx = QueryContext::everything(&SPEC, &host);
        let mut rows = Rows::for_context(&ctx);
        let before = read_proc_stat();
        generate(&ctx, &mut rows).unwrap();
        let after = read_proc_stat();
        assert_eq!(rows.len(), before.len());
        assert!(!rows.is_empty());
        for (i, row) in rows.iter().enumerate() {
            assert_eq!(row[Col::core as usize], Value::Integer(i as i64));
            for (k, col) in COUNTERS.iter().enumerate() {
                let Value::Integer(v) = row[*col as usize] else {
                    panic!("{col:?} not an integer");
                };
                assert!(
                    before[i][k] <= v && v <= after[i][k],
                    "core {i} {col:?}: {} <= {v} <= {}",
                    before[i][k],
                    after[i][k]
                );
            }
        }
    }
}
