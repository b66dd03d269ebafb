//! `osqueryi` (or `osqueryd`, when named so or given `--D`).

/// mimalloc, counting each thread's allocations: per-query memory budgets and the peak
/// memory `osquery_schedule` shows (see `oxquery::ProgramAllocator`).
#[global_allocator]
static ALLOC: oxquery::ProgramAllocator = oxquery::PROGRAM_ALLOCATOR;

fn main() {
    std::process::exit(oxquery::main_entry());
}
