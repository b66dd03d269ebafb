//! Tables of the `apps` domain: browser extensions and editor plugins in every user's
//! profiles, and third-party agents' own state files.
//!
//! Everything here lives in files users control, so it is read only through
//! `oxquery_sys::safe_read` (via `common`).

pub mod carbon_black_info;
mod chrome;
pub mod chrome_extension_content_scripts;
pub mod chrome_extensions;
pub mod firefox_addons;
pub mod jetbrains_plugins;
pub mod opera_extensions;
pub mod vscode_extensions;

use oxquery_table::TableDef;

/// The tables of this domain.
pub fn tables() -> Vec<&'static TableDef> {
    vec![
        &chrome_extensions::TABLE,
        &chrome_extension_content_scripts::TABLE,
        &firefox_addons::TABLE,
        &opera_extensions::TABLE,
        &carbon_black_info::TABLE,
        &jetbrains_plugins::TABLE,
        &vscode_extensions::TABLE,
    ]
}
