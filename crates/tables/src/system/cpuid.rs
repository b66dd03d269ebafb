//! `cpuid`: identification and feature bits straight from the CPUID instruction.
//!
//! Rows follow osquery's shape: `vendor`, `product_name`, `hypervisor_id` (only under a
//! hypervisor), `serial`, `family`, one row per named feature bit (leaves 1, 7 and
//! 0x80000001, value `1`/`0`), then the raw SGX leaves `sgx0`/`sgx1`. `input_eax` is the
//! text osquery writes: decimal for feature leaves (`1`, `7`, `2147483649`), hex for the
//! brand and hypervisor leaves. Only x86_64 has the instruction; elsewhere the table is
//! empty.

use oxquery_table::{QueryContext, Rows, TableResult, table};

table! {
    name: "cpuid",
    description: "Vendor, brand, family and feature bits read with the x86 CPUID instruction; empty on other architectures.",
    columns: {
        feature: Text [] "Item name: vendor, product_name, family, serial, a flag such as avx, or sgx0/sgx1",
        value: Text [] "1 or 0 for a flag; text or hex words for the other items",
        output_register: Text [] "Output register, or comma-separated registers, holding the value",
        output_bit: Integer [] "Position of the flag bit; 0 for values spanning whole registers",
        input_eax: Text [] "Leaf passed in EAX: decimal for flag leaves, hex for brand and hypervisor leaves",
    },
    examples: ["select * from cpuid where feature = 'avx'"],
}

/// The four output registers of one CPUID call.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
struct Regs {
    eax: u32,
    ebx: u32,
    ecx: u32,
    edx: u32,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Reg {
    Ebx,
    Ecx,
    Edx,
}

impl Reg {
    fn name(self) -> &'static str {
        match self {
            Reg::Ebx => "ebx",
            Reg::Ecx => "ecx",
            Reg::Edx => "edx",
        }
    }
    fn of(self, r: Regs) -> u32 {
        match self {
            Reg::Ebx => r.ebx,
            Reg::Ecx => r.ecx,
            Reg::Edx => r.edx,
        }
    }
}

/// A named feature bit: name, register, bit.
type Feature = (&'static str, Reg, u8);

/// Named feature bits (names as the Intel SDM and AMD APM use them, in osquery's set
/// and order), grouped by leaf in ascending order.
const FEATURES: [(u32, &[Feature]); 3] = [
    (
        1,
        &[
            ("pae", Reg::Edx, 6),
            ("msr", Reg::Edx, 5),
            ("sep", Reg::Edx, 11),
            ("mtrr", Reg::Edx, 12),
            ("pge", Reg::Edx, 13),
            ("mca", Reg::Edx, 14),
            ("pat", Reg::Edx, 16),
            ("clfsh", Reg::Edx, 19),
            ("acpi", Reg::Edx, 22),
            ("mmz", Reg::Edx, 23),
            ("sse", Reg::Edx, 25),
            ("sse2", Reg::Edx, 26),
            ("ss", Reg::Edx, 27),
            ("htt", Reg::Edx, 28),
            ("ia64", Reg::Edx, 30),
            ("sse3", Reg::Ecx, 0),
            ("vmx", Reg::Ecx, 5),
            ("smx", Reg::Ecx, 6),
            ("ssse3", Reg::Ecx, 9),
            ("sdbg", Reg::Ecx, 11),
            ("pdcm", Reg::Ecx, 15),
            ("pcid", Reg::Ecx, 17),
            ("dca", Reg::Ecx, 18),
            ("sse4.1", Reg::Ecx, 19),
            ("sse4.2", Reg::Ecx, 20),
            ("aes", Reg::Ecx, 25),
            ("avx", Reg::Ecx, 28),
            ("hypervisor", Reg::Ecx, 31),
        ],
    ),
    (
        7,
        &[
            ("sgx", Reg::Ebx, 2),
            ("hle", Reg::Ebx, 4),
            ("avx2", Reg::Ebx, 5),
            ("smep", Reg::Ebx, 7),
            ("bmi2", Reg::Ebx, 8),
            ("erms", Reg::Ebx, 9),
            ("invpcid", Reg::Ebx, 10),
            ("rtm", Reg::Ebx, 11),
            ("pqm", Reg::Ebx, 12),
            ("mpx", Reg::Ebx, 14),
            ("pqe", Reg::Ebx, 15),
            ("avx512f", Reg::Ebx, 16),
            ("avx512dq", Reg::Ebx, 17),
            ("rdseed", Reg::Ebx, 18),
            ("adx", Reg::Ebx, 19),
            ("smap", Reg::Ebx, 20),
            ("intel_pt", Reg::Ebx, 25),
            ("sha", Reg::Ebx, 29),
            ("umip", Reg::Ecx, 2),
            ("pku", Reg::Ecx, 3),
            ("ospke", Reg::Ecx, 4),
            ("gfni", Reg::Ecx, 8),
            ("vaes", Reg::Ecx, 9),
            ("sgx_lc", Reg::Ecx, 30),
            ("spec_ctrl", Reg::Edx, 26),
        ],
    ),
    (
        0x8000_0001,
        &[
            ("lahfsahf", Reg::Ecx, 0),
            ("svm", Reg::Ecx, 2),
            ("3dnowprefetch", Reg::Ecx, 8),
            ("ibs", Reg::Ecx, 10),
            ("skinit", Reg::Ecx, 12),
            ("lwp", Reg::Ecx, 15),
            ("nx", Reg::Edx, 20),
            ("page1gb", Reg::Edx, 26),
            ("lm", Reg::Edx, 29),
        ],
    ),
];

/// A source of CPUID results, so row building can be tested with fixed values.
trait Cpuid {
    fn query(&self, leaf: u32, subleaf: u32) -> Regs;
}

#[cfg(target_arch = "x86_64")]
struct Hardware;

#[cfg(target_arch = "x86_64")]
impl Cpuid for Hardware {
    fn query(&self, leaf: u32, subleaf: u32) -> Regs {
        // Every x86_64 CPU implements CPUID; out-of-range leaves are filtered by
        // `Leaves::get` before they reach here.
        let r = core::arch::x86_64::__cpuid_count(leaf, subleaf);
        Regs {
            eax: r.eax,
            ebx: r.ebx,
            ecx: r.ecx,
            edx: r.edx,
        }
    }
}

/// Wraps a source and answers zeros for leaves beyond the CPU's maximum: for such
/// leaves CPUID returns another leaf's data, which would report features falsely.
struct Leaves<'a> {
    cpu: &'a dyn Cpuid,
    max_basic: u32,
    max_extended: u32,
}

impl<'a> Leaves<'a> {
    fn new(cpu: &'a dyn Cpuid) -> Self {
        let max_basic = cpu.query(0, 0).eax;
        let max_extended = cpu.query(0x8000_0000, 0).eax;
        Leaves {
            cpu,
            max_basic,
            max_extended,
        }
    }
    fn get(&self, leaf: u32, subleaf: u32) -> Regs {
        let supported = if leaf >= 0x8000_0000 {
            self.max_extended >= 0x8000_0000 && leaf <= self.max_extended
        } else if leaf >= 0x4000_0000 {
            // Hypervisor leaves exist only when leaf 1 says a hypervisor is present.
            self.get(1, 0).ecx & (1 << 31) != 0
        } else {
            leaf <= self.max_basic
        };
        if supported {
            self.cpu.query(leaf, subleaf)
        } else {
            Regs::default()
        }
    }
}

/// Register bytes in the order the CPU stores characters in them (little-endian).
fn ascii(regs: &[u32]) -> String {
    let bytes: Vec<u8> = regs.iter().flat_map(|r| r.to_le_bytes()).collect();
    // The brand string is NUL-padded to 48 bytes; the padding is not part of it.
    let end = bytes.iter().position(|b| *b == 0).unwrap_or(bytes.len());
    String::from_utf8_lossy(&bytes[..end]).into_owned()
}

fn hex_words(regs: &[u32]) -> String {
    regs.iter().map(|r| format!("{r:08x}")).collect()
}

/// One output row.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Item {
    feature: String,
    value: String,
    output_register: &'static str,
    output_bit: u8,
    input_eax: String,
}

fn item(
    feature: &str,
    value: String,
    output_register: &'static str,
    output_bit: u8,
    input_eax: &str,
) -> Item {
    Item {
        feature: feature.to_owned(),
        value,
        output_register,
        output_bit,
        input_eax: input_eax.to_owned(),
    }
}

/// All rows for one CPU, or none when CPUID reports no leaf beyond 0.
fn items(cpu: &dyn Cpuid) -> Vec<Item> {
    let leaves = Leaves::new(cpu);
    if leaves.max_basic < 1 {
        return Vec::new();
    }
    let mut out = Vec::new();
    let l0 = leaves.get(0, 0);
    out.push(item(
        "vendor",
        ascii(&[l0.ebx, l0.edx, l0.ecx]),
        "ebx,edx,ecx",
        0,
        "0",
    ));

    let brand: Vec<u32> = (0..3)
        .flat_map(|i| {
            let r = leaves.get(0x8000_0002 + i, 0);
            [r.eax, r.ebx, r.ecx, r.edx]
        })
        .collect();
    out.push(item(
        "product_name",
        ascii(&brand),
        "eax,ebx,ecx,edx",
        0,
        "0x80000002",
    ));

    let hv = leaves.get(0x4000_0000, 0);
    if hv.eax != 0 {
        // osquery prints the leaf's first three registers as hex words under the label
        // it uses for the signature registers; kept for compatibility.
        out.push(item(
            "hypervisor_id",
            hex_words(&[hv.eax, hv.ebx, hv.ecx]),
            "ebx,ecx,edx",
            0,
            "0x40000000",
        ));
    }

    let l1 = leaves.get(1, 0);
    let l3 = leaves.get(3, 0);
    out.push(item(
        "serial",
        hex_words(&[l1.eax, l3.eax, l3.edx]),
        "eax,eax,ecx",
        0,
        "1,3",
    ));
    // Base family field (bits 8-11) kept in place, printed as 4 hex digits (`0600`).
    out.push(item(
        "family",
        format!("{:04x}", l1.eax & 0xf00),
        "eax",
        0,
        "1",
    ));

    for (leaf, features) in FEATURES {
        let regs = leaves.get(leaf, 0);
        let leaf_text = leaf.to_string();
        for &(name, reg, bit) in features {
            let set = reg.of(regs) & (1u32 << bit) != 0;
            out.push(item(
                name,
                if set { "1" } else { "0" }.to_owned(),
                reg.name(),
                bit,
                &leaf_text,
            ));
        }
    }

    for (subleaf, name, input) in [(0, "sgx0", "18"), (1, "sgx1", "18,1")] {
        let r = leaves.get(0x12, subleaf);
        out.push(item(
            name,
            hex_words(&[r.eax, r.ebx, r.ecx, r.edx]),
            "eax,ebx,ecx,edx",
            0,
            input,
        ));
    }
    out
}

fn generate(_ctx: &QueryContext, rows: &mut Rows) -> TableResult {
    #[cfg(target_arch = "x86_64")]
    let found = items(&Hardware);
    #[cfg(not(target_arch = "x86_64"))]
    let found: Vec<Item> = {
        log::warn!("cpuid: the CPUID instruction exists only on x86_64");
        Vec::new()
    };
    for it in found {
        let mut row = rows.row();
        row.set(Col::feature, it.feature);
        row.set(Col::value, it.value);
        row.set(Col::output_register, it.output_register);
        row.set(Col::output_bit, it.output_bit);
        row.set(Col::input_eax, it.input_eax);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A CPU with fixed answers: max basic leaf 1, extended leaves up to 0x80000004.
    struct Fake;
    impl Cpuid for Fake {
        fn query(&self, leaf: u32, _subleaf: u32) -> Regs {
            let w = |s: &[u8; 4]| u32::from_le_bytes(*s);
            match leaf {
                0 => Regs {
                    eax: 1,
                    ebx: w(b"Genu"),
                    edx: w(b"ineI"),
                    ecx: w(b"ntel"),
                },
                1 => Regs {
                    eax: 0x000906ea,
                    ebx: 0,
                    ecx: 1 << 28,
                    edx: 1 << 25,
                },
                0x8000_0000 => Regs {
                    eax: 0x8000_0004,
                    ..Regs::default()
                },
                0x8000_0002 => Regs {
                    eax: w(b"Fake"),
                    ebx: w(b" CPU"),
                    ..Regs::default()
                },
                // Out-of-range leaves echo leaf 1, as Intel CPUs do.
                _ => self.query(1, 0),
            }
        }
    }

    #[test]
    fn builds_rows_from_fixed_registers() {
        let got = items(&Fake);
        let find = |f: &str| got.iter().find(|i| i.feature == f).unwrap();
        assert_eq!(find("vendor").value, "GenuineIntel");
        assert_eq!(find("product_name").value, "Fake CPU");
        assert_eq!(find("family").value, "0600");
        assert_eq!(find("avx").value, "1");
        assert_eq!(find("avx").input_eax, "1");
        assert_eq!(find("avx").output_register, "ecx");
        assert_eq!(find("avx").output_bit, 28);
        assert_eq!(find("sse").value, "1");
        assert_eq!(find("sse2").value, "0");
        // Leaf 7 is beyond the maximum: its bits must not be read from leaf 1's echo.
        assert_eq!(find("avx2").value, "0");
        assert_eq!(find("lm").input_eax, "2147483649");
        assert_eq!(find("sgx0").value, "0".repeat(32));
        assert!(got.iter().all(|i| i.feature != "hypervisor_id"));
        // vendor, product_name, serial, family; the feature bits; sgx0 and sgx1.
        assert_eq!(got.len(), 4 + 28 + 25 + 9 + 2);
    }

    #[cfg(target_arch = "x86_64")]
    #[test]
    fn agrees_with_proc_cpuinfo() {
        use oxquery_table::{Host, Value};
        let host = Host::default();
        let ctx = QueryContext::everything(&SPEC, &host);
        let rows = Rows::collect(&ctx, generate).unwrap();
        let value = |f: &str| {
            rows.iter()
                .find(|r| r[Col::feature as usize] == Value::from(f))
                .map(|r| r[Col::value as usize].to_string())
        };
        let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap();
        let field = |k: &str| {
            cpuinfo
                .lines()
                .find(|l| l.split(':').next().map(str::trim) == Some(k))
                .map(|l| l.split_once(':').unwrap().1.trim().to_owned())
                .unwrap()
        };
        assert_eq!(value("vendor").unwrap(), field("vendor_id"));
        let flags: Vec<String> = field("flags")
            .split_whitespace()
            .map(str::to_owned)
            .collect();
        // Our name -> the kernel's name for the same bit. The kernel may hide bits it
        // disables (e.g. on a guest), so only flags the kernel shows are required to be 1,
        // and bits that CPUID clears must be absent from the kernel's list.
        let pairs = [
            ("sse", "sse"),
            ("sse2", "sse2"),
            ("sse3", "pni"),
            ("ssse3", "ssse3"),
            ("sse4.1", "sse4_1"),
            ("sse4.2", "sse4_2"),
            ("aes", "aes"),
            ("avx", "avx"),
            ("avx2", "avx2"),
            ("pae", "pae"),
            ("msr", "msr"),
            ("pat", "pat"),
            ("bmi2", "bmi2"),
            ("adx", "adx"),
            ("smap", "smap"),
            ("smep", "smep"),
            ("sha", "sha_ni"),
            ("avx512f", "avx512f"),
            ("lm", "lm"),
            ("nx", "nx"),
            ("page1gb", "pdpe1gb"),
            ("hypervisor", "hypervisor"),
        ];
        let mut compared = 0;
        for (ours, kernel) in pairs {
            let v = value(ours).unwrap();
            if flags.iter().any(|f| f == kernel) {
                assert_eq!(v, "1", "{ours}: /proc/cpuinfo lists {kernel}");
                compared += 1;
            } else if v == "0" {
                compared += 1;
            }
        }
        assert!(compared >= pairs.len() / 2);
        // Every x86_64 CPU has SSE2 and long mode.
        assert_eq!(value("sse2").unwrap(), "1");
        assert_eq!(value("lm").unwrap(), "1");
        let brand = value("product_name").unwrap();
        assert_eq!(brand.trim(), field("model name"));
    }
}
