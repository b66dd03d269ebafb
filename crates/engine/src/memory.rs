//! SQLite's allocations in the per-thread accounting of [`oxquery_table::memory`].
//!
//! SQLite lets a program replace its allocator (`SQLITE_CONFIG_MALLOC`) before it
//! initialises. Ours calls the C library's `malloc` as SQLite's default does, counts each
//! block's usable size on the allocating thread, and refuses (returns NULL, which SQLite
//! turns into SQLITE_NOMEM) an allocation that would take a query past its budget: a
//! `group_concat` doubling its buffer stops before the doubling, not after. Outside a
//! query window nothing is refused.

use oxquery_table::memory;
use rusqlite::ffi;
use std::ffi::{c_int, c_void};
use std::sync::OnceLock;

unsafe extern "C" fn x_malloc(size: c_int) -> *mut c_void {
    let size = size.max(0) as usize;
    if !memory::admit(size) {
        return std::ptr::null_mut();
    }
    // SAFETY: plain malloc; a NULL result is SQLite's out-of-memory.
    let p = unsafe { libc::malloc(size) };
    if !p.is_null() {
        // SAFETY: `p` is a live block from malloc.
        memory::note_alloc(unsafe { libc::malloc_usable_size(p) });
    }
    p
}

unsafe extern "C" fn x_free(p: *mut c_void) {
    if p.is_null() {
        return;
    }
    // SAFETY: SQLite frees only blocks x_malloc/x_realloc returned, once.
    unsafe {
        memory::note_free(libc::malloc_usable_size(p));
        libc::free(p);
    }
}

unsafe extern "C" fn x_realloc(p: *mut c_void, size: c_int) -> *mut c_void {
    let size = size.max(0) as usize;
    // SAFETY: `p` is a live block of ours (SQLite never reallocates NULL here).
    let old = unsafe { libc::malloc_usable_size(p) };
    if size > old && !memory::admit(size - old) {
        // SQLite keeps the old block, as after any failed realloc.
        return std::ptr::null_mut();
    }
    // SAFETY: as above; on failure the old block stays valid and counted.
    let q = unsafe { libc::realloc(p, size) };
    if !q.is_null() {
        memory::note_free(old);
        // SAFETY: `q` is the live block realloc returned.
        memory::note_alloc(unsafe { libc::malloc_usable_size(q) });
    }
    q
}

unsafe extern "C" fn x_size(p: *mut c_void) -> c_int {
    if p.is_null() {
        return 0;
    }
    // SAFETY: `p` is a live block of ours.
    let size = unsafe { libc::malloc_usable_size(p) };
    c_int::try_from(size).unwrap_or(c_int::MAX)
}

unsafe extern "C" fn x_roundup(size: c_int) -> c_int {
    // SQLite's own rule for its default allocator: a multiple of 8.
    size.saturating_add(7) & !7
}

unsafe extern "C" fn x_init(_: *mut c_void) -> c_int {
    ffi::SQLITE_OK
}

unsafe extern "C" fn x_shutdown(_: *mut c_void) {}

/// Routes SQLite's allocations through the accounting; returns whether they are
/// counted. Must run before anything in the process opens an SQLite database (SQLite
/// then refuses to change its allocator); the programs call it first thing, and
/// [`crate::Engine::open`] calls it for the engine's own tests and embedders. Later calls
/// return the first one's answer.
pub fn account_sqlite_memory() -> bool {
    // Once per process: SQLite's configuration is process-wide and may be set only
    // before it initialises.
    static INSTALLED: OnceLock<bool> = OnceLock::new();
    *INSTALLED.get_or_init(|| {
        let methods = ffi::sqlite3_mem_methods {
            xMalloc: Some(x_malloc),
            xFree: Some(x_free),
            xRealloc: Some(x_realloc),
            xSize: Some(x_size),
            xRoundup: Some(x_roundup),
            xInit: Some(x_init),
            xShutdown: Some(x_shutdown),
            pAppData: std::ptr::null_mut(),
        };
        // SAFETY: SQLite copies the methods; the functions live for the whole program.
        // Called before SQLite initialises it succeeds, afterwards it returns
        // SQLITE_MISUSE and changes nothing.
        let rc = unsafe { ffi::sqlite3_config(
            ffi::SQLITE_CONFIG_MALLOC,
            &methods as *const ffi::sqlite3_mem_methods,
        ) };
        if rc != ffi::SQLITE_OK {
            log::warn!(
                "SQLite was initialised before its memory could be counted: per-query memory budgets see only Rust allocations"
            );
        }
        rc == ffi::SQLITE_OK
    })
}
