//! `lxd_storage_pools`: the LXD daemon's storage pools.

use super::lxd::{self, int, percent_encode, text, text_in};
use oxquery_table::{QueryContext, Rows, TableResult, table};
use serde_json::Value;

table! {
    name: "lxd_storage_pools",
    description: "Storage pools of the LXD daemon (GET /1.0/storage-pools?recursion=1 on --lxd_socket). Space and inodes come from GET /1.0/storage-pools/<name>/resources, asked only when the query uses them. No daemon: no rows.",
    columns: {
        name: Text [] "Pool name",
        driver: Text [] "Storage driver (dir, btrfs, lvm, zfs, ceph, ...)",
        source: Text [] "Where the pool's storage is (config source: a path, device or dataset)",
        size: Text [] "Size of the pool as configured (config size, e.g. 30GiB; '' when not set)",
        space_used: BigInt [] "Bytes used in the pool",
        space_total: BigInt [] "Bytes in the pool",
        inodes_used: BigInt [] "Inodes used",
        inodes_total: BigInt [] "Inodes in the pool",
    },
    examples: ["select name, driver, source, space_used, space_total from lxd_storage_pools"],
}

const RESOURCE_COLUMNS: [Col; 4] = [
    Col::space_used,
    Col::space_total,
    Col::inodes_used,
    Col::inodes_total,
];

fn generate(ctx: &QueryContext, rows: &mut Rows) -> TableResult {
    let table = TABLE.spec.name.as_ref();
    let want_resources = RESOURCE_COLUMNS.iter().any(|c| ctx.is_used(*c));
    for pool in lxd::list(ctx, table, "/1.0/storage-pools")? {
        ctx.check()?;
        let name = text(&pool, "name");
        let resources = match want_resources {
            true => {
                let target = format!("/1.0/storage-pools/{}/resources", percent_encode(&name));
                lxd::get(ctx, table, &target)?
            }
            false => None,
        };
        let mut row = rows.row();
        row.set(Col::name, name.as_str());
        row.set(Col::driver, text(&pool, "driver"));
        row.set(Col::source, text_in(&pool, "config", "source"));
        row.set(Col::size, text_in(&pool, "config", "size"));
        if let Some(r) = &resources {
            let space = r.get("space").unwrap_or(&Value::Null);
            let inodes = r.get("inodes").unwrap_or(&Value::Null);
            row.set(Col::space_used, int(space, "used"));
            row.set(Col::space_total, int(space, "total"));
            row.set(Col::inodes_used, int(inodes, "used"));
            row.set(Col::inodes_total, int(inodes, "total"));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::containers::lxd::testing::daemon;
    use crate::testing::{rows_of, text};
    use oxquery_table::Value;

    /// The `dir` pool the harness made: its directory inside LXD_DIR, and the totals of the
    /// filesystem holding it as statvfs(3) gives them.
    #[test]
    fn matches_the_pool_the_test_made() {
        let Some(d) = daemon() else { return };
        let host = d.host();
        let rows = rows_of(&QueryContext::everything(TABLE.spec, &host), generate);
        assert_eq!(rows.len(), 1, "{rows:?}");
        let r = &rows[0];
        assert_eq!(text(&r[Col::name as usize]), d.pool);
        assert_eq!(text(&r[Col::driver as usize]), "dir");
        let source = d.dir.join("storage-pools").join(&d.pool);
        assert_eq!(text(&r[Col::source as usize]), source.to_str().unwrap());
        assert_eq!(text(&r[Col::size as usize]), "");
        let path = std::ffi::CString::new(source.to_str().unwrap()).unwrap();
        // SAFETY: a NUL-terminated path and a zeroed out-struct.
        let mut st: libc::statvfs = unsafe { std::mem::zeroed() };
        assert_eq!(unsafe { libc::statvfs(path.as_ptr(), &mut st) }, 0);
        let total = (st.f_blocks as u64 * st.f_frsize as u64) as i64;
        assert_eq!(r[Col::space_total as usize], Value::Integer(total));
        assert_eq!(
            r[Col::inodes_total as usize],
            Value::Integer(st.f_files as i64)
        );
        let Value::Integer(used) = r[Col::space_used as usize] else {
            panic!()
        };
        assert!(used > 0 && used <= total);
    }
}
