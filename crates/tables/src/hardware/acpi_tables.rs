//! `acpi_tables`: the firmware's ACPI tables as the kernel exposes them in
//! `/sys/firmware/acpi/tables`.
//!
//! As osquery: one row per file, the subdirectories (`data/`, `dynamic/`: tables loaded
//! at run time, such as SSDTs) included, named by the file's own name; the size is what
//! reading the file gave and the MD5 that of the contents. A table that cannot be read
//! (the files are root-only) has size -1 and no MD5. Reads go through the safe opener
//! under `--read_max`. Without ACPI (a machine booted with device tree, a container
//! without `/sys/firmware`), no rows and a verbose log.

use oxquery_sys::digest::{Hasher, Wanted};
use oxquery_sys::safe_read::{self, Policy};
use oxquery_table::{QueryContext, Rows, TableResult, table};
use std::path::Path;

table! {
    name: "acpi_tables",
    description: "Firmware ACPI tables from /sys/firmware/acpi/tables (its data/ and dynamic/ subdirectories included): name, size and MD5 of each.",
    columns: {
        name: Text [] "Table name: the file's name (its signature, e.g. DSDT, FACP, SSDT1)",
        size: Integer [] "Size of the table in bytes; -1 if it cannot be read (the files are root-only)",
        md5: Text [COLLATE_NOCASE] "MD5 of the table's contents, lowercase hex; NULL if it cannot be read",
    },
    examples: ["select name, size, md5 from acpi_tables"],
}

const ACPI_TABLES: &str = "/sys/firmware/acpi/tables";

/// Subdirectories deeper than this are not followed (sysfs has one level).
const MAX_DEPTH: usize = 4;

fn generate(ctx: &QueryContext, rows: &mut Rows) -> TableResult {
    generate_under(ctx, Path::new(ACPI_TABLES), rows)
}

fn generate_under(ctx: &QueryContext, root: &Path, rows: &mut Rows) -> TableResult {
    if let Err(e) = std::fs::read_dir(root) {
        log::info!(
            "Table acpi_tables: cannot list {} ({e}): no ACPI tables exposed",
            root.display()
        );
        return Ok(());
    }
    let policy = crate::common::user_file_policy(ctx);
    let digest = ctx.is_used(Col::md5) || ctx.is_used(Col::size);
    walk(ctx, root, 0, &policy, digest, rows)
}

fn walk(
    ctx: &QueryContext,
    dir: &Path,
    depth: usize,
    policy: &Policy,
    digest: bool,
    rows: &mut Rows,
) -> TableResult {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Ok(());
    };
    let mut paths: Vec<_> = entries.filter_map(|e| e.ok().map(|e| e.path())).collect();
    paths.sort();
    for path in paths {
        ctx.check()?;
        // Not following links: sysfs has none here, and a loop must not recurse.
        let Ok(meta) = std::fs::symlink_metadata(&path) else {
            continue;
        };
        if meta.is_dir() {
            if depth < MAX_DEPTH {
                walk(ctx, &path, depth + 1, policy, digest, rows)?;
            }
            continue;
        }
        if !meta.is_file() {
            continue;
        }
        let read = if digest {
            safe_read::read_bounded(&path, policy)
                .map_err(|e| log::info!("Table acpi_tables: cannot read {}: {e}", path.display()))
                .ok()
        } else {
            None
        };
        let mut row = rows.row();
        row.set(Col::name, path.file_name().unwrap_or_default());
        match read {
            Some(bytes) => {
                row.set(Col::size, bytes.len());
                row.set_with(Col::md5, || {
                    let mut hasher = Hasher::new(Wanted {
                        md5: true,
                        ..Wanted::default()
                    });
                    hasher.update(&bytes);
                    hasher.finish().md5.unwrap_or_default()
                });
            }
            None => row.set(Col::size, -1i64),
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::{text, tool_stdout};
    use oxquery_table::{Host, Value};
    use std::collections::BTreeMap;

    fn rows_under(root: &Path) -> Vec<Vec<Value>> {
        let host = Host::default();
        let ctx = QueryContext::everything(&SPEC, &host);
        let rows = {
            let mut rows = Rows::for_context(&ctx);
            generate_under(&ctx, root, &mut rows).unwrap();
            rows
        };
        rows.iter().map(<[Value]>::to_vec).collect()
    }

    /// name -> (size, md5) as `find` and `md5sum` see the files under `root`.
    fn independent(root: &Path) -> BTreeMap<String, (i64, String)> {
        let listing = tool_stdout("find", &[root.to_str().unwrap(), "-type", "f"]);
        let mut out = BTreeMap::new();
        for file in listing.lines() {
            let name = Path::new(file)
                .file_name()
                .unwrap()
                .to_str()
                .unwrap()
                .to_owned();
            let size: i64 = std::fs::metadata(file).unwrap().len() as i64;
            let sum = tool_stdout("md5sum", &[file]);
            let md5 = sum.split_whitespace().next().unwrap().to_owned();
            out.insert(name, (size, md5));
        }
        out
    }

    fn ours(rows: &[Vec<Value>]) -> BTreeMap<String, (i64, String)> {
        rows.iter()
            .map(|r| {
                let size = match r[Col::size as usize] {
                    Value::Integer(n) => n,
                    ref v => panic!("size {v:?}"),
                };
                (
                    text(&r[Col::name as usize]),
                    (size, text(&r[Col::md5 as usize])),
                )
            })
            .collect()
    }

    #[test]
    fn fixture_tree_matches_md5sum() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("DSDT"), b"DSDT\x10\x00\x00\x00hello").unwrap();
        std::fs::write(dir.path().join("FACP"), vec![7u8; 276]).unwrap();
        std::fs::create_dir(dir.path().join("dynamic")).unwrap();
        std::fs::write(dir.path().join("dynamic/SSDT1"), b"SSDT").unwrap();
        std::fs::create_dir(dir.path().join("data")).unwrap();
        // A FIFO among the tables: not a regular file, no row, no hang.
        crate::common::testing::mkfifo(&dir.path().join("data/fifo"));
        let root = dir.path().to_owned();
        let rows = crate::common::testing::within_10s(move || rows_under(&root));
        assert_eq!(ours(&rows), independent(dir.path()));
        assert_eq!(rows.len(), 3);
    }

    #[test]
    fn absent_directory_gives_no_rows_and_says_why() {
        let (rows, logged) =
            crate::common::testing::capture_log(|| rows_under(Path::new("/nonexistent/acpi")));
        assert!(rows.is_empty());
        assert!(
            logged
                .iter()
                .any(|(l, m)| *l == log::Level::Info && m.contains("no ACPI"))
        );
    }

    /// The host's tables (when it has ACPI) agree with `md5sum` of the same files; as
    /// non-root, every row says -1.
    #[test]
    fn host_tables_match_md5sum() {
        let root = Path::new(ACPI_TABLES);
        let rows = rows_under(root);
        if !root.exists() {
            assert!(rows.is_empty());
            return;
        }
        // SAFETY: plain getter.
        if unsafe { libc::geteuid() } != 0 {
            assert!(
                rows.iter()
                    .all(|r| r[Col::size as usize] == Value::Integer(-1))
            );
            return;
        }
        let want = independent(root);
        assert_eq!(ours(&rows), want);
        eprintln!("acpi_tables: {} host tables match md5sum", want.len());
    }
}
