//! Tables of the `packages` domain: software installed by package managers (dpkg, rpm,
//! portage) and language ecosystems (Python, npm), and where packages come from (apt and
//! yum sources).

pub mod npm_packages;
pub mod python_packages;

use oxquery_table::TableDef;

/// The tables of this domain.
pub fn tables() -> Vec<&'static TableDef> {
    #[allow(unused_mut)]
    let mut tables: Vec<&'static TableDef> = Vec::new();
    tables.extend([&python_packages::TABLE, &npm_packages::TABLE]);
    tables
}
