//! The one error type of the core. The Python bindings map each variant to a class of the
//! `ferrovec.errors` hierarchy, so keep the variants about *what the caller can do*, not where
//! the failure happened.

use std::io;
use std::path::PathBuf;

#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The caller passed something we refuse; nothing was changed.
    #[error("{0}")]
    InvalidInput(String),

    #[error("collection {0:?} does not exist")]
    CollectionNotFound(String),

    #[error("collection {0:?} already exists")]
    CollectionExists(String),

    /// A process that cannot share the store holds it exclusively (an older ferrovec).
    #[error("store {} is held exclusively by another process (pid {pid}) that cannot share it, such as an older ferrovec", path.display())]
    StoreLocked { path: PathBuf, pid: String },

    /// A write through a store opened read-only.
    #[error("{0}")]
    ReadOnly(String),

    /// A file is damaged, truncated in the middle, foreign, or of a format we cannot read.
    #[error("{}: {detail}", path.display())]
    Corruption { path: PathBuf, detail: String },

    /// An operating-system I/O call failed. `op` names the call (write, fsync, rename, ...).
    #[error("{op} {}: {source}", path.display())]
    Io {
        op: &'static str,
        path: PathBuf,
        #[source]
        source: io::Error,
    },

    /// A previous fsync or write of the log failed; the log cannot promise anything any more, so
    /// every later write is refused until the store is reopened (which replays what is on disk).
    #[error("the write-ahead log in {} failed earlier ({reason}); reopen the store", path.display())]
    LogFailed { reason: String, path: PathBuf },

    /// The handle was closed, or the collection was dropped.
    #[error("{0}")]
    Closed(String),

    /// A file of another format version: older than this build reads (an upgrade path is
    /// missing) or newer (written by a later ferrovec).
    #[error("{}: {what} has format version {found}, {}", path.display(), version_advice(*found, *reads))]
    UnsupportedVersion {
        path: PathBuf,
        what: &'static str,
        found: u32,
        /// The version this build reads and writes.
        reads: u32,
    },

    /// Serving the store would keep more resident than its memory budget allows
    /// (`StorageOptions::memory_limit_bytes`); nothing was changed.
    #[error("{0}")]
    MemoryLimit(String),

    /// The caller asked the call to stop (`Cancel`) and it did, at a point where nothing was
    /// half-done.
    #[error("{0}")]
    Interrupted(String),

    /// Something the engine itself got wrong (a bug), not the caller's input nor the disk.
    #[error("internal error (a bug in ferrovec; please report it): {0}")]
    Internal(String),
}

fn version_advice(found: u32, reads: u32) -> String {
    if found > reads {
        format!("written by a newer ferrovec; this build reads version {reads}: upgrade ferrovec")
    } else {
        format!("older than this build reads (version {reads}) and no upgrade from it is known")
    }
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    pub(crate) fn corrupt(path: impl Into<PathBuf>, detail: impl Into<String>) -> Self {
        Error::Corruption {
            path: path.into(),
            detail: detail.into(),
        }
    }

    pub(crate) fn invalid(msg: impl Into<String>) -> Self {
        Error::InvalidInput(msg.into())
    }

    /// The store is held exclusively by another process, which wrote `holder` (its pid) into
    /// the lock file.
    pub(crate) fn store_locked(path: &std::path::Path, holder: String) -> Self {
        Error::StoreLocked {
            path: path.to_path_buf(),
            pid: if holder.is_empty() {
                "unknown".into()
            } else {
                holder
            },
        }
    }

    pub(crate) fn internal(msg: impl Into<String>) -> Self {
        Error::Internal(msg.into())
    }
}

/// Attach the operation and path to an `io::Error`.
pub(crate) trait IoContext<T> {
    fn ctx(self, op: &'static str, path: &std::path::Path) -> Result<T>;
}

impl<T> IoContext<T> for io::Result<T> {
    fn ctx(self, op: &'static str, path: &std::path::Path) -> Result<T> {
        self.map_err(|source| Error::Io {
            op,
            path: path.to_path_buf(),
            source,
        })
    }
}
