//! Tables of the `packages` domain: software installed by package managers (dpkg, rpm,
//! portage) and language ecosystems (Python, npm), and where packages come from (apt and
//! yum sources).

use oxquery_table::TableDef;

pub mod apt_sources;
mod deb822;
pub mod deb_package_files;
pub mod deb_packages;
mod portage;
pub mod portage_keywords;
pub mod portage_packages;
pub mod portage_use;
pub mod yum_sources;

/// The tables of this domain.
pub fn tables() -> Vec<&'static TableDef> {
    vec![
        &apt_sources::TABLE,
        &deb_package_files::TABLE,
        &deb_packages::TABLE,
        &portage_keywords::TABLE,
        &portage_packages::TABLE,
        &portage_use::TABLE,
        &yum_sources::TABLE,
    ]
}
