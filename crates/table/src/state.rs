//! State a built-in table keeps between scans of one engine (the `hash` table's digest
//! cache). A `table!` declaration is a static without fields, so its state lives here,
//! reached through [`crate::Host::state`]: one store per engine, dropped with it, never a
//! process-wide static.

use std::any::Any;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};

type Slot = Arc<dyn Any + Send + Sync>;

/// One engine's table state, by a key each table owns (its name). Cheap to clone: clones
/// share the store, so a settings change (which copies the [`crate::Host`]) keeps it.
#[derive(Clone, Default)]
pub struct TableState {
    slots: Arc<Mutex<HashMap<&'static str, Slot>>>,
}

impl std::fmt::Debug for TableState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let slots = self.slots.lock().unwrap_or_else(|p| p.into_inner());
        f.debug_struct("TableState")
            .field("keys", &slots.keys().collect::<Vec<_>>())
            .finish()
    }
}

impl TableState {
    /// The state under `key`, made by `make` on first use. The value guards itself
    /// (a `Mutex` inside): scans of several engines never share it, but one engine's
    /// nested scans (a join of a table with itself) may hold it at once.
    ///
    /// # Panics
    /// When `key` already holds a value of another type (two tables using one key).
    pub fn get_or_insert_with<T: Any + Send + Sync>(
        &self,
        key: &'static str,
        make: impl FnOnce() -> T,
    ) -> Arc<T> {
        let mut slots = self.slots.lock().unwrap_or_else(|p| p.into_inner());
        let slot = slots
            .entry(key)
            .or_insert_with(|| Arc::new(make()) as Slot)
            .clone();
        slot.downcast::<T>()
            .unwrap_or_else(|_| panic!("table state {key:?} holds another type"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicU32, Ordering};

    #[test]
    fn a_key_keeps_its_value_across_clones_and_stores_are_separate() {
        let state = TableState::default();
        let counter = state.get_or_insert_with("t", || AtomicU32::new(0));
        counter.fetch_add(1, Ordering::Relaxed);
        let shared = state.clone();
        let again = shared.get_or_insert_with("t", || AtomicU32::new(100));
        assert_eq!(again.load(Ordering::Relaxed), 1);
        let other = TableState::default();
        let fresh = other.get_or_insert_with("t", || AtomicU32::new(7));
        assert_eq!(fresh.load(Ordering::Relaxed), 7);
    }

    #[test]
    #[should_panic(expected = "holds another type")]
    fn one_key_with_two_types_is_a_programming_error() {
        let state = TableState::default();
        let _ = state.get_or_insert_with("t", || 1_u32);
        let _ = state.get_or_insert_with("t", String::new);
    }
}
