//! Tables of the `files` domain: facts about paths and their contents.
//!
//! Both tables take osquery's path constraints (`path =`, `path LIKE` with `%` and the
//! recursive `%%`, `directory =`, `directory LIKE`) through `oxquery_sys::pattern`.

#[cfg(feature = "augeas")]
pub mod augeas;
pub mod device_file;
pub mod device_hash;
pub mod device_partitions;
pub mod elf_dynamic;
pub mod elf_info;
pub mod elf_sections;
pub mod elf_segments;
pub mod elf_symbols;
pub mod extended_attributes;
pub mod file;
pub mod hash;
#[cfg(feature = "magic")]
pub mod magic;
pub mod suid_bin;
#[cfg(test)]
pub(crate) mod test_images;
#[cfg(feature = "yara")]
pub mod yara_file;
#[cfg(feature = "yara")]
pub mod yara_groups;
#[cfg(feature = "yara")]
pub mod yara_process;
#[cfg(feature = "yara")]
pub mod yara_sigurl;

use oxquery_table::TableDef;

/// The tables of this domain.
pub fn tables() -> Vec<&'static TableDef> {
    let mut tables: Vec<&'static TableDef> = vec![&file::TABLE, &hash::TABLE];
    tables.extend([
        &device_file::TABLE,
        &device_hash::TABLE,
        &device_partitions::TABLE,
    ]);
    tables.extend([
        &elf_dynamic::TABLE,
        &elf_info::TABLE,
        &elf_sections::TABLE,
        &elf_segments::TABLE,
        &elf_symbols::TABLE,
        &extended_attributes::TABLE,
        &suid_bin::TABLE,
    ]);
    // The libmagic and libaugeas tables exist only in builds with their features;
    // without them they are not registered at all.
    #[cfg(feature = "augeas")]
    tables.push(&augeas::TABLE);
    #[cfg(feature = "magic")]
    tables.push(&magic::TABLE);
    // The YARA tables exist only in builds with the `yara` feature (yara-x is a heavy
    // dependency); without it they are not registered at all.
    #[cfg(feature = "yara")]
    tables.extend([&yara_file::TABLE, &yara_process::TABLE]);
    tables
}

#[cfg(test)]
mod engine_tests {
    use oxquery_engine::{Engine, TableFilter};
    use oxquery_table::{InstanceInfo, Value};
    use std::fs;

    fn engine() -> Engine {
        Engine::new(
            &super::tables(),
            &TableFilter::default(),
            InstanceInfo::default(),
        )
        .unwrap()
    }

    #[test]
    fn required_column_is_enforced() {
        let engine = engine();
        for sql in ["SELECT count(*) FROM file", "SELECT * FROM hash"] {
            let err = engine.query(sql).unwrap_err().to_string();
            assert!(
                err.contains("was queried without a required column in the WHERE clause"),
                "{sql}: {err}"
            );
        }
    }

    #[test]
    fn recursive_like_through_sqlite() {
        let tmp = tempfile::tempdir().unwrap();
        let r = tmp.path();
        fs::create_dir_all(r.join("x/y")).unwrap();
        fs::write(r.join("x/y/z.txt"), b"abc").unwrap();
        fs::write(r.join("top"), b"").unwrap();
        std::os::unix::fs::symlink(r, r.join("x/y/back")).unwrap();
        let dir = r.to_str().unwrap();
        let engine = engine();

        let out = engine
            .query(&format!("SELECT * FROM file WHERE path LIKE '{dir}/%%'"))
            .unwrap();
        assert_eq!(out.columns.len(), 18, "SELECT * leaves hidden columns out");
        let mut paths: Vec<String> = out.rows.iter().map(|r| r[0].to_string()).collect();
        paths.sort();
        let want: Vec<String> = ["top", "x/", "x/y/", "x/y/back/", "x/y/z.txt"]
            .iter()
            .map(|p| format!("{dir}/{p}"))
            .collect();
        assert_eq!(paths, want);

        // A join the way osquery users write it: file paths into hash.
        let out = engine
            .query(&format!(
                "SELECT f.path, h.sha256 FROM file f JOIN hash h ON h.path = f.path \
                 WHERE f.path LIKE '{dir}/%%' AND f.type = 'regular' ORDER BY f.path"
            ))
            .unwrap();
        assert_eq!(out.rows.len(), 2);
        assert_eq!(
            out.rows[1][1],
            Value::Text("ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad".into())
        );
        // NOCASE: an upper-case digest still matches.
        let out = engine
            .query(&format!(
                "SELECT count(*) FROM hash WHERE directory = '{dir}/x/y' AND \
                 sha256 = 'BA7816BF8F01CFEA414140DE5DAE2223B00361A396177A9CB410FF61F20015AD'"
            ))
            .unwrap();
        assert_eq!(out.rows[0][0], Value::Integer(1));
        // IN lists reach the table as several paths.
        let out = engine
            .query(&format!(
                "SELECT path FROM file WHERE path IN ('{dir}/top', '{dir}/x/y/z.txt', '{dir}/no')"
            ))
            .unwrap();
        assert_eq!(out.rows.len(), 2);
    }
}
