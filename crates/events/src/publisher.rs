//! What a publisher is: a loop on its own thread that reads one OS event source (an
//! `oxquery-sys` reader), turns each event into rows of its subscribers' tables and adds
//! them. The hub starts it, restarts it when it fails, and stops it.

use oxquery_sys::netlink_multicast::LossCounters;
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// How long a publisher waits for its source before looking at the stop flag again.
pub const READ_TIMEOUT: Duration = Duration::from_millis(200);

/// An event source on a thread of its own.
pub trait Publisher: Send {
    /// osquery's name for it (`inotify`, `auditeventpublisher`, `udev`, `syslog`).
    fn name(&self) -> &'static str;
    /// The subscribers it feeds (for `osquery_events`).
    fn subscribers(&self) -> Vec<String>;
    /// Reads and publishes until [`PublisherContext::stopping`]; waits at most
    /// [`READ_TIMEOUT`] between looks at it. An error ends this run; the hub starts it
    /// again after a pause.
    fn run(&mut self, ctx: &PublisherContext) -> Result<(), String>;
}

/// A publisher's counters, shown in `osquery_events`.
#[derive(Debug, Default)]
pub struct PublisherStats {
    pub(crate) events: AtomicU64,
    pub(crate) refreshes: AtomicU64,
    pub(crate) active: AtomicI64,
    lost: Mutex<BTreeMap<&'static str, u64>>,
}

impl PublisherStats {
    /// Total events lost and the reasons with their counts.
    pub(crate) fn losses(&self) -> (i64, String) {
        let lost = self.lost.lock().unwrap_or_else(|p| p.into_inner());
        let counts: Vec<(&str, u64)> = lost.iter().map(|(k, v)| (*k, *v)).collect();
        (
            counts.iter().map(|(_, n)| *n as i64).sum(),
            reasons(&counts),
        )
    }
}

/// `reason: n, reason: n` for the non-zero counts.
pub(crate) fn reasons(counts: &[(&str, u64)]) -> String {
    counts
        .iter()
        .filter(|(_, n)| *n > 0)
        .map(|(reason, n)| format!("{reason}: {n}"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// The config a reload hands publishers, with a number that changes on every update.
#[derive(Debug, Default)]
pub(crate) struct ConfigSlot {
    pub(crate) generation: AtomicU64,
    pub(crate) config: Mutex<crate::EventsConfig>,
}

/// The `osquery_events` loss reasons for a netlink reader's [`LossCounters`].
pub(crate) struct NetlinkLossReasons {
    /// `ENOBUFS`: the kernel dropped messages.
    pub overruns: &'static str,
    /// Messages longer than the read buffer.
    pub truncated: &'static str,
    /// Messages that did not parse.
    pub malformed: &'static str,
}

/// What a running publisher is given.
pub struct PublisherContext {
    name: &'static str,
    stop: Arc<AtomicBool>,
    pub(crate) stats: Arc<PublisherStats>,
    config: Arc<ConfigSlot>,
    seen_generation: AtomicU64,
}

impl PublisherContext {
    pub(crate) fn new(
        name: &'static str,
        stop: Arc<AtomicBool>,
        stats: Arc<PublisherStats>,
        config: Arc<ConfigSlot>,
    ) -> PublisherContext {
        let seen_generation = AtomicU64::new(config.generation.load(Ordering::SeqCst));
        PublisherContext {
            name,
            stop,
            stats,
            config,
            seen_generation,
        }
    }

    /// A context for a publisher driven by a test, with its own stop flag.
    pub fn detached(name: &'static str) -> (PublisherContext, Arc<AtomicBool>) {
        let stop = Arc::new(AtomicBool::new(false));
        let ctx = PublisherContext::new(name, Arc::clone(&stop), Arc::default(), Arc::default());
        (ctx, stop)
    }

    /// The config a reload brought since the last call, if any (`file_paths` changed:
    /// the inotify publisher adds and removes watches).
    pub fn config_update(&self) -> Option<crate::EventsConfig> {
        let now = self.config.generation.load(Ordering::SeqCst);
        if self.seen_generation.swap(now, Ordering::SeqCst) == now {
            return None;
        }
        Some(
            self.config
                .config
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .clone(),
        )
    }

    /// Whether the publisher must return.
    pub fn stopping(&self) -> bool {
        self.stop.load(Ordering::Relaxed)
    }

    /// Counts `n` events read from the source.
    pub fn published(&self, n: u64) {
        self.stats.events.fetch_add(n, Ordering::Relaxed);
    }

    /// Records `n` events lost for `reason` (a kernel queue overflow, ENOBUFS) and warns
    /// with the running total.
    pub fn lost(&self, reason: &'static str, n: u64) {
        if n == 0 {
            return;
        }
        let total = {
            let mut lost = self.stats.lost.lock().unwrap_or_else(|p| p.into_inner());
            let slot = lost.entry(reason).or_default();
            *slot += n;
            *slot
        };
        log::warn!(
            "Event publisher {}: {n} events lost ({reason}; {total} in all)",
            self.name
        );
    }

    /// Hands the growth of a netlink reader's loss counters since `reported` to
    /// `osquery_events`, each under its reason in `reasons` (counters given the same
    /// reason as one loss), and remembers `now` as reported. Foreign datagrams are not
    /// counted: they were never events.
    pub(crate) fn lost_from_netlink(
        &self,
        reported: &mut LossCounters,
        now: LossCounters,
        reasons: &NetlinkLossReasons,
    ) {
        let was = std::mem::replace(reported, now);
        let grown = [
            (reasons.overruns, now.overruns - was.overruns),
            (reasons.truncated, now.truncated - was.truncated),
            (reasons.malformed, now.malformed - was.malformed),
        ];
        for (i, (reason, _)) in grown.iter().enumerate() {
            if grown[..i].iter().all(|(r, _)| r != reason) {
                let n = grown[i..]
                    .iter()
                    .filter(|(r, _)| r == reason)
                    .map(|(_, n)| n);
                self.lost(reason, n.sum());
            }
        }
    }

    /// Sleeps up to `pause`, returning early (false) when stopping.
    pub fn sleep(&self, pause: Duration) -> bool {
        let until = Instant::now() + pause;
        while Instant::now() < until {
            if self.stopping() {
                return false;
            }
            std::thread::sleep((until - Instant::now()).min(Duration::from_millis(50)));
        }
        !self.stopping()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_reloaded_config_is_handed_over_once() {
        let slot = Arc::new(ConfigSlot::default());
        let ctx = PublisherContext::new("t", Arc::default(), Arc::default(), Arc::clone(&slot));
        assert_eq!(ctx.config_update(), None);
        let mut config = crate::EventsConfig::default();
        config.file_accesses.push("etc".into());
        *slot.config.lock().unwrap() = config.clone();
        slot.generation.fetch_add(1, Ordering::SeqCst);
        assert_eq!(ctx.config_update(), Some(config));
        assert_eq!(ctx.config_update(), None);
    }

    /// Each counter's growth once, under its reason; counters sharing a reason as one.
    #[test]
    fn netlink_losses_are_handed_on_once_by_reason() {
        let (ctx, _) = PublisherContext::detached("t");
        let reasons = NetlinkLossReasons {
            overruns: "ENOBUFS",
            truncated: "unparsable",
            malformed: "unparsable",
        };
        let mut reported = LossCounters::default();
        let grown = LossCounters {
            overruns: 1,
            truncated: 2,
            malformed: 3,
            foreign: 4,
        };
        ctx.lost_from_netlink(&mut reported, grown, &reasons);
        ctx.lost_from_netlink(&mut reported, grown, &reasons);
        assert_eq!(reported, grown);
        assert_eq!(
            ctx.stats.losses(),
            (6, "ENOBUFS: 1, unparsable: 5".to_owned())
        );
    }

    #[test]
    fn losses_are_summed_and_named() {
        let (ctx, _) = PublisherContext::detached("t");
        ctx.lost("inotify queue overflow", 3);
        ctx.lost("netlink ENOBUFS", 2);
        ctx.lost("inotify queue overflow", 1);
        assert_eq!(
            ctx.stats.losses(),
            (
                6,
                "inotify queue overflow: 4, netlink ENOBUFS: 2".to_owned()
            )
        );
    }
}
