//! `system_info`: host names, the host UUID, CPU summary, memory size and the DMI
//! identification strings of the machine and its board.

use oxquery_sys::fs::FileReader;
use oxquery_sys::host;
use oxquery_table::{QueryContext, Rows, TableResult, table};
use std::collections::HashSet;

table! {
    name: "system_info",
    description: "Host names, UUID, CPU, memory size and DMI hardware identification of this machine.",
    columns: {
        hostname: Text [] "Fully qualified domain name found through the resolver",
        uuid: Text [COLLATE_NOCASE] "SMBIOS system UUID, or a generated stand-in when there is none",
        cpu_type: Text [] "Machine architecture reported by uname(2)",
        cpu_subtype: Text [] "model number of the first processor in /proc/cpuinfo; 0 if missing",
        cpu_brand: Text [] "model name text of the first processor in /proc/cpuinfo",
        cpu_physical_cores: Integer [] "Distinct (physical id, core id) pairs in /proc/cpuinfo",
        cpu_logical_cores: Integer [] "Online logical processors (sysconf _SC_NPROCESSORS_ONLN)",
        cpu_sockets: Integer [] "Distinct physical id values in /proc/cpuinfo",
        cpu_microcode: Text [] "microcode field of the first processor in /proc/cpuinfo",
        physical_memory: BigInt [] "RAM size in bytes: physical pages times page size",
        hardware_vendor: Text [] "Maker of the machine (DMI sys_vendor)",
        hardware_model: Text [] "Model of the machine (DMI product_name); empty without DMI",
        hardware_version: Text [] "Revision of the machine (DMI product_version)",
        hardware_serial: Text [] "Serial of the machine (DMI product_serial); empty unless readable, usually root only",
        board_vendor: Text [] "Maker of the mainboard (DMI board_vendor)",
        board_model: Text [] "Mainboard model (DMI board_name)",
        board_version: Text [] "Mainboard revision (DMI board_version)",
        board_serial: Text [] "Mainboard serial (DMI board_serial); empty unless readable, usually root only",
        computer_name: Text [] "Short name from gethostname(2)",
        local_hostname: Text [] "On Linux the same value as hostname",
        emulated_cpu_type: Text [OTHER_PLATFORM] "Windows only: architecture being emulated",
    },
    examples: ["select hostname, uuid, cpu_brand from system_info"],
}

const PROC_CPUINFO: &str = "/proc/cpuinfo";
const DMI_DIR: &str = "/sys/class/dmi/id";

/// DMI attribute files and the columns they fill.
const DMI_FILES: [(&str, Col); 8] = [
    ("sys_vendor", Col::hardware_vendor),
    ("product_name", Col::hardware_model),
    ("product_version", Col::hardware_version),
    ("product_serial", Col::hardware_serial),
    ("board_vendor", Col::board_vendor),
    ("board_name", Col::board_model),
    ("board_version", Col::board_version),
    ("board_serial", Col::board_serial),
];

/// What `/proc/cpuinfo` tells about the processors.
#[derive(Debug, Default, PartialEq, Eq)]
struct CpuInfo {
    brand: Option<String>,
    /// The `model` number of the first processor.
    subtype: Option<String>,
    microcode: Option<String>,
    /// Distinct (physical id, core id) pairs; `None` when the kernel lists none.
    physical_cores: Option<usize>,
    /// Distinct physical ids; `None` when the kernel lists none.
    sockets: Option<usize>,
}

fn parse_cpuinfo(text: &str) -> CpuInfo {
    let mut info = CpuInfo::default();
    let mut cores = HashSet::new();
    let mut packages = HashSet::new();
    let mut package: Option<&str> = None;
    for line in text.lines() {
        if line.trim().is_empty() {
            // A blank line ends one processor's block.
            package = None;
            continue;
        }
        let Some((key, value)) = line.split_once(':') else {
            continue;
        };
        let (key, value) = (key.trim(), value.trim());
        match key {
            "model name" if info.brand.is_none() => info.brand = Some(value.to_owned()),
            "model" if info.subtype.is_none() => info.subtype = Some(value.to_owned()),
            "microcode" if info.microcode.is_none() => info.microcode = Some(value.to_owned()),
            "physical id" => {
                package = Some(value);
                packages.insert(value);
            }
            "core id" => {
                cores.insert((package, value));
            }
            _ => {}
        }
    }
    info.physical_cores = (!cores.is_empty()).then_some(cores.len());
    info.sockets = (!packages.is_empty()).then_some(packages.len());
    info
}

/// The trimmed content of a DMI attribute; empty when it cannot be read (serials
/// are root-only), never a guess.
fn dmi_value(reader: &mut FileReader, name: &str) -> String {
    match reader.read_parts(&[DMI_DIR.as_bytes(), b"/", name.as_bytes()]) {
        Ok(bytes) => String::from_utf8_lossy(bytes).trim().to_owned(),
        Err(_) => String::new(),
    }
}

fn logical_cores() -> Option<i64> {
    // SAFETY: sysconf has no memory-safety preconditions.
    let n = unsafe { libc::sysconf(libc::_SC_NPROCESSORS_ONLN) };
    (n > 0).then_some(n as i64)
}

fn physical_memory() -> Option<i64> {
    // SAFETY: sysconf has no memory-safety preconditions.
    let (pages, size) = unsafe {
        (
            libc::sysconf(libc::_SC_PHYS_PAGES),
            libc::sysconf(libc::_SC_PAGESIZE),
        )
    };
    (pages > 0 && size > 0).then(|| pages.saturating_mul(size))
}

fn generate(_ctx: &QueryContext, rows: &mut Rows) -> TableResult {
    let mut reader = FileReader::new();
    let cpu = match reader.read(PROC_CPUINFO) {
        Ok(bytes) => parse_cpuinfo(&String::from_utf8_lossy(bytes)),
        Err(e) => {
            log::warn!("system_info: cannot read {PROC_CPUINFO}: {e}");
            CpuInfo::default()
        }
    };
    let mut row = rows.row();
    if row.wants(Col::hostname) || row.wants(Col::local_hostname) {
        // The resolver lookup can be slow; do it only when asked.
        let fqdn = host::fqdn();
        row.set(Col::hostname, fqdn.clone());
        row.set(Col::local_hostname, fqdn);
    }
    row.set_with(Col::computer_name, host::hostname);
    row.set_with(Col::uuid, || host::host_uuid().unwrap_or_default());
    row.set_with(Col::cpu_type, || host::uname().map(|u| u.machine));
    // osquery reports model 0 when the kernel lists none.
    row.set(Col::cpu_subtype, cpu.subtype.unwrap_or_else(|| "0".into()));
    row.set(Col::cpu_brand, cpu.brand);
    row.set(Col::cpu_physical_cores, cpu.physical_cores);
    row.set(Col::cpu_logical_cores, logical_cores());
    row.set(Col::cpu_sockets, cpu.sockets);
    row.set(Col::cpu_microcode, cpu.microcode);
    row.set(Col::physical_memory, physical_memory());
    if std::path::Path::new(DMI_DIR).is_dir() {
        for (file, col) in DMI_FILES {
            if row.wants(col) {
                row.set(col, dmi_value(&mut reader, file));
            }
        }
    } else {
        // No DMI at all (e.g. a microVM): osquery reports an empty model and leaves the
        // other identification columns unset.
        log::debug!("system_info: {DMI_DIR} is absent; no DMI identification");
        row.set(Col::hardware_model, "");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use oxquery_table::{Host, Value};

    #[test]
    fn parses_cpuinfo_topology() {
        let text = "processor\t: 0\nvendor_id\t: GenuineIntel\nmodel\t\t: 85\n\
                    model name\t: Intel(R) Xeon(R) Gold\nmicrocode\t: 0x5003\n\
                    physical id\t: 0\ncore id\t\t: 0\n\n\
                    processor\t: 1\nmodel\t\t: 85\nphysical id\t: 0\ncore id\t\t: 0\n\n\
                    processor\t: 2\nphysical id\t: 1\ncore id\t\t: 0\n\n\
                    processor\t: 3\nphysical id\t: 1\ncore id\t\t: 1\n";
        let info = parse_cpuinfo(text);
        assert_eq!(info.brand.as_deref(), Some("Intel(R) Xeon(R) Gold"));
        assert_eq!(info.subtype.as_deref(), Some("85"));
        assert_eq!(info.microcode.as_deref(), Some("0x5003"));
        assert_eq!(info.physical_cores, Some(3));
        assert_eq!(info.sockets, Some(2));
        // Kernels without topology lines (some arches) report nothing rather than a guess.
        let bare = parse_cpuinfo("processor : 0\nBogoMIPS : 50\n\nprocessor : 1\n");
        assert_eq!(bare, CpuInfo::default());
        assert_eq!(parse_cpuinfo(""), CpuInfo::default());
        assert_eq!(parse_cpuinfo(":::\n\u{0}"), CpuInfo::default());
    }

    fn command(cmd: &str, args: &[&str]) -> String {
        let out = std::process::Command::new(cmd).args(args).output().unwrap();
        String::from_utf8(out.stdout).unwrap().trim().to_owned()
    }

    #[test]
    fn agrees_with_cpuinfo_hostname_meminfo_and_nproc() {
        let host = Host::default();
        let ctx = QueryContext::everything(&SPEC, &host);
        let rows = Rows::collect(&ctx, generate).unwrap();
        assert_eq!(rows.len(), 1);
        let row = rows.get(0).unwrap();
        let cell = |c: Col| row[c as usize].clone();

        assert_eq!(
            cell(Col::computer_name),
            Value::from(command("hostname", &[]))
        );
        // `hostname -f` asks the resolver for the canonical name, as we do; when the
        // resolver knows no name it fails and we keep the plain one.
        let fqdn = command("hostname", &["-f"]);
        let fqdn = if fqdn.is_empty() {
            command("hostname", &[])
        } else {
            fqdn
        };
        assert_eq!(cell(Col::hostname), Value::from(fqdn));
        assert_eq!(cell(Col::local_hostname), cell(Col::hostname));
        assert_eq!(cell(Col::cpu_type), Value::from(command("uname", &["-m"])));

        let online: i64 = command("nproc", &[]).parse().unwrap();
        let all: i64 = command("nproc", &["--all"]).parse().unwrap();
        let Value::Integer(logical) = cell(Col::cpu_logical_cores) else {
            panic!("no logical core count");
        };
        assert_eq!(logical, online);
        assert!(logical <= all);

        let cpuinfo = std::fs::read_to_string(PROC_CPUINFO).unwrap();
        let values = |k: &str| -> Vec<String> {
            cpuinfo
                .lines()
                .filter_map(|l| l.split_once(':'))
                .filter(|(key, _)| key.trim() == k)
                .map(|(_, v)| v.trim().to_owned())
                .collect()
        };
        if let Some(brand) = values("model name").first() {
            assert_eq!(cell(Col::cpu_brand), Value::from(brand.as_str()));
        }
        let pairs: HashSet<(String, String)> = values("physical id")
            .into_iter()
            .zip(values("core id"))
            .collect();
        if !pairs.is_empty() {
            assert_eq!(cell(Col::cpu_physical_cores), Value::from(pairs.len()));
            let Value::Integer(physical) = cell(Col::cpu_physical_cores) else {
                unreachable!()
            };
            assert!(physical <= logical);
        }

        let meminfo = std::fs::read_to_string("/proc/meminfo").unwrap();
        let total_kib: i64 = meminfo
            .lines()
            .find(|l| l.starts_with("MemTotal:"))
            .and_then(|l| l.split_whitespace().nth(1))
            .unwrap()
            .parse()
            .unwrap();
        assert_eq!(cell(Col::physical_memory), Value::Integer(total_kib * 1024));

        assert_eq!(cell(Col::uuid), Value::from(host::host_uuid().unwrap()));
        if let Ok(raw) = std::fs::read(host::PRODUCT_UUID_PATH)
            && let Some(hw) = host::parse_hardware_uuid(&raw)
        {
            assert_eq!(cell(Col::uuid), Value::from(hw));
        }

        if std::path::Path::new(DMI_DIR).is_dir() {
            let vendor = std::fs::read_to_string(format!("{DMI_DIR}/sys_vendor"))
                .map(|s| s.trim().to_owned())
                .unwrap_or_default();
            assert_eq!(cell(Col::hardware_vendor), Value::from(vendor));
        } else {
            assert_eq!(cell(Col::hardware_model), Value::from(""));
            assert_eq!(cell(Col::hardware_vendor), Value::Null);
            assert_eq!(cell(Col::board_serial), Value::Null);
        }
        assert_eq!(cell(Col::emulated_cpu_type), Value::Null);
    }
}
