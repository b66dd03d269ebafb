//! `msr`: a few model-specific registers of each CPU, read through the `msr` driver's
//! `/dev/cpu/<n>/msr` (an 8-byte `pread` at the register's number).
//!
//! The registers are osquery's (numbers from the kernel's `msr-index.h`):
//! IA32_MISC_ENABLE (0x1a0, bit 38: turbo disabled), MSR_TURBO_RATIO_LIMIT (0x1ad),
//! MSR_PLATFORM_INFO (0xce), IA32_PERF_STATUS (0x198), IA32_PERF_CTL (0x199, low 16 bits),
//! IA32_FEATURE_CONTROL (0x3a) and the RAPL package registers (0x606 units, 0x610 power
//! limit, 0x611 energy status). A register the CPU lacks (the read fails) leaves its
//! column NULL. Without the `msr` module loaded (no `/dev/cpu/*/msr`), or without root,
//! no rows and a verbose log saying so.

use oxquery_table::{QueryContext, Rows, TableResult, table};
use std::os::unix::fs::FileExt;
use std::path::Path;

table! {
    name: "msr",
    description: "Model-specific registers of each CPU (turbo, performance state, platform info, feature control, RAPL power) read through /dev/cpu/<n>/msr; needs the msr module and root.",
    columns: {
        processor_number: BigInt [] "CPU number (the <n> of /dev/cpu/<n>/msr)",
        turbo_disabled: BigInt [] "1 if IA32_MISC_ENABLE bit 38 (turbo disable) is set, else 0",
        turbo_ratio_limit: BigInt [] "MSR_TURBO_RATIO_LIMIT (0x1ad): maximum turbo ratios by active core count",
        platform_info: BigInt [] "MSR_PLATFORM_INFO (0xce): base and minimum ratios and platform features",
        perf_ctl: BigInt [] "IA32_PERF_CTL (0x199), low 16 bits: the requested performance state",
        perf_status: BigInt [] "IA32_PERF_STATUS (0x198): the current performance state",
        feature_control: BigInt [] "IA32_FEATURE_CONTROL (0x3a): lock and VMX/SMX enable bits",
        rapl_power_limit: BigInt [] "MSR_PKG_POWER_LIMIT (0x610): the package's RAPL power limits",
        rapl_energy_status: BigInt [] "MSR_PKG_ENERGY_STATUS (0x611): the package's energy counter",
        rapl_power_units: BigInt [] "MSR_RAPL_POWER_UNIT (0x606): units of the RAPL power, energy and time fields",
    },
    examples: ["select processor_number, turbo_disabled, perf_status from msr"],
}

const DEV_CPU: &str = "/dev/cpu";

/// A register osquery reports: its number, the mask applied, and whether the column is
/// the mask's bit as 0/1.
struct Register {
    column: Col,
    number: u64,
    mask: u64,
    flag: bool,
}

const REGISTERS: [Register; 9] = [
    Register {
        column: Col::turbo_disabled,
        number: 0x1a0,
        mask: 1 << 38,
        flag: true,
    },
    Register {
        column: Col::turbo_ratio_limit,
        number: 0x1ad,
        mask: u64::MAX,
        flag: false,
    },
    Register {
        column: Col::platform_info,
        number: 0xce,
        mask: u64::MAX,
        flag: false,
    },
    Register {
        column: Col::perf_status,
        number: 0x198,
        mask: u64::MAX,
        flag: false,
    },
    Register {
        column: Col::perf_ctl,
        number: 0x199,
        mask: 0xffff,
        flag: false,
    },
    Register {
        column: Col::feature_control,
        number: 0x3a,
        mask: u64::MAX,
        flag: false,
    },
    Register {
        column: Col::rapl_power_limit,
        number: 0x610,
        mask: u64::MAX,
        flag: false,
    },
    Register {
        column: Col::rapl_energy_status,
        number: 0x611,
        mask: u64::MAX,
        flag: false,
    },
    Register {
        column: Col::rapl_power_units,
        number: 0x606,
        mask: u64::MAX,
        flag: false,
    },
];

fn generate(ctx: &QueryContext, rows: &mut Rows) -> TableResult {
    generate_under(ctx, Path::new(DEV_CPU), rows)
}

/// The CPUs under `dev_cpu` (directories named by a number), ascending.
fn cpus(dev_cpu: &Path) -> Vec<u32> {
    let Ok(entries) = std::fs::read_dir(dev_cpu) else {
        return Vec::new();
    };
    let mut cpus: Vec<u32> = entries
        .filter_map(|e| e.ok()?.file_name().to_str()?.parse().ok())
        .collect();
    cpus.sort_unstable();
    cpus
}

fn generate_under(ctx: &QueryContext, dev_cpu: &Path, rows: &mut Rows) -> TableResult {
    let mut opened = 0;
    let mut last_error = None;
    for cpu in cpus(dev_cpu) {
        ctx.check()?;
        let path = dev_cpu.join(cpu.to_string()).join("msr");
        // A character device of the kernel's, not a file users control; reads at an
        // offset never block.
        let file = match std::fs::File::open(&path) {
            Ok(f) => f,
            Err(e) => {
                last_error = Some((path, e));
                continue;
            }
        };
        opened += 1;
        let mut row = rows.row();
        row.set(Col::processor_number, i64::from(cpu));
        for reg in &REGISTERS {
            if !row.wants(reg.column) {
                continue;
            }
            let mut value = [0u8; 8];
            // A register the processor lacks fails the read (EIO): the column stays NULL.
            if file.read_exact_at(&mut value, reg.number).is_err() {
                continue;
            }
            let value = u64::from_le_bytes(value) & reg.mask;
            // BIGINT is signed: the register's bits as they are, as osquery stores them.
            let cell = if reg.flag {
                i64::from(value != 0)
            } else {
                value as i64
            };
            row.set(reg.column, cell);
        }
    }
    if opened == 0 {
        match last_error {
            Some((path, e)) if e.kind() != std::io::ErrorKind::NotFound => log::info!(
                "Table msr: cannot open {} ({e}): reading MSRs needs root",
                path.display()
            ),
            _ => log::info!(
                "Table msr: no {}/<cpu>/msr devices: the msr kernel module is not loaded",
                dev_cpu.display()
            ),
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use oxquery_table::{Host, Value};

    fn rows_under(dir: &Path) -> (Vec<Vec<Value>>, Vec<(log::Level, String)>) {
        crate::common::testing::capture_log(|| {
            let host = Host::default();
            let ctx = QueryContext::everything(&SPEC, &host);
            let rows = {
                let mut rows = Rows::for_context(&ctx);
                generate_under(&ctx, dir, &mut rows).unwrap();
                rows
            };
            rows.iter().map(<[Value]>::to_vec).collect()
        })
    }

    /// A register file: the bytes of a `/dev/cpu/<n>/msr` a test writes, each value at its
    /// register's offset (a sparse regular file answers `pread` as the device does).
    fn write_registers(path: &Path, values: &[(u64, u64)]) {
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        let file = std::fs::File::create(path).unwrap();
        for (offset, value) in values {
            file.write_all_at(&value.to_le_bytes(), *offset).unwrap();
        }
    }

    #[test]
    fn registers_are_read_at_their_numbers_and_masked() {
        let dir = tempfile::tempdir().unwrap();
        write_registers(
            &dir.path().join("0/msr"),
            &[
                (0x1a0, 1 << 38 | 0x89),
                (0x1ad, 0x2828_2a2a),
                (0xce, 0x8000_0c10_1800),
                (0x199, 0xdead_0000_1d00),
                (0x3a, 0x5),
                (0x606, 0xa_0e03),
                (0x610, 0x0042_8480_00dd_80c8),
                (0x611, 0xffff_ffff_ffff_ffff),
            ],
        );
        // CPU 1 has a file that ends before the RAPL registers: those stay NULL.
        write_registers(&dir.path().join("1/msr"), &[(0x1a0, 0x89), (0x3a, 0x1)]);
        std::fs::create_dir(dir.path().join("microcode")).unwrap();
        let (rows, _) = rows_under(dir.path());
        assert_eq!(rows.len(), 2);
        let get = |r: usize, c: Col| rows[r][c as usize].clone();
        assert_eq!(get(0, Col::processor_number), Value::Integer(0));
        assert_eq!(get(0, Col::turbo_disabled), Value::Integer(1));
        assert_eq!(get(0, Col::turbo_ratio_limit), Value::Integer(0x2828_2a2a));
        assert_eq!(get(0, Col::platform_info), Value::Integer(0x8000_0c10_1800));
        // The device addresses registers, a file bytes: IA32_PERF_STATUS (0x198) and
        // IA32_PERF_CTL (0x199) overlap in the fixture, so 0x198 reads 0x199's bytes
        // one place up (the proof that each is read at its own number).
        assert_eq!(
            get(0, Col::perf_status),
            Value::Integer(0xdead_0000_1d00 << 8)
        );
        assert_eq!(get(0, Col::perf_ctl), Value::Integer(0x1d00));
        assert_eq!(get(0, Col::feature_control), Value::Integer(5));
        assert_eq!(get(0, Col::rapl_power_units), Value::Integer(0xa_0e03));
        // 0x610 overlaps 0x611 the same way: its low byte, then 0x611's all-ones.
        assert_eq!(get(0, Col::rapl_power_limit), Value::Integer(-56));
        assert_eq!(get(0, Col::rapl_energy_status), Value::Integer(-1));
        assert_eq!(get(1, Col::processor_number), Value::Integer(1));
        assert_eq!(get(1, Col::turbo_disabled), Value::Integer(0));
        assert_eq!(get(1, Col::feature_control), Value::Integer(1));
        assert_eq!(get(1, Col::rapl_power_limit), Value::Null);
        assert_eq!(get(1, Col::rapl_energy_status), Value::Null);
    }

    #[test]
    fn without_the_module_no_rows_and_a_log() {
        let dir = tempfile::tempdir().unwrap();
        // What /dev/cpu holds with only the cpuid module loaded.
        std::fs::create_dir_all(dir.path().join("0")).unwrap();
        std::fs::write(dir.path().join("0/cpuid"), b"").unwrap();
        let (rows, logged) = rows_under(dir.path());
        assert!(rows.is_empty());
        assert!(
            logged
                .iter()
                .any(|(l, m)| *l == log::Level::Info
                    && m.contains("msr kernel module is not loaded")),
            "{logged:?}"
        );
    }

    /// The host: a row per `/dev/cpu/<n>/msr` we can open, none (and a log) otherwise.
    #[test]
    fn host_rows_match_the_devices() {
        let (rows, logged) = rows_under(Path::new(DEV_CPU));
        let openable = cpus(Path::new(DEV_CPU))
            .into_iter()
            .filter(|c| std::fs::File::open(format!("{DEV_CPU}/{c}/msr")).is_ok())
            .count();
        assert_eq!(rows.len(), openable);
        if openable == 0 {
            assert!(
                logged.iter().any(|(_, m)| m.contains("Table msr")),
                "{logged:?}"
            );
        }
    }
}
