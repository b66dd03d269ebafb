//! `hardware_events`: devices added, removed and changed, from the `udev` publisher over
//! the kernel's uevents (`oxquery_sys::uevent` says where each fact comes from: the
//! uevent, sysfs, and the host's `usb.ids`/`pci.ids`, where osquery asks udev).
//!
//! Rows follow osquery's filter: an event without a device type, without both a device
//! node and a driver, or without both a node and a model name is not reported, nor one
//! whose type `--hardware_disabled_types` lists.

use crate::EventRow;
use oxquery_sys::uevent::HardwareFacts;
pub use oxquery_table::scan_events as generate;
use oxquery_table::{Value, table};

table! {
    name: "hardware_events",
    description: "Devices added, removed or changed (kernel uevents over netlink; ids from sysfs, names from usb.ids/pci.ids). Device types in --hardware_disabled_types (default partition) are not reported.",
    attributes: [EVENT_BASED],
    columns: {
        action: Text [] "The uevent's action: add, remove, change, move, bind, unbind, online or offline",
        path: Text [] "The device node (/dev/ and the uevent's DEVNAME); empty when the device has none",
        r#type: Text [] "The device type (the uevent's DEVTYPE: disk, partition, usb_device, usb_interface...)",
        driver: Text [] "The driver bound to the device (the uevent's DRIVER, else the sysfs driver link)",
        vendor: Text [] "Vendor name from usb.ids or pci.ids",
        vendor_id: Text [COLLATE_NOCASE] "Hex vendor id of the device's USB device (idVendor) or PCI function (vendor), as 4 lowercase digits",
        model: Text [] "Model name from usb.ids or pci.ids",
        model_id: Text [COLLATE_NOCASE] "Hex model id of the device's USB device (idProduct) or PCI function (device)",
        serial: Text [] "Serial number of the USB device (sysfs serial)",
        revision: Text [] "Revision: the USB device's bcdDevice or the PCI function's revision, in hex",
        time: BigInt [ADDITIONAL] "Time the uevent was received (unix seconds)",
        eid: Text [HIDDEN] "Event id",
    },
    examples: [
        "select action, path, type, vendor, model from hardware_events where action = 'add'",
        "select * from hardware_events where time > (select unix_time from time) - 3600",
    ],
}

/// The publisher feeding this table.
pub const PUBLISHER: &str = "udev";

/// The row of one uevent received at `time`, or `None` when osquery would not report
/// it (see the module docs). `disabled_types` is `--hardware_disabled_types`, split.
pub fn row(facts: &HardwareFacts, time: i64, disabled_types: &[String]) -> Option<EventRow> {
    if facts.devtype.is_empty() || (facts.path.is_empty() && facts.driver.is_empty()) {
        return None;
    }
    if disabled_types
        .iter()
        .any(|t| t.as_bytes() == facts.devtype.as_slice())
    {
        return None;
    }
    if facts.path.is_empty() && facts.model.is_empty() {
        return None;
    }
    let mut row = EventRow::new(&SPEC);
    row.set(Col::action, Value::from_bytes(facts.action.clone()));
    row.set(Col::path, Value::from_bytes(facts.path.clone()));
    row.set(Col::r#type, Value::from_bytes(facts.devtype.clone()));
    row.set(Col::driver, Value::from_bytes(facts.driver.clone()));
    row.set(Col::vendor, facts.vendor.as_str());
    row.set(Col::vendor_id, facts.vendor_id.as_str());
    row.set(Col::model, facts.model.as_str());
    row.set(Col::model_id, facts.model_id.as_str());
    row.set(Col::serial, Value::from_bytes(facts.serial.clone()));
    row.set(Col::revision, facts.revision.as_str());
    row.set(Col::time, time);
    Some(row)
}

/// `--hardware_disabled_types` as a list: comma-separated, blanks trimmed, empties
/// dropped. (osquery looks the type up as a substring of the whole flag, so `art` would
/// match `partition`; a list matches whole names only.)
pub fn disabled_types(flag: &str) -> Vec<String> {
    flag.split(',')
        .map(str::trim)
        .filter(|t| !t.is_empty())
        .map(str::to_owned)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn facts(devtype: &str, path: &str, driver: &str, model: &str) -> HardwareFacts {
        HardwareFacts {
            action: b"add".to_vec(),
            path: path.as_bytes().to_vec(),
            devtype: devtype.as_bytes().to_vec(),
            driver: driver.as_bytes().to_vec(),
            vendor: "SanDisk Corp.".into(),
            vendor_id: "0781".into(),
            model: model.into(),
            model_id: "5567".into(),
            serial: b"4C53".to_vec(),
            revision: "0126".into(),
        }
    }

    #[test]
    fn a_reported_event_fills_every_column() {
        let row = row(
            &facts("disk", "/dev/sdb", "", "Cruzer Blade"),
            1_700_000_000,
            &disabled_types("partition"),
        )
        .unwrap()
        .into_values();
        let cell = |c: Col| row[c as usize].clone();
        assert_eq!(cell(Col::action), Value::from("add"));
        assert_eq!(cell(Col::path), Value::from("/dev/sdb"));
        assert_eq!(cell(Col::r#type), Value::from("disk"));
        assert_eq!(cell(Col::driver), Value::from(""));
        assert_eq!(cell(Col::vendor), Value::from("SanDisk Corp."));
        assert_eq!(cell(Col::vendor_id), Value::from("0781"));
        assert_eq!(cell(Col::model), Value::from("Cruzer Blade"));
        assert_eq!(cell(Col::model_id), Value::from("5567"));
        assert_eq!(cell(Col::serial), Value::from("4C53"));
        assert_eq!(cell(Col::revision), Value::from("0126"));
        assert_eq!(cell(Col::time), Value::Integer(1_700_000_000));
        assert_eq!(cell(Col::eid), Value::Null);
    }

    #[test]
    fn osquery_filters_and_disabled_types() {
        let disabled = disabled_types(" partition, , usb_interface ");
        assert_eq!(disabled, ["partition", "usb_interface"]);
        // No type; neither node nor driver; neither node nor model; a disabled type.
        for f in [
            facts("", "/dev/sdb", "sd", "m"),
            facts("disk", "", "", "m"),
            facts("usb_device", "", "usb", ""),
            facts("partition", "/dev/sdb1", "", "m"),
            facts("usb_interface", "", "usb-storage", "m"),
        ] {
            assert!(row(&f, 0, &disabled).is_none(), "{f:?}");
        }
        // A driver and a model stand in for a missing node.
        assert!(row(&facts("usb_device", "", "usb", "Cruzer"), 0, &disabled).is_some());
        // Whole names only: "art" does not disable "partition".
        assert!(
            row(
                &facts("partition", "/dev/sdb1", "", ""),
                0,
                &disabled_types("art")
            )
            .is_some()
        );
    }
}
