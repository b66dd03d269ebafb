//! The daemon's own plugins as `osquery_registry` lists them, each active when the flags
//! put it in use. osquery marks every plugin of a registry active when none is chosen
//! (`enroll`, or `distributed` with `--disable_distributed`); here `active` says whether
//! the daemon runs it.

use oxquery_flags::{Flags, flag};
use oxquery_table::RegistryItem;

use super::remote;
use crate::logger;

/// The config, logger, distributed, enroll and numeric monitoring plugins the daemon has.
pub(super) fn plugins(flags: &Flags) -> Vec<RegistryItem> {
    let mut items = oxquery_config::config_plugin_items(flags);
    items.push(RegistryItem::built_in(
        "config",
        "tls",
        remote::config_over_tls(flags),
    ));
    let logging = !flags.get(flag::disable_logging);
    let chosen = |list: &str, name: &str| list.split(',').any(|n| n.trim() == name);
    let loggers = flags.get(flag::logger_plugin);
    items.extend(
        logger::plugins()
            .map(|name| RegistryItem::built_in("logger", name, logging && chosen(loggers, name))),
    );
    items.push(RegistryItem::built_in(
        "distributed",
        "tls",
        remote::distributed_over_tls(flags),
    ));
    items.push(RegistryItem::built_in(
        "enroll",
        "tls",
        remote::wanted(flags) && !flags.get(flag::disable_enrollment),
    ));
    items.push(RegistryItem::built_in(
        "numeric_monitoring",
        "filesystem",
        flags.get(flag::enable_numeric_monitoring)
            && chosen(flags.get(flag::numeric_monitoring_plugins), "filesystem"),
    ));
    items
}
