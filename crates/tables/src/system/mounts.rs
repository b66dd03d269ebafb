//! `mounts`: mounted file systems from the mount table, with `statfs(2)` usage.

use oxquery_sys::mounts::{self, MountEntry};
use oxquery_table::{QueryContext, Rows, TableResult, table};

table! {
    name: "mounts",
    description: "Mounted file systems, one row per entry of the mount table, with block and inode usage from statfs(2).",
    columns: {
        device: Text [] "What is mounted, as the mount table names it (a device path or a name such as tmpfs)",
        device_alias: Text [] "The device with symbolic links resolved, or the device itself when it is not a path",
        path: Text [] "Mount point",
        r#type: Text [] "File system type",
        blocks_size: BigInt [] "Size of one file system block in bytes",
        blocks: BigInt [] "Total number of blocks",
        blocks_free: BigInt [] "Free blocks",
        blocks_available: BigInt [] "Free blocks an unprivileged user may use",
        inodes: BigInt [] "Total number of inodes",
        inodes_free: BigInt [] "Free inodes",
        flags: Text [] "Mount options, comma-separated",
    },
    examples: ["select path, type, blocks_available * blocks_size as free_bytes from mounts"],
}

fn emit(entries: Vec<MountEntry>, rows: &mut Rows) {
    let want_stats = [
        Col::blocks_size,
        Col::blocks,
        Col::blocks_free,
        Col::blocks_available,
        Col::inodes,
        Col::inodes_free,
    ];
    for m in entries {
        let mut row = rows.row();
        if want_stats.iter().any(|c| row.wants(*c)) {
            // Like osquery, a mount point statfs cannot reach reports zeros.
            let st = mounts::statfs(&m.target).unwrap_or(mounts::FsStats {
                block_size: 0,
                blocks: 0,
                blocks_free: 0,
                blocks_available: 0,
                inodes: 0,
                inodes_free: 0,
                magic: 0,
            });
            let int = |v: u64| i64::try_from(v).unwrap_or(i64::MAX);
            row.set(Col::blocks_size, int(st.block_size));
            row.set(Col::blocks, int(st.blocks));
            row.set(Col::blocks_free, int(st.blocks_free));
            row.set(Col::blocks_available, int(st.blocks_available));
            row.set(Col::inodes, int(st.inodes));
            row.set(Col::inodes_free, int(st.inodes_free));
        }
        if row.wants(Col::device_alias) {
            let alias = std::fs::canonicalize(&m.source)
                .map(|p| p.to_string_lossy().into_owned())
                .unwrap_or_else(|_| m.source.clone());
            row.set(Col::device_alias, alias);
        }
        row.set(Col::device, m.source);
        row.set(Col::path, m.target);
        row.set(Col::r#type, m.fstype);
        row.set(Col::flags, m.options);
    }
}

fn generate(_ctx: &QueryContext, rows: &mut Rows) -> TableResult {
    match mounts::read_mounts(mounts::PROC_MOUNTS) {
        Ok(entries) => emit(entries, rows),
        Err(e) => log::warn!("mounts: cannot read {}: {e}", mounts::PROC_MOUNTS),
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use oxquery_table::{Host, Value};

    use crate::testing::text;
    fn int(v: &Value) -> i64 {
        match v {
            Value::Integer(i) => *i,
            v => panic!("not an integer: {v:?}"),
        }
    }

    #[test]
    fn fixture_lines_with_escaped_spaces_become_rows() {
        let dir = tempfile::tempdir().unwrap();
        let spaced = dir.path().join("my dir");
        std::fs::create_dir(&spaced).unwrap();
        let escaped = spaced.to_string_lossy().replace(' ', "\\040");
        let table = format!("none {escaped} tmpfs rw,nosuid 0 0\nbroken line\n");
        let host = Host::default();
        let ctx = QueryContext::everything(&SPEC, &host);
        let mut rows = Rows::for_context(&ctx);
        emit(mounts::parse_mounts(table.as_bytes()), &mut rows);
        assert_eq!(rows.len(), 1);
        let row = rows.get(0).unwrap();
        assert_eq!(text(&row[Col::path as usize]), spaced.to_string_lossy());
        assert_eq!(text(&row[Col::device_alias as usize]), "none");
        assert_eq!(text(&row[Col::flags as usize]), "rw,nosuid");
        // statfs of the real directory: the file system holding the temp dir.
        assert!(int(&row[Col::blocks_size as usize]) > 0);
    }

    #[test]
    fn agrees_with_findmnt_and_df() {
        let host = Host::default();
        let ctx = QueryContext::everything(&SPEC, &host);
        let rows = Rows::collect(&ctx, generate).unwrap();
        let ours: Vec<(String, String, String)> = rows
            .iter()
            .map(|r| {
                (
                    text(&r[Col::path as usize]),
                    text(&r[Col::r#type as usize]),
                    text(&r[Col::device as usize]),
                )
            })
            .collect();
        // findmnt's flat list of the same mount table.
        let out = std::process::Command::new("findmnt")
            .args(["--mtab", "--noheadings", "--raw", "-o", "TARGET,FSTYPE"])
            .output()
            .expect("findmnt runs");
        assert!(out.status.success());
        let listing = String::from_utf8_lossy(&out.stdout).into_owned();
        let mut theirs: Vec<(String, String)> = listing
            .lines()
            .filter_map(|l| {
                let (t, f) = l.split_once(' ')?;
                Some((
                    mounts::unescape_octal(t.replace("\\x20", "\\040").as_bytes()),
                    f.to_owned(),
                ))
            })
            .collect();
        let mut mine: Vec<(String, String)> = ours
            .iter()
            .map(|(p, t, _)| (p.clone(), t.clone()))
            .collect();
        theirs.sort();
        mine.sort();
        assert_eq!(mine, theirs);
        // df's block counts for / in 1K units agree with statfs (allowing for change).
        let out = std::process::Command::new("df")
            .args(["-k", "--output=size,target", "/"])
            .output()
            .expect("df runs");
        let df = String::from_utf8_lossy(&out.stdout).into_owned();
        let size_k: i64 = df
            .lines()
            .nth(1)
            .unwrap()
            .split_whitespace()
            .next()
            .unwrap()
            .parse()
            .unwrap();
        let root = rows
            .iter()
            .filter(|r| text(&r[Col::path as usize]) == "/")
            .last()
            .expect("/ is mounted");
        let ours_k =
            int(&root[Col::blocks as usize]) * int(&root[Col::blocks_size as usize]) / 1024;
        assert!(
            (ours_k - size_k).abs() <= size_k / 100 + 1,
            "{ours_k} vs {size_k}"
        );
    }
}
