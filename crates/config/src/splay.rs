//! Interval splay: each query's interval is moved by up to ±`--schedule_splay_percent`
//! once, so a fleet started together does not query in lock-step, and the choice is
//! remembered so restarts and reloads keep the same rhythm.

use oxquery_store::{Domain, Store, StoreError};
use std::hash::{BuildHasher, Hasher};

/// Store key (domain `configurations`) of a query's remembered splay.
pub fn splay_key(full_name: &str) -> String {
    format!("interval.{full_name}")
}

/// The splay bounds for `interval`: `interval ± interval·percent/100`, at least 1.
/// A percent of 0 or above 100 means no splay.
pub fn splay_bounds(interval: u64, percent: u64) -> (u64, u64) {
    if percent == 0 || percent > 100 {
        return (interval, interval);
    }
    let spread = interval.saturating_mul(percent) / 100;
    (
        interval.saturating_sub(spread).max(1),
        interval.saturating_add(spread),
    )
}

/// Picks a splayed interval within [`splay_bounds`] using `random`.
pub fn splay_with(interval: u64, percent: u64, random: u64) -> u64 {
    let (low, high) = splay_bounds(interval, percent);
    low + random % (high - low + 1)
}

/// A random u64 without a dependency: std's per-process random hash keys, mixed with
/// the clock so successive calls differ.
fn random_u64() -> u64 {
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or(0);
    h.write_u128(nanos);
    h.finish()
}

/// The splayed interval of `full_name`: the remembered one when the store holds
/// `"<interval>:<splayed>"` for the same interval, else a new random one, which is then
/// remembered.
pub fn restore_splay(
    store: &Store,
    full_name: &str,
    interval: u64,
    percent: u64,
) -> Result<u64, StoreError> {
    let key = splay_key(full_name);
    if let Some(saved) = store.get_text(Domain::Configurations, &key)?
        && let Some((was, splayed)) = saved.split_once(':')
        && was.parse::<u64>() == Ok(interval)
        && let Ok(splayed) = splayed.parse::<u64>()
        && splayed > 0
    {
        return Ok(splayed);
    }
    let splayed = splay_with(interval, percent, random_u64());
    store.put(
        Domain::Configurations,
        &key,
        format!("{interval}:{splayed}").as_bytes(),
    )?;
    Ok(splayed)
}
