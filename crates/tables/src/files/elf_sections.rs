//! `elf_sections`: one row per section header of each ELF file a `path` constraint names.
//!
//! Flags are spelled as libelfin (osquery 3.3.2's ELF reader) spelled them: the known bits
//! `write`, `alloc`, `execinstr` joined with `|`, any remaining bits appended as
//! `(shf)0x..`; `link` is the linked section's index as text. `vaddr` is the section's
//! address in memory (sh_addr).

use oxquery_sys::pattern::Select;
use oxquery_table::{QueryContext, Rows, TableResult, table};

table! {
    name: "elf_sections",
    description: "The section headers of each ELF file named by path.",
    columns: {
        name: Text [] "Section name from the section-name string table",
        r#type: Integer [] "Section type number (sh_type), e.g. 1 for PROGBITS",
        vaddr: Integer [] "Address of the section when loaded (sh_addr), 0 if not loaded",
        offset: Integer [] "Where the section's bytes start in the file",
        size: Integer [] "Length of the section in bytes",
        flags: Text [] "Attribute flags, e.g. alloc|execinstr",
        link: Text [] "Index of the section this one refers to (sh_link)",
        align: Integer [] "Required alignment of the section",
        path: Text [INDEX | REQUIRED] "File to read; LIKE patterns expand",
    },
    examples: ["select * from elf_sections where path = '/bin/ls'"],
}

/// libelfin's spelling of section flags.
fn flags_text(flags: u64) -> String {
    let mut rest = flags;
    let mut out = String::new();
    for (bit, name) in [(0x1u64, "write"), (0x2, "alloc"), (0x4, "execinstr")] {
        if rest & bit == bit {
            out.push_str(name);
            out.push('|');
            rest &= !bit;
        }
    }
    for (mask, name) in [(0x0ff0_0000u64, "maskos"), (0xf000_0000, "maskproc")] {
        if rest & mask == mask {
            out.push_str(name);
            out.push('|');
            rest &= !mask;
        }
    }
    if out.is_empty() || rest != 0 {
        out.push_str(&format!("(shf)0x{:x}", rest as u32));
    } else {
        out.pop();
    }
    out
}

fn generate(ctx: &QueryContext, rows: &mut Rows) -> TableResult {
    let paths = crate::common::constrained_paths(ctx, Col::path, Select::All);
    let want_name = ctx.is_used(Col::name);
    crate::common::for_each_elf_file(ctx, &paths, |path, elf| {
        let sections = elf.sections()?;
        let names = elf.names_section(&sections);
        for sh in &sections {
            let mut row = rows.row();
            row.set(Col::path, path);
            if want_name {
                row.set(Col::name, elf.section_name(names, sh));
            }
            row.set(Col::r#type, i64::from(sh.sh_type));
            row.set(Col::vaddr, sh.sh_addr as i64);
            row.set(Col::offset, sh.sh_offset as i64);
            row.set(Col::size, sh.sh_size as i64);
            row.set_with(Col::flags, || flags_text(sh.sh_flags));
            row.set(Col::link, sh.sh_link.to_string());
            row.set(Col::align, sh.sh_addralign as i64);
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
    use oxquery_table::Host;

    /// One parsed line of `readelf -S --wide`.
    #[derive(Debug, PartialEq)]
    struct Want {
        name: String,
        kind: String,
        addr: i64,
        offset: i64,
        size: i64,
        flags: String,
        link: String,
        align: i64,
    }

    fn readelf_sections(path: &str) -> Vec<Want> {
        let text = crate::testing::readelf("-S", path);
        let hex = |s: &str| i64::from_str_radix(s, 16).unwrap();
        let mut want = Vec::new();
        for line in text.lines() {
            let Some(rest) = line.trim_start().strip_prefix('[') else {
                continue;
            };
            let Some((index, rest)) = rest.split_once(']') else {
                continue;
            };
            if index.trim() == "Nr" {
                continue;
            }
            // The name is left-aligned in a 17-column field but may be longer; the
            // fields after it never contain spaces, except an empty flags field.
            let fields: Vec<&str> = rest.split_whitespace().collect();
            let (name, tail) = if index.trim() == "0" {
                (String::new(), &fields[..])
            } else {
                (fields[0].to_owned(), &fields[1..])
            };
            // Type Address Off Size ES [Flg] Lk Inf Al
            let (flags, lk, al) = if tail.len() == 9 {
                (tail[5], tail[6], tail[8])
            } else {
                ("", tail[5], tail[7])
            };
            want.push(Want {
                name,
                kind: tail[0].to_owned(),
                addr: hex(tail[1]),
                offset: hex(tail[2]),
                size: hex(tail[3]),
                flags: flags.to_owned(),
                link: lk.to_owned(),
                align: al.parse().unwrap(),
            });
        }
        want
    }

    #[test]
    fn sections_match_readelf() {
        let host = Host::default();
        let path = crate::testing::real_elf();
        let path = path.as_str();
        let want = readelf_sections(path);
        assert!(want.len() > 10, "{want:?}");
        let rows = rows_of(
            &QueryContext::everything(&SPEC, &host).with_constraint(Col::path, Op::Eq, path),
            generate,
        );
        assert_eq!(rows.len(), want.len());
        for (r, w) in rows.iter().zip(&want) {
            let text = |c: Col| r[c as usize].as_text().unwrap().into_owned();
            let int = |c: Col| r[c as usize].as_i64().unwrap();
            assert_eq!(text(Col::name), w.name);
            assert_eq!(text(Col::path), path);
            assert_eq!(int(Col::vaddr), w.addr, "{}", w.name);
            assert_eq!(int(Col::offset), w.offset, "{}", w.name);
            assert_eq!(int(Col::size), w.size, "{}", w.name);
            assert_eq!(text(Col::link), w.link, "{}", w.name);
            assert_eq!(int(Col::align), w.align, "{}", w.name);
            // Section type numbers for the names readelf prints.
            let kind = match w.kind.as_str() {
                "NULL" => Some(0),
                "PROGBITS" => Some(1),
                "SYMTAB" => Some(2),
                "STRTAB" => Some(3),
                "RELA" => Some(4),
                "DYNAMIC" => Some(6),
                "NOTE" => Some(7),
                "NOBITS" => Some(8),
                "DYNSYM" => Some(11),
                "INIT_ARRAY" => Some(14),
                "FINI_ARRAY" => Some(15),
                "GNU_HASH" => Some(0x6fff_fff6),
                "VERNEED" => Some(0x6fff_fffe),
                "VERSYM" => Some(0x6fff_ffff),
                _ => None,
            };
            if let Some(k) = kind {
                assert_eq!(int(Col::r#type), k, "{}", w.name);
            }
            // readelf's W, A, X letters are libelfin's write, alloc, execinstr.
            let flags = text(Col::flags);
            for (letter, word) in [('W', "write"), ('A', "alloc"), ('X', "execinstr")] {
                assert_eq!(
                    w.flags.contains(letter),
                    flags.split('|').any(|f| f == word),
                    "{}: {} vs {flags}",
                    w.name,
                    w.flags
                );
            }
            if w.flags.is_empty() {
                assert_eq!(flags, "(shf)0x0");
            }
        }
    }

    #[test]
    fn flags_are_spelled_like_libelfin() {
        assert_eq!(flags_text(0), "(shf)0x0");
        assert_eq!(flags_text(0x2), "alloc");
        assert_eq!(flags_text(0x6), "alloc|execinstr");
        assert_eq!(flags_text(0x3), "write|alloc");
        assert_eq!(flags_text(0x30), "(shf)0x30");
        assert_eq!(flags_text(0x32), "alloc|(shf)0x30");
    }

    #[test]
    fn truncated_files_never_panic() {
        let tmp = tempfile::tempdir().unwrap();
        let ls = std::fs::read("/bin/ls").unwrap();
        // Cut the file inside the section header table: the table is unreadable.
        write_cut_copies(tmp.path(), &ls, &[20, 64, 4096, ls.len() - 10]);
        let rows = rows_in_dir(&SPEC, Col::path, tmp.path(), generate);
        assert!(rows.is_empty(), "{rows:?}");
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
