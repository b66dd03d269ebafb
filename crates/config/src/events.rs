//! Starting the event machinery, the same way in both programs: nothing unless
//! `--disable_events=false`; then the hub over the program's store, its bounds from
//! `--events_expiry`/`--events_max`/`--events_optimize`, the config's `events` lists, and
//! every publisher whose flags and subscribers ask for it.

use crate::Config;
use oxquery_events::{EventHub, EventsConfig, HubSettings, Limits};
use oxquery_flags::{Flags, flag};
use oxquery_store::Store;
use std::collections::BTreeSet;
use std::sync::{Arc, Mutex};

/// The hub's settings from flags and the config.
pub fn hub_settings(flags: &Flags, config: &Config) -> HubSettings {
    let enabled: BTreeSet<&String> = config.events.enable_subscribers.iter().collect();
    HubSettings {
        limits: Limits {
            expiry: flags.get(flag::events_expiry),
            max: flags.get(flag::events_max),
        },
        optimize: flags.get(flag::events_optimize),
        disabled: config
            .events
            .disable_subscribers
            .iter()
            .filter(|s| !enabled.contains(s))
            .cloned()
            .collect(),
    }
}

/// What publishers read from the config.
pub fn events_config(config: &Config) -> EventsConfig {
    EventsConfig {
        file_paths: config.file_paths.clone(),
        exclude_paths: config.exclude_paths.clone(),
        file_accesses: config.file_accesses.clone(),
        yara: config.yara.clone(),
    }
}

/// Starts the events of a program whose state is in `store`, or `None` under
/// `--disable_events` (osqueryi's default, as in osquery).
pub fn start_events(
    flags: &Flags,
    config: &Config,
    store: Arc<Mutex<Store>>,
    forward: Option<oxquery_events::EventForward>,
) -> Option<EventHub> {
    if flags.get(flag::disable_events) {
        return None;
    }
    let hub = EventHub::new(store, hub_settings(flags, config));
    if let Some(forward) = forward {
        // Before the publishers start: no event misses the logger plugins asking for them.
        hub.forward_events(forward);
    }
    let publishers = oxquery_events::publishers(&hub, flags, &events_config(config));
    log::info!("Starting {} event publisher(s)", publishers.len());
    hub.start(publishers);
    Some(hub)
}
