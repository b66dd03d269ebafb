use std::io;
use std::path::PathBuf;

/// Why a table could not produce its rows. The engine turns it into an SQL error that
/// names the table; it never takes the process down.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum TableError {
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("{0}")]
    Message(String),
    /// The scan stopped early (see [`crate::QueryContext::check`]).
    #[error("{0}")]
    Interrupted(crate::StopReason),
}

impl TableError {
    pub fn io(path: impl Into<PathBuf>, source: io::Error) -> Self {
        TableError::Io {
            path: path.into(),
            source,
        }
    }
    pub fn msg(message: impl Into<String>) -> Self {
        TableError::Message(message.into())
    }
}

pub type TableResult = Result<(), TableError>;
