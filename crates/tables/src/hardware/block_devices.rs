//! `block_devices`: every block device sysfs lists (`/sys/class/block`: disks,
//! partitions, loop, device-mapper and md devices), with what its first bytes hold.
//!
//! osquery reads udev and probes with libblkid; we read the same sysfs attributes and
//! probe the device ourselves (`oxquery_sys::block`: ext2/3/4, XFS, btrfs, swap, LUKS,
//! the types `blkid` calls `ext4`, `xfs`, `btrfs`, `swap`, `crypto_LUKS`), only when
//! `type`, `uuid` or `label` is used. As in osquery, `size` counts 512-byte sectors (the
//! kernel's unit), not bytes; `serial` is the SCSI `wwid`, else the device's own serial;
//! `parent` is a partition's disk, or for an LVM volume the physical volume under it
//! (osquery asked liblvm; we read the device-mapper `slaves/`). Reading a device needs
//! root: without it the probed columns stay NULL. A `name = '/dev/...'` constraint
//! reads only those devices.

use oxquery_sys::block::{BlockDevice, BlockDevices};
use oxquery_table::{QueryContext, Rows, TableResult, table};

table! {
    name: "block_devices",
    description: "Block devices of the host (disks, partitions, loop, device-mapper and md devices), from /sys/class/block, with the file system type, UUID and label their first bytes hold.",
    columns: {
        name: Text [INDEX] "Device node (e.g. /dev/sda1)",
        parent: Text [] "A partition's disk, or the physical volume under an LVM volume (e.g. /dev/sda)",
        vendor: Text [] "Vendor the device reports (sysfs device/vendor)",
        model: Text [] "Model the device reports (sysfs device/model)",
        serial: Text [] "Serial: the SCSI wwid, else the device's serial attribute",
        size: BigInt [] "Size in 512-byte sectors",
        block_size: Integer [] "Logical block size in bytes",
        uuid: Text [COLLATE_NOCASE] "UUID of the file system, swap area or LUKS container on the device",
        r#type: Text [] "What the device holds, as blkid names it (ext4, xfs, btrfs, swap, crypto_LUKS)",
        label: Text [] "Label of the file system, swap area or LUKS2 container",
    },
    examples: [
        "select name, size, type, uuid from block_devices",
        "select * from block_devices where name = '/dev/sda1'",
    ],
}

fn generate(ctx: &QueryContext, rows: &mut Rows) -> TableResult {
    scan(ctx, rows, &BlockDevices::default())
}

/// The devices of `nodes` (device node paths, a query's `name =` values) that exist, or
/// every device for `None`.
pub(crate) fn select_devices(
    nodes: Option<Vec<String>>,
    devices: &BlockDevices,
) -> Vec<BlockDevice> {
    match nodes {
        Some(nodes) => nodes
            .iter()
            .filter_map(|n| devices.device_for_node(n))
            .collect(),
        None => devices
            .names()
            .iter()
            .filter_map(|n| devices.device(n))
            .collect(),
    }
}

/// The kernel name of a device's parent (see the module documentation).
pub(crate) fn parent_name(dev: &BlockDevice) -> Option<String> {
    if let Some(disk) = dev.partition_parent() {
        return Some(disk);
    }
    let uuid = dev.dm_uuid()?;
    uuid.starts_with("LVM-")
        .then(|| dev.slaves().into_iter().next())
        .flatten()
}

/// The rows for `devices` (the entry point tests point at a fixture tree).
fn scan(ctx: &QueryContext, rows: &mut Rows, devices: &BlockDevices) -> TableResult {
    let selected = select_devices(ctx.eq_texts(Col::name), devices);
    if selected.is_empty() && !ctx.is_constrained(Col::name) {
        log::info!(
            "block_devices: no devices under {}",
            devices.class_dir.display()
        );
    }
    let probing = [Col::uuid, Col::r#type, Col::label]
        .iter()
        .any(|&c| ctx.is_used(c));
    for dev in selected {
        ctx.check()?;
        let signature = if probing { dev.signature() } else { None };
        let mut row = rows.row();
        row.set(Col::name, devices.node_of(&dev.name));
        row.set_with(Col::parent, || {
            parent_name(&dev).map(|p| devices.node_of(&p))
        });
        row.set_with(Col::vendor, || dev.attr("device/vendor"));
        row.set_with(Col::model, || dev.attr("device/model"));
        row.set_with(Col::serial, || {
            dev.attr("device/wwid")
                .or_else(|| dev.attr("serial"))
                .or_else(|| dev.attr("device/serial"))
        });
        row.set_with(Col::size, || dev.size_sectors());
        row.set_with(Col::block_size, || dev.logical_block_size());
        if let Some(sig) = signature {
            row.set(Col::r#type, sig.kind);
            row.set(Col::uuid, sig.uuid);
            row.set(Col::label, sig.label);
        }
    }
    Ok(())
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::testing::text;
    use oxquery_table::{Host, Op, Value};
    use oxquery_test_support::require_tool;
    use std::fs;
    use std::path::{Path, PathBuf};

    /// A fixture sysfs tree and `/dev` in a temp dir: a disk `vdz` with a partition
    /// `vdz1` whose "node" is an ext4 image (when mkfs.ext4 is there).
    pub(crate) struct Fixture {
        pub dir: tempfile::TempDir,
        pub devices: BlockDevices,
    }

    impl Fixture {
        pub(crate) fn new() -> Fixture {
            let dir = tempfile::tempdir().unwrap();
            let class = dir.path().join("sys/class/block");
            let devtree = dir.path().join("sys/devices/virtual/block");
            fs::create_dir_all(&class).unwrap();
            fs::create_dir_all(dir.path().join("dev")).unwrap();
            let devices = BlockDevices {
                class_dir: class,
                dev_dir: dir.path().join("dev"),
            };
            let f = Fixture { dir, devices };
            f.add_device(
                &devtree.join("vdz"),
                &[
                    ("size", "8192\n"),
                    ("queue/logical_block_size", "512\n"),
                    ("device/vendor", "ACME    \n"),
                    ("device/model", "Disk 9000  \n"),
                    ("device/wwid", "naa.5000\n"),
                ],
            );
            f.add_device(
                &devtree.join("vdz/vdz1"),
                &[("size", "8000\n"), ("partition", "1\n")],
            );
            f
        }

        /// Makes a device directory under the fixture's device tree with `attrs`, and
        /// its `/sys/class/block` link.
        pub(crate) fn add_device(&self, dir: &Path, attrs: &[(&str, &str)]) {
            for (attr, value) in attrs {
                let path = dir.join(attr);
                fs::create_dir_all(path.parent().unwrap()).unwrap();
                fs::write(path, value).unwrap();
            }
            fs::create_dir_all(dir).unwrap();
            let name = dir.file_name().unwrap();
            std::os::unix::fs::symlink(dir, self.devices.class_dir.join(name)).unwrap();
        }

        pub(crate) fn node(&self, name: &str) -> PathBuf {
            self.devices.dev_dir.join(name)
        }
    }

    fn scan_fixture(devices: &BlockDevices, name: Option<&str>) -> Vec<Vec<Value>> {
        let host = Host::default();
        let mut ctx = QueryContext::everything(&SPEC, &host);
        if let Some(name) = name {
            ctx = ctx.with_constraint(Col::name, Op::Eq, name.to_owned());
        }
        let mut rows = Rows::for_context(&ctx);
        scan(&ctx, &mut rows, devices).unwrap();
        rows.iter().map(<[Value]>::to_vec).collect()
    }

    #[test]
    fn fixture_tree() {
        let f = Fixture::new();
        // An LVM volume on the partition, and a corrupted size.
        f.add_device(
            &f.dir.path().join("sys/devices/virtual/block/dm-3"),
            &[
                ("size", "12\u{0}x"),
                ("dm/uuid", "LVM-abc\n"),
                ("slaves/vdz1", ""),
            ],
        );
        let mkfs = require_tool("mkfs.ext4");
        if let Some(mkfs) = &mkfs {
            fs::write(f.node("vdz1"), vec![0u8; 4 << 20]).unwrap();
            let ok = std::process::Command::new(mkfs)
                .args([
                    "-q",
                    "-F",
                    "-L",
                    "fixture",
                    "-U",
                    "11111111-2222-3333-4444-555555555555",
                ])
                .arg(f.node("vdz1"))
                .status()
                .unwrap();
            assert!(ok.success());
            // An empty device (size 0) is not opened, whatever its node would give.
            f.add_device(
                &f.dir.path().join("sys/devices/virtual/block/loop5"),
                &[("size", "0\n")],
            );
            fs::copy(f.node("vdz1"), f.node("loop5")).unwrap();
            let empty = scan_fixture(&f.devices, Some(&f.devices.node_of("loop5")));
            assert_eq!(empty[0][Col::r#type as usize], Value::Null);
            assert_eq!(empty[0][Col::size as usize], Value::Integer(0));
            fs::remove_file(f.devices.class_dir.join("loop5")).unwrap();
        }
        let rows = scan_fixture(&f.devices, None);
        assert_eq!(rows.len(), 3);
        let node = |n: &str| f.devices.node_of(n);
        let dm = &rows[0];
        assert_eq!(text(&dm[Col::name as usize]), node("dm-3"));
        assert_eq!(text(&dm[Col::parent as usize]), node("vdz1"));
        assert_eq!(dm[Col::size as usize], Value::Null);
        let disk = &rows[1];
        assert_eq!(text(&disk[Col::name as usize]), node("vdz"));
        assert_eq!(disk[Col::parent as usize], Value::Null);
        assert_eq!(text(&disk[Col::vendor as usize]), "ACME");
        assert_eq!(text(&disk[Col::model as usize]), "Disk 9000");
        assert_eq!(text(&disk[Col::serial as usize]), "naa.5000");
        assert_eq!(disk[Col::size as usize], Value::Integer(8192));
        assert_eq!(disk[Col::block_size as usize], Value::Integer(512));
        assert_eq!(disk[Col::r#type as usize], Value::Null, "no node to probe");
        let part = &rows[2];
        assert_eq!(text(&part[Col::parent as usize]), node("vdz"));
        assert_eq!(part[Col::block_size as usize], Value::Integer(512));
        if mkfs.is_some() {
            assert_eq!(text(&part[Col::r#type as usize]), "ext4");
            assert_eq!(text(&part[Col::label as usize]), "fixture");
            assert_eq!(
                text(&part[Col::uuid as usize]),
                "11111111-2222-3333-4444-555555555555"
            );
        }

        // `name =` reads only that device; a name that is no device gives nothing.
        let only = scan_fixture(&f.devices, Some(&node("vdz1")));
        assert_eq!(only.len(), 1);
        assert_eq!(only[0], rows[2]);
        assert!(scan_fixture(&f.devices, Some("/dev/../etc/passwd")).is_empty());
        assert!(scan_fixture(&f.devices, Some(&node("nope"))).is_empty());
    }

    /// Through SQL: each device's name fed back as `name =` (a join on the index
    /// column) finds exactly its own row, and the engine hands that constraint over.
    #[test]
    fn name_constraint_through_sql() {
        let engine = crate::testing::engine(&[&TABLE]);
        let all = engine
            .query("SELECT name, size FROM block_devices")
            .unwrap();
        let joined = engine
            .query(
                "SELECT b2.name, b2.size FROM block_devices b1 \
                 JOIN block_devices b2 ON b2.name = b1.name",
            )
            .unwrap();
        assert_eq!(joined.rows, all.rows);
        assert!(
            engine
                .query("SELECT * FROM block_devices WHERE name = '/dev/no-such-device'")
                .unwrap()
                .rows
                .is_empty()
        );
    }

    /// Every device `lsblk` shows is a row with the same size (ours in sectors), parent,
    /// vendor, model, serial, and probed type, UUID and label where lsblk has them.
    #[test]
    fn agrees_with_lsblk() {
        let rows = crate::testing::scan_everything(&SPEC, generate);
        let Some(lsblk) = require_tool("lsblk") else {
            return;
        };
        let out = crate::testing::tool_stdout(
            lsblk.to_str().unwrap(),
            &[
                "-J",
                "-b",
                "-l",
                "-o",
                "PATH,SIZE,MODEL,VENDOR,PKNAME,UUID,LABEL,FSTYPE,SERIAL,TYPE",
            ],
        );
        let json: serde_json::Value = serde_json::from_str(&out).unwrap();
        let devices = json["blockdevices"].as_array().unwrap();
        assert!(!devices.is_empty(), "lsblk shows no devices");
        for d in devices {
            let path = d["path"].as_str().unwrap();
            let row = rows
                .iter()
                .find(|r| r[Col::name as usize] == Value::Text(path.to_owned()))
                .unwrap_or_else(|| panic!("{path} is not a row"));
            let ours = |c: Col| match &row[c as usize] {
                Value::Null => None,
                v => Some(text(v)),
            };
            assert_eq!(
                row[Col::size as usize],
                Value::Integer(d["size"].as_i64().unwrap() / 512),
                "{path}"
            );
            if d["type"] == "part" {
                let pk = d["pkname"].as_str().unwrap();
                assert_eq!(ours(Col::parent), Some(format!("/dev/{pk}")), "{path}");
            }
            for (col, key) in [
                (Col::vendor, "vendor"),
                (Col::model, "model"),
                (Col::serial, "serial"),
                (Col::uuid, "uuid"),
                (Col::label, "label"),
                (Col::r#type, "fstype"),
            ] {
                if let Some(theirs) = d[key].as_str() {
                    assert_eq!(ours(col).as_deref(), Some(theirs.trim()), "{path} {key}");
                }
            }
        }
    }
}
