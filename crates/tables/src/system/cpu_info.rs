//! `cpu_info`: one row per physical processor package, from `/proc/cpuinfo` and the
//! CPU frequency limits in `/sys/devices/system/cpu`.
//!
//! osquery reads the SMBIOS processor records instead; many virtual machines (this
//! project's CI among them) export no SMBIOS, while the kernel's own view is always
//! there. The SMBIOS-only columns are filled with the kernel's equivalent where one
//! exists (see each column) and left NULL where none does.

use oxquery_sys::fs::FileReader;
use oxquery_table::{QueryContext, Rows, TableResult, table};
use std::collections::BTreeMap;
use std::path::Path;

table! {
    name: "cpu_info",
    description: "Processor packages (sockets) with their model, vendor, core and thread counts and clock speeds, from /proc/cpuinfo and sysfs.",
    columns: {
        device_id: Text [] "Identifier of the package: CPU followed by its physical package number",
        model: Text [] "Processor model name",
        manufacturer: Text [] "Processor vendor identifier, such as GenuineIntel or AuthenticAMD",
        processor_type: Text [] "SMBIOS processor type code; 3 (central processor) for every row",
        cpu_status: Integer [] "SMBIOS-style status: 65 (socket populated, CPU enabled) when a CPU of the package is online",
        number_of_cores: Text [] "Physical cores in the package",
        logical_processors: Integer [] "Hardware threads the package runs (online logical CPUs)",
        address_width: Text [] "Width of addresses in bits: 64 for a 64-bit capable processor, else 32",
        current_clock_speed: Integer [] "Current clock speed in MHz",
        max_clock_speed: Integer [] "Highest clock speed in MHz from cpufreq, NULL without cpufreq",
        socket_designation: Text [] "Socket label from SMBIOS; the kernel does not know it, so NULL",
        availability: Text [OTHER_PLATFORM] "Windows only: availability and status of the processor",
        load_percentage: Integer [OTHER_PLATFORM] "Windows only: load of the processor averaged over the last second",
        number_of_efficiency_cores: Integer [OTHER_PLATFORM] "macOS only: number of efficiency cores",
        number_of_performance_cores: Integer [OTHER_PLATFORM] "macOS only: number of performance cores",
    },
    examples: ["select model, number_of_cores, logical_processors from cpu_info"],
}

const PROC_CPUINFO: &str = "/proc/cpuinfo";
const SYS_CPU: &str = "/sys/devices/system/cpu";

/// One processor package, summarised from its logical CPUs' blocks.
#[derive(Debug, Clone, PartialEq, Default)]
struct Package {
    id: i64,
    model: Option<String>,
    vendor: Option<String>,
    cores: Option<String>,
    logical: i64,
    is_64bit: bool,
    mhz: Option<f64>,
    /// Logical CPU numbers (`processor` field) in the package.
    cpus: Vec<u32>,
}

/// Parses `/proc/cpuinfo` text into packages, grouped by `physical id` (CPUs without
/// one belong to package 0). Lines without `:` are skipped; a block without a
/// `processor` number is ignored.
fn parse_cpuinfo(text: &str) -> Vec<Package> {
    let mut packages: BTreeMap<i64, Package> = BTreeMap::new();
    for block in text.split("\n\n") {
        let mut fields: Vec<(&str, &str)> = Vec::new();
        for line in block.lines() {
            if let Some((k, v)) = line.split_once(':') {
                fields.push((k.trim(), v.trim()));
            }
        }
        let get = |key: &str| fields.iter().find(|(k, _)| *k == key).map(|(_, v)| *v);
        let Some(cpu) = get("processor").and_then(|v| v.parse::<u32>().ok()) else {
            continue;
        };
        let id = get("physical id").and_then(|v| v.parse().ok()).unwrap_or(0);
        let p = packages.entry(id).or_insert_with(|| Package {
            id,
            ..Package::default()
        });
        p.cpus.push(cpu);
        p.logical += 1;
        if p.model.is_none() {
            p.model = get("model name")
                .or(get("Processor"))
                .or(get("cpu model"))
                .map(str::to_owned);
        }
        if p.vendor.is_none() {
            p.vendor = get("vendor_id")
                .or(get("CPU implementer"))
                .map(str::to_owned);
        }
        if p.cores.is_none() {
            p.cores = get("cpu cores").map(str::to_owned);
        }
        if p.mhz.is_none() {
            p.mhz = get("cpu MHz").and_then(|v| v.parse().ok());
        }
        let flags = get("flags").unwrap_or_default();
        p.is_64bit |= flags.split(' ').any(|f| f == "lm");
    }
    packages.into_values().collect()
}

/// The highest `cpuinfo_max_freq` (kHz) of the package's CPUs, in MHz.
fn max_mhz(sys_cpu: &Path, cpus: &[u32], reader: &mut FileReader) -> Option<i64> {
    cpus.iter()
        .filter_map(|cpu| {
            let path = sys_cpu.join(format!("cpu{cpu}/cpufreq/cpuinfo_max_freq"));
            let text = reader.read(path).ok()?;
            oxquery_sys::fs::parse_u64(text.trim_ascii()).map(|khz| (khz / 1000) as i64)
        })
        .max()
}

/// Whether any of the CPUs is online (`online` file absent means it cannot go offline).
fn any_online(sys_cpu: &Path, cpus: &[u32], reader: &mut FileReader) -> bool {
    cpus.iter().any(
        |cpu| match reader.read(sys_cpu.join(format!("cpu{cpu}/online"))) {
            Ok(text) => text.trim_ascii() == b"1",
            Err(_) => true,
        },
    )
}

fn generate_at(cpuinfo: &str, sys_cpu: &Path, rows: &mut Rows) {
    let mut reader = FileReader::new();
    let is_64bit_arch = cfg!(target_pointer_width = "64");
    for p in parse_cpuinfo(cpuinfo) {
        let mut row = rows.row();
        row.set(Col::device_id, format!("CPU{}", p.id));
        row.set(Col::model, p.model);
        row.set(Col::manufacturer, p.vendor);
        row.set(Col::processor_type, "3");
        if row.wants(Col::cpu_status) {
            row.set(
                Col::cpu_status,
                if any_online(sys_cpu, &p.cpus, &mut reader) {
                    65
                } else {
                    64
                },
            );
        }
        row.set(Col::number_of_cores, p.cores);
        row.set(Col::logical_processors, p.logical);
        row.set(
            Col::address_width,
            if p.is_64bit || is_64bit_arch {
                "64"
            } else {
                "32"
            },
        );
        row.set(Col::current_clock_speed, p.mhz.map(|m| m.round() as i64));
        if row.wants(Col::max_clock_speed) {
            row.set(Col::max_clock_speed, max_mhz(sys_cpu, &p.cpus, &mut reader));
        }
    }
}

fn generate(_ctx: &QueryContext, rows: &mut Rows) -> TableResult {
    match std::fs::read(PROC_CPUINFO) {
        Ok(bytes) => generate_at(&String::from_utf8_lossy(&bytes), Path::new(SYS_CPU), rows),
        Err(e) => log::info!("cpu_info: cannot read {PROC_CPUINFO}: {e}"),
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use oxquery_table::{Host, Value};

    const TWO_SOCKETS: &str = "processor\t: 0\nvendor_id\t: GenuineIntel\nmodel name\t: Xeon A\n\
        cpu MHz\t\t: 2300.400\nphysical id\t: 0\nsiblings\t: 2\ncpu cores\t: 2\nflags\t\t: fpu lm sse\n\n\
        processor\t: 1\nvendor_id\t: GenuineIntel\nmodel name\t: Xeon A\nphysical id\t: 0\ncpu cores\t: 2\n\n\
        processor\t: 2\nvendor_id\t: GenuineIntel\nmodel name\t: Xeon B\ncpu MHz\t\t: 1000\nphysical id\t: 1\ncpu cores\t: 1\n\n\
        garbage without colon\n\nprocessor : x\n";

    #[test]
    fn groups_logical_cpus_into_packages() {
        let got = parse_cpuinfo(TWO_SOCKETS);
        assert_eq!(got.len(), 2);
        assert_eq!(got[0].model.as_deref(), Some("Xeon A"));
        assert_eq!(got[0].logical, 2);
        assert_eq!(got[0].cores.as_deref(), Some("2"));
        assert_eq!(got[0].cpus, vec![0, 1]);
        assert!(got[0].is_64bit);
        assert_eq!(got[1].model.as_deref(), Some("Xeon B"));
        assert_eq!(got[1].logical, 1);
    }

    #[test]
    fn reads_frequency_limits_and_online_state_from_a_fixture_tree() {
        let sys = tempfile::tempdir().unwrap();
        for (cpu, khz, online) in [
            (0, "3500000\n", "1"),
            (1, "3900000\n", "1"),
            (2, "1200000\n", "0"),
        ] {
            let d = sys.path().join(format!("cpu{cpu}/cpufreq"));
            std::fs::create_dir_all(&d).unwrap();
            std::fs::write(d.join("cpuinfo_max_freq"), khz).unwrap();
            std::fs::write(sys.path().join(format!("cpu{cpu}/online")), online).unwrap();
        }
        let host = Host::default();
        let ctx = QueryContext::everything(&SPEC, &host);
        let mut rows = Rows::for_context(&ctx);
        generate_at(TWO_SOCKETS, sys.path(), &mut rows);
        assert_eq!(rows.len(), 2);
        let r0 = rows.get(0).unwrap();
        assert_eq!(r0[Col::device_id as usize], Value::Text("CPU0".into()));
        assert_eq!(r0[Col::max_clock_speed as usize], Value::Integer(3900));
        assert_eq!(r0[Col::current_clock_speed as usize], Value::Integer(2300));
        assert_eq!(r0[Col::cpu_status as usize], Value::Integer(65));
        let r1 = rows.get(1).unwrap();
        assert_eq!(r1[Col::cpu_status as usize], Value::Integer(64));
    }

    #[test]
    fn hostile_input_never_panics() {
        let garbage: Vec<u8> = (0..100_000u32).map(|i| (i * 101 % 256) as u8).collect();
        let _ = parse_cpuinfo(&String::from_utf8_lossy(&garbage));
        assert!(parse_cpuinfo(&"x".repeat(1 << 20)).is_empty());
    }

    fn lscpu_field(text: &str, key: &str) -> Option<String> {
        text.lines().find_map(|l| {
            l.strip_prefix(key)?
                .strip_prefix(':')
                .map(|v| v.trim().to_owned())
        })
    }

    #[test]
    fn agrees_with_lscpu_and_nproc() {
        let host = Host::default();
        let ctx = QueryContext::everything(&SPEC, &host);
        let rows = Rows::collect(&ctx, generate).unwrap();
        let out = std::process::Command::new("lscpu")
            .env("LC_ALL", "C")
            .output()
            .expect("lscpu runs");
        let lscpu = String::from_utf8_lossy(&out.stdout).into_owned();
        if let Some(sockets) =
            lscpu_field(&lscpu, "Socket(s)").and_then(|s| s.parse::<usize>().ok())
        {
            assert_eq!(rows.len(), sockets);
        }
        if let Some(model) = lscpu_field(&lscpu, "Model name") {
            assert_eq!(
                rows.get(0).unwrap()[Col::model as usize],
                Value::Text(model)
            );
        }
        if let Some(cores) = lscpu_field(&lscpu, "Core(s) per socket") {
            assert_eq!(
                rows.get(0).unwrap()[Col::number_of_cores as usize],
                Value::Text(cores)
            );
        }
        let out = std::process::Command::new("nproc")
            .arg("--all")
            .output()
            .expect("nproc runs");
        let nproc: i64 = String::from_utf8_lossy(&out.stdout).trim().parse().unwrap();
        let logical: i64 = rows
            .column(Col::logical_processors)
            .into_iter()
            .map(|v| match v {
                Value::Integer(i) => *i,
                v => panic!("{v:?}"),
            })
            .sum();
        // /proc/cpuinfo lists online CPUs; nproc --all counts offline ones too.
        assert!(logical >= 1 && logical <= nproc, "{logical} vs {nproc}");
    }
}
