//! `usb_devices`: the USB devices sysfs lists (`/sys/bus/usb/devices`; interfaces, which
//! have no bus and device number, are left out), named from the host's `usb.ids`.
//!
//! osquery reads udev's properties; we read the sysfs attributes they come from:
//! `busnum`/`devnum` (address and port), `idVendor`/`idProduct`, `bcdDevice` (version),
//! `serial`, and the device class triple, in decimal as udev's `TYPE` gives it. Names come
//! from `usb.ids`, parsed only when a name column is used; where it does not know the
//! device, the device's own strings (`manufacturer`, `product`) are used, as udev's
//! `ID_MODEL` fallback was. `removable` is 1 for a removable port, 0 for a fixed one and
//! -1 when the hub does not say (osquery printed 1 for fixed ones too).

use super::bus_devices::{self, BusDevice};
use oxquery_sys::hwids::{IdDatabase, USB_IDS_PATHS};
use oxquery_table::{QueryContext, Rows, TableResult, table};
use std::path::Path;

table! {
    name: "usb_devices",
    description: "USB devices attached to the host, one row each, from /sys/bus/usb/devices; vendor and model names from the host's usb.ids.",
    columns: {
        usb_address: Integer [] "USB bus number",
        usb_port: Integer [] "Device number on that bus",
        vendor: Text [] "Vendor name from usb.ids, else the device's manufacturer string",
        vendor_id: Text [COLLATE_NOCASE] "Vendor id in hex (e.g. 1d6b)",
        version: Text [COLLATE_VERSION] "Device release number (bcdDevice, e.g. 0602)",
        model: Text [] "Model name from usb.ids, else the device's product string",
        model_id: Text [COLLATE_NOCASE] "Product id in hex (e.g. 0003)",
        serial: Text [] "Serial number string the device reports; empty when none",
        class: Text [] "Device class, in decimal (9 for a hub)",
        subclass: Text [] "Device subclass, in decimal",
        protocol: Text [] "Device protocol, in decimal",
        removable: Integer [] "1 if the port is removable, 0 if fixed, -1 if unknown",
    },
    examples: ["select vendor, model, serial from usb_devices where removable = 1"],
}

const SYS_USB_DEVICES: &str = "/sys/bus/usb/devices";

const NAME_COLUMNS: [Col; 2] = [Col::vendor, Col::model];

fn generate(ctx: &QueryContext, rows: &mut Rows) -> TableResult {
    scan(ctx, rows, Path::new(SYS_USB_DEVICES), USB_IDS_PATHS)
}

/// A sysfs hex attribute (`09`, `1d6b`) as a number.
fn hex_attr(device: &BusDevice, name: &str) -> Option<u32> {
    u32::from_str_radix(&device.attr(name)?, 16).ok()
}

/// The rows for the devices under `devices_dir`, named from the first readable of
/// `ids_paths` (the entry point tests point at fixtures).
fn scan(
    ctx: &QueryContext,
    rows: &mut Rows,
    devices_dir: &Path,
    ids_paths: &[impl AsRef<Path>],
) -> TableResult {
    let Some(devices) = bus_devices::list(
        devices_dir,
        SPEC.name.as_ref(),
        "no USB controller, or sysfs not mounted",
    ) else {
        return Ok(());
    };
    let mut db: Option<Option<IdDatabase>> = None;
    for device in devices {
        ctx.check()?;
        // Devices have a bus and device number; interfaces (`1-1:1.0`) do not.
        let (Some(bus), Some(devnum)) = (
            device.attr("busnum").and_then(|v| v.parse::<i64>().ok()),
            device.attr("devnum").and_then(|v| v.parse::<i64>().ok()),
        ) else {
            continue;
        };
        let vendor_id = device.attr("idVendor");
        let product_id = device.attr("idProduct");
        let mut row = rows.row();
        row.set(Col::usb_address, bus);
        row.set(Col::usb_port, devnum);
        if NAME_COLUMNS.iter().any(|&c| row.wants(c)) {
            let db = db.get_or_insert_with(|| {
                bus_devices::load_ids(
                    ids_paths,
                    "usb_devices: no readable usb.ids, names from the devices only",
                )
            });
            let vendor = vendor_id
                .as_deref()
                .and_then(|v| u16::from_str_radix(v, 16).ok());
            let product = product_id
                .as_deref()
                .and_then(|v| u16::from_str_radix(v, 16).ok());
            let known_vendor = db.as_ref().zip(vendor).and_then(|(db, v)| db.vendor(v));
            let known_model = db
                .as_ref()
                .zip(vendor.zip(product))
                .and_then(|(db, (v, p))| db.device(v, p));
            row.set(
                Col::vendor,
                known_vendor
                    .map(str::to_owned)
                    .or_else(|| device.attr("manufacturer"))
                    .unwrap_or_default(),
            );
            row.set(
                Col::model,
                known_model
                    .map(str::to_owned)
                    .or_else(|| device.attr("product"))
                    .unwrap_or_default(),
            );
        }
        row.set(Col::vendor_id, vendor_id);
        row.set(Col::model_id, product_id);
        row.set_with(Col::version, || device.attr("bcdDevice"));
        row.set_with(Col::serial, || device.attr("serial").unwrap_or_default());
        let decimal = |attr: &str| hex_attr(&device, attr).map(|v| v.to_string());
        row.set_with(Col::class, || decimal("bDeviceClass"));
        row.set_with(Col::subclass, || decimal("bDeviceSubClass"));
        row.set_with(Col::protocol, || decimal("bDeviceProtocol"));
        row.set_with(Col::removable, || {
            match device.attr("removable").as_deref() {
                Some("removable") => 1i64,
                Some("fixed") => 0,
                _ => -1,
            }
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::hardware::bus_devices::testing::write_device;
    use crate::testing::text;
    use oxquery_table::Value;
    use oxquery_test_support::require_tool;
    use std::fs;

    fn scan_dir(devices: &Path, ids: &[&Path]) -> Vec<Vec<Value>> {
        crate::hardware::bus_devices::testing::scan_rows(&SPEC, |ctx, rows| {
            scan(ctx, rows, devices, ids)
        })
    }

    #[test]
    fn fixture_devices() {
        let dir = tempfile::tempdir().unwrap();
        let devices = dir.path().join("devices");
        let hub = [
            ("busnum", "1\n"),
            ("devnum", "1\n"),
            ("idVendor", "1d6b\n"),
            ("idProduct", "0002\n"),
            ("bcdDevice", "0602\n"),
            ("bDeviceClass", "09\n"),
            ("bDeviceSubClass", "00\n"),
            ("bDeviceProtocol", "01\n"),
            ("removable", "unknown\n"),
            ("serial", "0000:00:14.0\n"),
            ("product", "xHCI Host Controller\n"),
        ];
        write_device(&devices, "usb1", &hub);
        write_device(
            &devices,
            "1-2",
            &[
                ("busnum", "1\n"),
                ("devnum", "5\n"),
                ("idVendor", "abcd\n"),
                ("idProduct", "ef01\n"),
                ("bDeviceClass", "ff\n"),
                ("removable", "removable\n"),
                ("manufacturer", "Acme\n"),
                ("product", "Gadget\n"),
            ],
        );
        // An interface (no bus or device number) and a truncated device are skipped.
        write_device(&devices, "1-2:1.0", &[("bInterfaceClass", "08\n")]);
        write_device(&devices, "1-3", &[("busnum", "1\n"), ("devnum", "")]);
        let ids = dir.path().join("usb.ids");
        fs::write(&ids, "1d6b  Linux Foundation\n\t0002  2.0 root hub\n").unwrap();

        let rows = scan_dir(&devices, &[&ids]);
        assert_eq!(rows.len(), 2);
        let gadget = &rows[0];
        assert_eq!(gadget[Col::usb_port as usize], Value::Integer(5));
        assert_eq!(text(&gadget[Col::vendor as usize]), "Acme");
        assert_eq!(text(&gadget[Col::model as usize]), "Gadget");
        assert_eq!(text(&gadget[Col::class as usize]), "255");
        assert_eq!(gadget[Col::subclass as usize], Value::Null);
        assert_eq!(gadget[Col::removable as usize], Value::Integer(1));
        let hub = &rows[1];
        assert_eq!(hub[Col::usb_address as usize], Value::Integer(1));
        assert_eq!(text(&hub[Col::vendor as usize]), "Linux Foundation");
        assert_eq!(text(&hub[Col::model as usize]), "2.0 root hub");
        assert_eq!(text(&hub[Col::vendor_id as usize]), "1d6b");
        assert_eq!(text(&hub[Col::version as usize]), "0602");
        assert_eq!(text(&hub[Col::class as usize]), "9");
        assert_eq!(text(&hub[Col::protocol as usize]), "1");
        assert_eq!(hub[Col::removable as usize], Value::Integer(-1));
        assert!(scan_dir(&dir.path().join("none"), &[&ids]).is_empty());
    }

    /// Bus, device number and `vendor:product` of each `lsusb` line, sorted; the same
    /// from our rows. A host without USB (most VMs) gives none on both sides.
    #[test]
    fn agrees_with_lsusb() {
        let rows = crate::testing::scan_everything(&SPEC, generate);
        if require_tool("lsusb").is_none() {
            return;
        }
        let mut ours: Vec<String> = rows
            .iter()
            .map(|r| {
                let n = |c: Col| match r[c as usize] {
                    Value::Integer(i) => i,
                    ref v => panic!("{v:?}"),
                };
                format!(
                    "{:03} {:03} {}:{}",
                    n(Col::usb_address),
                    n(Col::usb_port),
                    text(&r[Col::vendor_id as usize]),
                    text(&r[Col::model_id as usize])
                )
            })
            .collect();
        ours.sort();
        // lsusb exits 1 when there are no devices; read its output either way.
        let out = std::process::Command::new("lsusb").output().unwrap();
        let mut theirs: Vec<String> = String::from_utf8_lossy(&out.stdout)
            .lines()
            .filter_map(|l| {
                // "Bus 001 Device 002: ID 8087:0024 Intel Corp. ..."
                let f: Vec<&str> = l.split_whitespace().collect();
                (f.len() >= 6 && f[0] == "Bus")
                    .then(|| format!("{} {} {}", f[1], f[3].trim_end_matches(':'), f[5]))
            })
            .collect();
        theirs.sort();
        assert_eq!(ours, theirs);
    }
}
