//! Tables of the `apps` domain: browser extensions and editor plugins in every user's
//! profiles, and third-party agents' own state files.
//!
//! Everything here lives in files users control, so it is read only through
//! `oxquery_sys::safe_read` (via `common`).

pub mod carbon_black_info;
pub mod jetbrains_plugins;
pub mod vscode_extensions;

use oxquery_table::TableDef;

/// The tables of this domain.
pub fn tables() -> Vec<&'static TableDef> {
    #[allow(unused_mut)]
    let mut tables: Vec<&'static TableDef> = Vec::new();
    tables.extend([
        &carbon_black_info::TABLE,
        &jetbrains_plugins::TABLE,
        &vscode_extensions::TABLE,
    ]);
    tables
}
