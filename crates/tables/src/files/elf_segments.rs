//! `elf_segments`: one row per program header of each ELF file a `path` constraint names.
//!
//! Names and flags are spelled as libelfin (osquery 3.3.2's ELF reader) spelled them:
//! `load`, `dynamic`, `interp`, `note`, `shlib`, `phdr`, `null`, plus the GNU types
//! `GNU_EH_FRAME`, `GNU_STACK`, `GNU_RELRO`; any other type is `(pt)0x..`. Flags are
//! `x`, `w`, `r` joined with `|` in that order (`(pf)0x0` when none is set).

use oxquery_sys::pattern::Select;
use oxquery_table::{QueryContext, Rows, TableResult, table};

table! {
    name: "elf_segments",
    description: "The program headers (segments) of each ELF file named by path.",
    columns: {
        name: Text [] "Segment type, e.g. load, interp, dynamic, GNU_STACK",
        offset: Integer [] "Where the segment's bytes start in the file",
        vaddr: Integer [] "Virtual address the segment is mapped at",
        psize: Integer [] "Bytes of the segment stored in the file (p_filesz)",
        msize: Integer [] "Bytes the segment occupies in memory (p_memsz)",
        flags: Text [] "Access permissions, e.g. x|r",
        align: Integer [] "Alignment of the segment in file and memory",
        path: Text [INDEX | REQUIRED] "File to read; LIKE patterns expand",
    },
    examples: ["select * from elf_segments where path = '/bin/ls'"],
}

/// libelfin's name for a segment type.
fn type_name(t: u32) -> String {
    match t {
        0 => "null".into(),
        1 => "load".into(),
        2 => "dynamic".into(),
        3 => "interp".into(),
        4 => "note".into(),
        5 => "shlib".into(),
        6 => "phdr".into(),
        0x6474_e550 => "GNU_EH_FRAME".into(),
        0x6474_e551 => "GNU_STACK".into(),
        0x6474_e552 => "GNU_RELRO".into(),
        n => format!("(pt)0x{n:x}"),
    }
}

/// libelfin's spelling of segment permission flags.
fn flags_text(flags: u32) -> String {
    let mut rest = flags;
    let mut out = String::new();
    for (mask, name) in [
        (0x1u32, "x"),
        (0x2, "w"),
        (0x4, "r"),
        (0x0ff0_0000, "maskos"),
        (0xf000_0000, "maskproc"),
    ] {
        if rest & mask == mask {
            out.push_str(name);
            out.push('|');
            rest &= !mask;
        }
    }
    if out.is_empty() || rest != 0 {
        out.push_str(&format!("(pf)0x{rest:x}"));
    } else {
        out.pop();
    }
    out
}

fn generate(ctx: &QueryContext, rows: &mut Rows) -> TableResult {
    let paths = crate::common::constrained_paths(ctx, Col::path, Select::All);
    crate::common::for_each_elf_file(ctx, &paths, |path, elf| {
        for ph in &elf.segments()? {
            let mut row = rows.row();
            row.set(Col::path, path);
            row.set_with(Col::name, || type_name(ph.p_type));
            row.set(Col::offset, ph.p_offset);
            row.set(Col::vaddr, ph.p_vaddr);
            row.set(Col::psize, ph.p_filesz);
            row.set(Col::msize, ph.p_memsz);
            row.set_with(Col::flags, || flags_text(ph.p_flags));
            row.set(Col::align, ph.p_align);
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

    #[test]
    fn segments_match_readelf() {
        let host = Host::default();
        let path = crate::testing::real_elf();
        let path = path.as_str();
        let text = crate::testing::readelf("-l", path);
        let hex = |s: &str| i64::from_str_radix(s.trim_start_matches("0x"), 16).unwrap();
        // Type Offset VirtAddr PhysAddr FileSiz MemSiz Flg(may hold spaces) Align
        let want: Vec<Vec<&str>> = text
            .lines()
            .skip_while(|l| !l.trim_start().starts_with("Type"))
            .skip(1)
            .take_while(|l| !l.trim().is_empty())
            .filter(|l| !l.trim_start().starts_with('['))
            .map(|l| l.split_whitespace().collect())
            .collect();
        assert!(want.len() >= 4, "{text}");
        let rows = rows_of(
            &QueryContext::everything(&SPEC, &host).with_constraint(Col::path, Op::Eq, path),
            generate,
        );
        assert_eq!(rows.len(), want.len());
        for (r, w) in rows.iter().zip(&want) {
            let name = r[Col::name as usize].as_text().unwrap().into_owned();
            let expected_name = match w[0] {
                "LOAD" | "PHDR" | "INTERP" | "DYNAMIC" | "NOTE" | "NULL" | "SHLIB" => {
                    w[0].to_lowercase()
                }
                "GNU_EH_FRAME" | "GNU_STACK" | "GNU_RELRO" => w[0].to_owned(),
                "GNU_PROPERTY" => "(pt)0x6474e553".to_owned(),
                "TLS" => "(pt)0x7".to_owned(),
                other => panic!("unexpected segment type {other}"),
            };
            assert_eq!(name, expected_name);
            let int = |c: Col| r[c as usize].as_i64().unwrap();
            assert_eq!(int(Col::offset), hex(w[1]));
            assert_eq!(int(Col::vaddr), hex(w[2]));
            assert_eq!(int(Col::psize), hex(w[4]));
            assert_eq!(int(Col::msize), hex(w[5]));
            assert_eq!(int(Col::align), hex(w[w.len() - 1]));
            let letters: String = w[6..w.len() - 1].concat();
            let mut expected_flags: Vec<&str> = Vec::new();
            for (letter, word) in [('E', "x"), ('W', "w"), ('R', "r")] {
                if letters.contains(letter) {
                    expected_flags.push(word);
                }
            }
            let expected_flags = if expected_flags.is_empty() {
                "(pf)0x0".to_owned()
            } else {
                expected_flags.join("|")
            };
            assert_eq!(r[Col::flags as usize], Value::Text(expected_flags), "{w:?}");
        }
    }

    #[test]
    fn names_and_flags_follow_libelfin() {
        assert_eq!(type_name(1), "load");
        assert_eq!(type_name(0x6474_e551), "GNU_STACK");
        assert_eq!(type_name(7), "(pt)0x7");
        assert_eq!(flags_text(5), "x|r");
        assert_eq!(flags_text(6), "w|r");
        assert_eq!(flags_text(0), "(pf)0x0");
        assert_eq!(flags_text(0x14), "r|(pf)0x10");
    }

    #[test]
    fn garbage_gives_no_rows() {
        let tmp = tempfile::tempdir().unwrap();
        let ls = std::fs::read("/bin/ls").unwrap();
        // Header intact, program header table cut off.
        write_cut_copies(tmp.path(), &ls, &[80]);
        let mut junk = b"\x7fELF\x02\x01\x01".to_vec();
        junk.extend((0..500u32).map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8));
        std::fs::write(tmp.path().join("junk"), &junk).unwrap();
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
