//! Tables of the `packages` domain: software installed by package managers (dpkg, rpm,
//! portage) and language ecosystems (Python, npm), and where packages come from (apt and
//! yum sources).

pub mod apt_sources;
mod deb822;
pub mod deb_package_files;
pub mod deb_packages;
pub mod npm_packages;
mod portage;
pub mod portage_keywords;
pub mod portage_packages;
pub mod portage_use;
pub mod python_packages;
pub mod rpm_package_files;
pub mod rpm_packages;
pub mod yum_sources;

use oxquery_table::TableDef;

/// The tables of this domain.
pub fn tables() -> Vec<&'static TableDef> {
    vec![
        &apt_sources::TABLE,
        &deb_package_files::TABLE,
        &deb_packages::TABLE,
        &npm_packages::TABLE,
        &portage_keywords::TABLE,
        &portage_packages::TABLE,
        &portage_use::TABLE,
        &python_packages::TABLE,
        &rpm_package_files::TABLE,
        &rpm_packages::TABLE,
        &yum_sources::TABLE,
    ]
}
