//! `pci_devices`: the PCI devices sysfs lists (`/sys/bus/pci/devices`), named from the
//! host's `pci.ids`.
//!
//! osquery reads udev's properties, which come from the same sysfs attributes and the
//! same database; we read both directly. The database is parsed only when a name column
//! is used. Without any `pci.ids` the name columns are NULL (osquery gave no rows at all
//! then); an id the database does not know gives an empty name, as udev's empty property
//! did. Ids are `0x`-prefixed lowercase hex, as osquery prints them.

use super::bus_devices::{self, BusDevice};
use oxquery_sys::hwids::{IdDatabase, PCI_IDS_PATHS};
use oxquery_table::{QueryContext, Rows, TableResult, table};
use std::path::Path;

table! {
    name: "pci_devices",
    description: "PCI devices present on the host, one row each, from /sys/bus/pci/devices; vendor, device, class and subsystem names from the host's pci.ids.",
    columns: {
        pci_slot: Text [] "PCI slot (domain:bus:device.function, e.g. 0000:00:1f.2)",
        pci_class: Text [] "Class name from pci.ids (e.g. Bridge); empty when unknown, NULL without a pci.ids",
        driver: Text [] "Kernel driver bound to the device; empty when none",
        vendor: Text [] "Vendor name from pci.ids; empty when unknown, NULL without a pci.ids",
        vendor_id: Text [COLLATE_NOCASE] "Vendor id in hex (0x8086)",
        model: Text [] "Device name from pci.ids; empty when unknown, NULL without a pci.ids",
        model_id: Text [COLLATE_NOCASE] "Device id in hex (0x0d57)",
        pci_class_id: Text [COLLATE_NOCASE] "Class id in hex (0x06)",
        pci_subclass_id: Text [COLLATE_NOCASE] "Subclass id in hex (0x00)",
        pci_subclass: Text [] "Subclass name from pci.ids (e.g. Host bridge); empty when unknown, NULL without a pci.ids",
        subsystem_vendor_id: Text [COLLATE_NOCASE] "Subsystem (board) vendor id in hex",
        subsystem_vendor: Text [] "Subsystem vendor name from pci.ids; empty when unknown, NULL without a pci.ids",
        subsystem_model_id: Text [COLLATE_NOCASE] "Subsystem (board) device id in hex",
        subsystem_model: Text [] "Subsystem name listed under the device in pci.ids; empty when unknown, NULL without a pci.ids",
    },
    examples: [
        "select pci_slot, vendor, model, driver from pci_devices",
        "select * from pci_devices where pci_class_id = '0x02'",
    ],
}

const SYS_PCI_DEVICES: &str = "/sys/bus/pci/devices";

/// The columns that need the id database.
const NAME_COLUMNS: [Col; 6] = [
    Col::pci_class,
    Col::vendor,
    Col::model,
    Col::pci_subclass,
    Col::subsystem_vendor,
    Col::subsystem_model,
];

/// A sysfs id attribute (`0x8086`) as a number; `None` when missing or corrupted.
fn hex_attr(device: &BusDevice, name: &str) -> Option<u32> {
    let text = device.attr(name)?;
    u32::from_str_radix(text.strip_prefix("0x")?, 16).ok()
}

fn generate(ctx: &QueryContext, rows: &mut Rows) -> TableResult {
    scan(ctx, rows, Path::new(SYS_PCI_DEVICES), PCI_IDS_PATHS)
}

/// The rows for the devices under `devices_dir`, named from the first readable of
/// `ids_paths` (the table's entry point, with paths tests can point at fixtures).
fn scan(
    ctx: &QueryContext,
    rows: &mut Rows,
    devices_dir: &Path,
    ids_paths: &[impl AsRef<Path>],
) -> TableResult {
    let Some(slots) = bus_devices::list(
        devices_dir,
        SPEC.name.as_ref(),
        "no PCI bus, or sysfs not mounted",
    ) else {
        return Ok(());
    };
    let db = if NAME_COLUMNS.iter().any(|&c| ctx.is_used(c)) {
        bus_devices::load_ids(
            ids_paths,
            "pci_devices: no readable pci.ids, names are NULL",
        )
    } else {
        None
    };
    for slot in slots {
        ctx.check()?;
        let id16 = |name| hex_attr(&slot, name).and_then(|v| u16::try_from(v).ok());
        let vendor = id16("vendor");
        let device = id16("device");
        let sub_vendor = id16("subsystem_vendor");
        let sub_device = id16("subsystem_device");
        // `class` is 0xCCSSPP: class, subclass, programming interface.
        let class = hex_attr(&slot, "class").filter(|&c| c <= 0xff_ffff);
        let class_id = class.map(|c| (c >> 16) as u8);
        let subclass_id = class.map(|c| (c >> 8) as u8);
        let hex16 = |v: Option<u16>| v.map(|v| format!("0x{v:04x}"));
        let hex8 = |v: Option<u8>| v.map(|v| format!("0x{v:02x}"));
        // With a database, an unknown id (or an unreadable one) is an empty name.
        let name = |f: &dyn Fn(&IdDatabase) -> Option<&str>| -> Option<String> {
            db.as_ref().map(|db| f(db).unwrap_or("").to_owned())
        };

        let mut row = rows.row();
        row.set_with(Col::pci_slot, || slot.name.clone());
        row.set_with(Col::driver, || {
            std::fs::read_link(slot.dir.join("driver"))
                .ok()
                .and_then(|p| p.file_name()?.to_str().map(str::to_owned))
                .unwrap_or_default()
        });
        row.set(Col::vendor_id, hex16(vendor));
        row.set(Col::model_id, hex16(device));
        row.set(Col::pci_class_id, hex8(class_id));
        row.set(Col::pci_subclass_id, hex8(subclass_id));
        row.set(Col::subsystem_vendor_id, hex16(sub_vendor));
        row.set(Col::subsystem_model_id, hex16(sub_device));
        if db.is_some() {
            row.set(Col::vendor, name(&|db| db.vendor(vendor?)));
            row.set(Col::model, name(&|db| db.device(vendor?, device?)));
            row.set(Col::pci_class, name(&|db| db.class(class_id?)));
            row.set(
                Col::pci_subclass,
                name(&|db| db.subclass(class_id?, subclass_id?)),
            );
            row.set(Col::subsystem_vendor, name(&|db| db.vendor(sub_vendor?)));
            row.set(
                Col::subsystem_model,
                name(&|db| db.subsystem(vendor?, device?, sub_vendor?, sub_device?)),
            );
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::hardware::bus_devices::testing::write_device;
    use crate::testing::{text, tool_stdout};
    use oxquery_table::{Host, Value};
    use oxquery_test_support::require_tool;
    use std::collections::BTreeMap;
    use std::fs;

    fn scan_dir(devices: &Path, ids: &[&Path]) -> Vec<Vec<Value>> {
        crate::hardware::bus_devices::testing::scan_rows(&SPEC, |ctx, rows| {
            scan(ctx, rows, devices, ids)
        })
    }

    const IDS: &str = "8086  Intel Corporation\n\t1234  Test NIC\n\t\t1af4 1100  QEMU board\n\
                       1af4  Red Hat, Inc.\nC 02  Network controller\n\t00  Ethernet controller\n";

    #[test]
    fn fixture_devices_with_names_and_corrupted_values() {
        let dir = tempfile::tempdir().unwrap();
        let devices = dir.path().join("devices");
        write_device(
            &devices,
            "0000:00:03.0",
            &[
                ("vendor", "0x8086\n"),
                ("device", "0x1234\n"),
                ("class", "0x020000\n"),
                ("subsystem_vendor", "0x1af4\n"),
                ("subsystem_device", "0x1100\n"),
            ],
        );
        fs::create_dir_all(dir.path().join("drivers/e1000")).unwrap();
        std::os::unix::fs::symlink(
            dir.path().join("drivers/e1000"),
            devices.join("0000:00:03.0/driver"),
        )
        .unwrap();
        // Truncated and corrupted attributes: the row stays, those ids are NULL.
        write_device(
            &devices,
            "0000:00:04.0",
            &[("vendor", "0x80"), ("device", "zz\n"), ("class", "0x0200")],
        );
        let ids = dir.path().join("pci.ids");
        fs::write(&ids, IDS).unwrap();

        let rows = scan_dir(&devices, &[&dir.path().join("missing.ids"), &ids]);
        assert_eq!(rows.len(), 2);
        let r = &rows[0];
        assert_eq!(text(&r[Col::pci_slot as usize]), "0000:00:03.0");
        assert_eq!(text(&r[Col::driver as usize]), "e1000");
        assert_eq!(text(&r[Col::vendor_id as usize]), "0x8086");
        assert_eq!(text(&r[Col::model_id as usize]), "0x1234");
        assert_eq!(text(&r[Col::vendor as usize]), "Intel Corporation");
        assert_eq!(text(&r[Col::model as usize]), "Test NIC");
        assert_eq!(text(&r[Col::pci_class_id as usize]), "0x02");
        assert_eq!(text(&r[Col::pci_subclass_id as usize]), "0x00");
        assert_eq!(text(&r[Col::pci_class as usize]), "Network controller");
        assert_eq!(text(&r[Col::pci_subclass as usize]), "Ethernet controller");
        assert_eq!(text(&r[Col::subsystem_vendor as usize]), "Red Hat, Inc.");
        assert_eq!(text(&r[Col::subsystem_model as usize]), "QEMU board");
        let r = &rows[1];
        assert_eq!(text(&r[Col::vendor_id as usize]), "0x0080");
        assert_eq!(r[Col::model_id as usize], Value::Null);
        assert_eq!(text(&r[Col::pci_class_id as usize]), "0x00");
        assert_eq!(text(&r[Col::driver as usize]), "");
        assert_eq!(text(&r[Col::model as usize]), "", "unknown id, empty name");

        // No database at all: names NULL, ids still there.
        let rows = scan_dir(&devices, &[&dir.path().join("missing.ids")]);
        assert_eq!(rows[0][Col::vendor as usize], Value::Null);
        assert_eq!(text(&rows[0][Col::vendor_id as usize]), "0x8086");
        // No bus: no rows.
        assert!(scan_dir(&dir.path().join("nothing"), &[&ids]).is_empty());
    }

    /// The database is opened only when a name column is used: the "no readable
    /// pci.ids" note appears only then.
    #[test]
    fn ids_database_is_read_only_for_name_columns() {
        let dir = tempfile::tempdir().unwrap();
        let devices = dir.path().join("devices");
        write_device(&devices, "0000:00:01.0", &[("vendor", "0x8086\n")]);
        let missing = dir.path().join("missing.ids");
        let host = Host::default();
        let looked_up = |cols: &[Col]| {
            let ((), logged) = crate::common::testing::capture_log(|| {
                let ctx = QueryContext::everything(&SPEC, &host).using(cols.iter().copied());
                let mut rows = Rows::for_context(&ctx);
                scan(&ctx, &mut rows, &devices, &[&missing]).unwrap();
            });
            logged.iter().any(|(_, m)| m.contains("pci.ids"))
        };
        assert!(!looked_up(&[
            Col::pci_slot,
            Col::vendor_id,
            Col::pci_class_id
        ]));
        assert!(looked_up(&[Col::pci_slot, Col::vendor]));
    }

    /// Fields of `lspci -mm` lines: the quoted and unquoted words, quotes removed.
    fn lspci_fields(line: &str) -> Vec<String> {
        let mut out = Vec::new();
        let mut rest = line.trim();
        while !rest.is_empty() {
            if let Some(r) = rest.strip_prefix('"') {
                let end = r.find('"').unwrap_or(r.len());
                out.push(r[..end].to_owned());
                rest = r.get(end + 1..).unwrap_or("").trim_start();
            } else {
                let end = rest.find(' ').unwrap_or(rest.len());
                out.push(rest[..end].to_owned());
                rest = rest[end..].trim_start();
            }
        }
        out
    }

    /// `lspci -D -mm -n` (numbers) and `lspci -D -mm` (names), by slot, flags dropped.
    fn lspci(numeric: bool) -> BTreeMap<String, Vec<String>> {
        let args: &[&str] = if numeric {
            &["-D", "-mm", "-n"]
        } else {
            &["-D", "-mm"]
        };
        tool_stdout("lspci", args)
            .lines()
            .map(|l| {
                let f: Vec<String> = lspci_fields(l)
                    .into_iter()
                    .filter(|f| !f.starts_with("-r") && !f.starts_with("-p"))
                    .collect();
                (f[0].clone(), f[1..].to_vec())
            })
            .collect()
    }

    #[test]
    fn agrees_with_lspci() {
        let rows = crate::testing::scan_everything(&SPEC, generate);
        if require_tool("lspci").is_none() {
            return;
        }
        let numbers = lspci(true);
        let names = lspci(false);
        let slots: Vec<String> = rows.column(Col::pci_slot).into_iter().map(text).collect();
        assert_eq!(slots, numbers.keys().cloned().collect::<Vec<_>>());
        for r in rows.iter() {
            let slot = text(&r[Col::pci_slot as usize]);
            let n = &numbers[&slot];
            let id = |c: Col| text(&r[c as usize]).trim_start_matches("0x").to_owned();
            // lspci -n: class+subclass, vendor, device, [subvendor, subdevice].
            assert_eq!(
                n[0],
                format!("{}{}", id(Col::pci_class_id), id(Col::pci_subclass_id))
            );
            assert_eq!(n[1], id(Col::vendor_id));
            assert_eq!(n[2], id(Col::model_id));
            if n.len() > 4 && !n[3].is_empty() {
                assert_eq!(n[3], id(Col::subsystem_vendor_id), "{slot}");
                assert_eq!(n[4], id(Col::subsystem_model_id), "{slot}");
            }
            // lspci names from the same database: the subclass (or class) name, vendor and
            // device, where the database knows them (lspci prints a placeholder otherwise).
            let named = &names[&slot];
            let ours = |c: Col| text(&r[c as usize]);
            let class_name = match ours(Col::pci_subclass) {
                s if !s.is_empty() => s,
                _ => ours(Col::pci_class),
            };
            // (lspci adds the id, "Unassigned class [ffff]", where only the class is known.)
            if !class_name.is_empty() {
                assert!(named[0].starts_with(&class_name), "{slot}: {named:?}");
            }
            if !ours(Col::vendor).is_empty() {
                assert_eq!(named[1], ours(Col::vendor), "{slot}");
            }
            if !ours(Col::model).is_empty() {
                assert_eq!(named[2], ours(Col::model), "{slot}");
            }
        }
    }
}
