//! `osqueryd`: the same program as `osqueryi`, started as the daemon.

/// Counts each thread's allocations: per-query memory budgets and the peak memory
/// `osquery_schedule` shows (see `oxquery_table::memory`).
#[global_allocator]
static ALLOC: oxquery::CountingAllocator = oxquery::CountingAllocator::SYSTEM;

fn main() {
    std::process::exit(oxquery::main_entry());
}
