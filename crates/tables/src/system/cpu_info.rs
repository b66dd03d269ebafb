//! `cpu_info`: one row per processor socket.
//!
//! Like osquery on Linux, rows come from the SMBIOS Processor Information structures
//! (type 4), one per socket, populated or not. Many virtual machines (this project's CI
//! among them) and non-x86 boards export no SMBIOS; there the rows come from
//! `/proc/cpuinfo` and the CPU frequency limits in `/sys/devices/system/cpu`, one per
//! physical package, with what the kernel truly knows: model, vendor, cores, logical
//! CPUs, current speed, the cpufreq maximum where cpufreq exists, processor type 3 (the
//! kernel lists only central processors) and status 65/64 from the CPUs' online state.
//! The columns only SMBIOS knows (`socket_designation`, and `max_clock_speed` without
//! cpufreq) are NULL there, never '' in an INTEGER column.
use crate::hardware::smbios;
use oxquery_sys::fs::FileReader;
use oxquery_sys::smbios::Structure;
use oxquery_table::{QueryContext, Rows, TableResult, table};
use std::collections::BTreeMap;
use std::path::Path;

table! {
    name: "cpu_info",
    description: "Processor sockets with their model, vendor, core and thread counts and clock speeds: from the SMBIOS processor structures (type 4) like osquery, or, on hosts without SMBIOS (many VMs), from /proc/cpuinfo and sysfs with the SMBIOS-only columns NULL.",
    columns: {
        device_id: Text [] "CPU, MATH, DSP or GPU (from the processor type) followed by a counter over the sockets (SMBIOS); CPU followed by the physical package number (/proc/cpuinfo)",
        model: Text [] "Processor model: the SMBIOS processor version string, or the kernel's model name",
        manufacturer: Text [] "Processor manufacturer from SMBIOS, or the kernel's vendor identifier (GenuineIntel, AuthenticAMD)",
        processor_type: Text [] "SMBIOS processor type code (3 central, 4 math, 5 DSP, 6 video); 3 from /proc/cpuinfo",
        cpu_status: Integer [] "SMBIOS status byte: 65 socket populated and CPU enabled, 64 populated but disabled, 0 empty socket; from /proc/cpuinfo 65 when a CPU of the package is online, else 64",
        number_of_cores: Text [] "Cores in the socket",
        logical_processors: Integer [] "Hardware threads of the socket (SMBIOS thread count, or the package's online logical CPUs)",
        address_width: Text [] "Width of addresses in bits: 64 for a 64-bit capable processor, else 32",
        current_clock_speed: Integer [] "Current clock speed in MHz (SMBIOS: at boot)",
        max_clock_speed: Integer [] "Highest clock speed in MHz (SMBIOS: the socket's supported maximum); without SMBIOS the cpufreq maximum, NULL without cpufreq",
        socket_designation: Text [] "Label of the socket on the board (SMBIOS); NULL without SMBIOS",
        availability: Text [OTHER_PLATFORM] "Windows only: availability and status of the processor",
        load_percentage: Integer [OTHER_PLATFORM] "Windows only: load of the processor averaged over the last second",
        number_of_efficiency_cores: Integer [OTHER_PLATFORM] "macOS only: number of efficiency cores",
        number_of_performance_cores: Integer [OTHER_PLATFORM] "macOS only: number of performance cores",
    },
    examples: ["select model, number_of_cores, logical_processors from cpu_info"],
}

const PROC_CPUINFO: &str = "/proc/cpuinfo";
const PROCESSOR: u8 = 4;

/// The `device_id` prefix of each SMBIOS processor type (osquery's names).
const DEVICE_PREFIXES: &[(u8, &str)] = &[(3, "CPU"), (4, "MATH"), (5, "DSP"), (6, "GPU")];

/// A count byte, or the SMBIOS 3.0 word at `word_at` when the byte says 0xFF ("see
/// the word").
fn count(s: &Structure, byte_at: usize, word_at: usize) -> Option<u16> {
    match s.byte(byte_at)? {
        0xFF => s.word(word_at).or(Some(0xFF)),
        n => Some(u16::from(n)),
    }
}

/// One row per SMBIOS processor structure; false when there is none.
fn rows_from_smbios(dir: &Path, rows: &mut Rows) -> bool {
    let Some(tables) = smbios::load(SPEC.name.as_ref(), dir) else {
        return false;
    };
    let mut found = false;
    let mut counter = 0;
    for s in tables.structures().filter(|s| s.kind == PROCESSOR) {
        found = true;
        let kind = s.byte(0x05);
        let mut row = rows.row();
        // The counter runs over the processors of known type, as osquery's does.
        if let Some(prefix) = kind.and_then(|k| smbios::name(DEVICE_PREFIXES, k)) {
            row.set(Col::device_id, format!("{prefix}{counter}"));
            counter += 1;
        }
        row.set(Col::socket_designation, s.text(0x04).unwrap_or_default());
        row.set(Col::manufacturer, s.text(0x07).unwrap_or_default());
        row.set(Col::model, s.text(0x10).unwrap_or_default());
        row.set(Col::processor_type, kind.map(|k| k.to_string()));
        row.set(Col::cpu_status, s.byte(0x18).map(i64::from));
        row.set(
            Col::number_of_cores,
            count(&s, 0x23, 0x2A).map(|n| n.to_string()),
        );
        row.set(
            Col::logical_processors,
            count(&s, 0x25, 0x2E).map(i64::from),
        );
        // Characteristics bit 2: 64-bit capable.
        row.set(
            Col::address_width,
            s.word(0x26).map(|c| if c & 0x4 != 0 { "64" } else { "32" }),
        );
        row.set(Col::max_clock_speed, s.word(0x14).map(i64::from));
        row.set(Col::current_clock_speed, s.word(0x16).map(i64::from));
    }
    if !found {
        log::info!("cpu_info: the SMBIOS tables hold no processor structure");
    }
    found
}
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

/// One row per physical package of `/proc/cpuinfo`.
fn rows_from_cpuinfo(cpuinfo: &str, sys_cpu: &Path, rows: &mut Rows) {
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

/// SMBIOS in `dmi_dir` first, else the kernel's view.
fn generate_at(dmi_dir: &Path, cpuinfo: &Path, sys_cpu: &Path, rows: &mut Rows) {
    if rows_from_smbios(dmi_dir, rows) {
        return;
    }
    log::info!(
        "cpu_info: rows from {} instead of SMBIOS",
        cpuinfo.display()
    );
    match std::fs::read(cpuinfo) {
        Ok(bytes) => rows_from_cpuinfo(&String::from_utf8_lossy(&bytes), sys_cpu, rows),
        Err(e) => log::info!("cpu_info: cannot read {}: {e}", cpuinfo.display()),
    }
}

fn generate(_ctx: &QueryContext, rows: &mut Rows) -> TableResult {
    generate_at(
        Path::new(smbios::SYSFS_DMI_DIR),
        Path::new(PROC_CPUINFO),
        Path::new(SYS_CPU),
        rows,
    );
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::hardware::smbios::testing::{
        cell_text, dmidecode, dmidecode_with, fixture, sample_machine,
    };
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
        rows_from_cpuinfo(TWO_SOCKETS, sys.path(), &mut rows);
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

    /// Every row `generate_at` gives for these sources.
    fn rows_at(dmi_dir: &Path, cpuinfo: &Path, sys_cpu: &Path) -> Vec<Vec<Value>> {
        let host = Host::default();
        let ctx = QueryContext::everything(&SPEC, &host);
        let mut rows = Rows::for_context(&ctx);
        generate_at(dmi_dir, cpuinfo, sys_cpu, &mut rows);
        rows.iter().map(<[Value]>::to_vec).collect()
    }

    #[test]
    fn smbios_processors_agree_with_dmidecode() {
        let f = fixture(&sample_machine(), true);
        let nowhere = Path::new("/nonexistent");
        let rows = rows_at(&f.sysfs(), nowhere, nowhere);
        assert_eq!(rows.len(), 2);
        let c = |r: usize, col: Col| cell_text(&rows[r], col as usize);
        assert_eq!(c(0, Col::device_id).as_deref(), Some("CPU0"));
        assert_eq!(c(1, Col::device_id).as_deref(), Some("CPU1"));
        assert_eq!(c(0, Col::model).as_deref(), Some("Xeon(R) Gold 6338"));
        assert_eq!(c(1, Col::number_of_cores).as_deref(), Some("300"));
        assert_eq!(rows[1][Col::logical_processors as usize], Value::from(600));
        let Some(records) = dmidecode(&f) else { return };
        let theirs: Vec<_> = records.iter().filter(|r| r.kind == PROCESSOR).collect();
        assert_eq!(theirs.len(), rows.len());
        for (i, rec) in theirs.iter().enumerate() {
            let get = |k: &str| rec.get(k).unwrap_or_else(|| panic!("{k} in {rec:?}"));
            let mhz = |k: &str| get(k).trim_end_matches(" MHz").to_owned();
            assert_eq!(
                c(i, Col::socket_designation).unwrap(),
                get("Socket Designation")
            );
            assert_eq!(c(i, Col::manufacturer).unwrap(), get("Manufacturer"));
            assert_eq!(c(i, Col::model).unwrap(), get("Version").trim_end());
            assert_eq!(get("Type"), "Central Processor");
            assert_eq!(c(i, Col::processor_type).as_deref(), Some("3"));
            assert_eq!(get("Status"), "Populated, Enabled");
            assert_eq!(c(i, Col::cpu_status).as_deref(), Some("65"));
            assert_eq!(c(i, Col::number_of_cores).unwrap(), get("Core Count"));
            assert_eq!(c(i, Col::logical_processors).unwrap(), get("Thread Count"));
            assert_eq!(c(i, Col::max_clock_speed).unwrap(), mhz("Max Speed"));
            assert_eq!(
                c(i, Col::current_clock_speed).unwrap(),
                mhz("Current Speed")
            );
            let is_64 = get("Characteristics")
                .split('|')
                .any(|c| c == "64-bit capable");
            assert_eq!(
                c(i, Col::address_width).unwrap(),
                if is_64 { "64" } else { "32" }
            );
        }
    }

    #[test]
    fn without_smbios_processors_the_kernel_view_leaves_smbios_columns_null() {
        let dir = tempfile::tempdir().unwrap();
        let cpuinfo = dir.path().join("cpuinfo");
        std::fs::write(&cpuinfo, TWO_SOCKETS).unwrap();
        // No SMBIOS at all, then SMBIOS tables without a processor structure.
        let empty = fixture(&[sample_machine()[0].clone()], true);
        for dmi in [dir.path().join("no-dmi"), empty.sysfs()] {
            let rows = rows_at(&dmi, &cpuinfo, dir.path());
            assert_eq!(rows.len(), 2);
            assert_eq!(rows[0][Col::model as usize], Value::from("Xeon A"));
            assert_eq!(rows[0][Col::socket_designation as usize], Value::Null);
            assert_eq!(rows[0][Col::max_clock_speed as usize], Value::Null);
            assert_eq!(
                rows[0][Col::current_clock_speed as usize],
                Value::from(2300)
            );
        }
    }

    #[test]
    fn agrees_with_lscpu_and_nproc() {
        let host = Host::default();
        let ctx = QueryContext::everything(&SPEC, &host);
        let rows = Rows::collect(&ctx, generate).unwrap();
        // With readable SMBIOS the rows are its sockets (empty ones included), which
        // lscpu does not count; the fixture tests above cover that source.
        let smbios_processors = oxquery_sys::smbios::Smbios::read(Path::new(smbios::SYSFS_DMI_DIR))
            .map(|t| t.structures().filter(|s| s.kind == PROCESSOR).count())
            .unwrap_or(0);
        if smbios_processors > 0 {
            assert_eq!(rows.len(), smbios_processors);
            if let Some(records) = dmidecode_with(&["-t", "4"]) {
                assert_eq!(
                    rows.len(),
                    records.iter().filter(|r| r.kind == PROCESSOR).count()
                );
            }
            return;
        }
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
