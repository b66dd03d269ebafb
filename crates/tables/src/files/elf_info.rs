//! `elf_info`: the ELF file header of each file a `path` constraint names.
//!
//! Only the first 64 bytes of a file are read. Names follow libelfin, which osquery 3.3.2
//! used: class `32`/`64`, OS ABI `sysv`/`hpux`/`standalone`, type `none`/`rel`/`exec`/
//! `dyn`/`core`; any other value shows as `(elfosabi)0x..` or `(et)0x..` in hex.

use oxquery_sys::elf;
use oxquery_sys::pattern::Select;
use oxquery_table::{QueryContext, Rows, TableResult, table};
use std::path::Path;

table! {
    name: "elf_info",
    description: "The ELF header of each executable, library or object file named by path.",
    columns: {
        class: Text [] "Word size of the file: 32 or 64",
        abi: Text [] "Operating-system ABI byte of the identification (sysv, hpux, standalone, or (elfosabi)0xNN)",
        abi_version: Integer [] "ABI version byte of the identification",
        r#type: Text [] "Object file kind: none, rel, exec, dyn, core, or (et)0xNN",
        machine: Integer [] "Target architecture number (e_machine), e.g. 62 for x86-64",
        version: Integer [] "Object file format version (e_version)",
        entry: BigInt [] "Virtual address control is first transferred to",
        flags: Integer [] "Processor-specific header flags (e_flags)",
        path: Text [INDEX | REQUIRED] "File to read; LIKE patterns expand",
    },
    examples: ["select * from elf_info where path = '/bin/ls'"],
}

/// libelfin's name for an OS ABI byte.
fn abi_name(abi: u8) -> String {
    match abi {
        0 => "sysv".into(),
        1 => "hpux".into(),
        255 => "standalone".into(),
        n => format!("(elfosabi)0x{n:x}"),
    }
}

/// libelfin's name for an object file type.
fn type_name(t: u16) -> String {
    match t {
        0 => "none".into(),
        1 => "rel".into(),
        2 => "exec".into(),
        3 => "dyn".into(),
        4 => "core".into(),
        n => format!("(et)0x{n:x}"),
    }
}

fn generate(ctx: &QueryContext, rows: &mut Rows) -> TableResult {
    let paths = crate::common::constrained_paths(ctx, Col::path, Select::All);
    let policy = crate::common::user_file_policy(ctx);
    for path in &paths {
        let header = match elf::read_header(Path::new(path), &policy) {
            Ok(Some(Ok(h))) => h,
            Ok(None) => continue,
            Ok(Some(Err(e))) => {
                log::debug!("elf_info: {}: {e}", path.to_string_lossy());
                continue;
            }
            Err(e) => {
                crate::common::report_read_error(ctx, Path::new(path), &e);
                continue;
            }
        };
        let ident = header.e_ident;
        let mut row = rows.row();
        row.set(Col::path, Path::new(path));
        row.set(Col::class, if ident[4] == 2 { "64" } else { "32" });
        row.set(Col::abi, abi_name(ident[7]));
        row.set(Col::abi_version, i64::from(ident[8]));
        row.set(Col::r#type, type_name(header.e_type));
        row.set(Col::machine, i64::from(header.e_machine));
        row.set(Col::version, i64::from(header.e_version));
        row.set(Col::entry, header.e_entry as i64);
        row.set(Col::flags, i64::from(header.e_flags));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use oxquery_table::Op;

    use crate::testing::rows_of;
    use oxquery_table::{Host, Value};
    use std::collections::HashMap;

    /// `readelf -h --wide` as a map from field name to value text.
    fn readelf_header(path: &str) -> HashMap<String, String> {
        crate::testing::readelf("-h", path)
            .lines()
            .filter_map(|l| l.split_once(':'))
            .map(|(k, v)| (k.trim().to_owned(), v.trim().to_owned()))
            .collect()
    }

    fn hex(v: &str) -> i64 {
        i64::from_str_radix(v.trim_start_matches("0x"), 16).unwrap()
    }

    #[test]
    fn header_matches_readelf() {
        let host = Host::default();
        for path in ["/bin/ls", "/bin/sh"] {
            let real = std::fs::canonicalize(path).unwrap();
            let real = real.to_str().unwrap();
            let want = readelf_header(real);
            let rows = rows_of(
                &QueryContext::everything(&SPEC, &host).with_constraint(Col::path, Op::Eq, real),
                generate,
            );
            assert_eq!(rows.len(), 1, "{real}");
            let r = &rows[0];
            let class = if want["Class"] == "ELF64" { "64" } else { "32" };
            assert_eq!(r[Col::class as usize], Value::Text(class.into()));
            let abi = if want["OS/ABI"] == "UNIX - System V" {
                "sysv"
            } else {
                "other"
            };
            assert_eq!(r[Col::abi as usize], Value::Text(abi.into()));
            assert_eq!(
                r[Col::abi_version as usize],
                Value::Integer(want["ABI Version"].parse().unwrap())
            );
            let kind = want["Type"]
                .split_whitespace()
                .next()
                .unwrap()
                .to_lowercase();
            assert_eq!(r[Col::r#type as usize], Value::Text(kind));
            assert_eq!(
                r[Col::version as usize],
                Value::Integer(hex(&want["Version"]))
            );
            assert_eq!(
                r[Col::entry as usize],
                Value::Integer(hex(&want["Entry point address"]))
            );
            assert_eq!(r[Col::flags as usize], Value::Integer(hex(&want["Flags"])));
            if want["Machine"] == "Advanced Micro Devices X86-64" {
                assert_eq!(r[Col::machine as usize], Value::Integer(62));
            }
        }
    }

    #[test]
    fn non_elf_truncated_and_missing_files_give_no_rows() {
        let host = Host::default();
        let tmp = tempfile::tempdir().unwrap();
        let ls = std::fs::read("/bin/ls").unwrap();
        std::fs::write(tmp.path().join("text"), b"#!/bin/sh\necho hi\n").unwrap();
        std::fs::write(tmp.path().join("magic-only"), b"\x7fELF").unwrap();
        std::fs::write(tmp.path().join("short"), &ls[..30]).unwrap();
        std::fs::write(tmp.path().join("empty"), b"").unwrap();
        std::fs::write(tmp.path().join("whole"), &ls).unwrap();
        let dir = tmp.path().to_str().unwrap();
        let rows = rows_of(
            &QueryContext::everything(&SPEC, &host)
                .with_constraint(Col::path, Op::Like, format!("{dir}/%"))
                .with_constraint(Col::path, Op::Eq, format!("{dir}/missing"))
                .with_constraint(Col::path, Op::Eq, dir),
            generate,
        );
        let paths: Vec<&Value> = rows.iter().map(|r| &r[Col::path as usize]).collect();
        assert_eq!(paths, vec![&Value::Text(format!("{dir}/whole"))]);
    }

    #[test]
    fn abi_and_type_names_follow_libelfin() {
        assert_eq!(abi_name(3), "(elfosabi)0x3");
        assert_eq!(abi_name(0), "sysv");
        assert_eq!(type_name(3), "dyn");
        assert_eq!(type_name(0xfe00), "(et)0xfe00");
    }

    /// A FIFO nobody writes to: no rows and a warning at once, where a blocking open
    /// would wait forever. An endless kernel file is left after its first bytes.
    #[test]
    fn a_fifo_or_an_endless_file_gives_no_rows_at_once() {
        crate::common::testing::assert_no_rows_from_hostile_files(
            &SPEC,
            generate,
            Col::path as usize,
        );
    }
}
