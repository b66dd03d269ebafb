//! `elf_symbols`: one row per entry of every symbol table (`.symtab` and `.dynsym`) of
//! each ELF file a `path` constraint names, the null symbol at index 0 included.
//!
//! Type and binding are spelled as libelfin (osquery 3.3.2's ELF reader) spelled them:
//! `notype`/`object`/`func`/`section`/`file` and `local`/`global`/`weak`; other values
//! (e.g. TLS, GNU_IFUNC, GNU_UNIQUE) show as `(stt)0x..`/`(stb)0x..`. Names are looked
//! up in the string table only when the query reads `name`.

use oxquery_sys::elf::{SHT_DYNSYM, SHT_SYMTAB};
use oxquery_sys::pattern::Select;
use oxquery_table::{QueryContext, Rows, TableResult, table};

table! {
    name: "elf_symbols",
    description: "The symbol table entries of each ELF file named by path.",
    columns: {
        name: Text [] "Symbol name from the linked string table",
        addr: Integer [] "Symbol value, usually an address (st_value)",
        size: Integer [] "Size of the object the symbol names, 0 if unknown",
        r#type: Text [] "What the symbol names: notype, object, func, section, file, ...",
        binding: Text [] "Visibility to the linker: local, global, weak, ...",
        offset: Integer [] "Index of the section the symbol is defined in (st_shndx)",
        table: Text [] "Name of the symbol table section, .symtab or .dynsym",
        path: Text [INDEX | REQUIRED] "File to read; LIKE patterns expand",
    },
    examples: ["select * from elf_symbols where path = '/bin/ls'"],
}

fn type_name(t: u8) -> String {
    match t {
        0 => "notype".into(),
        1 => "object".into(),
        2 => "func".into(),
        3 => "section".into(),
        4 => "file".into(),
        n => format!("(stt)0x{n:x}"),
    }
}

fn binding_name(b: u8) -> String {
    match b {
        0 => "local".into(),
        1 => "global".into(),
        2 => "weak".into(),
        n => format!("(stb)0x{n:x}"),
    }
}

fn generate(ctx: &QueryContext, rows: &mut Rows) -> TableResult {
    let paths = crate::common::constrained_paths(ctx, Col::path, Select::All);
    let want_names = ctx.is_used(Col::name);
    let want_table = ctx.is_used(Col::table);
    crate::common::for_each_elf_file(ctx, &paths, |path, elf| {
        let sections = elf.sections()?;
        let section_names = elf.names_section(&sections);
        for sh in sections
            .iter()
            .filter(|sh| sh.sh_type == SHT_SYMTAB || sh.sh_type == SHT_DYNSYM)
        {
            let symbols = match elf.symbols(sh) {
                Ok(s) => s,
                Err(e) => {
                    log::debug!(
                        "elf_symbols: {}: symbol table unreadable: {e}",
                        path.display()
                    );
                    continue;
                }
            };
            let table_name = if want_table {
                elf.section_name(section_names, sh)
            } else {
                String::new()
            };
            let strings = sections.get(sh.sh_link as usize);
            for sym in &symbols {
                let mut row = rows.row();
                row.set(Col::path, path);
                row.set(Col::table, table_name.as_str());
                if want_names {
                    let name = elf.string_in(strings, sym.st_name).unwrap_or_default();
                    row.set(Col::name, String::from_utf8_lossy(name).into_owned());
                }
                row.set(Col::addr, sym.st_value);
                row.set(Col::size, sym.st_size);
                row.set_with(Col::r#type, || type_name(sym.st_type()));
                row.set_with(Col::binding, || binding_name(sym.st_bind()));
                row.set(Col::offset, sym.st_shndx);
            }
        }
        Ok(())
    });
    ctx.check()
}

#[cfg(test)]
mod tests {
    use super::*;
    use oxquery_table::Op;

    use crate::testing::rows_of;
    use crate::testing::{rows_in_dir, write_cut_copies};
    use oxquery_table::{Host, Value};
    use std::path::Path;
    use std::process::Command;

    /// Compiles a small program with a local, a global, a weak and a TLS symbol.
    fn build_program(dir: &Path) -> std::path::PathBuf {
        let src = dir.join("prog.c");
        std::fs::write(
            &src,
            "#include <stdio.h>\n\
             static int hidden_counter = 3;\n\
             int oxquery_global_table[17];\n\
             __attribute__((weak)) int oxquery_weak(void) { return hidden_counter; }\n\
             __thread int oxquery_tls;\n\
             int main(void) { printf(\"%d\\n\", oxquery_weak() + oxquery_global_table[1] + oxquery_tls); return 0; }\n",
        )
        .unwrap();
        let bin = dir.join("prog");
        let status = Command::new("cc")
            .arg("-o")
            .arg(&bin)
            .arg(&src)
            .status()
            .expect("cc runs");
        assert!(status.success());
        bin
    }

    /// `readelf -s --wide`: (table, value, size, type, bind, ndx, name) per entry.
    fn readelf_symbols(path: &str) -> Vec<(String, i64, i64, String, String, i64, String)> {
        let text = crate::testing::readelf("-s", path);
        let mut table = String::new();
        let mut want = Vec::new();
        for line in text.lines() {
            if let Some(rest) = line.strip_prefix("Symbol table '") {
                table = rest.split('\'').next().unwrap().to_owned();
                continue;
            }
            let f: Vec<&str> = line.split_whitespace().collect();
            if f.len() < 7 || !f[0].ends_with(':') || f[0] == "Num:" {
                continue;
            }
            let ndx = match f[6] {
                "UND" => 0,
                "ABS" => 0xfff1,
                "COM" => 0xfff2,
                n => n.parse().unwrap(),
            };
            // readelf appends the version of dynamic symbols (`name@GLIBC_2.2.5 (3)`);
            // in `.symtab` an `@` is part of the stored name.
            let name = f.get(7).copied().unwrap_or("");
            let name = if table == ".dynsym" {
                name.split('@').next().unwrap()
            } else {
                name
            };
            want.push((
                table.clone(),
                i64::from_str_radix(f[1], 16).unwrap(),
                // Large sizes print in hex.
                match f[2].strip_prefix("0x") {
                    Some(h) => i64::from_str_radix(h, 16).unwrap(),
                    None => f[2].parse().unwrap(),
                },
                f[3].to_owned(),
                f[4].to_owned(),
                ndx,
                name.to_owned(),
            ));
        }
        want
    }

    #[test]
    fn symbols_match_readelf() {
        let host = Host::default();
        let tmp = tempfile::tempdir().unwrap();
        let bin = build_program(tmp.path());
        let ls = crate::testing::real_elf();
        for path in [bin.to_str().unwrap(), &ls] {
            let want = readelf_symbols(path);
            assert!(!want.is_empty());
            let rows = rows_of(
                &QueryContext::everything(&SPEC, &host).with_constraint(Col::path, Op::Eq, path),
                generate,
            );
            assert_eq!(rows.len(), want.len(), "{path}");
            for (r, w) in rows.iter().zip(&want) {
                let text = |c: Col| r[c as usize].as_text().unwrap().into_owned();
                let int = |c: Col| r[c as usize].as_i64().unwrap();
                assert_eq!(text(Col::table), w.0);
                assert_eq!(int(Col::addr), w.1, "{w:?}");
                assert_eq!(int(Col::size), w.2, "{w:?}");
                let ty = match w.3.as_str() {
                    "TLS" => "(stt)0x6".to_owned(),
                    "IFUNC" => "(stt)0xa".to_owned(),
                    t => t.to_lowercase(),
                };
                assert_eq!(text(Col::r#type), ty, "{w:?}");
                let bind = match w.4.as_str() {
                    "UNIQUE" => "(stb)0xa".to_owned(),
                    b => b.to_lowercase(),
                };
                assert_eq!(text(Col::binding), bind, "{w:?}");
                assert_eq!(int(Col::offset), w.5, "{w:?}");
                assert_eq!(text(Col::name), w.6, "{w:?}");
            }
        }
        // The compiled program has both tables and the symbols it defines.
        let rows = rows_of(
            &QueryContext::everything(&SPEC, &host).with_constraint(
                Col::path,
                Op::Eq,
                bin.to_str().unwrap(),
            ),
            generate,
        );
        let find = |name: &str| {
            rows.iter()
                .find(|r| r[Col::name as usize] == Value::Text(name.into()))
                .unwrap_or_else(|| panic!("{name} missing"))
        };
        assert_eq!(
            find("hidden_counter")[Col::binding as usize],
            Value::Text("local".into())
        );
        assert_eq!(
            find("oxquery_weak")[Col::binding as usize],
            Value::Text("weak".into())
        );
        assert_eq!(
            find("oxquery_weak")[Col::r#type as usize],
            Value::Text("func".into())
        );
        let table = find("oxquery_global_table");
        assert_eq!(table[Col::size as usize], Value::Integer(17 * 4));
        assert_eq!(table[Col::r#type as usize], Value::Text("object".into()));
        assert_eq!(table[Col::table as usize], Value::Text(".symtab".into()));
    }

    #[test]
    fn projection_skips_names() {
        let host = Host::default();
        let rows = rows_of(
            &QueryContext::everything(&SPEC, &host)
                .with_constraint(Col::path, Op::Eq, "/bin/ls")
                .using([Col::addr, Col::path]),
            generate,
        );
        assert!(!rows.is_empty());
        assert!(rows.iter().all(|r| r[Col::name as usize].is_null()));
        assert!(rows.iter().all(|r| r[Col::table as usize].is_null()));
    }

    #[test]
    fn truncated_and_garbage_files_never_panic() {
        let tmp = tempfile::tempdir().unwrap();
        let ls = std::fs::read("/bin/ls").unwrap();
        write_cut_copies(tmp.path(), &ls, &[10, 64, 2000, ls.len() / 2, ls.len() - 1]);
        // Symbol table offsets pointed far past the end of the file.
        let mut bad = ls.clone();
        let shoff = u64::from_le_bytes(bad[0x28..0x30].try_into().unwrap()) as usize;
        for i in 0..usize::from(u16::from_le_bytes(bad[0x3c..0x3e].try_into().unwrap())) {
            let sh = shoff + i * 64;
            bad[sh + 24..sh + 32].copy_from_slice(&u64::MAX.to_le_bytes()); // sh_offset
        }
        std::fs::write(tmp.path().join("bad-offsets"), &bad).unwrap();
        let rows = rows_in_dir(&SPEC, Col::path, tmp.path(), generate);
        assert!(rows.is_empty(), "{} rows", rows.len());
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
