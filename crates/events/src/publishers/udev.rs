//! The `udev` publisher (osquery's name): reads kernel uevents with
//! [`oxquery_sys::uevent::UeventReader`] and feeds `hardware_events`. It needs no udev
//! daemon: it listens to the kernel's own group, and reads ids from sysfs and names
//! from `usb.ids`/`pci.ids` itself. The reader's loss counters (netlink overruns,
//! oversize and unparsable messages) are handed to `osquery_events` as they grow.

use crate::publisher::NetlinkLossReasons;
use crate::tables::hardware_events;
use crate::{EventHub, Publisher, PublisherContext, READ_TIMEOUT, Subscriber};
use oxquery_flags::{Flags, flag};
use oxquery_sys::netlink_multicast::LossCounters;
use oxquery_sys::uevent::{self, IdNames, UeventReader};
use std::path::Path;

pub struct UdevPublisher {
    reader: Option<UeventReader>,
    hardware_events: Subscriber,
    disabled_types: Vec<String>,
    /// Loaded on the first run (parsing `pci.ids` takes a moment).
    names: Option<IdNames>,
    /// The reader's counters already handed to `osquery_events`.
    reported: LossCounters,
}

impl UdevPublisher {
    /// The publisher, or `None` when the config disables `hardware_events`.
    pub fn new(hub: &EventHub, flags: &Flags) -> Option<UdevPublisher> {
        let hardware_events =
            hub.subscribe(&hardware_events::SPEC, hardware_events::PUBLISHER, None)?;
        Some(UdevPublisher {
            reader: None,
            hardware_events,
            disabled_types: hardware_events::disabled_types(
                flags.get(flag::hardware_disabled_types),
            ),
            names: None,
            reported: LossCounters::default(),
        })
    }
}

/// How the reader's losses are named in `osquery_events`.
const LOSS_REASONS: NetlinkLossReasons = NetlinkLossReasons {
    overruns: "netlink ENOBUFS (uevents dropped by the kernel)",
    truncated: "uevent larger than the read buffer",
    malformed: "unparsable uevent",
};

impl Publisher for UdevPublisher {
    fn name(&self) -> &'static str {
        hardware_events::PUBLISHER
    }

    fn subscribers(&self) -> Vec<String> {
        vec![self.hardware_events.name().to_owned()]
    }

    fn run(&mut self, ctx: &PublisherContext) -> Result<(), String> {
        if self.reader.is_none() {
            let reader =
                UeventReader::open().map_err(|e| format!("cannot listen to uevents: {e}"))?;
            self.reader = Some(reader);
        }
        let names = self.names.get_or_insert_with(IdNames::load);
        while !ctx.stopping() {
            let Some(reader) = self.reader.as_mut() else {
                return Ok(());
            };
            let batch = reader.next_batch(READ_TIMEOUT);
            ctx.lost_from_netlink(&mut self.reported, reader.loss(), &LOSS_REASONS);
            let events = batch.map_err(|e| {
                // A broken socket is opened anew on the next run.
                self.reader = None;
                format!("reading uevents: {e}")
            })?;
            if events.is_empty() {
                continue;
            }
            ctx.published(events.len() as u64);
            for event in &events {
                let facts = uevent::hardware_facts(event, Path::new("/sys"), names);
                if let Some(row) = hardware_events::row(&facts, event.time, &self.disabled_types) {
                    self.hardware_events.add(row.into_values());
                }
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::HubSettings;
    use oxquery_store::Store;
    use oxquery_table::{Host, QueryContext, Rows};
    use std::sync::{Arc, Mutex};
    use std::time::Duration;

    fn hub(settings: HubSettings) -> EventHub {
        let store = Arc::new(Mutex::new(Store::in_memory().unwrap()));
        EventHub::new(store, settings)
    }

    /// Every stored `hardware_events` row as (action, path, type).
    fn table(hub: &EventHub) -> Vec<(String, String, String)> {
        let host = Host {
            events: Some(Arc::new(hub.clone())),
            ..Host::default()
        };
        let ctx = QueryContext::everything(&hardware_events::SPEC, &host);
        let rows = Rows::collect(&ctx, hardware_events::TABLE.generate).unwrap();
        use hardware_events::Col;
        rows.iter()
            .map(|r| {
                (
                    r[Col::action as usize].to_string(),
                    r[Col::path as usize].to_string(),
                    r[Col::r#type as usize].to_string(),
                )
            })
            .collect()
    }

    #[test]
    fn built_unless_the_config_disables_hardware_events() {
        let flags = Flags::new();
        assert!(UdevPublisher::new(&hub(HubSettings::default()), &flags).is_some());
        let mut off = HubSettings::default();
        off.disabled.insert("hardware_events".into());
        assert!(UdevPublisher::new(&hub(off.clone()), &flags).is_none());
        let names = |h: &EventHub| -> Vec<&'static str> {
            crate::publishers(h, &flags, &crate::EventsConfig::default())
                .iter()
                .map(|p| p.name())
                .collect()
        };
        assert!(names(&hub(HubSettings::default())).contains(&"udev"));
        assert!(!names(&hub(off)).contains(&"udev"));
    }

    #[test]
    fn disabled_types_come_from_the_flag() {
        let mut flags = Flags::new();
        let default = UdevPublisher::new(&hub(HubSettings::default()), &flags).unwrap();
        assert_eq!(default.disabled_types, ["partition"]);
        flags
            .set("hardware_disabled_types", "disk,partition")
            .unwrap();
        let p = UdevPublisher::new(&hub(HubSettings::default()), &flags).unwrap();
        assert_eq!(p.disabled_types, ["disk", "partition"]);
    }

    /// The reader's counters become `osquery_events` losses, each growth once.
    #[test]
    fn reader_losses_are_handed_on_once() {
        let (ctx, _stop) = PublisherContext::detached("udev");
        let mut reported = LossCounters::default();
        let grown = LossCounters {
            overruns: 2,
            malformed: 1,
            ..LossCounters::default()
        };
        ctx.lost_from_netlink(&mut reported, grown, &LOSS_REASONS);
        ctx.lost_from_netlink(&mut reported, grown, &LOSS_REASONS);
        let (total, reasons) = ctx.stats.losses();
        assert_eq!(total, 3);
        assert!(
            reasons.contains("ENOBUFS (uevents dropped by the kernel): 2"),
            "{reasons}"
        );
        assert!(reasons.contains("unparsable uevent: 1"), "{reasons}");
    }

    /// The publisher on its thread, a loop device attached to a temp file: the table
    /// shows the kernel's uevent for that device.
    #[test]
    fn a_loop_device_reaches_the_table_through_the_hub() {
        let Some(losetup) = oxquery_test_support::require_tool("losetup") else {
            return;
        };
        let hub = hub(HubSettings::default());
        let publisher = UdevPublisher::new(&hub, &Flags::new()).unwrap();
        hub.start(vec![Box::new(publisher)]);
        let tmp = tempfile::tempdir().unwrap();
        let backing = tmp.path().join("backing");
        std::fs::File::create(&backing)
            .unwrap()
            .set_len(1 << 20)
            .unwrap();
        // The publisher opens its socket on its thread: a device attached before that is
        // not seen, so attach anew until one is.
        let found = oxquery_test_support::poll(Duration::from_secs(20), || {
            let device = oxquery_test_support::LoopDevice::attach(&losetup, &backing)
                .unwrap_or_else(|e| panic!("losetup: {e}"));
            let path = device.path().to_owned();
            let seen = oxquery_test_support::wait_until(Duration::from_secs(2), || {
                table(&hub).iter().any(|r| r.1 == path)
            });
            drop(device);
            seen.then_some(path)
        })
        .expect("a hardware_events row for the loop device");
        let rows: Vec<_> = table(&hub).into_iter().filter(|r| r.1 == found).collect();
        assert!(
            rows.iter()
                .all(|r| r.2 == "disk" && (r.0 == "change" || r.0 == "add")),
            "{rows:?}"
        );
        hub.stop();
        let status = oxquery_table::EventReader::status(&hub);
        let publisher = status.iter().find(|s| s.name == "udev").unwrap();
        assert!(publisher.events >= 1);
        assert_eq!(publisher.dropped, 0);
    }
}
