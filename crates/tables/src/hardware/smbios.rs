//! What the SMBIOS tables share (not a table): loading the firmware's tables with the
//! verbose-level log when there are none, the text forms osquery gives handles and
//! addresses, and, for tests, a machine's worth of structures and dmidecode's reading
//! of them.

use oxquery_sys::smbios::{Smbios, Structure};
use oxquery_table::{QueryContext, Rows, TableResult, TableSpec};
use std::path::Path;

pub use oxquery_sys::smbios::SYSFS_DMI_DIR;

/// The tables in `dir`, or `None` with a log saying why (`table` names the asker).
pub fn load(table: &str, dir: &Path) -> Option<Smbios> {
    match Smbios::read(dir) {
        Ok(smbios) => Some(smbios),
        Err(e) if e.is_absent() => {
            log::info!(
                "{table}: no SMBIOS tables on this host ({e}): the firmware exports no \
                 SMBIOS/DMI (many virtual machines and non-x86 boards)"
            );
            None
        }
        Err(e) => {
            log::info!(
                "{table}: SMBIOS tables not read: {e} (the DMI table is readable by root only)"
            );
            None
        }
    }
}

/// A table's generator over the tables in a directory (tests give it fixtures).
pub type GenerateAt = fn(&Path, &QueryContext, &mut Rows);

/// A table's generator run over the firmware's own tables ([`SYSFS_DMI_DIR`]).
pub fn generate_from_firmware(
    generate_at: GenerateAt,
    ctx: &QueryContext,
    rows: &mut Rows,
) -> TableResult {
    generate_at(Path::new(SYSFS_DMI_DIR), ctx, rows);
    Ok(())
}

/// Calls `each` with every structure of the tables in `dir`, in table order; no calls
/// (and `load`'s log, naming `table`) when there are none.
pub fn for_each_structure(table: &TableSpec, dir: &Path, mut each: impl FnMut(&Structure<'_>)) {
    let Some(tables) = load(table.name.as_ref(), dir) else {
        return;
    };
    for s in tables.structures() {
        each(&s);
    }
}

/// [`for_each_structure`] for the structures of type `kind` only.
pub fn for_each_structure_of(
    table: &TableSpec,
    dir: &Path,
    kind: u8,
    mut each: impl FnMut(&Structure<'_>),
) {
    for_each_structure(table, dir, |s| {
        if s.kind == kind {
            each(s);
        }
    });
}

/// A handle as osquery writes it: `0x` and four lowercase hex digits.
pub fn handle(h: u16) -> String {
    hex(u64::from(h), 4)
}

/// `0x` and at least `width` lowercase hex digits.
pub fn hex(value: u64, width: usize) -> String {
    format!("0x{value:0width$x}")
}

/// The name of `code` in a `(code, name)` list.
pub fn name(names: &[(u8, &'static str)], code: u8) -> Option<&'static str> {
    names.iter().find(|(c, _)| *c == code).map(|(_, n)| *n)
}

/// A mapped address range in kilobytes (types 19 and 20): the 32-bit KB fields at
/// `start_at` and `start_at + 4`, or, when the start is 0xFFFFFFFF, the 64-bit byte
/// fields at `extended_at` and `extended_at + 8` divided by 1024.
pub fn range_kb(s: &Structure, start_at: usize, extended_at: usize) -> Option<(u64, u64)> {
    match s.dword(start_at)? {
        0xFFFF_FFFF => Some((s.qword(extended_at)? >> 10, s.qword(extended_at + 8)? >> 10)),
        start => Some((u64::from(start), u64::from(s.dword(start_at + 4)?))),
    }
}

#[cfg(test)]
pub mod testing {
    //! A sample machine's SMBIOS tables, written as sysfs exports them and as
    //! `dmidecode --dump-bin` does, and dmidecode's decoding of the dump.

    use oxquery_sys::smbios::testing::{entry_point_2, entry_point_3, structure, write_sysfs};
    use oxquery_table::{Host, QueryContext, Rows, Value};
    use std::path::{Path, PathBuf};

    /// A formatted area of `len` bytes (header included) filled in at absolute offsets.
    pub struct Body(Vec<u8>);

    impl Body {
        pub fn new(len: usize) -> Body {
            Body(vec![0; len])
        }
        pub fn b(mut self, at: usize, v: u8) -> Body {
            self.0[at] = v;
            self
        }
        pub fn w(mut self, at: usize, v: u16) -> Body {
            self.0[at..at + 2].copy_from_slice(&v.to_le_bytes());
            self
        }
        pub fn d(mut self, at: usize, v: u32) -> Body {
            self.0[at..at + 4].copy_from_slice(&v.to_le_bytes());
            self
        }
        pub fn q(mut self, at: usize, v: u64) -> Body {
            self.0[at..at + 8].copy_from_slice(&v.to_le_bytes());
            self
        }
        /// The structure of type `kind` with this area and `strings`.
        pub fn build(self, kind: u8, handle: u16, strings: &[&str]) -> Vec<u8> {
            structure(kind, handle, &self.0[4..], strings)
        }
    }

    /// A two-socket server: BIOS, processors, OEM strings, two memory arrays, three
    /// memory devices (2.8, 3.3 and 2.3 layouts), an error record, array and device
    /// mappings (32-bit and extended), End-of-Table.
    pub fn sample_machine() -> Vec<Vec<u8>> {
        vec![
            Body::new(0x18)
                .b(0x04, 1)
                .b(0x05, 2)
                .w(0x06, 0xE800)
                .b(0x08, 3)
                .b(0x09, 0xFF)
                .build(
                    0,
                    0x0000,
                    &["Example Firmware Inc.", "2.14.1", "03/04/2026"],
                ),
            // Processor 1: SMBIOS 3.0 layout, counts in the byte fields.
            Body::new(0x30)
                .b(0x04, 1)
                .b(0x05, 3)
                .b(0x06, 0xB3)
                .b(0x07, 2)
                .b(0x10, 3)
                .w(0x12, 100)
                .w(0x14, 3800)
                .w(0x16, 2400)
                .b(0x18, 0x41)
                .w(0x1A, 0xFFFF)
                .w(0x1C, 0xFFFF)
                .w(0x1E, 0xFFFF)
                .b(0x23, 16)
                .b(0x24, 16)
                .b(0x25, 32)
                .w(0x26, 0x00FC)
                .w(0x28, 0xB3)
                .w(0x2A, 16)
                .w(0x2C, 16)
                .w(0x2E, 32)
                .build(
                    4,
                    0x004A,
                    &["CPU0", "Intel(R) Corporation", "Xeon(R) Gold 6338  "],
                ),
            // Processor 2: more than 255 cores and threads, only in the word fields.
            Body::new(0x30)
                .b(0x04, 1)
                .b(0x05, 3)
                .b(0x06, 0x01)
                .b(0x07, 2)
                .b(0x10, 3)
                .w(0x14, 4000)
                .w(0x16, 2000)
                .b(0x18, 0x41)
                .w(0x1A, 0xFFFF)
                .w(0x1C, 0xFFFF)
                .w(0x1E, 0xFFFF)
                .b(0x23, 0xFF)
                .b(0x24, 0xFF)
                .b(0x25, 0xFF)
                .w(0x26, 0x0004)
                .w(0x2A, 300)
                .w(0x2C, 300)
                .w(0x2E, 600)
                .build(4, 0x004B, &["CPU1", "AMD", "EPYC Many-Core"]),
            Body::new(0x05).b(0x04, 3).build(
                11,
                0x000B,
                &["Dell System", "5[0000]", "padded value   "],
            ),
            // Array 1: 512 GB in the 32-bit KB field.
            Body::new(0x17)
                .b(0x04, 0x03)
                .b(0x05, 0x03)
                .b(0x06, 0x06)
                .d(0x07, 512 * 1024 * 1024)
                .w(0x0B, 0x180E)
                .w(0x0D, 3)
                .build(16, 0x100A, &[]),
            // Array 2: 8 TiB, only in the extended (bytes) field.
            Body::new(0x17)
                .b(0x04, 0x03)
                .b(0x05, 0x03)
                .b(0x06, 0x03)
                .d(0x07, 0x8000_0000)
                .w(0x0B, 0xFFFE)
                .w(0x0D, 0)
                .q(0x0F, 8 << 40)
                .build(16, 0x100B, &[]),
            // Device 1: SMBIOS 2.8 layout, 16 GB DDR4 RDIMM.
            Body::new(0x28)
                .w(0x04, 0x100A)
                .w(0x06, 0xFFFE)
                .w(0x08, 72)
                .w(0x0A, 64)
                .w(0x0C, 16 * 1024)
                .b(0x0E, 0x09)
                .b(0x0F, 0)
                .b(0x10, 1)
                .b(0x11, 2)
                .b(0x12, 0x1A)
                .w(0x13, (1 << 7) | (1 << 13))
                .w(0x15, 2666)
                .b(0x17, 3)
                .b(0x18, 4)
                .b(0x19, 5)
                .b(0x1A, 6)
                .b(0x1B, 2)
                .w(0x20, 2400)
                .w(0x22, 1200)
                .w(0x24, 1200)
                .w(0x26, 1200)
                .build(
                    17,
                    0x110A,
                    &[
                        "DIMM_A1",
                        "NODE 1",
                        "Samsung",
                        "0x1234ABCD",
                        "A1_AssetTag",
                        "M393A2K43BB1-CTD  ",
                    ],
                ),
            // Device 2: SMBIOS 3.3 layout, 64 GB DDR5 SODIMM, size and speeds in the
            // extended fields.
            Body::new(0x5C)
                .w(0x04, 0x100A)
                .w(0x06, 0xFFFE)
                .w(0x08, 64)
                .w(0x0A, 64)
                .w(0x0C, 0x7FFF)
                .b(0x0E, 0x0D)
                .b(0x0F, 0xFF)
                .b(0x10, 1)
                .b(0x11, 2)
                .b(0x12, 0x22)
                .w(0x13, 1 << 7)
                .w(0x15, 0xFFFF)
                .b(0x17, 3)
                .d(0x1C, 64 * 1024)
                .w(0x20, 0xFFFF)
                .b(0x28, 0x03)
                .d(0x54, 8000)
                .d(0x58, 6400)
                .build(17, 0x110B, &["DIMM_B1", "NODE 2", "Micron"]),
            // Device 3: SMBIOS 2.3 layout, 2048 KB (size in KB units), no strings.
            Body::new(0x1B)
                .w(0x04, 0x100A)
                .w(0x06, 0xFFFE)
                .w(0x08, 0xFFFF)
                .w(0x0A, 0xFFFF)
                .w(0x0C, 0x8000 | 2048)
                .b(0x0E, 0x05)
                .b(0x0F, 1)
                .b(0x12, 0x02)
                .w(0x13, 1 << 2)
                .build(17, 0x110C, &[]),
            Body::new(0x17)
                .b(0x04, 0x0C)
                .b(0x05, 0x03)
                .b(0x06, 0x03)
                .d(0x07, 0xDEAD_BEEF)
                .d(0x0B, 0x8000_0000)
                .d(0x0F, 0x0012_3450)
                .d(0x13, 0x8000_0000)
                .build(18, 0x180E, &[]),
            Body::new(0x1F)
                .d(0x04, 0)
                .d(0x08, 0x04FF_FFFF)
                .w(0x0C, 0x100A)
                .b(0x0E, 3)
                .build(19, 0x130A, &[]),
            Body::new(0x1F)
                .d(0x04, 0xFFFF_FFFF)
                .d(0x08, 0xFFFF_FFFF)
                .w(0x0C, 0x100B)
                .b(0x0E, 1)
                .q(0x0F, 0x100_0000_0000)
                .q(0x17, 0x8FF_FFFF_FFFF)
                .build(19, 0x130B, &[]),
            Body::new(0x23)
                .d(0x04, 0)
                .d(0x08, 0x00FF_FFFF)
                .w(0x0C, 0x110A)
                .w(0x0E, 0x130A)
                .b(0x10, 1)
                .b(0x11, 1)
                .b(0x12, 2)
                .build(20, 0x140A, &[]),
            Body::new(0x23)
                .d(0x04, 0xFFFF_FFFF)
                .d(0x08, 0xFFFF_FFFF)
                .w(0x0C, 0x110B)
                .w(0x0E, 0x130B)
                .b(0x10, 0xFF)
                .b(0x11, 2)
                .b(0x12, 1)
                .q(0x13, 0x100_0000_0000)
                .q(0x1B, 0x10F_FFFF_FFFF)
                .build(20, 0x140B, &[]),
            Body::new(0x04).build(127, 0xFEFF, &[]),
        ]
    }

    /// SMBIOS tables in a temporary directory: `sys/` as the kernel exports them and
    /// `dump.bin` as `dmidecode --dump-bin` writes them (entry point at 0, table at 32).
    pub struct Fixture {
        dir: tempfile::TempDir,
        pub table: Vec<u8>,
    }

    /// Writes `structures` behind a 3.x (`version3`) or 2.x entry point.
    pub fn fixture(structures: &[Vec<u8>], version3: bool) -> Fixture {
        let table = structures.concat();
        let ep = if version3 {
            entry_point_3(&table, 32)
        } else {
            entry_point_2(&table, structures.len() as u16, 32)
        };
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir(dir.path().join("sys")).unwrap();
        write_sysfs(&dir.path().join("sys"), &ep, &table);
        let mut dump = ep;
        dump.resize(32, 0);
        dump.extend_from_slice(&table);
        std::fs::write(dir.path().join("dump.bin"), dump).unwrap();
        Fixture { dir, table }
    }

    impl Fixture {
        /// The directory standing in for `/sys/firmware/dmi/tables`.
        pub fn sysfs(&self) -> PathBuf {
            self.dir.path().join("sys")
        }
        pub fn dump(&self) -> PathBuf {
            self.dir.path().join("dump.bin")
        }
    }

    /// Every row of a table whose generator reads the tables in `dir`.
    pub fn rows_from(
        spec: &oxquery_table::TableSpec,
        dir: &Path,
        generate_at: super::GenerateAt,
    ) -> Vec<Vec<Value>> {
        let host = Host::default();
        let ctx = QueryContext::everything(spec, &host);
        let mut rows = Rows::for_context(&ctx);
        generate_at(dir, &ctx, &mut rows);
        rows.iter().map(<[Value]>::to_vec).collect()
    }

    /// One structure as dmidecode prints it.
    #[derive(Debug)]
    pub struct Record {
        pub handle: u16,
        pub kind: u8,
        /// The formatted area's length ("N bytes").
        pub length: usize,
        /// `Key: value` lines; a list under a key (Characteristics) is joined with `|`.
        pub fields: Vec<(String, String)>,
    }

    impl Record {
        pub fn get(&self, key: &str) -> Option<&str> {
            self.fields
                .iter()
                .find(|(k, _)| k == key)
                .map(|(_, v)| v.as_str())
        }
    }

    /// `dmidecode --from-dump` of the fixture, parsed; `None` when the test skips (no
    /// dmidecode outside CI).
    pub fn dmidecode(f: &Fixture) -> Option<Vec<Record>> {
        let dump = f.dump();
        dmidecode_with(&["--from-dump", dump.to_str().unwrap()])
    }

    /// The records of type `kind` in `dmidecode --from-dump` of the fixture, in table
    /// order; `None` when the test skips (no dmidecode outside CI).
    pub fn dmidecode_of(f: &Fixture, kind: u8) -> Option<Vec<Record>> {
        let mut records = dmidecode(f)?;
        records.retain(|r| r.kind == kind);
        Some(records)
    }

    /// `dmidecode args`, parsed; `None` when the test skips (no dmidecode outside CI).
    pub fn dmidecode_with(args: &[&str]) -> Option<Vec<Record>> {
        let tool = oxquery_test_support::require_tool("dmidecode")?;
        let out = crate::testing::tool_stdout(tool.to_str().unwrap(), args);
        let mut records: Vec<Record> = Vec::new();
        for line in out.lines() {
            if let Some(rest) = line.strip_prefix("Handle 0x") {
                // "Handle 0x0011, DMI type 17, 40 bytes"
                let parts: Vec<&str> = rest.split(", ").collect();
                records.push(Record {
                    handle: u16::from_str_radix(parts[0], 16).unwrap(),
                    kind: parts[1].trim_start_matches("DMI type ").parse().unwrap(),
                    length: parts[2].trim_end_matches(" bytes").parse().unwrap(),
                    fields: Vec::new(),
                });
            } else if let Some(item) = line.strip_prefix("\t\t") {
                if let Some((_, v)) = records.last_mut().and_then(|r| r.fields.last_mut()) {
                    if !v.is_empty() {
                        v.push('|');
                    }
                    v.push_str(item);
                }
            } else if let (Some(r), Some((k, v))) = (
                records.last_mut(),
                line.strip_prefix('\t').and_then(|f| f.split_once(':')),
            ) {
                r.fields.push((k.to_owned(), v.trim().to_owned()));
            }
        }
        Some(records)
    }

    /// A hex number as dmidecode or osquery prints it (`0x` and digits of any case).
    /// dmidecode 3.4 ends the extended (64-bit, in bytes) mapped addresses with a
    /// stray `k` although they are byte addresses (its "Range Size" agrees), so a
    /// trailing `k` is dropped.
    pub fn hex_value(text: &str) -> u64 {
        let digits = text.trim_start_matches("0x");
        u64::from_str_radix(digits.strip_suffix('k').unwrap_or(digits), 16)
            .unwrap_or_else(|e| panic!("{text}: {e}"))
    }

    /// A dmidecode size ("16 GB", "2 MB", "512 kB") in MB.
    pub fn dmidecode_size_mb(text: &str) -> i64 {
        let (n, unit) = text.split_once(' ').unwrap();
        let n: i64 = n.parse().unwrap();
        match unit {
            "kB" => n / 1024,
            "MB" => n,
            "GB" => n << 10,
            "TB" => n << 20,
            u => panic!("unit {u}"),
        }
    }

    /// The cell `col` of `row`, as dmidecode would print a text field (NULL is absent).
    pub fn cell_text(row: &[Value], col: usize) -> Option<String> {
        match &row[col] {
            Value::Null => None,
            Value::Text(t) => Some(t.clone()),
            Value::Integer(i) => Some(i.to_string()),
            v => panic!("{v:?}"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::testing::*;
    use super::*;
    use oxquery_table::TableSpec;

    /// Every SMBIOS table with its generator over a tables directory.
    const TABLES: [(&TableSpec, GenerateAt); 7] = [
        (
            &super::super::smbios_tables::SPEC,
            super::super::smbios_tables::generate_at,
        ),
        (
            &super::super::oem_strings::SPEC,
            super::super::oem_strings::generate_at,
        ),
        (
            &super::super::memory_devices::SPEC,
            super::super::memory_devices::generate_at,
        ),
        (
            &super::super::memory_arrays::SPEC,
            super::super::memory_arrays::generate_at,
        ),
        (
            &super::super::memory_array_mapped_addresses::SPEC,
            super::super::memory_array_mapped_addresses::generate_at,
        ),
        (
            &super::super::memory_device_mapped_addresses::SPEC,
            super::super::memory_device_mapped_addresses::generate_at,
        ),
        (
            &super::super::memory_error_info::SPEC,
            super::super::memory_error_info::generate_at,
        ),
    ];

    #[test]
    fn every_table_survives_random_truncations_and_byte_flips() {
        let seed = oxquery_test_support::seed("SMBIOS_FUZZ_SEED");
        let mut state = seed | 1;
        let mut next = move || {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state
        };
        let f = fixture(&sample_machine(), true);
        for round in 0..300 {
            let mut table = f.table.clone();
            table.truncate((next() as usize) % (table.len() + 1));
            for _ in 0..(round % 16) {
                if let Some(len) = std::num::NonZeroUsize::new(table.len()) {
                    let at = (next() as usize) % len.get();
                    table[at] = next() as u8;
                }
            }
            std::fs::write(f.sysfs().join("DMI"), &table).unwrap();
            let counts: Vec<usize> = TABLES
                .iter()
                .map(|(spec, generate_at)| rows_from(spec, &f.sysfs(), *generate_at).len())
                .collect();
            // A structure takes at least 6 bytes (header and two NULs); each gives at
            // most one row, or 255 OEM strings.
            let structures = counts[0];
            assert!(
                structures <= table.len() / 6,
                "{structures} of {} bytes",
                table.len()
            );
            assert!(counts[1] <= 255 * structures);
            assert!(counts[2..].iter().all(|n| *n <= structures), "{counts:?}");
        }
    }

    #[test]
    fn live_tables_agree_with_dmidecode_where_the_host_has_smbios() {
        let dir = Path::new(SYSFS_DMI_DIR);
        let rows = rows_from(
            &super::super::smbios_tables::SPEC,
            dir,
            super::super::smbios_tables::generate_at,
        );
        let Ok(smbios) = Smbios::read(dir) else {
            // No DMI (this project's dev VM) or not root: no rows.
            assert!(rows.is_empty());
            return;
        };
        let Some(records) = dmidecode_with(&[]) else {
            return;
        };
        let ours: Vec<(u16, u8)> = smbios.structures().map(|s| (s.handle, s.kind)).collect();
        let theirs: Vec<(u16, u8)> = records.iter().map(|r| (r.handle, r.kind)).collect();
        assert_eq!(ours, theirs);
        assert_eq!(rows.len(), ours.len());
    }
}
