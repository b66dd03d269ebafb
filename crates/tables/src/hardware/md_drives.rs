//! `md_drives`: the members of each software RAID (md) array, and the empty slots.
//!
//! osquery asked each array (`GET_DISK_INFO` ioctls, root only); we read
//! `/sys/block/<md>/md/dev-*` (`slot`, `state`), falling back to the member list of
//! `/proc/mdstat` (`sdb[0](F)`). As in osquery: a member out of the array (failed or
//! spare) takes its descriptor number as its slot when that is a real slot, else one of
//! the slots nobody holds; each slot still empty then gets a row with drive `unknown`
//! and state `removed`. States use osquery's words: `active sync`, `faulty`, `spare`,
//! `writemostly`, `failfast`, `journal`, and `recovering` for a member being rebuilt.

use super::md;
use oxquery_sys::mdstat::{self, Array, SysArray};
use oxquery_table::{QueryContext, Rows, TableResult, table};
use std::path::Path;

table! {
    name: "md_drives",
    description: "Members of software RAID (md) arrays and their slots, one row each (an empty slot is a row with drive unknown, state removed), from /sys/block/<md>/md and /proc/mdstat.",
    columns: {
        md_device_name: Text [] "Array name (md0)",
        drive_name: Text [] "Member device node (/dev/sdb1), unknown for an empty slot",
        slot: Integer [] "Slot of the member in the array",
        state: Text [] "active sync, faulty, spare, writemostly, recovering, or removed for an empty slot",
    },
    examples: ["select * from md_drives where state != 'active sync'"],
}

fn generate(ctx: &QueryContext, rows: &mut Rows) -> TableResult {
    md::scan_host(scan, ctx, rows)
}

/// osquery's words for the kernel's member flags, in its order.
fn state_words(flags: &str) -> String {
    let has = |f: &str| flags.split(',').any(|s| s == f);
    let mut words = Vec::new();
    if has("faulty") {
        words.push("faulty");
    }
    if has("in_sync") {
        words.push("active sync");
    }
    if has("write_mostly") {
        words.push("writemostly");
    }
    if has("failfast") {
        words.push("failfast");
    }
    if has("journal") {
        words.push("journal");
    }
    if has("spare") && !has("faulty") {
        words.push("spare");
    }
    if words.is_empty() {
        "recovering".to_owned()
    } else {
        words.join(" ")
    }
}

/// One member: name, slot when it holds one, descriptor number, state words.
struct Drive {
    name: String,
    slot: Option<i64>,
    number: Option<i64>,
    state: String,
}

fn drives(array: &Array, sys: Option<&SysArray>) -> Vec<Drive> {
    match sys {
        Some(sys) if !sys.members.is_empty() => sys
            .members
            .iter()
            .map(|m| Drive {
                name: m.name.clone(),
                slot: m.slot,
                number: array
                    .members
                    .iter()
                    .find(|a| a.name == m.name)
                    .and_then(|a| a.number),
                state: state_words(&m.state),
            })
            .collect(),
        _ => array
            .members
            .iter()
            .map(|m| {
                let flags = match () {
                    _ if m.flags.contains('F') => "faulty",
                    _ if m.flags.contains('S') => "spare",
                    _ if m.flags.contains('W') => "in_sync,write_mostly",
                    _ => "in_sync",
                };
                // In mdstat an active member's number is its slot.
                let in_array = !m.flags.contains('F') && !m.flags.contains('S');
                Drive {
                    name: m.name.clone(),
                    slot: if in_array { m.number } else { None },
                    number: m.number,
                    state: state_words(flags),
                }
            })
            .collect(),
    }
}

/// The rows for the mdstat file and sysfs `block` directory given (tests point them at
/// fixtures).
fn scan(ctx: &QueryContext, rows: &mut Rows, mdstat_path: &Path, sys_block: &Path) -> TableResult {
    let Some(stat) = md::read_mdstat(SPEC.name.as_ref(), mdstat_path) else {
        return Ok(());
    };
    for array in &stat.arrays {
        ctx.check()?;
        let sys = mdstat::read_sys(sys_block, &array.name);
        let raid_disks = sys
            .as_ref()
            .and_then(|s| s.raid_disks)
            .or(array.slots.map(|s| s.0))
            .unwrap_or(0)
            .clamp(0, 4096);
        let mut drives = drives(array, sys.as_ref());
        // Members out of the array take their number as slot when it is a real one.
        let mut free: Vec<i64> = (0..raid_disks)
            .filter(|s| !drives.iter().any(|d| d.slot == Some(*s)))
            .collect();
        for d in drives.iter_mut().filter(|d| d.slot.is_none()) {
            if let Some(n) = d.number.filter(|n| free.contains(n)) {
                d.slot = Some(n);
                free.retain(|&s| s != n);
            }
        }
        // Then failed members (not spares) take the slots left, in order.
        for d in drives
            .iter_mut()
            .filter(|d| d.slot.is_none() && d.state.contains("faulty"))
        {
            if !free.is_empty() {
                d.slot = Some(free.remove(0));
            }
        }
        for d in drives {
            let mut row = rows.row();
            row.set(Col::md_device_name, array.name.clone());
            row.set(
                Col::drive_name,
                format!("/dev/{}", d.name.replace('!', "/")),
            );
            row.set(Col::slot, d.slot);
            row.set(Col::state, d.state);
        }
        for slot in free {
            let mut row = rows.row();
            row.set(Col::md_device_name, array.name.clone());
            row.set(Col::drive_name, "unknown");
            row.set(Col::slot, slot);
            row.set(Col::state, "removed");
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::hardware::md::testing::write_fixture;
    use crate::testing::text;
    use oxquery_table::{Host, Value};
    use std::fs;

    fn rows_for(dir: &Path) -> Vec<(String, String, Option<i64>, String)> {
        let host = Host::default();
        let ctx = QueryContext::everything(&SPEC, &host);
        let mut rows = Rows::for_context(&ctx);
        scan(&ctx, &mut rows, &dir.join("mdstat"), &dir.join("block")).unwrap();
        rows.iter()
            .map(|r| {
                let slot = match r[Col::slot as usize] {
                    Value::Integer(i) => Some(i),
                    _ => None,
                };
                (text(&r[0]), text(&r[1]), slot, text(&r[3]))
            })
            .collect()
    }

    #[test]
    fn fixture_members_and_empty_slots() {
        let dir = write_fixture();
        let got = rows_for(dir.path());
        let want = |a: &str, d: &str, s: Option<i64>, st: &str| {
            (a.to_owned(), d.to_owned(), s, st.to_owned())
        };
        assert_eq!(
            got,
            vec![
                // md1 from sysfs: sdb failed (its number 0 is a free slot), sdc in sync,
                // sdd being rebuilt into slot 2.
                want("md1", "/dev/sdb", Some(0), "faulty"),
                want("md1", "/dev/sdc", Some(1), "active sync"),
                want("md1", "/dev/sdd", Some(2), "recovering"),
                // md0 and md3 from mdstat alone; md3's spare has number 2, no real slot.
                want("md0", "/dev/sdf1", Some(1), "active sync"),
                want("md0", "/dev/sde1", Some(0), "active sync"),
                want("md3", "/dev/sdh", Some(1), "active sync"),
                want("md3", "/dev/sdg", Some(0), "active sync"),
                want("md3", "/dev/sdi", None, "spare"),
                // md2 is inactive: its spare, no slots.
                want("md2", "/dev/sdj", None, "spare"),
            ]
        );
        // A degraded raid1 whose second member is gone: one empty slot.
        fs::remove_dir_all(dir.path().join("block")).unwrap();
        fs::write(
            dir.path().join("mdstat"),
            "Personalities : [raid1]\nmd5 : active raid1 sda1[0]\n      1000 blocks super 1.2 [2/1] [U_]\n\nunused devices: <none>\n",
        )
        .unwrap();
        assert_eq!(
            rows_for(dir.path()),
            vec![
                want("md5", "/dev/sda1", Some(0), "active sync"),
                want("md5", "unknown", Some(1), "removed"),
            ]
        );
        // Corrupted counts cannot make huge numbers of rows.
        fs::write(
            dir.path().join("mdstat"),
            "md6 : active raid1 sda[0]\n 1 blocks [999999999/1] [U]\n",
        )
        .unwrap();
        assert!(rows_for(dir.path()).len() <= 4097);
    }
}
