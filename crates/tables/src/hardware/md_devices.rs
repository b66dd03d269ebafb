//! `md_devices`: software RAID (md) arrays, from `/proc/mdstat` and each array's
//! `/sys/block/<md>/md`.
//!
//! osquery asked the array itself (`GET_ARRAY_INFO` ioctl, root only); we read the same
//! numbers from sysfs, which any user may: the level, chunk size, slot count, state and
//! metadata version, and the member counts from each `dev-*/state`. Without the sysfs
//! directory the counts come from `/proc/mdstat` alone (`(F)`, `(S)` flags and the
//! `[UU_]` map). `superblock_state` is the kernel's `array_state` (clean, active,
//! read-auto, ...); `superblock_update_time` is not in sysfs and stays NULL. The progress
//! columns keep mdstat's words (`8.5% (83120512/976630272)`, `120.3min`,
//! `123456K/sec`). A `device_name =` constraint reads only those arrays' sysfs.

use super::md;
use oxquery_sys::mdstat::{self, Array, SysArray};
use oxquery_table::{QueryContext, Rows, TableResult, table};
use std::path::Path;

table! {
    name: "md_devices",
    description: "Software RAID (md) arrays, one row each, from /proc/mdstat and /sys/block/<md>/md: level, size, member counts, and resync/recovery/reshape/check progress.",
    columns: {
        device_name: Text [] "Array name (md0)",
        status: Text [] "active or inactive",
        raid_level: Integer [] "RAID level: 0, 1, 4, 5, 6, 10; -1 for linear",
        size: BigInt [] "Usable size in 1 KiB blocks",
        chunk_size: BigInt [] "Chunk size in bytes",
        raid_disks: Integer [] "Number of slots in the array",
        nr_raid_disks: Integer [] "Members attached, spares and failed ones included",
        working_disks: Integer [] "Members that have not failed (active and spare)",
        active_disks: Integer [] "Members in sync in a slot",
        failed_disks: Integer [] "Failed members",
        spare_disks: Integer [] "Spare members",
        superblock_state: Text [] "The kernel's array_state (clean, active, read-auto, ...)",
        superblock_version: Text [] "Metadata version (1.2, 0.90, external:...)",
        superblock_update_time: BigInt [] "Superblock update time; not in sysfs, NULL",
        bitmap_on_mem: Text [] "Bitmap pages in memory (1/8 pages [4KB])",
        bitmap_chunk_size: Text [] "Bitmap chunk size (65536KB chunk)",
        bitmap_external_file: Text [] "External bitmap file; empty when internal",
        recovery_progress: Text [] "Recovery progress (8.5% (done/total)), NULL when none runs",
        recovery_finish: Text [] "Estimated time left of the recovery (120.3min)",
        recovery_speed: Text [] "Recovery speed (123456K/sec)",
        resync_progress: Text [] "Resync progress, or its state (PENDING, DELAYED)",
        resync_finish: Text [] "Estimated time left of the resync",
        resync_speed: Text [] "Resync speed",
        reshape_progress: Text [] "Reshape progress",
        reshape_finish: Text [] "Estimated time left of the reshape",
        reshape_speed: Text [] "Reshape speed",
        check_array_progress: Text [] "Check progress",
        check_array_finish: Text [] "Estimated time left of the check",
        check_array_speed: Text [] "Check speed",
        unused_devices: Text [] "The unused devices line of /proc/mdstat (<none>)",
        other: Text [] "Other words of the array's status line (super 1.2 level 5, 512k chunk, algorithm 2)",
    },
    examples: ["select device_name, raid_level, active_disks, raid_disks from md_devices where active_disks < raid_disks"],
}

fn generate(ctx: &QueryContext, rows: &mut Rows) -> TableResult {
    md::scan_host(scan, ctx, rows)
}

/// Member counts: nr, working, active, failed, spare.
fn counts(array: &Array, sys: Option<&SysArray>) -> [i64; 5] {
    let n = |f: &dyn Fn(&str, bool) -> bool| -> i64 {
        match sys {
            Some(sys) if !sys.members.is_empty() => sys
                .members
                .iter()
                .filter(|m| f(&m.state, m.slot.is_some()))
                .count() as i64,
            _ => array
                .members
                .iter()
                .filter(|m| {
                    let state = match () {
                        _ if m.flags.contains('F') => "faulty",
                        _ if m.flags.contains('S') => "spare",
                        _ => "in_sync",
                    };
                    f(state, !m.flags.contains('S') && !m.flags.contains('F'))
                })
                .count() as i64,
        }
    };
    let has = |state: &str, flag: &str| state.split(',').any(|s| s == flag);
    let nr = n(&|_, _| true);
    let failed = n(&|s, _| has(s, "faulty"));
    let active = match sys {
        Some(s) if !s.members.is_empty() => {
            n(&|s, slotted| slotted && has(s, "in_sync") && !has(s, "faulty"))
        }
        // Without sysfs, the [UU_] map says which slots are up.
        _ => array.member_states.matches('U').count() as i64,
    };
    let spare = n(&|s, slotted| !has(s, "faulty") && (has(s, "spare") || !slotted));
    [nr, nr - failed, active, failed, spare]
}

/// The rows for the mdstat file and sysfs `block` directory given (tests point them at
/// fixtures).
fn scan(ctx: &QueryContext, rows: &mut Rows, mdstat_path: &Path, sys_block: &Path) -> TableResult {
    let Some(stat) = md::read_mdstat(SPEC.name.as_ref(), mdstat_path) else {
        return Ok(());
    };
    let wanted = ctx.eq_texts(Col::device_name);
    for array in &stat.arrays {
        ctx.check()?;
        if wanted.as_ref().is_some_and(|w| !w.contains(&array.name)) {
            continue;
        }
        let sys = mdstat::read_sys(sys_block, &array.name);
        let [nr, working, active, failed, spare] = counts(array, sys.as_ref());
        let mut row = rows.row();
        row.set(Col::device_name, array.name.clone());
        row.set(Col::status, array.status.clone());
        let level = match sys.as_ref().and_then(|s| s.level.as_deref()) {
            Some(level) => mdstat::level_number(level),
            None => mdstat::level_number(&array.personality),
        };
        row.set(Col::raid_level, level);
        row.set(Col::size, array.blocks);
        row.set(Col::chunk_size, sys.as_ref().and_then(|s| s.chunk_size));
        row.set(
            Col::raid_disks,
            sys.as_ref()
                .and_then(|s| s.raid_disks)
                .or(array.slots.map(|s| s.0)),
        );
        row.set(Col::nr_raid_disks, nr);
        row.set(Col::working_disks, working);
        row.set(Col::active_disks, active);
        row.set(Col::failed_disks, failed);
        row.set(Col::spare_disks, spare);
        row.set(
            Col::superblock_state,
            sys.as_ref().and_then(|s| s.array_state.clone()),
        );
        let version = sys
            .as_ref()
            .and_then(|s| s.metadata_version.clone())
            .or_else(|| {
                let mut words = array.other.split_whitespace();
                words
                    .find(|w| *w == "super")
                    .and(words.next())
                    .map(str::to_owned)
            });
        row.set(Col::superblock_version, version);
        row.set(Col::bitmap_on_mem, array.bitmap_on_mem.clone());
        row.set(Col::bitmap_chunk_size, array.bitmap_chunk_size.clone());
        row.set(
            Col::bitmap_external_file,
            array.bitmap_external_file.clone(),
        );
        for (progress, [p, f, s]) in [
            (
                &array.recovery,
                [
                    Col::recovery_progress,
                    Col::recovery_finish,
                    Col::recovery_speed,
                ],
            ),
            (
                &array.resync,
                [Col::resync_progress, Col::resync_finish, Col::resync_speed],
            ),
            (
                &array.reshape,
                [
                    Col::reshape_progress,
                    Col::reshape_finish,
                    Col::reshape_speed,
                ],
            ),
            (
                &array.check,
                [
                    Col::check_array_progress,
                    Col::check_array_finish,
                    Col::check_array_speed,
                ],
            ),
        ] {
            if let Some(progress) = progress {
                row.set(p, progress.progress.clone());
                row.set(f, progress.finish.clone());
                row.set(s, progress.speed.clone());
            }
        }
        row.set(Col::unused_devices, stat.unused.clone());
        row.set(Col::other, array.other.clone());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::hardware::md::testing::{MDSTAT, write_fixture};
    use crate::testing::text;
    use oxquery_table::{Host, Op, Value};
    use std::fs;

    fn scan_fixture(dir: &Path, name: Option<&str>) -> Vec<Vec<Value>> {
        let host = Host::default();
        let mut ctx = QueryContext::everything(&SPEC, &host);
        if let Some(name) = name {
            ctx = ctx.with_constraint(Col::device_name, Op::Eq, name.to_owned());
        }
        let mut rows = Rows::for_context(&ctx);
        scan(&ctx, &mut rows, &dir.join("mdstat"), &dir.join("block")).unwrap();
        rows.iter().map(<[Value]>::to_vec).collect()
    }

    #[test]
    fn fixture_arrays() {
        let dir = write_fixture();
        let rows = scan_fixture(dir.path(), None);
        assert_eq!(rows.len(), 4);
        let get = |r: &Vec<Value>, c: Col| r[c as usize].clone();
        let int = |v: i64| Value::Integer(v);
        let md1 = &rows[0];
        assert_eq!(text(&md1[Col::device_name as usize]), "md1");
        assert_eq!(get(md1, Col::raid_level), int(5));
        assert_eq!(get(md1, Col::size), int(1_953_260_544));
        assert_eq!(get(md1, Col::chunk_size), int(524_288));
        assert_eq!(get(md1, Col::raid_disks), int(3));
        assert_eq!(get(md1, Col::nr_raid_disks), int(3));
        assert_eq!(get(md1, Col::working_disks), int(2));
        assert_eq!(get(md1, Col::active_disks), int(1));
        assert_eq!(get(md1, Col::failed_disks), int(1));
        assert_eq!(get(md1, Col::spare_disks), int(0));
        assert_eq!(text(&md1[Col::superblock_state as usize]), "clean");
        assert_eq!(text(&md1[Col::superblock_version as usize]), "1.2");
        assert_eq!(
            text(&md1[Col::recovery_progress as usize]),
            "8.5% (83120512/976630272)"
        );
        assert_eq!(text(&md1[Col::recovery_finish as usize]), "120.3min");
        assert_eq!(text(&md1[Col::recovery_speed as usize]), "123456K/sec");
        assert_eq!(get(md1, Col::resync_progress), Value::Null);
        assert_eq!(text(&md1[Col::bitmap_on_mem as usize]), "1/8 pages [4KB]");
        assert_eq!(
            text(&md1[Col::other as usize]),
            "super 1.2 level 5, 512k chunk, algorithm 2"
        );
        assert_eq!(text(&md1[Col::unused_devices as usize]), "<none>");

        // No sysfs for the others: mdstat alone.
        let md0 = &rows[1];
        assert_eq!(get(md0, Col::raid_level), int(1));
        assert_eq!(get(md0, Col::raid_disks), int(2));
        assert_eq!(get(md0, Col::active_disks), int(2));
        assert_eq!(text(&md0[Col::resync_progress as usize]), "PENDING");
        assert_eq!(
            text(&md0[Col::bitmap_external_file as usize]),
            "/var/md0.bitmap"
        );
        assert_eq!(text(&md0[Col::superblock_version as usize]), "1.2");
        let md3 = &rows[2];
        assert_eq!(get(md3, Col::spare_disks), int(1));
        assert_eq!(get(md3, Col::nr_raid_disks), int(3));
        assert_eq!(
            text(&md3[Col::resync_progress as usize]),
            "12.5% (13040/104320)"
        );
        assert_eq!(text(&md3[Col::resync_speed as usize]), "2608K/sec");
        assert_eq!(get(md3, Col::superblock_version), Value::Null);
        let md2 = &rows[3];
        assert_eq!(text(&md2[Col::status as usize]), "inactive");
        assert_eq!(get(md2, Col::raid_level), Value::Null);

        let only = scan_fixture(dir.path(), Some("md3"));
        assert_eq!(only, vec![rows[2].clone()]);
        assert!(scan_fixture(dir.path(), Some("md9")).is_empty());
    }

    #[test]
    fn truncated_fixtures_and_missing_file() {
        let dir = tempfile::tempdir().unwrap();
        assert!(scan_fixture(dir.path(), None).is_empty());
        for cut in (0..MDSTAT.len()).step_by(7) {
            fs::write(dir.path().join("mdstat"), &MDSTAT.as_bytes()[..cut]).unwrap();
            let _ = scan_fixture(dir.path(), None);
        }
    }

    /// The live table has one row per array line of /proc/mdstat (none without md).
    #[test]
    fn agrees_with_proc_mdstat() {
        let rows = crate::testing::scan_everything(&SPEC, generate);
        let ours: Vec<String> = rows
            .column(Col::device_name)
            .into_iter()
            .map(text)
            .collect();
        let theirs: Vec<String> = std::fs::read_to_string(md::PROC_MDSTAT)
            .unwrap_or_default()
            .lines()
            .filter(|l| l.starts_with("md"))
            .filter_map(|l| l.split_whitespace().next().map(str::to_owned))
            .collect();
        assert_eq!(ours, theirs);
    }
}
