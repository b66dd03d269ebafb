//! Tables of the `packages` domain: software installed by package managers (dpkg, rpm,
//! portage) and language ecosystems (Python, npm), and where packages come from (apt and
//! yum sources).

use oxquery_table::TableDef;

/// The tables of this domain.
pub fn tables() -> Vec<&'static TableDef> {
    #[allow(unused_mut)]
    let mut tables: Vec<&'static TableDef> = Vec::new();
    tables
}
