//! Which flags oxquery acts on. This is the one place to edit when a feature lands:
//! every other flag is still accepted (osquery scripts and flagfiles must keep working)
//! but setting it produces a warning that it has no effect yet.

/// Flags whose feature exists in oxquery, so setting them changes behaviour.
pub const IMPLEMENTED: &[&str] = &[
    // Shell behaviour and output.
    "A",
    "L",
    "S",
    "csv",
    "header",
    "json",
    "json_pretty",
    "json_typed",
    "line",
    "list",
    "nullvalue",
    "output",
    "planner",
    "pretty_expand",
    "profile",
    "profile_delay",
    "query",
    "query_file",
    "separator",
    // Process-wide.
    "disable_tables",
    "enable_tables",
    "flagfile",
    "help",
    "read_max",
    "verbose",
    "version",
];

/// Flags that oxquery rejects with an explicit error when used, because their feature
/// is missing and carrying on would do something else than asked (run no queries,
/// query the wrong process). They need no "no effect" warning.
pub const REFUSED: &[&str] = &["connect", "pack"];

/// Whether setting `name` has an effect in oxquery today.
pub fn is_implemented(name: &str) -> bool {
    IMPLEMENTED.contains(&name)
}

/// Whether using `name` is an error in oxquery today.
pub fn is_refused(name: &str) -> bool {
    REFUSED.contains(&name)
}
