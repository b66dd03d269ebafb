//! How the `carves` table and the `carve()` SQL function reach the daemon's file
//! carver. The carve records live in the daemon's store and the carver runs in the
//! daemon, so the engine holds them as a [`Carves`] object in its [`crate::Host`]
//! (`None` in the shell, which never uploads). This crate knows only the trait; the
//! daemon implements it.
//!
//! A carve started by a distributed query records that query's id (`request_id`), which
//! the fleet server uses to tie the upload to its request. The distributed plugin marks
//! the query its engine runs with [`DistributedRequest::begin`]; the table and the
//! function read it through the host.

use std::sync::{Arc, Mutex};

/// One stored carve, as the `carves` table shows it (osquery's JSON record in the
/// store's `carves` domain).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CarveRecord {
    pub carve_guid: String,
    /// Unix time the carve was scheduled.
    pub time: i64,
    /// `SCHEDULED`, `STARTING`, `PENDING`, `SUCCESS` or a failure (`ARCHIVE FAILED`, ...).
    pub status: String,
    /// SHA-256 of the uploaded archive, empty until it is made.
    pub sha256: String,
    /// Bytes of the uploaded archive, -1 until it is made.
    pub size: i64,
    /// The carved paths, joined by `,` as osquery shows them.
    pub path: String,
    /// The distributed query that asked for the carve (empty when none did).
    pub request_id: String,
}

/// The daemon's carves, as SQL reaches them.
pub trait Carves: Send + Sync + std::fmt::Debug {
    /// Every stored carve.
    fn list(&self) -> Result<Vec<CarveRecord>, String>;
    /// Stores a carve of `paths` (files; directories and missing paths are skipped when
    /// it runs) for `request_id`, and has the carver take it up. Fails, saying why, when
    /// carving is disabled (`--disable_carver`).
    fn schedule(&self, paths: &[String], request_id: &str) -> Result<CarveRecord, String>;
    /// Whether the `carve()` SQL function may schedule carves
    /// (`--carver_disable_function=false`, and carving enabled).
    fn function_enabled(&self) -> bool;
}

/// The distributed query an engine is running, if any. Shared by the clones of one
/// engine's host; set by the daemon's distributed plugin around each query.
#[derive(Debug, Clone, Default)]
pub struct DistributedRequest {
    current: Arc<Mutex<Option<String>>>,
}

impl DistributedRequest {
    /// Marks the queries that follow as run for distributed request `id`.
    pub fn begin(&self, id: &str) {
        *self.lock() = Some(id.to_owned());
    }

    /// Ends the mark set by [`DistributedRequest::begin`].
    pub fn end(&self) {
        *self.lock() = None;
    }

    /// The request running now.
    pub fn id(&self) -> Option<String> {
        self.lock().clone()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Option<String>> {
        self.current.lock().unwrap_or_else(|p| p.into_inner())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_request_mark_is_shared_by_clones_and_ends() {
        let request = DistributedRequest::default();
        let seen_by_engine = request.clone();
        assert_eq!(seen_by_engine.id(), None);
        request.begin("q1");
        assert_eq!(seen_by_engine.id().as_deref(), Some("q1"));
        request.end();
        assert_eq!(seen_by_engine.id(), None);
    }
}
