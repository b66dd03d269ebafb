//! `elf_dynamic`: the entries of the dynamic section (SHT_DYNAMIC) of each ELF file a
//! `path` constraint names, in file order and without the terminating `DT_NULL`.

use oxquery_sys::elf::SHT_DYNAMIC;
use oxquery_sys::pattern::Select;
use oxquery_table::{QueryContext, Rows, TableResult, table};

table! {
    name: "elf_dynamic",
    description: "The dynamic linking entries (tag and value) of each ELF file named by path.",
    columns: {
        tag: Integer [] "Entry kind (d_tag), e.g. 1 for a needed library",
        value: Integer [] "The entry's number or address (d_val/d_ptr)",
        class: Integer [] "Word size of the file: 32 or 64",
        path: Text [INDEX | REQUIRED] "File to read; LIKE patterns expand",
    },
    examples: ["select * from elf_dynamic where path = '/bin/ls'"],
}

fn generate(ctx: &QueryContext, rows: &mut Rows) -> TableResult {
    let paths = crate::common::constrained_paths(ctx, Col::path, Select::All);
    crate::common::for_each_elf_file(ctx, &paths, |path, elf| {
        for sh in elf
            .sections()?
            .iter()
            .filter(|sh| sh.sh_type == SHT_DYNAMIC)
        {
            for (tag, value) in elf.dynamic_entries(sh)? {
                let mut row = rows.row();
                row.set(Col::path, path);
                row.set(Col::tag, tag);
                row.set(Col::value, value);
                row.set(Col::class, elf.class_bits());
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
    use oxquery_table::{Host, Value};
    use std::process::Command;

    #[test]
    fn entries_match_readelf() {
        let host = Host::default();
        let path = crate::testing::real_elf();
        let path = path.as_str();
        let text = crate::testing::readelf("-d", path);
        // ` 0x000000000000000c (INIT)               0x4000`
        let want: Vec<(i64, String, String)> = text
            .lines()
            .filter_map(|l| {
                let l = l.trim_start();
                let (tag, rest) = l.split_once(' ')?;
                let tag = u64::from_str_radix(tag.strip_prefix("0x")?, 16).ok()? as i64;
                let (kind, value) = rest.trim_start().split_once(')')?;
                Some((
                    tag,
                    kind.trim_start_matches('(').to_owned(),
                    value.trim().to_owned(),
                ))
            })
            .filter(|(tag, _, _)| *tag != 0)
            .collect();
        assert!(want.len() > 5, "{text}");
        let rows = rows_of(
            &QueryContext::everything(&SPEC, &host).with_constraint(Col::path, Op::Eq, path),
            generate,
        );
        assert_eq!(rows.len(), want.len());
        let mut checked_values = 0;
        for (r, (tag, kind, value)) in rows.iter().zip(&want) {
            assert_eq!(r[Col::tag as usize], Value::Integer(*tag), "{kind}");
            assert_eq!(r[Col::class as usize], Value::Integer(64));
            assert_eq!(r[Col::path as usize], Value::Text(path.into()));
            // Addresses print as hex, sizes as `N (bytes)`, counts as plain numbers.
            let got = r[Col::value as usize].as_i64().unwrap();
            if let Some(h) = value.strip_prefix("0x") {
                assert_eq!(got, i64::from_str_radix(h, 16).unwrap(), "{kind}");
                checked_values += 1;
            } else if let Some(n) = value.strip_suffix(" (bytes)") {
                assert_eq!(got, n.parse::<i64>().unwrap(), "{kind}");
                checked_values += 1;
            }
        }
        assert!(checked_values > 5);
        // Two NEEDED entries at least (libc and something else) on /bin/ls.
        assert!(want.iter().filter(|w| w.1 == "NEEDED").count() >= 1);
    }

    #[test]
    fn static_and_broken_files_give_no_rows() {
        let host = Host::default();
        let tmp = tempfile::tempdir().unwrap();
        let ls = std::fs::read("/bin/ls").unwrap();
        std::fs::write(tmp.path().join("half"), &ls[..ls.len() / 2]).unwrap();
        std::fs::write(tmp.path().join("text"), b"not an elf file at all").unwrap();
        // A relocatable object has no dynamic section.
        let src = tmp.path().join("o.c");
        std::fs::write(&src, "int f(void) { return 1; }\n").unwrap();
        let obj = tmp.path().join("o.o");
        let status = Command::new("cc")
            .args(["-c", "-o"])
            .arg(&obj)
            .arg(&src)
            .status()
            .expect("cc runs");
        assert!(status.success());
        let rows = rows_of(
            &QueryContext::everything(&SPEC, &host).with_constraint(
                Col::path,
                Op::Like,
                format!("{}/%", tmp.path().display()),
            ),
            generate,
        );
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
