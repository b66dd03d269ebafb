//! osquery's extension protocol: the `Extension` and `ExtensionManager` Thrift services
//! spoken over a unix socket, as the osquery SDKs (Python, Go, C++) speak them.
//!
//! Wire format: Thrift's binary protocol over a buffered (unframed) stream; we write
//! strict messages and read non-strict ones too, as osquery does.
//!
//! - [`manager`]: the extension manager a program serves on `--extensions_socket`
//!   ([`Manager`]), its registered extensions ([`Roster`]), their health checks.
//! - [`server`]: the socket and the accept loop, messages read bounded.
//! - [`table`]: an extension's table ([`ExtensionTable`]), its context JSON and cells.
//! - [`client`]: a connection to a manager's or an extension's socket.

pub mod client;
#[allow(clippy::all, clippy::pedantic, unused_qualifications, dead_code)]
pub mod generated;
pub mod launch;
mod link;
pub mod manager;
pub mod server;
pub mod table;
#[cfg(feature = "testing")]
pub mod testing;

pub use client::{Client, ClientError};
pub use manager::{Manager, Roster, Settings};
pub use table::ExtensionTable;

use std::collections::BTreeMap;

/// A plugin call's request (`ExtensionPluginRequest`).
pub type PluginRequest = BTreeMap<String, String>;
/// A plugin call's rows (`ExtensionPluginResponse`).
pub type PluginResponse = Vec<BTreeMap<String, String>>;

/// Why a call routed to an extension's plugin did not succeed.
#[derive(Debug, thiserror::Error)]
pub enum CallError {
    /// No registered extension offers `registry`/`item`.
    #[error("no extension provides the {registry} plugin {item}")]
    NoRoute { registry: String, item: String },
    /// The extension answered with a non-zero status.
    #[error("extension plugin failed: {message}")]
    Failed { code: i32, message: String },
    /// The socket could not be reached, or the exchange broke (timeout, bad frame).
    #[error(transparent)]
    Client(#[from] ClientError),
}

/// The program's own plugins other than its tables (its config and logger plugins...),
/// which the manager's `call` reaches as osquery's manager reaches its registry's local
/// items. The program installs them with [`Manager::serve_plugins`]; this crate knows
/// none of them.
pub trait LocalPlugins: Send + Sync {
    /// Whether the program itself holds plugin `item` of `registry`.
    fn holds(&self, registry: &str, item: &str) -> bool;
    /// Calls `registry`/`item` (one [`LocalPlugins::holds`] says is there) with `request`:
    /// the rows of a successful answer, [`CallError::Failed`] with osquery's status code
    /// and message otherwise.
    fn call(
        &self,
        registry: &str,
        item: &str,
        request: &PluginRequest,
    ) -> Result<PluginResponse, CallError>;
}

/// Routes plugin calls (`Extension.call`) to whichever registered extension provides the
/// plugin. The manager implements it; the daemon's config and logger plugins backed by
/// an extension hold one.
pub trait PluginCaller: Send + Sync {
    /// Whether a registered extension currently provides `registry`/`item`.
    fn provides(&self, registry: &str, item: &str) -> bool;
    /// Calls `registry`/`item` with `request`; the rows of a successful answer.
    fn call(
        &self,
        registry: &str,
        item: &str,
        request: &PluginRequest,
    ) -> Result<PluginResponse, CallError>;
}
