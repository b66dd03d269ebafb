//! `kernel_integrity` (an osquery 3.3.2 table): the verdicts of osquery's own kernel
//! integrity module, which exported them under `/sys/kernel/camb/`.
//!
//! osquery 3.3.2 did not compute anything itself: its kernel module (`camb`) compared the
//! system call table with the addresses in the kernel's symbol table and hashed the
//! kernel's `.text` segment, and the table only read the two sysfs files the module
//! writes. Reading kernel memory from user space is not something a query should do, so
//! oxquery keeps that contract: with the module loaded the table reports its verdicts;
//! without it there is no row, and the reason is logged.

use oxquery_table::{QueryContext, Rows, TableResult, table};
use std::path::Path;

table! {
    name: "kernel_integrity",
    description: "Integrity verdicts exported by a kernel integrity module under /sys/kernel/camb: whether a system call table entry was changed, and a hash of the kernel text segment. No row without the module.",
    columns: {
        sycall_addr_modified: Integer [] "1 when an entry of the system call table points elsewhere than the kernel symbol table says, else 0",
        text_segment_hash: Text [] "Hash of the kernel's .text segment as the module computed it",
    },
    examples: ["select * from kernel_integrity"],
}

const MODIFIED_FILE: &str = "sys/kernel/camb/syscall_addr_modified";
const HASH_FILE: &str = "sys/kernel/camb/text_segment_hash";

/// The module's two values read under `root`; `Err` names the file that could not be
/// read (then there is no row).
fn read_integrity(root: &Path) -> Result<(String, String), String> {
    let read = |rel: &str| {
        let path = root.join(rel);
        std::fs::read(&path)
            .map(|b| String::from_utf8_lossy(&b).trim().to_owned())
            .map_err(|e| format!("cannot read {} ({e})", path.display()))
    };
    Ok((read(MODIFIED_FILE)?, read(HASH_FILE)?))
}

fn generate(_ctx: &QueryContext, rows: &mut Rows) -> TableResult {
    match read_integrity(Path::new("/")) {
        Ok((modified, hash)) => {
            let mut row = rows.row();
            row.set(Col::sycall_addr_modified, modified.parse::<i64>().ok());
            row.set(Col::text_segment_hash, hash);
        }
        Err(why) => {
            log::info!("kernel_integrity: {why}: the kernel integrity module is not loaded");
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use oxquery_table::Host;

    #[test]
    fn reads_the_module_files_under_a_root() {
        let root = tempfile::tempdir().unwrap();
        let dir = root.path().join("sys/kernel/camb");
        std::fs::create_dir_all(&dir).unwrap();
        assert!(read_integrity(root.path()).is_err());
        std::fs::write(dir.join("syscall_addr_modified"), "0\n").unwrap();
        // One file alone is not enough for a row.
        assert!(
            read_integrity(root.path())
                .unwrap_err()
                .contains("text_segment_hash")
        );
        std::fs::write(dir.join("text_segment_hash"), "  ab12cd\n").unwrap();
        assert_eq!(
            read_integrity(root.path()).unwrap(),
            ("0".to_owned(), "ab12cd".to_owned())
        );
    }

    #[test]
    fn live_row_exists_exactly_when_the_module_files_do() {
        let host = Host::default();
        let ctx = QueryContext::everything(&SPEC, &host);
        let rows = Rows::collect(&ctx, generate).unwrap();
        let present = Path::new("/").join(MODIFIED_FILE).is_file()
            && Path::new("/").join(HASH_FILE).is_file();
        assert_eq!(rows.len(), usize::from(present));
    }
}
