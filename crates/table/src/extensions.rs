//! How the `osquery_extensions` and `osquery_registry` tables reach the extension
//! manager. The manager (its socket, the extensions registered with it and their plugins)
//! lives in `oxquery-extensions`; the engine holds it as an [`Extensions`] object in its
//! [`crate::Host`] (`None` when no manager runs: `--disable_extensions`, or a manager that
//! could not start). This crate knows only the trait.

use crate::RegistryItem;

/// One row of `osquery_extensions`: the core itself (uuid 0) or a registered extension.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExtensionRecord {
    pub uuid: i64,
    pub name: String,
    pub version: String,
    pub sdk_version: String,
    /// The socket it serves: the manager's for the core, `<manager socket>.<uuid>` for
    /// an extension.
    pub path: String,
    /// `core` or `extension`.
    pub kind: &'static str,
}

/// The running extension manager, as SQL reaches it.
pub trait Extensions: Send + Sync + std::fmt::Debug {
    /// The core first, then each live extension by uuid.
    fn list(&self) -> Vec<ExtensionRecord>;
    /// The plugins extensions provide in registries other than `table` (their tables are
    /// in the table registry with their owner).
    fn plugins(&self) -> Vec<RegistryItem>;
}
