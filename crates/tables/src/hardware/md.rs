//! What the md (software RAID) tables share (not a table): where the kernel shows the
//! arrays, reading `/proc/mdstat` with the log when there is none, and, for tests, a
//! fixture of arrays.

use oxquery_sys::mdstat::{self, MdStat};
use oxquery_table::{QueryContext, Rows, TableResult};
use std::path::Path;

/// The md driver's status file: personalities, arrays and their members.
pub const PROC_MDSTAT: &str = "/proc/mdstat";

/// Where each array's sysfs directory (`<md>/md`) is.
pub const SYS_BLOCK: &str = "/sys/block";

/// An array table's scan over an mdstat file and a `/sys/block` (tests give it fixtures).
pub type Scan = fn(&QueryContext, &mut Rows, &Path, &Path) -> TableResult;

/// A table's scan run over the host's [`PROC_MDSTAT`] and [`SYS_BLOCK`].
pub fn scan_host(scan: Scan, ctx: &QueryContext, rows: &mut Rows) -> TableResult {
    scan(ctx, rows, Path::new(PROC_MDSTAT), Path::new(SYS_BLOCK))
}

/// The mdstat file at `path`, or `None` with a log naming `table` when it cannot be read
/// (the md driver is not loaded).
pub fn read_mdstat(table: &str, path: &Path) -> Option<MdStat> {
    match mdstat::read(path) {
        Ok(stat) => Some(stat),
        Err(e) => {
            log::info!(
                "{table}: cannot read {} ({e}): md driver not loaded",
                path.display()
            );
            None
        }
    }
}

#[cfg(test)]
pub mod testing {
    //! Fixture arrays for the md tables' tests.

    use std::fs;
    use std::path::Path;

    /// A raid5 recovering with a failed member, a raid1 with a pending resync and a
    /// bitmap, a degraded raid1 being resynced, and an inactive array.
    pub const MDSTAT: &str = "\
Personalities : [raid1] [raid6] [raid5] [raid4]
md1 : active raid5 sdd[3] sdc[1] sdb[0](F)
      1953260544 blocks super 1.2 level 5, 512k chunk, algorithm 2 [3/2] [_U_]
      [=>...................]  recovery =  8.5% (83120512/976630272) finish=120.3min speed=123456K/sec
      bitmap: 1/8 pages [4KB], 65536KB chunk

md0 : active (auto-read-only) raid1 sdf1[1] sde1[0]
      976630464 blocks super 1.2 [2/2] [UU]
        resync=PENDING
      bitmap: 0/8 pages [0KB], 65536KB chunk, file: /var/md0.bitmap

md3 : active raid1 sdh[1] sdg[0] sdi[2](S)
      104320 blocks [2/2] [UU]
      [==>..................]  resync = 12.5% (13040/104320) finish=0.5min speed=2608K/sec

md2 : inactive sdj[0](S)
      1046528 blocks super 1.2

unused devices: <none>
";

    /// A directory holding `mdstat` ([`MDSTAT`]) and `block` ([`write_sys`]).
    pub fn write_fixture() -> tempfile::TempDir {
        let dir = tempfile::tempdir().unwrap();
        fs::write(dir.path().join("mdstat"), MDSTAT).unwrap();
        write_sys(&dir.path().join("block"));
        dir
    }

    /// A fixture `/sys/block` with md1's sysfs directory: sdc in slot 1, sdd recovering
    /// into slot 2, sdb failed.
    pub fn write_sys(root: &Path) {
        let md = root.join("md1/md");
        for (attr, value) in [
            ("level", "raid5"),
            ("raid_disks", "3"),
            ("chunk_size", "524288"),
            ("array_state", "clean"),
            ("metadata_version", "1.2"),
            ("dev-sdc/slot", "1"),
            ("dev-sdc/state", "in_sync"),
            ("dev-sdd/slot", "2"),
            ("dev-sdd/state", ""),
            ("dev-sdb/slot", "none"),
            ("dev-sdb/state", "faulty"),
        ] {
            let path = md.join(attr);
            fs::create_dir_all(path.parent().unwrap()).unwrap();
            fs::write(path, format!("{value}\n")).unwrap();
        }
    }
}
