//! Tables of the `packages` domain: software installed by package managers (dpkg, rpm,
//! portage) and language ecosystems (Python, npm), and where packages come from (apt and
//! yum sources).

pub mod npm_packages;
pub mod python_packages;
pub mod rpm_package_files;
pub mod rpm_packages;

use oxquery_table::TableDef;

/// The tables of this domain.
pub fn tables() -> Vec<&'static TableDef> {
    vec![
        &python_packages::TABLE,
        &npm_packages::TABLE,
        &rpm_packages::TABLE,
        &rpm_package_files::TABLE,
    ]
}
